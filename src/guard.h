/* guard.h -- the table of open client connections and the rules each must keep, so that no client
 * holds one for long without doing what a client does: a whole request head within the timeout;
 * every body byte, wanted or not, at the minimum rate on average once the timeout has passed; a
 * body we only drop finished within the timeout of our refusal. A connection whose client has
 * closed is freed at once; when the table is full, the idle connection (keep-alive, or no head yet)
 * that has waited longest is evicted to make room, and a new one is refused only when every open
 * connection has a request in progress. Knows sockets, not HTTP: a breach is cut by shutdown(2) of
 * the socket, which the HTTP library's event loop sees and closes.
 * Functions returning int return 0 to go on and -1 to cut or refuse. */
#ifndef CLAMREST_GUARD_H
#define CLAMREST_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct guard_limits {
	unsigned max_connections;	/* open connections, beyond which idle ones are evicted */
	double timeout;			/* seconds: REQUEST_TIMEOUT */
	unsigned min_rate;		/* bytes per second: MIN_UPLOAD_RATE; 0: no rate rule */
	enum metrics_protocol protocol;	/* the front: the label protocol of its cuts and refusals */
};

struct guard;
struct guard_conn;

/* Starts the watchdog thread. NULL on failure. Caller owns the result. */
struct guard *guard_new(const struct guard_limits *l);
/* Stops the watchdog and frees. Every connection must have been closed. Accepts NULL. */
void guard_free(struct guard *g);
/* Connections the HTTP library may hold: max_connections plus room for those being cut. */
unsigned guard_table_size(unsigned max_connections);

/* Before a connection is accepted: 0 when there is room, made by evicting the longest idle one if
 * the table is full; -1 (logged, counted) when every open connection has a request in progress. */
int guard_admit(struct guard *g);
/* A connection accepted on fd; NULL when out of memory (it is then not watched). */
struct guard_conn *guard_open(struct guard *g, int fd);
/* The connection is closing: forgotten before its fd is closed. Accepts NULL. */
void guard_close(struct guard *g, struct guard_conn *c);

/* The life of one request. Every function accepts NULL. */
void guard_request(struct guard_conn *c);	/* its head is in */
void guard_body_begin(struct guard_conn *c);	/* it has a body: the rate clock starts */
/* len more body bytes arrived: -1 (logged, counted) when the connection breaks a rule. */
int guard_body(struct guard_conn *c, size_t len);
/* The rest of the body is unwanted: it must come within the timeout, and cap bytes in all. */
void guard_discard(struct guard_conn *c, uint64_t cap);
void guard_body_end(struct guard_conn *c);	/* the whole body is in */
void guard_idle(struct guard_conn *c);		/* the request is over: waiting for the next head */
/* Seconds since the head of the request in progress was in; 0 when none is (or c is NULL). */
double guard_request_age(struct guard_conn *c);

/* Why we cut c (a metrics_cut reason), or -1 when we did not (or c is NULL). */
int guard_cut_reason(struct guard_conn *c);
/* A reason's text for a request's log line; NULL for none. */
const char *guard_reason_text(int reason);

unsigned guard_busy(struct guard *g);		/* connections with a request in progress */
unsigned guard_count(struct guard *g);		/* open connections */

#endif
