/* server_priv.h -- what the files of the server module share: struct server (the daemon and what
 * it serves with), struct request (one request from its head to its end) and the functions one
 * server_*.c file offers the others. Included only by server*.c; other modules include server.h.
 * Functions returning int return 0 on success and -1 on failure, unless said otherwise. */
#ifndef CLAMREST_SERVER_PRIV_H
#define CLAMREST_SERVER_PRIV_H

#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "framing.h"
#include "metrics.h"
#include "reqid.h"
#include "scanner.h"
#include "throttle.h"

struct api_route_def;

#define SERVER_USER_MAX    64	/* bytes of a user name kept for the log */
#define SERVER_LOG_PATH_MAX 256	/* bytes of a request path kept for the log */
#define SERVER_UA_MAX      256	/* bytes of a User-Agent kept for the log */
#define SERVER_WHY_MAX     512	/* bytes of the reason a request failed, for the log */
#define SERVER_METHOD_MAX  16	/* bytes of a method kept for the log */
#define SERVER_OUT_MAX     (SCAN_REASON_MAX * 6 + 128)	/* bytes of a JSON answer: an escape
							 * takes at most 6 bytes per input byte */

/* An answer whose body and headers never change. A response object is made from it for each
 * request, since each answer carries the request's own X-Request-Id: libmicrohttpd gives no hook to
 * add a header per connection, and a response's headers must not change once it is queued (other
 * threads may be sending it), so one shared response cannot carry them. */
struct canned {
	const char *text;
	const char *ctype;		/* NULL: text/plain */
	int close;			/* Connection: close */
	const char *hname, *hval;	/* one more header, or NULL */
};

struct canned_set {
	struct canned ok, unavailable, not_found, not_allowed_get, not_allowed_post, unauthorized,
	    too_large, single_file, bad_request, busy, internal, throttled, options_get,
	    options_post;
};

struct server {
	const struct config *cfg;
	struct auth *auth;
	struct dnsver *dnsver;
	_Atomic(struct scanner *) scanner;
	struct pool *pool;
	struct verifier *verifier;	/* PBKDF2 for credentials not in the cache */
	struct throttle *throttle;	/* failed password checks per client address */
	_Atomic double throttle_logged;	/* when the last throttle line was logged */
	atomic_ulong throttle_unlogged;	/* throttled addresses not logged since */
	struct MHD_Daemon *daemon;
	struct canned_set canned;
	struct canned_set canned_v3;	/* the same answers as JSON {"error": ...}, for /v3 routes */
	char throttle_retry[16];	/* the Retry-After of a 429 */
	struct proxy_list *proxies;	/* TRUSTED_PROXIES */
	unsigned port;
	atomic_int draining;		/* SIGTERM came: /check answers 503, new connections closed */

	struct guard *guard;		/* every open connection, held to the timeouts */
	char *tls_cert, *tls_key;	/* PEM contents */
	pthread_t starter;		/* the thread in MHD_start_daemon, while start_err is open */
	atomic_int starting;		/* 1 while libmicrohttpd's messages may say why it cannot start */
	char start_err[256];		/* its last message then: the system's or GnuTLS's reason */
};

/* What the verifier found, besides auth_verify's 1 (right), 0 (wrong), -1 (OpenSSL failed) and
 * VERIFIER_DROPPED (its place in the queue went to another address): nothing was checked. */
#define VERIFY_FULL	(-3)	/* the verifier queue was full */
#define VERIFY_THROTTLED (-4)	/* the address used up its checks (AUTH_FAIL_BURST) */
#define VERIFY_ERROR	(-5)	/* out of memory, or shutting down */

/* A request in progress, from its head to its end: what its log line needs, and for a POST its
 * body, its checks and its scan. */
struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	int post;			/* a POST to a scan route: body, auth and scan; 0: answered
					 * from the head (any body read and dropped) */
	const struct sockaddr *addr;	/* &client */
	struct sockaddr_storage client;	/* the peer, or behind TRUSTED_PROXIES the X-Forwarded-For hop */
	const struct api_route_def *route;
	int verifying;			/* suspended until the verifier has a verdict */
	int verdict;			/* auth_verify's, VERIFIER_DROPPED or a VERIFY_ */
	int charged;			/* a check was started for it: it took a throttle token */
	int joined;			/* it waited for a check of the same credentials */
	enum throttle_verdict tv;	/* the throttle's answer when a check was to start */
	struct MHD_Response *answer;	/* decided before the scan (an error); NULL: scan */
	int status;
	int scanned;			/* up holds the verdict of every file */
	int more;			/* the upload has files to scan yet: queued again */
	int expired;			/* waited SCAN_QUEUE_TIMEOUT for a scan thread: 503 */
	int answered;			/* an answer was queued (and counted) */
	int refused;			/* answer (NULL when out of memory) was decided before the scan */
	int discarding;
	uint64_t seen;			/* body bytes received, counted against MAX_CONTENT_LENGTH */
	struct framing framing;		/* Content-Length / Transfer-Encoding, checked */
	double t0;
	int store_rc, store_errno;	/* the body store's refusal (BODY_FULL or -1), its errno */
	struct MHD_Response *own;	/* an answer made for this request alone, freed with it */
	struct multipart *mp;
	struct upload *up;		/* a POST's files (a v2 upload has one); NULL before its head
					 * is checked */
	char user[SERVER_USER_MAX];
	char id[REQID_SIZE];		/* http.request.id and X-Request-Id */
	char ip[INET6_ADDRSTRLEN];	/* client, as text */
	char method[SERVER_METHOD_MAX];
	char path[SERVER_LOG_PATH_MAX];
	char ua[SERVER_UA_MAX];
	char why[SERVER_WHY_MAX];	/* why it failed or was refused; "" when it did not */
	char out[SERVER_OUT_MAX];
	int fd;				/* its socket, for a chunked POST (else -1) */
	struct request *fd_next;	/* in server_chunked, by fd */
	unsigned sent_status;		/* our answer, written to the socket ourselves (see
					 * chunk_error_answer); 0: none */
};


/* server_reply.c: the canned answers, the reply helpers, the refusals decided before a scan. */
enum metrics_route route_metric(const struct api_route_def *rt);
int route_v3(const struct api_route_def *rt);
const struct canned_set *canned_for(const struct server *srv, const struct api_route_def *rt);
struct MHD_Response *canned_make(const struct canned *c);
void canned_init(struct canned_set *c, const char *throttle_retry, int json);
enum MHD_Result reply_send(struct request *r, enum metrics_route metric, unsigned status,
    struct MHD_Response *resp);
enum MHD_Result reply_canned(struct request *r, enum metrics_route metric, unsigned status,
    const struct canned *c, const char *why);
enum MHD_Result reply_new(struct request *r, enum metrics_route metric, unsigned status,
    const char *ctype, const char *body, size_t len, enum MHD_ResponseMemoryMode mode);
enum MHD_Result reply_json(struct request *r, enum metrics_route metric, unsigned status,
    const char *json, size_t len, enum MHD_ResponseMemoryMode mode);
enum MHD_Result reply_text(struct request *r, enum metrics_route metric, unsigned status,
    const char *text);
void request_refuse(struct request *r, unsigned status, const struct canned *c, const char *why);
void request_refuse_json(struct request *r, unsigned status, const char *why);
void request_busy(struct request *r, const char *why);
void request_unavailable(struct request *r, unsigned retry);
void request_store_failed(struct request *r);
enum MHD_Result post_answer(struct request *r, unsigned status, struct MHD_Response *resp);
enum MHD_Result post_reply(struct request *r, unsigned status, const char *ctype,
    const char *body, size_t len);

/* server_routes.c: the GET routes' answers. */
int server_ready(struct server *srv);
int server_reloading(struct server *srv);
enum MHD_Result answer_redirect(struct server *srv, struct request *r,
    const struct api_route_def *rt, const char *path);
enum MHD_Result handle_get(struct request *r, const char *url, const char *method);

/* server_auth.c: the password check of a POST. */
int server_auth_check(void *ctx, const char *user, size_t ulen, const char *pass, size_t plen);
int request_auth(struct request *r);
void request_verified(struct request *r);

/* server_request.c: the request lifecycle (libmicrohttpd's handler and completion callbacks). */
struct guard_conn *conn_guard(struct MHD_Connection *conn);
void request_precheck(struct request *r);
void request_id(struct MHD_Connection *conn, char *id);
enum MHD_Result server_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data, size_t *size, void **con_cls);
void server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe);

/* server_scan.c: a finished upload handed to the scan pool, and the answer from its result. */
enum MHD_Result request_complete(struct request *r);
enum MHD_Result answer_scan(struct request *r);

/* server_quirks.c: libmicrohttpd 0.9.75's own answers taken over, its query parse kept cheap. */
void quirks_chunked_add(struct request *r, int fd);
void quirks_chunked_remove(struct request *r);
void quirks_head_parsed(struct MHD_Connection *conn);
void quirks_message(struct server *srv, const char *msg);
void *quirks_uri(void *cls, const char *uri, struct MHD_Connection *conn);

/* server_log.c: the access log line of a request that ended. */
void server_log_request(struct request *r, enum MHD_RequestTerminationCode toe);

#endif
