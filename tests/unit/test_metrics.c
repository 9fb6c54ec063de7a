/* test_metrics.c -- unit tests for metrics: series and deltas, the histogram, the exposition format.
 * The counters are process-global and shared by every test here, so tests compare renders taken
 * before and after their own calls. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

#define RENDER_MAX	65536	/* bytes; the exposition is a few KiB */
#define THREADS		4
#define THREAD_CALLS	10000
#define TEST_TIMEOUT	10	/* seconds */

static const char *const bucket_les[] = {
	"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
	"0.25", "0.5", "1", "2.5", "5", "10", "25", "50", "100", "120", "+Inf",
};
#define MAX_SCAN_TIME	120	/* seconds: MAX_SCAN_TIME's default */
#define NBUCKETS (sizeof(bucket_les) / sizeof(bucket_les[0]))

static const struct metrics_gauges no_gauges = { .db_version = -1 };

static int
setup(void **state)
{
	(void)state;
	alarm(TEST_TIMEOUT);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

/* Caller frees. */
static char *
render(const struct metrics_gauges *g)
{
	char *buf = malloc(RENDER_MAX);
	size_t n;

	assert_non_null(buf);
	n = metrics_render(buf, RENDER_MAX, g);
	assert_true(n > 0);
	assert_int_equal(strlen(buf), n);
	return buf;
}

/* The value of one series (name with its labels exactly as rendered); absent: -1. */
static double
value(const char *text, const char *series)
{
	size_t len = strlen(series);

	for (const char *p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
		if (strncmp(p, series, len) == 0 && p[len] == ' ')
			return strtod(p + len + 1, NULL);
		if (strchr(p, '\n') == NULL)
			break;
	}
	return -1;
}

/* Counters that are not rendered until they move count as 0. */
static double
value0(const char *text, const char *series)
{
	double v = value(text, series);

	return v < 0 ? 0 : v;
}

static void
assert_delta(const char *before, const char *after, const char *series, double want)
{
	double d = value0(after, series) - value0(before, series);

	if (fabs(d - want) > 1e-9)
		fail_msg("%s moved by %g, want %g", series, d, want);
}

static void
bucket_name(char *out, size_t len, size_t i)
{
	snprintf(out, len, "clamrest_scan_duration_seconds_bucket{le=\"%s\"}", bucket_les[i]);
}

static void
test_series_after_calls(void **state)
{
	struct metrics_gauges g = {
		.scans_queued = 3, .scans_running = 2, .scan_rate = 4.5, .db_version = 27001, .db_time = 1700000000,
		.signatures = 4, .reloads = 5, .reload_failures = 6,
	};
	char *before, *after;

	(void)state;
	metrics_start(MAX_SCAN_TIME);
	before = render(&g);
	metrics_request(METRICS_ROUTE_SCAN, 200, 0.01);
	metrics_request(METRICS_ROUTE_SCAN, 200, 0.01);
	metrics_request(METRICS_ROUTE_CHECK, 401, 0.01);
	metrics_request(METRICS_ROUTE_SCAN_LEGACY, 503, 0.01);
	metrics_request(METRICS_ROUTE_OTHER, 418, 0.01);		/* a status not in the list */
	metrics_request(METRICS_ROUTE_METRICS, METRICS_ABORTED, 0.01);
	metrics_scan(METRICS_CLEAN, 0.0003, 100);
	metrics_scan(METRICS_MALWARE, 0.002, 68);
	metrics_scan(METRICS_LIMITS_EXCEEDED, 3.0, 1000);
	metrics_scan(METRICS_ERROR, 20.0, 5);
	metrics_shed();
	metrics_shed();
	metrics_auth_failure();
	metrics_auth_failure();
	metrics_auth_failure();
	metrics_auth_throttled();
	metrics_request(METRICS_ROUTE_SCAN_CHUNKED, 429, 0.01);
	after = render(&g);

	assert_delta(before, after, "clamrest_http_requests_total{route=\"/v2/scan\",code=\"200\"}", 2);
	assert_delta(before, after, "clamrest_http_requests_total{route=\"/check\",code=\"401\"}", 1);
	assert_delta(before, after, "clamrest_http_requests_total{route=\"/scan\",code=\"503\"}", 1);
	assert_delta(before, after, "clamrest_http_requests_total{route=\"other\",code=\"other\"}", 1);
	assert_delta(before, after, "clamrest_http_requests_total{route=\"/metrics\",code=\"aborted\"}", 1);
	assert_delta(before, after, "clamrest_http_requests_total{route=\"/metrics\",code=\"other\"}", 0);
	assert_delta(before, after, "clamrest_scans_total{verdict=\"clean\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{verdict=\"malware\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{verdict=\"limits_exceeded\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{verdict=\"error\"}", 1);
	assert_delta(before, after, "clamrest_scan_duration_seconds_count", 4);
	assert_delta(before, after, "clamrest_scanned_bytes_total", 1173);
	assert_delta(before, after, "clamrest_load_shed_total", 2);
	assert_delta(before, after, "clamrest_auth_failures_total", 3);
	assert_delta(before, after, "clamrest_auth_throttled_total", 1);
	assert_delta(before, after,
	    "clamrest_http_requests_total{route=\"/v2/scan-chunked\",code=\"429\"}", 1);
	{
		double d = value(after, "clamrest_scan_duration_seconds_sum") -
		    value(before, "clamrest_scan_duration_seconds_sum");

		if (fabs(d - 23.0023) > 1e-5)
			fail_msg("duration sum moved by %.7f, want 23.0023", d);
	}
	/* Gauges come from the caller, as given. */
	assert_true(value(after, "clamrest_scans_queued") == 3);
	assert_true(value(after, "clamrest_scans_running") == 2);
	assert_true(value(after, "clamrest_scan_rate") == 4.5);
	assert_true(value(after, "clamrest_database_version") == 27001);
	assert_true(value(after, "clamrest_database_build_time_seconds") == 1700000000);
	assert_true(value(after, "clamrest_database_signatures") == 4);
	assert_true(value(after, "clamrest_database_reloads_total{result=\"success\"}") == 5);
	assert_true(value(after, "clamrest_database_reloads_total{result=\"failure\"}") == 6);
	assert_true(value(after, "clamrest_uptime_seconds") >= 0);
	assert_true(value(after, "clamrest_uptime_seconds") < 60);
	free(before);
	free(after);
}

static void
test_help_and_type_lines(void **state)
{
	static const struct { const char *name, *type; } families[] = {
		{ "clamrest_http_requests_total", "counter" },
		{ "clamrest_scans_total", "counter" },
		{ "clamrest_scan_duration_seconds", "histogram" },
		{ "clamrest_scanned_bytes_total", "counter" },
		{ "clamrest_scans_queued", "gauge" },
		{ "clamrest_scans_running", "gauge" },
		{ "clamrest_scan_rate", "gauge" },
		{ "clamrest_load_shed_total", "counter" },
		{ "clamrest_auth_failures_total", "counter" },
		{ "clamrest_auth_throttled_total", "counter" },
		{ "clamrest_database_version", "gauge" },
		{ "clamrest_database_build_time_seconds", "gauge" },
		{ "clamrest_database_signatures", "gauge" },
		{ "clamrest_database_reloads_total", "counter" },
		{ "clamrest_uptime_seconds", "gauge" },
	};
	char *text = render(&no_gauges);

	(void)state;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		char help[128], type[128];

		snprintf(help, sizeof(help), "\n# HELP %s ", families[i].name);
		snprintf(type, sizeof(type), "\n# TYPE %s %s\n", families[i].name, families[i].type);
		if (strstr(text, help) == NULL && strncmp(text, help + 1, strlen(help + 1)) != 0)
			fail_msg("no HELP line for %s", families[i].name);
		if (strstr(text, type) == NULL)
			fail_msg("no \"%.*s\"", (int)strlen(type) - 2, type + 1);
	}
	assert_true(value(text, "clamrest_database_version") == -1);	/* no engine yet */
	free(text);
}

