/* metrics.c -- lock-free counters and histograms, and the process_* metrics of /proc/self, in the
 * Prometheus text format. */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util.h"

static const char *const metrics_route_names[METRICS_ROUTES] = {
	"/check", "/check_version", "/check_warning", "/v2/scan", "/v2/scan-chunked", "/scan",
	"/metrics", "/v3/scan", "/v3/scan-chunked", "/version", "other",
};

/* The statuses the service answers; anything else is counted as "other". */
static const unsigned metrics_codes[] = { 200, 308, 400, 401, 404, 405, 413, 429, 500, 503 };
#define METRICS_CODES (sizeof(metrics_codes) / sizeof(metrics_codes[0]) + 1)

static const char *const metrics_verdict_names[METRICS_VERDICTS] = {
	"clean", "malware", "limits_exceeded", "error",
};

static const char *const metrics_cut_names[METRICS_CUTS] = {
	"head_timeout", "slow_body", "discard_deadline", "discard_limit", "peer_closed", "evicted",
	"shutdown_grace",
};

/* Seconds; scans of small bodies take tens of microseconds, large archives seconds. metrics_start
 * adds 25, 50, 100, 250... below MAX_SCAN_TIME, and MAX_SCAN_TIME itself, so that the slowest scans
 * libclamav lets run are told apart from the ones it stops. */
#define METRICS_SCAN_BASE 16	/* the fixed buckets, to 10 s */
#define METRICS_SCAN_MORE 16	/* buckets added at most: 25 s to 86400 s (MAX_SCAN_TIME's top) */
#define METRICS_BUCKETS (METRICS_SCAN_BASE + METRICS_SCAN_MORE)

/* Seconds from a request's head to its answer: client_golang's defaults, from 1 ms, up to the
 * slow uploads REQUEST_TIMEOUT lets through. */
static const double metrics_http_buckets[] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};
#define METRICS_HTTP_BUCKETS (sizeof(metrics_http_buckets) / sizeof(metrics_http_buckets[0]))

/* Bytes of a request body: 1 KiB to 1 GiB by fours. */
static const double metrics_body_buckets[] = {
	1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456,
	1073741824,
};
#define METRICS_BODY_BUCKETS (sizeof(metrics_body_buckets) / sizeof(metrics_body_buckets[0]))

static const char *const metrics_class_names[] = { "1xx", "2xx", "3xx", "4xx", "5xx", "aborted" };
#define METRICS_CLASSES (sizeof(metrics_class_names) / sizeof(metrics_class_names[0]))

/* One histogram's counts; the sum in micro-units (microseconds, or bytes) to stay lock-free. */
struct hist {
	atomic_ulong buckets[METRICS_BUCKETS + 1];	/* per bucket, not cumulative; last: +Inf */
	atomic_ullong sum;
};

