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
#include <time.h>
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

static const struct metrics_gauges no_gauges = { .db_version = -1, .db_folder_ok = -1 };

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
	snprintf(out, len, "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"%s\"}", bucket_les[i]);
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
	metrics_scan(METRICS_HTTP, METRICS_CLEAN, 0.0003, 100);
	metrics_scan(METRICS_HTTP, METRICS_MALWARE, 0.002, 68);
	metrics_scan(METRICS_HTTP, METRICS_LIMITS_EXCEEDED, 3.0, 1000);
	metrics_scan(METRICS_HTTP, METRICS_ERROR, 20.0, 5);
	metrics_shed(METRICS_HTTP);
	metrics_shed(METRICS_HTTP);
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
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"clean\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"malware\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"limits_exceeded\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"error\"}", 1);
	assert_delta(before, after, "clamrest_scan_duration_seconds_count{protocol=\"http\"}", 4);
	assert_delta(before, after, "clamrest_scanned_bytes_total{protocol=\"http\"}", 1173);
	assert_delta(before, after, "clamrest_load_shed_total{protocol=\"http\"}", 2);
	assert_delta(before, after, "clamrest_load_shed_total{protocol=\"icap\"}", 0);
	assert_delta(before, after, "clamrest_auth_failures_total", 3);
	assert_delta(before, after, "clamrest_auth_throttled_total", 1);
	assert_delta(before, after,
	    "clamrest_http_requests_total{route=\"/v2/scan-chunked\",code=\"429\"}", 1);
	{
		double d = value(after, "clamrest_scan_duration_seconds_sum{protocol=\"http\"}") -
		    value(before, "clamrest_scan_duration_seconds_sum{protocol=\"http\"}");

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
		metrics_scan(METRICS_HTTP, METRICS_CLEAN, durations[i], 1);
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
		double count = value(after, "clamrest_scan_duration_seconds_count{protocol=\"http\"}");
		double verdicts = 0;
		static const char *const names[] = { "clean", "malware", "limits_exceeded", "error" };

		for (size_t i = 0; i < 4; i++) {
			char series[96];

			snprintf(series, sizeof(series), "clamrest_scans_total{protocol=\"http\",verdict=\"%s\"}", names[i]);
			verdicts += value(after, series);
		}
		assert_true(count == prev);
		if (count != verdicts)
			fail_msg("_count %g, scans by verdict %g", count, verdicts);
	}
	free(before);
	free(after);
}

/* Every series of the families both fronts count is there for both protocols, protocol first. */
static void
assert_both_protocols(const char *text)
{
	static const char *const protocols[] = { "http", "icap" };
	static const char *const verdicts[] = { "clean", "malware", "limits_exceeded", "error" };
	const char *before = text;

	/* Every series of both protocols is rendered, whether it moved or not. */
	for (size_t p = 0; p < 2; p++) {
		char series[128];

		for (size_t v = 0; v < 4; v++) {
			snprintf(series, sizeof(series), "clamrest_scans_total{protocol=\"%s\",verdict=\"%s\"}",
			    protocols[p], verdicts[v]);
			if (value(before, series) < 0)
				fail_msg("no series %s", series);
		}
		for (size_t i = 0; i < NBUCKETS; i++) {
			snprintf(series, sizeof(series),
			    "clamrest_scan_duration_seconds_bucket{protocol=\"%s\",le=\"%s\"}", protocols[p],
			    bucket_les[i]);
			if (value(before, series) < 0)
				fail_msg("no series %s", series);
		}
		snprintf(series, sizeof(series), "clamrest_scan_duration_seconds_sum{protocol=\"%s\"}",
		    protocols[p]);
		assert_true(value(before, series) >= 0);
		snprintf(series, sizeof(series), "clamrest_scan_duration_seconds_count{protocol=\"%s\"}",
		    protocols[p]);
		assert_true(value(before, series) >= 0);
		snprintf(series, sizeof(series), "clamrest_scanned_bytes_total{protocol=\"%s\"}",
		    protocols[p]);
		assert_true(value(before, series) >= 0);
		for (size_t i = 0; i < 4; i++) {
			static const char *const others[] = { "clamrest_connections_refused_total",
			    "clamrest_load_shed_total", "clamrest_store_failures_total",
			    "clamrest_connections_cut_total" };

			snprintf(series, sizeof(series), i < 3 ? "%s{protocol=\"%s\"}" :
			    "%s{protocol=\"%s\",reason=\"shutdown_grace\"}", others[i], protocols[p]);
			if (value(before, series) < 0)
				fail_msg("no series %s", series);
		}
	}
	/* No series of these families without the label, nor with protocol not first. */
	assert_null(strstr(before, "clamrest_scans_total{verdict="));
	assert_null(strstr(before, "clamrest_scan_duration_seconds_bucket{le="));
	assert_null(strstr(before, "\nclamrest_scan_duration_seconds_sum "));
	assert_null(strstr(before, "\nclamrest_scan_duration_seconds_count "));
	assert_null(strstr(before, "\nclamrest_scanned_bytes_total "));
	assert_null(strstr(before, "clamrest_connections_cut_total{reason="));
	assert_null(strstr(before, "\nclamrest_connections_refused_total "));
	assert_null(strstr(before, "\nclamrest_load_shed_total "));
	assert_null(strstr(before, "\nclamrest_store_failures_total "));
}

