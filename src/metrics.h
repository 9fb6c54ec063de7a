/* metrics.h -- the service's counters and histograms, lock-free, rendered in the Prometheus text
 * exposition format for GET /metrics. One set per process. */
#ifndef CLAMREST_METRICS_H
#define CLAMREST_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum metrics_route {
	METRICS_ROUTE_CHECK,
	METRICS_ROUTE_VERSION,
	METRICS_ROUTE_WARNING,
	METRICS_ROUTE_SCAN,
	METRICS_ROUTE_SCAN_CHUNKED,
	METRICS_ROUTE_SCAN_LEGACY,
	METRICS_ROUTE_METRICS,
	METRICS_ROUTE_V3_SCAN,
	METRICS_ROUTE_V3_SCAN_CHUNKED,
	METRICS_ROUTE_ABOUT,		/* GET /version */
	METRICS_ROUTE_OTHER,
	METRICS_ROUTES
};

enum metrics_verdict {
	METRICS_CLEAN,
	METRICS_MALWARE,
	METRICS_LIMITS_EXCEEDED,
	METRICS_ERROR,
	METRICS_VERDICTS
};

/* The front a scan came through: the label protocol of the scan metrics ("http", "icap"). */
enum metrics_protocol {
	METRICS_HTTP,
	METRICS_ICAP,
	METRICS_PROTOCOLS
};

/* Why a connection was closed by us rather than by its client (clamrest_connections_cut_total). */
enum metrics_cut {
	METRICS_CUT_HEAD_TIMEOUT,	/* no whole request head within REQUEST_TIMEOUT (idle ones too) */
	METRICS_CUT_SLOW_BODY,		/* body below MIN_UPLOAD_RATE after REQUEST_TIMEOUT */
	METRICS_CUT_DISCARD_DEADLINE,	/* an unwanted body still coming REQUEST_TIMEOUT after our no */
	METRICS_CUT_DISCARD_LIMIT,	/* an unwanted body larger than we read to answer politely */
	METRICS_CUT_PEER_CLOSED,	/* the client had closed; freed instead of left in CLOSE-WAIT */
	METRICS_CUT_EVICTED,		/* idle, and the oldest such, when the table was full */
	METRICS_CUT_SHUTDOWN,		/* a request still in progress when SHUTDOWN_GRACE ran out */
	METRICS_CUTS
};

/* The status of a request whose client went away before its answer was queued: counted under
 * code="aborted" and status_class="aborted". */
#define METRICS_ABORTED 0

/* Bytes the exposition may take at most: every route x status code x status class with counters
 * at their widest fits (tests/unit/test_metrics.c checks it). */
#define METRICS_TEXT_MAX (256 * 1024)

/* What only the caller knows at render time. */
struct metrics_gauges {
	const char *version, *libclamav;	/* clamrest_build_info; NULL: not rendered */
	const char *libclamav_file;	/* its label libclamav_file; NULL: "" */
	int libclamav_patched;		/* its label libclamav_patched: "true" or "false" */
	unsigned connections;		/* open connections */
	unsigned scans_queued, scans_running;
	double scan_rate;		/* scans a second the pool measures; 0: none yet */
	uint64_t body_memory, body_disk;	/* bytes uploads in progress hold */
	long db_version;		/* -1: no engine yet */
	time_t db_time;
	unsigned signatures;
	unsigned long reloads, reload_failures;
	unsigned long cache_hits;	/* scans answered from the clean cache */
	unsigned long member_hits, member_misses, member_entries;	/* the member cache's */
	unsigned long cut_clean;	/* ALERT_EXCEEDS_MAX=no: cut scans answered by what was scanned */
	int db_folder_ok;		/* CLAMAV_DB_DIR readable with files in it: 1, 0; -1 unknown */
	unsigned long db_folder_unusable;	/* times it was found empty or unreadable */
};

/* Marks the start time for the uptime; the scan-duration buckets reach max_scan_time seconds. */
void metrics_start(double max_scan_time);
/* One answered request (status METRICS_ABORTED: its client went away first), seconds from its
 * head to its answer. Exactly once per request. */
void metrics_request(enum metrics_route route, unsigned status, double seconds);
void metrics_request_body(uint64_t bytes);
enum metrics_icap_method { METRICS_ICAP_OPTIONS, METRICS_ICAP_REQMOD, METRICS_ICAP_RESPMOD,
	METRICS_ICAP_OTHER, METRICS_ICAP_METHODS };
/* One ICAP request (status 499: the connection ended first), seconds from its head to its answer,
 * body bytes received: counted with protocol="icap". */
void metrics_icap_request(enum metrics_icap_method method, unsigned status, double seconds,
    uint64_t bytes);
/* The verdict an ICAP answer gave: "clean", "malware", "not_scanned" or "error" (others ignored). */
void metrics_icap_verdict(const char *verdict);
/* One file scanned for a request of protocol: its verdict, seconds libclamav took, bytes. */
void metrics_scan(enum metrics_protocol protocol, enum metrics_verdict verdict, double seconds,
    uint64_t bytes);
/* Counted by both fronts, with their protocol: a request refused with 503 (load shed), an upload
 * that could not be written to TMPDIR, a connection cut (guard.c, one per front). */
void metrics_shed(enum metrics_protocol protocol);
void metrics_store_failure(enum metrics_protocol protocol);
void metrics_auth_failure(void);
void metrics_auth_throttled(void);
void metrics_cut(enum metrics_protocol protocol, enum metrics_cut reason);
/* A file the upload policy blocked, by rule ("deny", "allow", "macros", "encrypted", "extension",
 * "unknown"; clamrest_policy_blocked_total). */
void metrics_policy_blocked(const char *rule);
/* A file POLICY_MODE=report let through that a rule matched (clamrest_policy_reported_total). */
void metrics_policy_reported(const char *rule);
/* A connection refused: the table was full of requests. */
void metrics_refused(enum metrics_protocol protocol);

/* Writes the exposition to buf; returns its length, or 0 when buf is too small. */
size_t metrics_render(char *buf, size_t len, const struct metrics_gauges *g);

#endif