static double metrics_buckets[METRICS_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
static size_t metrics_nbuckets = METRICS_SCAN_BASE;

static atomic_ulong requests[METRICS_ROUTES][METRICS_CODES + 1];	/* last: aborted */
static struct hist http_hist[METRICS_ROUTES][METRICS_CLASSES];
static struct hist body_hist;
static const char *const metrics_protocol_names[METRICS_PROTOCOLS] = { "http", "icap" };
static atomic_ulong verdicts[METRICS_PROTOCOLS][METRICS_VERDICTS];
static atomic_ulong scan_buckets[METRICS_PROTOCOLS][METRICS_BUCKETS + 1];	/* last: +Inf */
static atomic_ullong scan_micros[METRICS_PROTOCOLS];	/* sum of durations, microseconds */
static atomic_ullong scan_bytes[METRICS_PROTOCOLS];
static atomic_ulong shed[METRICS_PROTOCOLS], store_failures[METRICS_PROTOCOLS];
static atomic_ulong auth_failures, auth_throttled;
static atomic_ulong cuts[METRICS_PROTOCOLS][METRICS_CUTS], refused[METRICS_PROTOCOLS];
static const char *const metrics_policy_rules[] = { "deny", "allow", "macros", "encrypted",
    "extension", "unknown" };
#define METRICS_POLICY_RULES (sizeof(metrics_policy_rules) / sizeof(metrics_policy_rules[0]))
static atomic_ulong policy_blocked[METRICS_POLICY_RULES];
static atomic_ulong policy_reported[METRICS_POLICY_RULES];	/* POLICY_MODE=report: would block */
static double started;
/* ICAP requests (icap_conn.c) by method and status: OPTIONS, REQMOD, RESPMOD; 200, 204, 400,
 * 404, 405, 500, 503, 505, other, aborted. */
static const unsigned metrics_icap_codes[] = { 200, 204, 400, 404, 405, 500, 503, 505, 0, 499 };
#define METRICS_ICAP_CODES (sizeof(metrics_icap_codes) / sizeof(metrics_icap_codes[0]))
static atomic_ulong icap_requests[METRICS_ICAP_METHODS][METRICS_ICAP_CODES];
static atomic_ullong icap_micros, icap_bytes;
static const char *const metrics_icap_verdict_names[] = { "clean", "malware", "blocked", "not_scanned", "error" };
#define METRICS_ICAP_VERDICTS (sizeof(metrics_icap_verdict_names) / sizeof(metrics_icap_verdict_names[0]))
static atomic_ulong icap_verdicts[METRICS_ICAP_VERDICTS];	/* sums: seconds (in us) to answer, body bytes */

/* An index into the per-protocol arrays; anything unknown counts as HTTP. */
static size_t
protocol_index(enum metrics_protocol protocol)
{
	return protocol < METRICS_PROTOCOLS ? (size_t)protocol : METRICS_HTTP;
}

void
metrics_start(double max_scan_time)
{
	static const double steps[] = { 2.5, 2, 2 };	/* 10 -> 25 -> 50 -> 100 -> 250 ... */
	double b = metrics_buckets[METRICS_SCAN_BASE - 1];
	size_t n = METRICS_SCAN_BASE;

	for (size_t k = 0; n < METRICS_BUCKETS - 1; k++) {
		b *= steps[k % 3];
		if (b >= max_scan_time)
			break;
		metrics_buckets[n++] = b;
	}
	if (max_scan_time > metrics_buckets[n - 1])
		metrics_buckets[n++] = max_scan_time;
	metrics_nbuckets = n;
	started = util_now();
}

static void
hist_observe(struct hist *h, const double *bounds, size_t n, double v, double unit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v <= bounds[i])
			break;
	if (i == n)
		i = METRICS_BUCKETS;	/* +Inf */
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, (unsigned long long)(v * unit), memory_order_relaxed);
}

void
metrics_request(enum metrics_route route, unsigned status, double seconds)
{
	size_t i, class;

	for (i = 0; i < METRICS_CODES - 1; i++)
		if (metrics_codes[i] == status)
			break;
	if (status == METRICS_ABORTED)
		i = METRICS_CODES;
	class = status == METRICS_ABORTED ? METRICS_CLASSES - 1 :
	    status >= 100 && status < 600 ? status / 100 - 1 : 4;	/* nonsense counts as 5xx */
	atomic_fetch_add_explicit(&requests[route][i], 1, memory_order_relaxed);
	hist_observe(&http_hist[route][class], metrics_http_buckets, METRICS_HTTP_BUCKETS,
	    seconds < 0 ? 0 : seconds, 1e6);
}