/* Each protocol's scans (and cuts, refusals, sheds, store failures) move its own series only;
 * both protocols' series are always there, zeros included, with protocol the first label. */
static void
test_scans_by_protocol(void **state)
{
	char *before = render(&no_gauges), *after;

	(void)state;
	assert_both_protocols(before);
	metrics_scan(METRICS_ICAP, METRICS_MALWARE, 0.002, 68);
	metrics_scan(METRICS_ICAP, METRICS_CLEAN, 0.3, 1000);
	metrics_scan(METRICS_HTTP, METRICS_ERROR, 20.0, 5);
	/* The other families both fronts count. */
	metrics_cut(METRICS_ICAP, METRICS_CUT_SLOW_BODY);
	metrics_cut(METRICS_HTTP, METRICS_CUT_EVICTED);
	metrics_cut(METRICS_HTTP, METRICS_CUT_EVICTED);
	metrics_refused(METRICS_ICAP);
	metrics_shed(METRICS_ICAP);
	metrics_store_failure(METRICS_ICAP);
	metrics_store_failure(METRICS_HTTP);
	after = render(&no_gauges);
	assert_delta(before, after,
	    "clamrest_connections_cut_total{protocol=\"icap\",reason=\"slow_body\"}", 1);
	assert_delta(before, after,
	    "clamrest_connections_cut_total{protocol=\"http\",reason=\"slow_body\"}", 0);
	assert_delta(before, after,
	    "clamrest_connections_cut_total{protocol=\"http\",reason=\"evicted\"}", 2);
	assert_delta(before, after,
	    "clamrest_connections_cut_total{protocol=\"icap\",reason=\"evicted\"}", 0);
	assert_delta(before, after, "clamrest_connections_refused_total{protocol=\"icap\"}", 1);
	assert_delta(before, after, "clamrest_connections_refused_total{protocol=\"http\"}", 0);
	assert_delta(before, after, "clamrest_load_shed_total{protocol=\"icap\"}", 1);
	assert_delta(before, after, "clamrest_load_shed_total{protocol=\"http\"}", 0);
	assert_delta(before, after, "clamrest_store_failures_total{protocol=\"icap\"}", 1);
	assert_delta(before, after, "clamrest_store_failures_total{protocol=\"http\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"icap\",verdict=\"malware\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"icap\",verdict=\"clean\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"icap\",verdict=\"error\"}", 0);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"error\"}", 1);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"malware\"}", 0);
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"clean\"}", 0);
	assert_delta(before, after, "clamrest_scan_duration_seconds_count{protocol=\"icap\"}", 2);
	assert_delta(before, after, "clamrest_scan_duration_seconds_count{protocol=\"http\"}", 1);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{protocol=\"icap\",le=\"0.0025\"}", 1);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{protocol=\"icap\",le=\"0.5\"}", 2);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"10\"}", 0);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"25\"}", 1);
	assert_delta(before, after, "clamrest_scanned_bytes_total{protocol=\"icap\"}", 1068);
	assert_delta(before, after, "clamrest_scanned_bytes_total{protocol=\"http\"}", 5);
	{
		double d = value(after, "clamrest_scan_duration_seconds_sum{protocol=\"icap\"}") -
		    value(before, "clamrest_scan_duration_seconds_sum{protocol=\"icap\"}");

		if (fabs(d - 0.302) > 1e-5)
			fail_msg("icap duration sum moved by %.7f, want 0.302", d);
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
	metrics_scan(METRICS_HTTP, METRICS_MALWARE, 0.01, 10);
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
		metrics_scan(METRICS_HTTP, METRICS_CLEAN, 0.5, 2);
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
	assert_delta(before, after, "clamrest_scans_total{protocol=\"http\",verdict=\"clean\"}", THREADS * THREAD_CALLS);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"0.5\"}",
	    THREADS * THREAD_CALLS);
	assert_delta(before, after, "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"0.25\"}", 0);
	assert_delta(before, after, "clamrest_scanned_bytes_total{protocol=\"http\"}", 2.0 * THREADS * THREAD_CALLS);
	free(before);
	free(after);
}

