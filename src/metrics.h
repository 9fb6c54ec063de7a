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

/* What only the caller knows at render time. */
struct metrics_gauges {
	unsigned scans_queued, scans_running;
	uint64_t body_memory, body_disk;	/* bytes uploads in progress hold */
	long db_version;		/* -1: no engine yet */
	time_t db_time;
	unsigned signatures;
	unsigned long reloads, reload_failures;
	unsigned long cache_hits;	/* scans answered from the clean cache */
};

void metrics_start(void);	/* marks the start time for the uptime */
void metrics_request(enum metrics_route route, unsigned status);
void metrics_scan(enum metrics_verdict verdict, double seconds, uint64_t bytes);
void metrics_shed(void);
void metrics_store_failure(void);	/* an upload could not be written to TMPDIR */
void metrics_auth_failure(void);
void metrics_auth_throttled(void);

/* Writes the exposition to buf; returns its length, or 0 when buf is too small. */
size_t metrics_render(char *buf, size_t len, const struct metrics_gauges *g);

#endif
