/* reqid.h -- the id of a request, logged on each of its lines as http.request.id and returned as
 * X-Request-Id: the client's X-Request-Id when it is safe to log, else the trace-id of a valid W3C
 * traceparent, else a valid X-B3-TraceId, else 32 random hex digits. */
#ifndef CLAMREST_REQID_H
#define CLAMREST_REQID_H

#include <stddef.h>

#define REQID_MAX	128	/* bytes of an X-Request-Id taken; a longer one is ignored */
#define REQID_SIZE	(REQID_MAX + 1)	/* bytes of a buffer that holds any id */
#define REQID_GEN_LEN	32	/* hex digits of a generated id */

enum reqid_source { REQID_HEADER, REQID_TRACEPARENT, REQID_B3, REQID_GENERATED };

/* 1 when s may be an X-Request-Id: 1 to REQID_MAX bytes of letters, digits and - _ . : / + = @. */
int reqid_valid(const char *s);
/* Picks the id from the three headers (each NULL when absent) into out (REQID_SIZE bytes); a
 * header that is not valid is skipped. Returns where it came from. */
enum reqid_source reqid_pick(const char *x_request_id, const char *traceparent, const char *b3,
    char *out);

#endif