static void
test_histogram_buckets(void **state)
{
	static const double durations[] = {
		0.00005, 0.0003, 0.001, 0.0011, 0.7, 2.5, 11.0, MAX_SCAN_TIME, MAX_SCAN_TIME + 1,
	};
	/* How many of the durations above each bucket holds, cumulatively. */
	static const int want[NBUCKETS] = {
		1, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6, 6, 6, 7, 7, 7, 8, 9,
	};
	char *before = render(&no_gauges), *after;
	double prev = -1;

	(void)state;
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++)
		metrics_scan(METRICS_CLEAN, durations[i], 1);
	after = render(&no_gauges);
	for (size_t i = 0; i < NBUCKETS; i++) {
		char name[128];
		double v;

		bucket_name(name, sizeof(name), i);
		v = value(after, name);
		if (v < 0)
			fail_msg("no series %s", name);
		assert_delta(before, after, name, want[i]);
		if (v < prev)
			fail_msg("%s is %g, below the previous bucket's %g: not cumulative", name, v, prev);
		prev = v;
	}
	/* +Inf is every scan, and so is _count, and so is the sum over verdicts. */
	{
		double count = value(after, "clamrest_scan_duration_seconds_count");
		double verdicts = 0;
		static const char *const names[] = { "clean", "malware", "limits_exceeded", "error" };

		for (size_t i = 0; i < 4; i++) {
			char series[96];

			snprintf(series, sizeof(series), "clamrest_scans_total{verdict=\"%s\"}", names[i]);
			verdicts += value(after, series);
		}
		assert_true(count == prev);
		if (count != verdicts)
			fail_msg("_count %g, scans by verdict %g", count, verdicts);
	}
	free(before);
	free(after);
}