void
metrics_icap_request(enum metrics_icap_method method, unsigned status, double seconds, uint64_t bytes)
{
	size_t m = method < METRICS_ICAP_METHODS ? (size_t)method : METRICS_ICAP_OTHER, i;

	for (i = 0; i < METRICS_ICAP_CODES - 2; i++)
		if (metrics_icap_codes[i] == status)
			break;
	if (status == 499)
		i = METRICS_ICAP_CODES - 1;
	atomic_fetch_add_explicit(&icap_requests[m][i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&icap_micros, (unsigned long long)(seconds < 0 ? 0 : seconds * 1e6),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&icap_bytes, bytes, memory_order_relaxed);
}

void
metrics_icap_verdict(const char *verdict)
{
	for (size_t i = 0; i < METRICS_ICAP_VERDICTS; i++)
		if (strcmp(verdict, metrics_icap_verdict_names[i]) == 0)
			atomic_fetch_add_explicit(&icap_verdicts[i], 1, memory_order_relaxed);
}

void
metrics_request_body(uint64_t bytes)
{
	hist_observe(&body_hist, metrics_body_buckets, METRICS_BODY_BUCKETS, (double)bytes, 1);
}

void
metrics_scan(enum metrics_protocol protocol, enum metrics_verdict verdict, double seconds,
    uint64_t bytes)
{
	size_t p = protocol_index(protocol), i;

	for (i = 0; i < metrics_nbuckets; i++)
		if (seconds <= metrics_buckets[i])
			break;
	if (i == metrics_nbuckets)
		i = METRICS_BUCKETS;
	atomic_fetch_add_explicit(&scan_buckets[p][i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&verdicts[p][verdict], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&scan_micros[p], (unsigned long long)(seconds * 1e6),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&scan_bytes[p], bytes, memory_order_relaxed);
}

void
metrics_shed(enum metrics_protocol protocol)
{
	atomic_fetch_add_explicit(&shed[protocol_index(protocol)], 1, memory_order_relaxed);
}

void
metrics_store_failure(enum metrics_protocol protocol)
{
	atomic_fetch_add_explicit(&store_failures[protocol_index(protocol)], 1, memory_order_relaxed);
}

void
metrics_auth_failure(void)
{
	atomic_fetch_add_explicit(&auth_failures, 1, memory_order_relaxed);
}

void
metrics_auth_throttled(void)
{
	atomic_fetch_add_explicit(&auth_throttled, 1, memory_order_relaxed);
}

static void
metrics_policy_count(atomic_ulong *counts, const char *rule)
{
	for (size_t i = 0; i < METRICS_POLICY_RULES; i++)
		if (strcmp(rule, metrics_policy_rules[i]) == 0)
			atomic_fetch_add_explicit(&counts[i], 1, memory_order_relaxed);
}

void
metrics_policy_blocked(const char *rule)
{
	metrics_policy_count(policy_blocked, rule);
}

void
metrics_policy_reported(const char *rule)
{
	metrics_policy_count(policy_reported, rule);
}

void
metrics_cut(enum metrics_protocol protocol, enum metrics_cut reason)
{
	if (reason < METRICS_CUTS)
		atomic_fetch_add_explicit(&cuts[protocol_index(protocol)][reason], 1,
		    memory_order_relaxed);
}

void
metrics_refused(enum metrics_protocol protocol)
{
	atomic_fetch_add_explicit(&refused[protocol_index(protocol)], 1, memory_order_relaxed);
}

struct out {
	char *buf;
	size_t len, pos;
	int full;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->pos)
		o->full = 1;
	else
		o->pos += (size_t)n;
}

static void
render_requests(struct out *o)
{
	out_printf(o, "# HELP clamrest_http_requests_total HTTP requests answered, by route and status.\n"
	    "# TYPE clamrest_http_requests_total counter\n");
	for (size_t r = 0; r < METRICS_ROUTES; r++) {
		for (size_t c = 0; c <= METRICS_CODES; c++) {
			unsigned long n = atomic_load_explicit(&requests[r][c], memory_order_relaxed);
			char code[16];

			if (n == 0)
				continue;
			if (c < METRICS_CODES - 1)
				snprintf(code, sizeof(code), "%u", metrics_codes[c]);
			else
				snprintf(code, sizeof(code), c == METRICS_CODES ? "aborted" : "other");
			out_printf(o, "clamrest_http_requests_total{route=\"%s\",code=\"%s\"} %lu\n",
			    metrics_route_names[r], code, n);
		}
	}
}

/* ICAP's requests: rendered once the first one is counted (no ICAP, no lines). */
static void
render_icap(struct out *o)
{
	static const char *const methods[METRICS_ICAP_METHODS] = { "OPTIONS", "REQMOD", "RESPMOD",
	    "other" };
	int any = 0;

	for (size_t m = 0; m < METRICS_ICAP_METHODS; m++) {
		for (size_t c = 0; c < METRICS_ICAP_CODES; c++) {
			unsigned long n = atomic_load_explicit(&icap_requests[m][c], memory_order_relaxed);
			char code[16];

			if (n == 0)
				continue;
			if (!any++)
				out_printf(o, "# HELP clamrest_icap_requests_total ICAP requests answered, by "
				    "method and status.\n# TYPE clamrest_icap_requests_total counter\n");
			if (c < METRICS_ICAP_CODES - 2)
				snprintf(code, sizeof(code), "%u", metrics_icap_codes[c]);
			else
				snprintf(code, sizeof(code), c == METRICS_ICAP_CODES - 1 ? "aborted" : "other");
			out_printf(o, "clamrest_icap_requests_total{protocol=\"icap\",method=\"%s\","
			    "code=\"%s\"} %lu\n", methods[m], code, n);
		}
	}
	if (!any)
		return;
	out_printf(o, "# HELP clamrest_icap_verdicts_total ICAP requests answered from a verdict, by "
	    "verdict (blocked: refused by the upload policy; not_scanned: a body that could not be scanned "
	    "whole).\n"
	    "# TYPE clamrest_icap_verdicts_total counter\n");
	for (size_t v = 0; v < METRICS_ICAP_VERDICTS; v++)
		out_printf(o, "clamrest_icap_verdicts_total{protocol=\"icap\",verdict=\"%s\"} %lu\n",
		    metrics_icap_verdict_names[v], atomic_load(&icap_verdicts[v]));
	out_printf(o, "# HELP clamrest_icap_request_seconds_total Seconds ICAP requests took from "
	    "head to answer, together.\n# TYPE clamrest_icap_request_seconds_total counter\n"
	    "clamrest_icap_request_seconds_total{protocol=\"icap\"} %.6f\n"
	    "# HELP clamrest_icap_body_bytes_total Encapsulated body bytes ICAP requests carried.\n"
	    "# TYPE clamrest_icap_body_bytes_total counter\n"
	    "clamrest_icap_body_bytes_total{protocol=\"icap\"} %llu\n",
	    (double)atomic_load(&icap_micros) / 1e6, (unsigned long long)atomic_load(&icap_bytes));
}

/* A counter by protocol (first label) and one more label: counts[protocol * n + i] for names[i]. */
static void
render_protocol_and(struct out *o, const char *name, const char *help, const char *label,
    const char *const *names, size_t n, const atomic_ulong *counts)
{
	out_printf(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t p = 0; p < METRICS_PROTOCOLS; p++)
		for (size_t i = 0; i < n; i++)
			out_printf(o, "%s{protocol=\"%s\",%s=\"%s\"} %lu\n", name,
			    metrics_protocol_names[p], label, names[i],
			    atomic_load_explicit(&counts[p * n + i], memory_order_relaxed));
}

/* Every series of both protocols, zeros too, so that a dashboard finds both; protocol first. */
static void
render_scans(struct out *o)
{
	render_protocol_and(o, "clamrest_scans_total", "Scans finished, by protocol (the front the "
	    "request came through) and verdict.", "verdict", metrics_verdict_names, METRICS_VERDICTS,
	    &verdicts[0][0]);
	out_printf(o, "# HELP clamrest_scan_duration_seconds Time libclamav took per scan, by "
	    "protocol.\n# TYPE clamrest_scan_duration_seconds histogram\n");
	for (size_t p = 0; p < METRICS_PROTOCOLS; p++) {
		const char *name = metrics_protocol_names[p];
		unsigned long cum = 0;

		for (size_t i = 0; i < metrics_nbuckets; i++) {
			cum += atomic_load_explicit(&scan_buckets[p][i], memory_order_relaxed);
			out_printf(o, "clamrest_scan_duration_seconds_bucket{protocol=\"%s\",le=\"%.15g\"} "
			    "%lu\n", name, metrics_buckets[i], cum);
		}
		cum += atomic_load_explicit(&scan_buckets[p][METRICS_BUCKETS], memory_order_relaxed);
		out_printf(o, "clamrest_scan_duration_seconds_bucket{protocol=\"%s\",le=\"+Inf\"} %lu\n"
		    "clamrest_scan_duration_seconds_sum{protocol=\"%s\"} %.6f\n"
		    "clamrest_scan_duration_seconds_count{protocol=\"%s\"} %lu\n", name, cum, name,
		    (double)atomic_load(&scan_micros[p]) / 1e6, name, cum);
	}
	out_printf(o, "# HELP clamrest_scanned_bytes_total Bytes handed to the engine, by protocol.\n"
	    "# TYPE clamrest_scanned_bytes_total counter\n");
	for (size_t p = 0; p < METRICS_PROTOCOLS; p++)
		out_printf(o, "clamrest_scanned_bytes_total{protocol=\"%s\"} %llu\n",
		    metrics_protocol_names[p], atomic_load(&scan_bytes[p]));
}

/* A counter with protocol its only label, both protocols' series. */
static void
render_by_protocol(struct out *o, const char *name, const char *help,
    atomic_ulong counts[METRICS_PROTOCOLS])
{
	out_printf(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t p = 0; p < METRICS_PROTOCOLS; p++)
		out_printf(o, "%s{protocol=\"%s\"} %lu\n", name, metrics_protocol_names[p],
		    atomic_load_explicit(&counts[p], memory_order_relaxed));
}

static void
render_connections(struct out *o, const struct metrics_gauges *g)
{
	out_printf(o, "# HELP clamrest_connections Open client connections.\n"
	    "# TYPE clamrest_connections gauge\nclamrest_connections %u\n", g->connections);
	render_protocol_and(o, "clamrest_connections_cut_total", "Connections closed by the service, "
	    "by protocol and reason.", "reason", metrics_cut_names, METRICS_CUTS, &cuts[0][0]);
	render_by_protocol(o, "clamrest_connections_refused_total", "Connections refused because "
	    "every open one had a request in progress (MAX_CONNECTIONS), by protocol.", refused);
}

/* The cumulative buckets, _sum and _count of one series; labels ends with a comma or is "". */
static void
render_hist(struct out *o, const char *name, const char *labels, const double *bounds, size_t n,
    struct hist *h, double unit)
{
	unsigned long cum = 0;

	for (size_t i = 0; i < n; i++) {
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		out_printf(o, "%s_bucket{%sle=\"%.15g\"} %lu\n", name, labels, bounds[i], cum);
	}
	cum += atomic_load_explicit(&h->buckets[METRICS_BUCKETS], memory_order_relaxed);
	out_printf(o, "%s_bucket{%sle=\"+Inf\"} %lu\n", name, labels, cum);
	if (labels[0] != '\0')
		out_printf(o, "%s_sum{%.*s} %.6f\n%s_count{%.*s} %lu\n", name,
		    (int)strlen(labels) - 1, labels, (double)atomic_load(&h->sum) / unit, name,
		    (int)strlen(labels) - 1, labels, cum);
	else
		out_printf(o, "%s_sum %.6f\n%s_count %lu\n", name, (double)atomic_load(&h->sum) / unit,
		    name, cum);
}

static int
hist_empty(struct hist *h)
{
	for (size_t i = 0; i <= METRICS_BUCKETS; i++)
		if (atomic_load_explicit(&h->buckets[i], memory_order_relaxed) != 0)
			return 0;
	return 1;
}

/* Series that never moved are left out, as for clamrest_http_requests_total. */
static void
render_http(struct out *o)
{
	out_printf(o, "# HELP clamrest_http_request_duration_seconds Time from a request's head to "
	    "its answer, by route and status class (aborted: the client went away first).\n"
	    "# TYPE clamrest_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r < METRICS_ROUTES; r++) {
		for (size_t c = 0; c < METRICS_CLASSES; c++) {
			char labels[96];

			if (hist_empty(&http_hist[r][c]))
				continue;
			snprintf(labels, sizeof(labels), "route=\"%s\",status_class=\"%s\",",
			    metrics_route_names[r], metrics_class_names[c]);
			render_hist(o, "clamrest_http_request_duration_seconds", labels,
			    metrics_http_buckets, METRICS_HTTP_BUCKETS, &http_hist[r][c], 1e6);
		}
	}
	out_printf(o, "# HELP clamrest_http_request_body_bytes Body bytes received per POST request, "
	    "answered or not.\n# TYPE clamrest_http_request_body_bytes histogram\n");
	render_hist(o, "clamrest_http_request_body_bytes", "", metrics_body_buckets,
	    METRICS_BODY_BUCKETS, &body_hist, 1);
}

/* A label value with \, " and newline escaped, as the text format wants. */
static void
label_value(char *out, size_t len, const char *s)
{
	size_t j = 0;

	for (; *s != '\0' && j + 3 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[j++] = '\\';
			out[j++] = *s == '\n' ? 'n' : *s;
		} else {
			out[j++] = *s;
		}
	}
	out[j] = '\0';
}

