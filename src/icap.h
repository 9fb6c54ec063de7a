/* icap.h -- the ICAP service (RFC 3507) beside HTTP: the listener on ICAP_HOST:ICAP_PORT and one
 * thread per connection, sharing the engine, the scan pool, the body budgets, the verdict rules, the
 * connection rules (guard.c), the logs and the metrics with the HTTP side.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_ICAP_H
#define CLAMREST_ICAP_H

#include <stddef.h>

struct config;
struct scanner;
struct pool;
struct icap;

/* Listens on cfg->icap_host:cfg->icap_port (call only when icap_port is not 0). scanner may have
 * no database yet (DB_WAIT): requests are then answered 503. pool is the HTTP side's scan pool,
 * which must outlive icap_stop. NULL with one line in err. */
struct icap *icap_start(const struct config *cfg, struct scanner *scanner, struct pool *pool,
    char *err, size_t errlen);
unsigned icap_port(const struct icap *ic);
/* SIGTERM: no new connection is taken; idle ones are closed; requests in progress go on. */
void icap_drain(struct icap *ic);
/* Waits until the monotonic time deadline (util_now's clock) for requests in progress, then cuts
 * what is left and frees: 0. -1 when connection threads would not end (ic is then left alone, and
 * the process must end without it). Accepts NULL. */
int icap_stop(struct icap *ic, double deadline);
/* Requests in progress (for the drain's log line). */
unsigned icap_busy(struct icap *ic);

#endif