/* The value of the last finite scan-duration bucket's le. */
static double
last_scan_bucket(const char *text)
{
	const char *key = "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"", *p = text, *last = NULL;

	while ((p = strstr(p, key)) != NULL) {
		p += strlen(key);
		if (*p != '+')
			last = p;
	}
	assert_non_null(last);
	return strtod(last, NULL);
}

/* The buckets reach MAX_SCAN_TIME, whatever it is; the fixed ones stay as they were. */
static void
test_scan_buckets_reach_max_scan_time(void **state)
{
	static const double maxes[] = { 1, 10, 60, 120, 3600, 86400 };
	static const double want[] = { 10, 10, 60, 120, 3600, 86400 };

	(void)state;
	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		char *text;

		metrics_start(maxes[i]);
		text = render(&no_gauges);
		if (last_scan_bucket(text) != want[i])
			fail_msg("MAX_SCAN_TIME %g s: last bucket %g, want %g", maxes[i],
			    last_scan_bucket(text), want[i]);
		assert_non_null(strstr(text, "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"0.0001\"}"));
		assert_non_null(strstr(text, "clamrest_scan_duration_seconds_bucket{protocol=\"http\",le=\"10\"}"));
		free(text);
	}
	metrics_start(MAX_SCAN_TIME);
}

/* Every request lands in one duration series by route and status class; aborted ones apart. */
static void
test_request_duration_and_body(void **state)
{
	char *before = render(&no_gauges), *after;

	(void)state;
	metrics_request(METRICS_ROUTE_SCAN, 200, 0.3);
	metrics_request(METRICS_ROUTE_SCAN, 413, 0.002);
	metrics_request(METRICS_ROUTE_SCAN, 503, 40);
	metrics_request(METRICS_ROUTE_SCAN, METRICS_ABORTED, 7);
	metrics_request(METRICS_ROUTE_CHECK, 308, 0.0001);
	metrics_request_body(100);
	metrics_request_body(5u << 20);
	metrics_request_body(3ULL << 30);
	after = render(&no_gauges);
#define DUR "clamrest_http_request_duration_seconds"
	assert_delta(before, after, DUR "_bucket{route=\"/v2/scan\",status_class=\"2xx\",le=\"0.25\"}", 0);
	assert_delta(before, after, DUR "_bucket{route=\"/v2/scan\",status_class=\"2xx\",le=\"0.5\"}", 1);
	assert_delta(before, after, DUR "_count{route=\"/v2/scan\",status_class=\"2xx\"}", 1);
	assert_delta(before, after, DUR "_count{route=\"/v2/scan\",status_class=\"4xx\"}", 1);
	assert_delta(before, after, DUR "_bucket{route=\"/v2/scan\",status_class=\"5xx\",le=\"30\"}", 0);
	assert_delta(before, after, DUR "_bucket{route=\"/v2/scan\",status_class=\"5xx\",le=\"60\"}", 1);
	assert_delta(before, after, DUR "_count{route=\"/v2/scan\",status_class=\"aborted\"}", 1);
	assert_delta(before, after, DUR "_sum{route=\"/v2/scan\",status_class=\"aborted\"}", 7);
	assert_delta(before, after, DUR "_bucket{route=\"/check\",status_class=\"3xx\",le=\"0.001\"}", 1);
	assert_delta(before, after,
	    "clamrest_http_requests_total{route=\"/v2/scan\",code=\"aborted\"}", 1);
#undef DUR
	assert_delta(before, after, "clamrest_http_request_body_bytes_bucket{le=\"1024\"}", 1);
	assert_delta(before, after, "clamrest_http_request_body_bytes_bucket{le=\"4194304\"}", 1);
	assert_delta(before, after, "clamrest_http_request_body_bytes_bucket{le=\"16777216\"}", 2);
	assert_delta(before, after, "clamrest_http_request_body_bytes_bucket{le=\"1073741824\"}", 2);
	assert_delta(before, after, "clamrest_http_request_body_bytes_bucket{le=\"+Inf\"}", 3);
	assert_delta(before, after, "clamrest_http_request_body_bytes_count", 3);
	assert_delta(before, after, "clamrest_http_request_body_bytes_sum",
	    100.0 + (5 << 20) + (3.0 * (1 << 30)));
	free(before);
	free(after);
}