static void
render_build(struct out *o, const struct metrics_gauges *g)
{
	char version[64], libclamav[64], file[512];

	if (g->version == NULL || g->libclamav == NULL)
		return;
	label_value(version, sizeof(version), g->version);
	label_value(libclamav, sizeof(libclamav), g->libclamav);
	label_value(file, sizeof(file), g->libclamav_file != NULL ? g->libclamav_file : "");
	out_printf(o, "# HELP clamrest_build_info Always 1; the labels name clamrest's version, the "
	    "libclamav it runs with, the file that library was loaded from and whether it is clamrest's "
	    "patched build.\n"
	    "# TYPE clamrest_build_info gauge\n"
	    "clamrest_build_info{version=\"%s\",libclamav=\"%s\",libclamav_file=\"%s\","
	    "libclamav_patched=\"%s\"} 1\n",
	    version, libclamav, file, g->libclamav_patched ? "true" : "false");
}

/* The boot time, Unix seconds: btime of /proc/stat. 0 when unknown. */
static double
boot_time(void)
{
	char line[256];
	double bt = 0;
	FILE *f = fopen("/proc/stat", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "btime ", 6) == 0) {
			bt = strtod(line + 6, NULL);
			break;
		}
	fclose(f);
	return bt;
}

/* The open descriptors: the entries of /proc/self/fd, less ., .. and the one reading it. */
static long
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* The process_* metrics every Prometheus client library exports, read from /proc/self/stat the way
 * they read it (fields after the command name: utime 14, stime 15, starttime 22, vsize 23, rss 24).
 * Left out when /proc cannot be read. */