/* Checks one sample line: name{label="value",...} number. */
static void
check_sample(const char *line, size_t len, const char *family)
{
	size_t i = 0, name_end;
	char *num, *end;

	if (!(line[0] == '_' || line[0] == ':' || (line[0] >= 'a' && line[0] <= 'z') ||
	    (line[0] >= 'A' && line[0] <= 'Z')))
		fail_msg("bad metric name start: %.*s", (int)len, line);
	while (i < len && (line[i] == '_' || line[i] == ':' || (line[i] >= 'a' && line[i] <= 'z') ||
	    (line[i] >= 'A' && line[i] <= 'Z') || (line[i] >= '0' && line[i] <= '9')))
		i++;
	name_end = i;
	if (family == NULL || strncmp(line, family, strlen(family)) != 0)
		fail_msg("sample outside its family %s: %.*s", family ? family : "(none)", (int)len, line);
	if (name_end != strlen(family)) {
		const char *suffix = line + strlen(family);
		size_t slen = name_end - strlen(family);

		if (!((slen == 7 && strncmp(suffix, "_bucket", 7) == 0) ||
		    (slen == 4 && strncmp(suffix, "_sum", 4) == 0) ||
		    (slen == 6 && strncmp(suffix, "_count", 6) == 0)))
			fail_msg("sample name does not match its TYPE %s: %.*s", family, (int)len, line);
	}
	if (i < len && line[i] == '{') {
		i++;
		for (;;) {
			size_t start = i;

			while (i < len && (line[i] == '_' || (line[i] >= 'a' && line[i] <= 'z') ||
			    (line[i] >= 'A' && line[i] <= 'Z') || (i > start && line[i] >= '0' &&
			    line[i] <= '9')))
				i++;
			if (i == start || i + 1 >= len || line[i] != '=' || line[i + 1] != '"')
				fail_msg("bad label at %zu: %.*s", i, (int)len, line);
			for (i += 2; i < len && line[i] != '"'; i++)
				if (line[i] == '\\')
					i++;
			if (i >= len)
				fail_msg("unterminated label value: %.*s", (int)len, line);
			i++;
			if (i < len && line[i] == ',') {
				i++;
				continue;
			}
			if (i < len && line[i] == '}') {
				i++;
				break;
			}
			fail_msg("bad label list at %zu: %.*s", i, (int)len, line);
		}
	}
	if (i >= len || line[i] != ' ')
		fail_msg("no space before the value: %.*s", (int)len, line);
	num = strndup(line + i + 1, len - i - 1);
	assert_non_null(num);
	strtod(num, &end);
	if (end == num || *end != '\0') {
		print_error("value \"%s\" is not a number in: %.*s\n", num, (int)len, line);
		free(num);
		fail();
	}
	free(num);
}

