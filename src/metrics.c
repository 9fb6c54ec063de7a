/* metrics.c -- lock-free counters and a scan-duration histogram in the Prometheus text format. */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "util.h"

static const char *const metrics_route_names[METRICS_ROUTES] = {
	"/check", "/check_version", "/check_warning", "/v2/scan", "/v2/scan-chunked", "/scan",
	"/metrics", "other",
};

/* The statuses the service answers; anything else is counted as "other". */
static const unsigned metrics_codes[] = { 200, 308, 400, 401, 404, 405, 413, 429, 500, 503 };
#define METRICS_CODES (sizeof(metrics_codes) / sizeof(metrics_codes[0]) + 1)

static const char *const metrics_verdict_names[METRICS_VERDICTS] = {
	"clean", "malware", "limits_exceeded", "error",
};

static const char *const metrics_cut_names[METRICS_CUTS] = {
	"head_timeout", "slow_body", "discard_deadline", "discard_limit", "peer_closed", "evicted",
};

/* Seconds; scans of small bodies take tens of microseconds, large archives seconds. */
static const double metrics_buckets[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define METRICS_BUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

static atomic_ulong requests[METRICS_ROUTES][METRICS_CODES];
static atomic_ulong verdicts[METRICS_VERDICTS];
static atomic_ulong scan_buckets[METRICS_BUCKETS + 1];	/* last: +Inf */
static atomic_ullong scan_micros;			/* sum of durations, microseconds */
static atomic_ullong scan_bytes;
static atomic_ulong shed, auth_failures, auth_throttled, store_failures;
static atomic_ulong cuts[METRICS_CUTS], refused;
static double started;

void
metrics_start(void)
{
	started = util_now();
}

void
metrics_request(enum metrics_route route, unsigned status)
{
	size_t i;

	for (i = 0; i < METRICS_CODES - 1; i++)
		if (metrics_codes[i] == status)
			break;
	atomic_fetch_add_explicit(&requests[route][i], 1, memory_order_relaxed);
}

void
metrics_scan(enum metrics_verdict verdict, double seconds, uint64_t bytes)
{
	size_t i;

	for (i = 0; i < METRICS_BUCKETS; i++)
		if (seconds <= metrics_buckets[i])
			break;
	atomic_fetch_add_explicit(&scan_buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&verdicts[verdict], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&scan_micros, (unsigned long long)(seconds * 1e6),
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&scan_bytes, bytes, memory_order_relaxed);
}

void
metrics_shed(void)
{
	atomic_fetch_add_explicit(&shed, 1, memory_order_relaxed);
}

void
metrics_store_failure(void)
{
	atomic_fetch_add_explicit(&store_failures, 1, memory_order_relaxed);
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

void
metrics_cut(enum metrics_cut reason)
{
	atomic_fetch_add_explicit(&cuts[reason], 1, memory_order_relaxed);
}

void
metrics_refused(void)
{
	atomic_fetch_add_explicit(&refused, 1, memory_order_relaxed);
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
		for (size_t c = 0; c < METRICS_CODES; c++) {
			unsigned long n = atomic_load_explicit(&requests[r][c], memory_order_relaxed);
			char code[16];

			if (n == 0)
				continue;
			if (c < METRICS_CODES - 1)
				snprintf(code, sizeof(code), "%u", metrics_codes[c]);
			else
				snprintf(code, sizeof(code), "other");
			out_printf(o, "clamrest_http_requests_total{route=\"%s\",code=\"%s\"} %lu\n",
			    metrics_route_names[r], code, n);
		}
	}
}

static void
render_scans(struct out *o)
{
	unsigned long cum = 0;

	out_printf(o, "# HELP clamrest_scans_total Scans finished, by verdict.\n"
	    "# TYPE clamrest_scans_total counter\n");
	for (size_t v = 0; v < METRICS_VERDICTS; v++)
		out_printf(o, "clamrest_scans_total{verdict=\"%s\"} %lu\n", metrics_verdict_names[v],
		    atomic_load_explicit(&verdicts[v], memory_order_relaxed));
	out_printf(o, "# HELP clamrest_scan_duration_seconds Time libclamav took per scan.\n"
	    "# TYPE clamrest_scan_duration_seconds histogram\n");
	for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&scan_buckets[i], memory_order_relaxed);
		if (i < METRICS_BUCKETS)
			out_printf(o, "clamrest_scan_duration_seconds_bucket{le=\"%g\"} %lu\n",
			    metrics_buckets[i], cum);
		else
			out_printf(o, "clamrest_scan_duration_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
	}
	out_printf(o, "clamrest_scan_duration_seconds_sum %.6f\n"
	    "clamrest_scan_duration_seconds_count %lu\n",
	    (double)atomic_load(&scan_micros) / 1e6, cum);
	out_printf(o, "# HELP clamrest_scanned_bytes_total Bytes handed to the engine.\n"
	    "# TYPE clamrest_scanned_bytes_total counter\n"
	    "clamrest_scanned_bytes_total %llu\n", atomic_load(&scan_bytes));
}