static void
render_process(struct out *o)
{
	char stat[1024], *p;
	unsigned long long utime, stime, start, vsize;
	long long rss, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	size_t n;
	FILE *f = fopen("/proc/self/stat", "r");

	if (f == NULL)
		return;
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	if ((p = strrchr(stat, ')')) == NULL || ticks <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
	    "%*d %llu %llu %lld", &utime, &stime, &start, &vsize, &rss) != 5)
		return;
	out_printf(o, "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
	    "seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
	    "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
	    "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n"
	    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
	    "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n"
	    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
	    "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n",
	    (double)(utime + stime) / (double)ticks, boot_time() + (double)start / (double)ticks,
	    vsize, rss * page);
	out_printf(o, "# HELP process_open_fds Number of open file descriptors.\n"
	    "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n", open_fds());
	/* The soft limit, as the clients read it from /proc/self/limits. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		out_printf(o, "# HELP process_max_fds Maximum number of open file descriptors.\n"
		    "# TYPE process_max_fds gauge\nprocess_max_fds %.0f\n",
		    rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
}

/* The database's age and the state of its folder. */
static void
render_database(struct out *o, const struct metrics_gauges *g)
{
	out_printf(o, "# HELP clamrest_database_age_seconds Seconds since the build time of the "
	    "signatures in use.\n# TYPE clamrest_database_age_seconds gauge\n");
	if (g->db_version >= 0 && g->db_time > 0)
		out_printf(o, "clamrest_database_age_seconds %lld\n",
		    (long long)(time(NULL) - g->db_time));
	out_printf(o, "# HELP clamrest_database_folder_ok 1 while CLAMAV_DB_DIR can be read and holds "
	    "files, 0 when the last look (every DB_CHECK_INTERVAL) found it empty or unreadable.\n"
	    "# TYPE clamrest_database_folder_ok gauge\n");
	if (g->db_folder_ok >= 0)
		out_printf(o, "clamrest_database_folder_ok %d\n", g->db_folder_ok);
	out_printf(o, "# HELP clamrest_database_folder_unusable_total Times CLAMAV_DB_DIR was found "
	    "empty or unreadable after it was usable.\n"
	    "# TYPE clamrest_database_folder_unusable_total counter\n"
	    "clamrest_database_folder_unusable_total %lu\n", g->db_folder_unusable);
}