/* The whole text must parse as Prometheus exposition 0.0.4, with TYPE before each family's samples. */
static void
test_exposition_is_valid(void **state)
{
	char *text, family[128] = "";
	int samples = 0, types = 0;
	const char *p;

	(void)state;
	metrics_request(METRICS_ROUTE_SCAN_CHUNKED, 413, 0.01);
	metrics_scan(METRICS_MALWARE, 0.01, 10);
	text = render(&(struct metrics_gauges){ .db_version = 27001, .db_time = 1 });
	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	for (p = text; *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p);

		if (len == 0)
			fail_msg("empty line at offset %td", p - text);
		if (strncmp(p, "# TYPE ", 7) == 0) {
			const char *name = p + 7, *sp = memchr(name, ' ', len - 7);
			const char *type;

			assert_non_null(sp);
			type = sp + 1;
			if (!((nl - type == 7 && strncmp(type, "counter", 7) == 0) ||
			    (nl - type == 5 && strncmp(type, "gauge", 5) == 0) ||
			    (nl - type == 9 && strncmp(type, "histogram", 9) == 0)))
				fail_msg("unknown type: %.*s", (int)len, p);
			snprintf(family, sizeof(family), "%.*s", (int)(sp - name), name);
			types++;
		} else if (strncmp(p, "# HELP ", 7) == 0) {
			assert_non_null(memchr(p + 7, ' ', len - 7));
		} else if (p[0] == '#') {
			fail_msg("comment that is neither HELP nor TYPE: %.*s", (int)len, p);
		} else {
			check_sample(p, len, family[0] ? family : NULL);
			samples++;
		}
		p = nl + 1;
	}
	print_message("metrics: %d families, %d samples\n", types, samples);
	assert_true(types >= 13);
	assert_true(samples >= 30);
	free(text);
}

/* The whole text or nothing: never a cut exposition, never a byte past len. */
static void
test_buffer_too_small(void **state)
{
	char *full = render(&no_gauges);
	size_t n = strlen(full);
	char *buf = malloc(n + 64);

	(void)state;
	assert_non_null(buf);
	metrics_start(MAX_SCAN_TIME);			/* uptime stays well below 10 s: a stable length */
	free(full);
	full = render(&no_gauges);
	n = strlen(full);
	memset(buf, 'Z', n + 64);
	assert_int_equal(metrics_render(buf, n + 1, &no_gauges), n);	/* exact fit with the NUL */
	assert_int_equal(buf[n], '\0');
	assert_int_equal(buf[n + 1], 'Z');
	memset(buf, 'Z', n + 64);
	assert_int_equal(metrics_render(buf, n, &no_gauges), 0);
	assert_int_equal(buf[n], 'Z');
	memset(buf, 'Z', n + 64);
	assert_int_equal(metrics_render(buf, 100, &no_gauges), 0);
	assert_int_equal(buf[100], 'Z');
	memset(buf, 'Z', n + 64);
	assert_int_equal(metrics_render(buf, 1, &no_gauges), 0);
	assert_int_equal(buf[1], 'Z');
	memset(buf, 'Z', n + 64);
	assert_int_equal(metrics_render(buf, 0, &no_gauges), 0);
	assert_int_equal(buf[0], 'Z');
	free(buf);
	free(full);
}

static void *
hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < THREAD_CALLS; i++) {
		metrics_request(METRICS_ROUTE_VERSION, 200, 0.01);
		metrics_scan(METRICS_CLEAN, 0.5, 2);
	}
	return NULL;
}

/* Lock-free counters lose nothing under contention. */
static void
test_concurrent_updates(void **state)
{
	char *before = render(&no_gauges), *after;
	pthread_t t[THREADS];

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	after = render(&no_gauges);
	assert_delta(before, after, "clamrest_http_requests_total{route=\"/check_version\",code=\"200\"}",
	    THREADS * THREAD_CALLS);
	assert_delta(before, after, "clamrest_scans_total{verdict=\"clean\"}", THREADS * THREAD_CALLS);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{le=\"0.5\"}",
	    THREADS * THREAD_CALLS);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{le=\"0.25\"}", 0);
	assert_delta(before, after, "clamrest_scanned_bytes_total", 2.0 * THREADS * THREAD_CALLS);
	free(before);
	free(after);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_series_after_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_type_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exposition_is_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_updates, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