static void
render_connections(struct out *o, const struct metrics_gauges *g)
{
	out_printf(o, "# HELP clamrest_connections Open client connections.\n"
	    "# TYPE clamrest_connections gauge\nclamrest_connections %u\n", g->connections);
	out_printf(o, "# HELP clamrest_connections_cut_total Connections closed by the service, by reason.\n"
	    "# TYPE clamrest_connections_cut_total counter\n");
	for (size_t i = 0; i < METRICS_CUTS; i++)
		out_printf(o, "clamrest_connections_cut_total{reason=\"%s\"} %lu\n", metrics_cut_names[i],
		    atomic_load_explicit(&cuts[i], memory_order_relaxed));
	out_printf(o, "# HELP clamrest_connections_refused_total Connections refused because every "
	    "open one had a request in progress (MAX_CONNECTIONS).\n"
	    "# TYPE clamrest_connections_refused_total counter\nclamrest_connections_refused_total %lu\n",
	    atomic_load(&refused));
}

size_t
metrics_render(char *buf, size_t len, const struct metrics_gauges *g)
{
	struct out o = { buf, len, 0, 0 };

	render_requests(&o);
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
	    "# TYPE clamrest_body_disk_bytes gauge\nclamrest_body_disk_bytes %llu\n"
	    "# HELP clamrest_store_failures_total Uploads answered 500 because TMPDIR could not take them.\n"
	    "# TYPE clamrest_store_failures_total counter\nclamrest_store_failures_total %lu\n",
	    (unsigned long long)g->body_memory, (unsigned long long)g->body_disk,
	    atomic_load(&store_failures));
	out_printf(&o, "# HELP clamrest_load_shed_total Requests refused with 503 because the scan pool "
	    "or the password check queue was full, or BODY_DISK was spent.\n"
	    "# TYPE clamrest_load_shed_total counter\nclamrest_load_shed_total %lu\n"
	    "# HELP clamrest_auth_failures_total Scan requests refused with 401.\n"
	    "# TYPE clamrest_auth_failures_total counter\nclamrest_auth_failures_total %lu\n"
	    "# HELP clamrest_auth_throttled_total Scan requests refused with 429: their client address "
	    "had used up its failed password checks.\n"
	    "# TYPE clamrest_auth_throttled_total counter\nclamrest_auth_throttled_total %lu\n",
	    atomic_load(&shed), atomic_load(&auth_failures), atomic_load(&auth_throttled));
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
	out_printf(&o, "# HELP clamrest_uptime_seconds Seconds since the service started.\n"
	    "# TYPE clamrest_uptime_seconds gauge\nclamrest_uptime_seconds %.3f\n",
	    util_now() - started);
	return o.full ? 0 : o.pos;
}
