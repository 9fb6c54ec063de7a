/* server.h -- the HTTP service: routes, request framing checks, streamed bodies, hand-off of finished
 * uploads to the scan pool and the verdict back to the connection. The only module that includes
 * microhttpd.h: server.c (the daemon) and its server_*.c files, over their private server_priv.h.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_SERVER_H
#define CLAMREST_SERVER_H

#include <stddef.h>

struct config;
struct auth;
struct scanner;
struct dnsver;

/* Bytes per connection. libmicrohttpd zeroes it for every request, so small requests pay for its
 * size, and uploads arrive in reads of at most its size. Measured here (server CPU per request):
 * 16 KiB: /check 8.9 us, EICAR scan 76 us, 5 MiB upload 18.0 ms; 32 KiB: 7.4, 64, 17.0;
 * 64 KiB: 9.0, 67, 15.3; 128 KiB: 11.4, 73, 15.4. 64 KiB keeps large uploads cheapest. */
#define SERVER_CONN_MEMORY   (64 * 1024)
#define SERVER_DISCARD_SLACK (16 * 1024 * 1024)	/* bytes of an unwanted body read (and dropped)
						 * before we hang up instead of answering */
#define SERVER_RETRY_AFTER   "1"		/* seconds, in 503 answers when the password-check queue is full */

struct server;

/* Starts listening at once. scanner: one that already has a database, served from the first
 * connection; NULL (DB_WAIT, none yet): scans and /check answer 503 until server_set_scanner. NULL
 * with one line in err when the address cannot be used. Caller owns the result. */
struct server *server_start(const struct config *cfg, struct auth *auth, struct dnsver *dnsver,
    struct scanner *scanner, char *err, size_t errlen);
void server_set_scanner(struct server *srv, struct scanner *scanner);
/* SIGTERM's first step: new connections are refused at once and /check answers 503 (on
 * connections already open), so load balancers stop sending; requests in progress go on. */
void server_drain(struct server *srv);
/* Drains, lets requests in progress finish until end (util_now's clock: SHUTDOWN_GRACE after the
 * signal; scans still waiting for a thread then answer 503), then closes: 0. -1 when scans still
 * ran 2 s past end: srv
 * is left as it is (its threads still use it and the scanner), and the caller must end the process
 * at once (_exit) without freeing what they use. */
int server_stop(struct server *srv, double end);
unsigned server_port(struct server *srv);

/* The scan pool, shared with the ICAP service (icap.c): the same SCAN_THREADS, SCAN_QUEUE and
 * SCAN_QUEUE_TIMEOUT. It lives until server_stop. */
struct pool;
struct pool *server_pool(struct server *srv);

#endif