static void
test_build_info_and_database(void **state)
{
	struct metrics_gauges g = {
		.version = "1.0.0", .libclamav = "1.4.\"6\"", .libclamav_file = "/usr/lib/libclamav.so.12",
		.db_version = 27001,
		.db_time = time(NULL) - 3600, .db_folder_ok = 0, .db_folder_unusable = 2,
	};
	char *text = render(&g);
	double age = value(text, "clamrest_database_age_seconds");

	(void)state;
	assert_true(value(text,
	    "clamrest_build_info{version=\"1.0.0\",libclamav=\"1.4.\\\"6\\\"\","
	    "libclamav_file=\"/usr/lib/libclamav.so.12\",libclamav_patched=\"false\"}") == 1);
	g.libclamav_patched = 1;
	free(text);
	text = render(&g);
	assert_true(value(text,
	    "clamrest_build_info{version=\"1.0.0\",libclamav=\"1.4.\\\"6\\\"\","
	    "libclamav_file=\"/usr/lib/libclamav.so.12\",libclamav_patched=\"true\"}") == 1);
	if (age < 3600 || age > 3660)
		fail_msg("database age %g, want 3600", age);
	assert_true(value(text, "clamrest_database_folder_ok") == 0);
	assert_true(value(text, "clamrest_database_folder_unusable_total") == 2);
	free(text);
	text = render(&no_gauges);	/* no engine: no age, no folder state, no build info */
	assert_true(value(text, "clamrest_database_age_seconds") == -1);
	assert_true(value(text, "clamrest_database_folder_ok") == -1);
	assert_null(strstr(text, "clamrest_build_info{"));
	free(text);
}

/* The process_* metrics match what the kernel says of this process. */
static void
test_process_metrics(void **state)
{
	struct metrics_gauges g = { .db_version = -1, .db_folder_ok = -1 };
	char *text = render(&g), *text2;
	double fds, start = value(text, "process_start_time_seconds");
	FILE *f;

	(void)state;
	if (fabs(start - (double)time(NULL)) > 60)
		fail_msg("process_start_time_seconds %f, now %lld", start, (long long)time(NULL));
	assert_true(value(text, "process_cpu_seconds_total") >= 0);
	assert_true(value(text, "process_resident_memory_bytes") > 1 << 20);
	assert_true(value(text, "process_virtual_memory_bytes") >=
	    value(text, "process_resident_memory_bytes"));
	fds = value(text, "process_open_fds");
	assert_true(fds >= 3);
	assert_true(value(text, "process_max_fds") >= fds);
	f = fopen("/dev/null", "r");
	assert_non_null(f);
	text2 = render(&g);
	if (value(text2, "process_open_fds") != fds + 1)
		fail_msg("process_open_fds %g after opening one, was %g", value(text2, "process_open_fds"),
		    fds);
	fclose(f);
	free(text);
	free(text2);
}

/* The unit suffixes Prometheus wants (base units) and the ones it does not. */
static const char *const base_units[] = { "seconds", "bytes", NULL };
static const char *const other_units[] = {
	"milliseconds", "ms", "microseconds", "us", "nanoseconds", "ns", "minutes", "hours", "days",
	"kb", "mb", "gb", "kib", "mib", "gib", "kilobytes", "megabytes", "percent", "bits", NULL,
};