static void
render_by_rule(struct out *o, const char *name, const char *help,
    const atomic_ulong counts[METRICS_POLICY_RULES])
{
	out_printf(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < METRICS_POLICY_RULES; i++)
		out_printf(o, "%s{rule=\"%s\"} %lu\n", name, metrics_policy_rules[i],
		    atomic_load_explicit(&counts[i], memory_order_relaxed));
}

static void
render_policy(struct out *o)
{
	render_by_rule(o, "clamrest_policy_blocked_total", "Files the upload policy blocked, by rule "
	    "(docs/POLICY.md).", policy_blocked);
	render_by_rule(o, "clamrest_policy_reported_total", "Files the upload policy would have "
	    "blocked (POLICY_MODE=report), by rule.", policy_reported);
}

size_t
metrics_render(char *buf, size_t len, const struct metrics_gauges *g)
{
	struct out o = { buf, len, 0, 0 };

	render_build(&o, g);
	render_requests(&o);
	render_icap(&o);
	render_http(&o);
	render_scans(&o);
	render_connections(&o, g);
	out_printf(&o, "# HELP clamrest_scans_queued Finished uploads waiting for a scan thread.\n"
	    "# TYPE clamrest_scans_queued gauge\nclamrest_scans_queued %u\n"
	    "# HELP clamrest_scans_running Scans in progress.\n"
	    "# TYPE clamrest_scans_running gauge\nclamrest_scans_running %u\n"
	    "# HELP clamrest_scan_rate Scans a second the scan threads finish, as measured for admission "
	    "(SCAN_QUEUE_TIMEOUT); 0 until the first scan ends.\n"
	    "# TYPE clamrest_scan_rate gauge\nclamrest_scan_rate %.3f\n",
	    g->scans_queued, g->scans_running, g->scan_rate);
	out_printf(&o, "# HELP clamrest_body_memory_bytes Bytes of uploads in progress held in memory (BODY_MEMORY bounds it).\n"
	    "# TYPE clamrest_body_memory_bytes gauge\nclamrest_body_memory_bytes %llu\n"
	    "# HELP clamrest_body_disk_bytes Bytes of uploads in progress held in TMPDIR (BODY_DISK bounds it).\n"
	    "# TYPE clamrest_body_disk_bytes gauge\nclamrest_body_disk_bytes %llu\n",
	    (unsigned long long)g->body_memory, (unsigned long long)g->body_disk);
	render_by_protocol(&o, "clamrest_store_failures_total", "Uploads answered 500 (ICAP: 500 or "
	    "not scanned) because TMPDIR could not take them, by protocol.", store_failures);
	render_by_protocol(&o, "clamrest_load_shed_total", "Requests refused with 503 because the "
	    "scan pool or the password check queue was full, or BODY_DISK was spent, by protocol.",
	    shed);
	out_printf(&o, "# HELP clamrest_auth_failures_total Scan requests refused with 401.\n"
	    "# TYPE clamrest_auth_failures_total counter\nclamrest_auth_failures_total %lu\n"
	    "# HELP clamrest_auth_throttled_total Scan requests refused with 429: their client address "
	    "had used up its failed password checks.\n"
	    "# TYPE clamrest_auth_throttled_total counter\nclamrest_auth_throttled_total %lu\n",
	    atomic_load(&auth_failures), atomic_load(&auth_throttled));
	out_printf(&o, "# HELP clamrest_database_version Daily version of the signatures in use.\n"
	    "# TYPE clamrest_database_version gauge\nclamrest_database_version %ld\n"
	    "# HELP clamrest_database_build_time_seconds Build time of the signatures in use (Unix time).\n"
	    "# TYPE clamrest_database_build_time_seconds gauge\nclamrest_database_build_time_seconds %lld\n"
	    "# HELP clamrest_database_signatures Signatures loaded.\n"
	    "# TYPE clamrest_database_signatures gauge\nclamrest_database_signatures %u\n",
	    g->db_version, (long long)g->db_time, g->signatures);
	out_printf(&o, "# HELP clamrest_database_reloads_total Database reloads, by result.\n"
	    "# TYPE clamrest_database_reloads_total counter\n"
	    "clamrest_database_reloads_total{result=\"success\"} %lu\n"
	    "clamrest_database_reloads_total{result=\"failure\"} %lu\n",
	    g->reloads, g->reload_failures);
	out_printf(&o, "# HELP clamrest_scan_cache_hits_total Uploads answered clean from the cache of "
	    "complete scans.\n"
	    "# TYPE clamrest_scan_cache_hits_total counter\nclamrest_scan_cache_hits_total %lu\n",
	    g->cache_hits);
	out_printf(&o, "# HELP clamrest_member_cache_hits_total Archive members skipped as scanned clean "
	    "by an earlier complete scan (MEMBER_CACHE).\n"
	    "# TYPE clamrest_member_cache_hits_total counter\nclamrest_member_cache_hits_total %lu\n"
	    "# HELP clamrest_member_cache_misses_total Archive members looked up and scanned.\n"
	    "# TYPE clamrest_member_cache_misses_total counter\nclamrest_member_cache_misses_total %lu\n"
	    "# HELP clamrest_member_cache_entries Archive members remembered for the database in use.\n"
	    "# TYPE clamrest_member_cache_entries gauge\nclamrest_member_cache_entries %lu\n",
	    g->member_hits, g->member_misses, g->member_entries);
	out_printf(&o, "# HELP clamrest_scan_cut_clean_total Scans cut short by a limit and answered by "
	    "what was scanned, as ALERT_EXCEEDS_MAX=no asks.\n"
	    "# TYPE clamrest_scan_cut_clean_total counter\nclamrest_scan_cut_clean_total %lu\n",
	    g->cut_clean);
	out_printf(&o, "# HELP clamrest_uptime_seconds Seconds since the service started.\n"
	    "# TYPE clamrest_uptime_seconds gauge\nclamrest_uptime_seconds %.3f\n",
	    util_now() - started);
	render_database(&o, g);
	render_policy(&o);
	render_process(&o);
	return o.full ? 0 : o.pos;
}