/* Checks one family name against Prometheus's naming conventions; NULL, or why it breaks them. */
static const char *
name_problem(const char *name, const char *type)
{
	size_t len = strlen(name);
	const char *unit_end = name + len;

	if (strncmp(name, "clamrest_", 9) != 0 && strncmp(name, "process_", 8) != 0)
		return "neither clamrest_ nor process_ prefix";
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') ||
		    (*p == '_' && p[1] == '_'))
			return "not snake_case";
	if (name[len - 1] == '_')
		return "not snake_case";
	if (strcmp(type, "counter") == 0) {
		if (len < 6 || strcmp(name + len - 6, "_total") != 0)
			return "a counter not ending in _total";
		unit_end -= 6;
	} else if (len >= 6 && strcmp(name + len - 6, "_total") == 0) {
		return "_total on a non-counter";
	}
	if (strcmp(type, "histogram") == 0)
		for (const char *const *x = (const char *const[]){ "_bucket", "_sum", "_count", NULL };
		    *x != NULL; x++)
			if (len > strlen(*x) && strcmp(name + len - strlen(*x), *x) == 0)
				return "a histogram named like one of its series";
	/* Every word: no non-base unit anywhere; a base unit only as the last word. */
	for (const char *w = name; w < unit_end;) {
		const char *e = memchr(w, '_', (size_t)(unit_end - w));
		size_t wl = e != NULL ? (size_t)(e - w) : (size_t)(unit_end - w);

		for (const char *const *u = other_units; *u != NULL; u++)
			if (wl == strlen(*u) && strncmp(w, *u, wl) == 0)
				return "a unit that is not a base unit";
		for (const char *const *u = base_units; *u != NULL; u++)
			if (wl == strlen(*u) && strncmp(w, *u, wl) == 0 && w + wl != unit_end)
				return "a unit that is not the suffix";
		w += wl + 1;
	}
	return NULL;
}

/* Every family of the text: named by the conventions, one HELP and one TYPE each. NULL, or why. */
static const char *
exposition_problem(const char *text, char *name, size_t namelen)
{
	char seen[256][128];
	size_t nseen = 0, helps = 0;

	for (const char *p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
		const char *nl = strchr(p, '\n'), *sp;
		int help = strncmp(p, "# HELP ", 7) == 0;

		if (nl == NULL)
			return "no final newline";
		if (!help && strncmp(p, "# TYPE ", 7) != 0)
			continue;
		sp = memchr(p + 7, ' ', (size_t)(nl - p - 7));
		if (sp == NULL)
			return "a HELP or TYPE line without text";
		snprintf(name, namelen, "%.*s", (int)(sp - p - 7), p + 7);
		if (help) {
			for (size_t i = 0; i < nseen; i++)
				if (strcmp(seen[i], name) == 0)
					return "a second HELP or TYPE";
			helps++;
			continue;
		}
		for (size_t i = 0; i < nseen; i++)
			if (strcmp(seen[i], name) == 0)
				return "a second TYPE";
		if (helps != nseen + 1)
			return "a TYPE without its HELP line before it";
		if (nseen == sizeof(seen) / sizeof(seen[0]))
			return "too many families for this test";
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
		{
			char type[16];
			const char *why;

			snprintf(type, sizeof(type), "%.*s", (int)(nl - sp - 1), sp + 1);
			if ((why = name_problem(name, type)) != NULL)
				return why;
		}
	}
	return helps == nseen ? NULL : "a HELP without its TYPE";
}

/* The checker catches each kind of bad name, and /metrics has none. */
static void
test_metric_names_follow_conventions(void **state)
{
	static const struct { const char *name, *type; } bad[] = {
		{ "clamrest_scans", "counter" },			/* no _total */
		{ "clamrest_queue_total", "gauge" },		/* _total on a gauge */
		{ "clamrest_scanDuration_seconds", "histogram" },	/* camelCase */
		{ "clamrest_scan__seconds", "histogram" },		/* double underscore */
		{ "clamrest_scan_duration_milliseconds", "histogram" },	/* not a base unit */
		{ "clamrest_body_kb", "gauge" },			/* not a base unit */
		{ "clamrest_seconds_uptime", "gauge" },		/* unit not a suffix */
		{ "clamrest_bytes_scanned_total", "counter" },	/* unit not a suffix */
		{ "scans_total", "counter" },			/* no prefix */
		{ "http_requests_total", "counter" },		/* no prefix */
		{ "clamrest_duration_seconds_bucket", "histogram" },
	};
	static const char *const good[][2] = {
		{ "clamrest_scanned_bytes_total", "counter" }, { "process_cpu_seconds_total", "counter" },
		{ "clamrest_uptime_seconds", "gauge" }, { "clamrest_build_info", "gauge" },
	};
	char name[128];
	const char *why;
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (name_problem(bad[i].name, bad[i].type) == NULL)
			fail_msg("the checker let %s (%s) through", bad[i].name, bad[i].type);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if ((why = name_problem(good[i][0], good[i][1])) != NULL)
			fail_msg("the checker refused %s: %s", good[i][0], why);
	assert_non_null(exposition_problem("# HELP a_total x\n# TYPE a_total counter\n"
	    "# HELP a_total y\n", name, sizeof(name)));
	assert_non_null(exposition_problem("# HELP clamrest_a_total x\n# TYPE clamrest_a_total counter\n"
	    "# HELP clamrest_a_total x\n# TYPE clamrest_a_total counter\n", name, sizeof(name)));
	assert_null(exposition_problem("# HELP clamrest_a_total x\n# TYPE clamrest_a_total counter\n",
	    name, sizeof(name)));

	metrics_request(METRICS_ROUTE_SCAN, 200, 0.1);
	metrics_request_body(10);
	text = render(&(struct metrics_gauges){ .version = "1", .libclamav = "1", .db_version = 1,
	    .db_time = 1, .db_folder_ok = 1 });
	if ((why = exposition_problem(text, name, sizeof(name))) != NULL)
		fail_msg("%s: %s", name, why);
	free(text);
}

/* With every route x status code x status class moved and every counter at its widest, the
 * exposition still fits METRICS_TEXT_MAX (what /metrics renders into). */
static void
test_worst_case_fits(void **state)
{
	static const unsigned statuses[] = {
		200, 308, 400, 401, 404, 405, 413, 429, 500, 503, 418, 101, METRICS_ABORTED,
	};
	struct metrics_gauges g = {
		.version = "1.0.0-with-a-long-suffix", .libclamav = "1.4.6-with-a-long-suffix",
		.connections = ~0u, .scans_queued = ~0u, .scans_running = ~0u, .scan_rate = 1e15,
		.body_memory = ~0ull, .body_disk = ~0ull, .db_version = 2147483647, .db_time = 1,
		.signatures = ~0u, .reloads = ~0ul, .reload_failures = ~0ul, .cache_hits = ~0ul,
		.db_folder_ok = 1, .db_folder_unusable = ~0ul,
	};
	char *buf = malloc(METRICS_TEXT_MAX);
	size_t n, samples = 0;

	(void)state;
	assert_non_null(buf);
	metrics_start(86400);		/* the most scan buckets */
	for (size_t r = 0; r < METRICS_ROUTES; r++)
		for (size_t c = 0; c < sizeof(statuses) / sizeof(statuses[0]); c++)
			metrics_request((enum metrics_route)r, statuses[c], 0.1);
	n = metrics_render(buf, METRICS_TEXT_MAX, &g);
	assert_true(n > 0);
	for (const char *p = buf; *p != '\0'; p = strchr(p, '\n') + 1)
		samples += p[0] != '#';
	/* A counter's value takes at most 20 digits; these take at least 1. */
	print_message("metrics: %zu bytes, %zu samples, at worst %zu of %d bytes\n", n, samples,
	    n + samples * 19, METRICS_TEXT_MAX);
	if (n + samples * 19 > METRICS_TEXT_MAX)
		fail_msg("at worst %zu bytes, more than METRICS_TEXT_MAX %d", n + samples * 19,
		    METRICS_TEXT_MAX);
	metrics_start(MAX_SCAN_TIME);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_series_after_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_type_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram_buckets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scans_by_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exposition_is_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_buckets_reach_max_scan_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_duration_and_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_info_and_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_process_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metric_names_follow_conventions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worst_case_fits, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
