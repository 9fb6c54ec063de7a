/* server.c -- the HTTP service on libmicrohttpd: routing, framing checks, streamed bodies, scans. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "body.h"
#include "config.h"
#include "dnsver.h"
#include "framing.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "multipart.h"
#include "pool.h"
#include "proxy.h"
#include "recvtrack.h"
#include "reqid.h"
#include "scanner.h"
#include "throttle.h"
#include "verifier.h"
#include "util.h"
#include "v3.h"

#define SERVER_AUTH_MAX    1024	/* bytes of a decoded Authorization header */
#define SERVER_USER_MAX    64	/* bytes of a user name kept for the log */
#define SERVER_LOG_PATH_MAX 256	/* bytes of a request path kept for the log */
#define SERVER_UA_MAX      256	/* bytes of a User-Agent kept for the log */
#define SERVER_WHY_MAX     512	/* bytes of the reason a request failed, for the log */
#define SERVER_METHOD_MAX  16	/* bytes of a method kept for the log */
#define SERVER_OUT_MAX     (SCAN_REASON_MAX * 6 + 128)	/* bytes of a JSON answer: an escape
							 * takes at most 6 bytes per input byte */
#define SERVER_THROTTLE_LOG_GAP 1.0	/* seconds between log lines about throttled addresses, so
					 * a crowd of guessing addresses cannot flood the log */

/* The metric each route counts in. */
static enum metrics_route
route_metric(const struct api_route_def *rt)
{
	static const enum metrics_route m[] = {
		[API_CHECK] = METRICS_ROUTE_CHECK,
		[API_VERSION] = METRICS_ROUTE_VERSION,
		[API_WARNING] = METRICS_ROUTE_WARNING,
		[API_METRICS] = METRICS_ROUTE_METRICS,
		[API_ABOUT] = METRICS_ROUTE_ABOUT,
		[API_SCAN] = METRICS_ROUTE_SCAN,
		[API_SCAN_CHUNKED] = METRICS_ROUTE_SCAN_CHUNKED,
		[API_SCAN_LEGACY] = METRICS_ROUTE_SCAN_LEGACY,
		[API_V3_SCAN] = METRICS_ROUTE_V3_SCAN,
		[API_V3_SCAN_CHUNKED] = METRICS_ROUTE_V3_SCAN_CHUNKED,
	};

	return rt != NULL ? m[rt->route] : METRICS_ROUTE_OTHER;
}

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
	int scanned;			/* res holds the verdict */
	int v3_more;			/* a /v3 upload has files to scan yet: queued again */
	int expired;			/* waited SCAN_QUEUE_TIMEOUT for a scan thread: 503 */
	int answered;			/* an answer was queued (and counted) */
	int refused;			/* answer (NULL when out of memory) was decided before the scan */
	int discarding;
	uint64_t seen;			/* body bytes received, counted against MAX_CONTENT_LENGTH */
	struct framing framing;		/* Content-Length / Transfer-Encoding, checked */
	double t0;
	struct body *body;
	int store_rc, store_errno;	/* the body store's refusal (BODY_FULL or -1), its errno */
	struct MHD_Response *own;	/* an answer made for this request alone, freed with it */
	struct multipart *mp;
	struct scan_result res;
	struct v3_upload *v3;		/* a /v3 request's files; NULL for the others */
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

static int
route_v3(const struct api_route_def *rt)
{
	return rt != NULL && (rt->route == API_V3_SCAN || rt->route == API_V3_SCAN_CHUNKED);
}

/* The answers of a route: /v3 ones are JSON. */
static const struct canned_set *
canned_for(const struct server *srv, const struct api_route_def *rt)
{
	return route_v3(rt) ? &srv->canned_v3 : &srv->canned;
}

/* A fresh response for one answer; NULL when out of memory. */
static struct MHD_Response *
canned_make(const struct canned *c)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(strlen(c->text), (void *)(uintptr_t)c->text,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    c->ctype != NULL ? c->ctype : "text/plain; charset=utf-8");
	if (c->close)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (c->hname != NULL)
		MHD_add_response_header(r, c->hname, c->hval);
	return r;
}

/* An answer's text, or (for /v3) the same text as {"error": ...}. */
#define CANNED(text)	(json ? "{\"error\":\"" text "\"}\n" : text)

static void
canned_init(struct canned_set *c, const char *throttle_retry, int json)
{
	/* OPTIONS: 200, no body, the methods in Allow; as Flask's default answer, text/html. */
	static const char *html = "text/html; charset=utf-8";
	const char *ctype = json ? "application/json" : NULL;

	c->ok = (struct canned){ CANNED("Service OK"), ctype, 0, NULL, NULL };
	c->unavailable = (struct canned){ CANNED("Service Unavailable"), ctype, 0, NULL, NULL };
	c->not_found = (struct canned){ CANNED("Not Found"), ctype, 0, NULL, NULL };
	c->not_allowed_get = (struct canned){ CANNED("Method Not Allowed"), ctype, 0,
	    MHD_HTTP_HEADER_ALLOW, API_ALLOW_GET };
	c->not_allowed_post = (struct canned){ CANNED("Method Not Allowed"), ctype, 0,
	    MHD_HTTP_HEADER_ALLOW, API_ALLOW_POST };
	c->unauthorized = (struct canned){ CANNED("Unauthorized Access"), ctype, 0,
	    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"Authentication Required\"" };
	c->too_large = (struct canned){ CANNED("File Too Large"), ctype, 1, NULL, NULL };
	c->single_file = (struct canned){ json ? "{\"error\":\"" V3_NO_FILE "\"}\n" :
	    "Provide a single file", ctype, 0, NULL, NULL };
	c->bad_request = (struct canned){ CANNED("Bad Request"), ctype, 1, NULL, NULL };
	c->busy = (struct canned){ CANNED("Service Busy"), ctype, 0, MHD_HTTP_HEADER_RETRY_AFTER,
	    SERVER_RETRY_AFTER };
	c->internal = (struct canned){ CANNED("Internal Server Error"), ctype, 0, NULL, NULL };
	/* No WWW-Authenticate: the credentials were not judged, and a client should wait, not ask
	 * its user for another password. */
	c->throttled = (struct canned){ CANNED("Too Many Requests"), ctype, 0,
	    MHD_HTTP_HEADER_RETRY_AFTER, throttle_retry };
	c->options_get = (struct canned){ "", html, 0, MHD_HTTP_HEADER_ALLOW, API_ALLOW_GET };
	c->options_post = (struct canned){ "", html, 0, MHD_HTTP_HEADER_ALLOW, API_ALLOW_POST };
}

/* The guard's record of a connection (NULL when it could not be made). libmicrohttpd's timeout
 * only sees idleness, which a client dripping a byte at a time never shows: the guard holds every
 * connection to REQUEST_TIMEOUT and MIN_UPLOAD_RATE, whatever we do with its bytes. */
static struct guard_conn *
conn_guard(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* Every answer goes out through here, so every answer is counted and carries X-Request-Id. resp
 * is this request's own (NULL: out of memory, the connection is closed); the caller frees it. */
static enum MHD_Result
reply(struct request *r, enum metrics_route metric, unsigned status, struct MHD_Response *resp)
{
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	r->status = (int)status;
	r->answered = 1;
	metrics_request(metric, status, guard_request_age(conn_guard(r->conn)));
	return MHD_queue_response(r->conn, status, resp);
}

/* A canned answer; why (NULL: none) is the reason logged with it. */
static enum MHD_Result
reply_canned(struct request *r, enum metrics_route metric, unsigned status,
    const struct canned *c, const char *why)
{
	struct MHD_Response *resp = canned_make(c);
	enum MHD_Result ret;

	if (why != NULL)
		snprintf(r->why, sizeof(r->why), "%s", why);
	ret = reply(r, metric, status, resp);
	if (resp != NULL)
		MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
reply_new(struct request *r, enum metrics_route metric, unsigned status, const char *ctype,
    const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, mode);
	if (resp == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)(uintptr_t)body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = reply(r, metric, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
reply_json(struct request *r, enum metrics_route metric, unsigned status, const char *json,
    size_t len, enum MHD_ResponseMemoryMode mode)
{
	return reply_new(r, metric, status, "application/json", json, len, mode);
}

static enum MHD_Result
reply_text(struct request *r, enum metrics_route metric, unsigned status, const char *text)
{
	return reply_new(r, metric, status, "text/plain; charset=utf-8", text, strlen(text),
	    MHD_RESPMEM_MUST_COPY);
}

/* The two versions /check_version and /check_warning compare; -1 with a reason when either is
 * missing. */
static int
versions(struct server *srv, long *local, long *remote, time_t *built, char *err, size_t errlen)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct scanner_stats st;

	if (sc == NULL) {
		snprintf(err, errlen, "the signature database is not loaded yet");
		return -1;
	}
	scanner_stats(sc, &st);
	if (st.db_version <= 0) {
		snprintf(err, errlen, "the loaded database has no daily version");
		return -1;
	}
	*local = st.db_version;
	*built = st.db_time;
	/* CLAMAV_TXT_URI="": no DNS comparison; the loaded version is the required one. */
	if (srv->dnsver == NULL) {
		*remote = *local;
		return 0;
	}
	return dnsver_get(srv->dnsver, remote, err, errlen);
}

/* 1 when DB_MAX_AGE is set and the database was built longer ago than that. */
static int
too_old(const struct server *srv, time_t built)
{
	unsigned max = srv->cfg->db_max_age;

	return max > 0 && (built <= 0 || difftime(time(NULL), built) > (double)max);
}

static enum MHD_Result
answer_version(struct server *srv, struct request *r)
{
	char out[512], err[256];
	long local, remote;
	time_t built;
	size_t len;
	int outdated;

	if (versions(srv, &local, &remote, &built, err, sizeof(err)) != 0) {
		len = api_json_version_error(out, sizeof(out), err);
		snprintf(r->why, sizeof(r->why), "%s", err);
		return reply_json(r, METRICS_ROUTE_VERSION, MHD_HTTP_INTERNAL_SERVER_ERROR, out, len,
		    MHD_RESPMEM_MUST_COPY);
	}
	outdated = labs(remote - local) > 1 || too_old(srv, built);
	if (outdated)
		snprintf(r->why, sizeof(r->why), "the database is outdated: local version %ld, "
		    "current %ld%s", local, remote, too_old(srv, built) ? ", past DB_MAX_AGE" : "");
	len = api_json_version(out, sizeof(out), local, remote, outdated);
	return reply_json(r, METRICS_ROUTE_VERSION,
	    outdated ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_OK, out, len, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result
answer_warning(struct server *srv, struct request *r)
{
	char out[256], err[256];
	long local, remote;
	time_t built;

	if (versions(srv, &local, &remote, &built, err, sizeof(err)) != 0) {
		snprintf(r->why, sizeof(r->why), "%s", err);
		return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	}
	if (too_old(srv, built)) {
		snprintf(out, sizeof(out), "Outdated local_version: %ld built %.0f s ago, past DB_MAX_AGE "
		    "%u s", local, difftime(time(NULL), built), srv->cfg->db_max_age);
		snprintf(r->why, sizeof(r->why), "%s", out);
		return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, out);
	}
	if (local != remote) {
		snprintf(out, sizeof(out), "Outdated local_version: %ld remote_version: %ld", local,
		    remote);
		snprintf(r->why, sizeof(r->why), "%s", out);
		return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, out);
	}
	snprintf(out, sizeof(out), "%ld", remote);
	return reply_text(r, METRICS_ROUTE_WARNING, MHD_HTTP_OK, out);
}

/* A scanner with an engine: not before the first load, nor during a low-memory reload. */
static int
server_ready(struct server *srv)
{
	struct scanner *sc = atomic_load(&srv->scanner);

	return sc != NULL && scanner_ready(sc);
}

/* 1 while a RELOAD_MODE=low-memory reload has no engine (as opposed to DB_WAIT's first wait). */
static int
server_reloading(struct server *srv)
{
	struct scanner *sc = atomic_load(&srv->scanner);

	return sc != NULL && scanner_reloading(sc);
}

/* GET /version: what this instance runs; the database fields are null before the first load. */
static enum MHD_Result
answer_about(struct server *srv, struct request *r)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct api_about a = { .engine = scanner_engine_version(), .db_version = -1,
	    .libclamav_patched = scanner_engine_patched() };
	struct scanner_stats st;
	char out[512];
	size_t len;

	if (sc != NULL) {
		scanner_stats(sc, &st);
		a.db_version = st.db_version;
		a.db_time = st.db_time;
		a.signatures = st.signatures;
	}
	len = api_json_about(out, sizeof(out), &a);
	return reply_json(r, METRICS_ROUTE_ABOUT, MHD_HTTP_OK, out, len, MHD_RESPMEM_MUST_COPY);
}

#define SERVER_METRICS_MAX METRICS_TEXT_MAX	/* bytes of the /metrics exposition */

static enum MHD_Result
answer_metrics(struct server *srv, struct request *r)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct metrics_gauges g = { .db_version = -1, .db_folder_ok = -1, .version = CONFIG_VERSION,
	    .libclamav = scanner_engine_version(), .libclamav_file = scanner_engine_file(),
	    .libclamav_patched = scanner_engine_patched() };
	struct scanner_stats st;
	char *buf;
	size_t len;

	g.connections = guard_count(srv->guard);
	g.scans_queued = pool_waiting(srv->pool);
	g.scans_running = pool_running(srv->pool);
	g.scan_rate = pool_rate(srv->pool);
	g.body_memory = body_memory_used();
	g.body_disk = body_disk_used();
	if (sc != NULL) {
		scanner_stats(sc, &st);
		g.db_version = st.db_version;
		g.db_time = st.db_time;
		g.signatures = st.signatures;
		g.reloads = st.reloads;
		g.reload_failures = st.reload_failures;
		g.cache_hits = st.cache_hits;
		g.cut_clean = st.cut_clean;
		g.db_folder_ok = st.db_folder_ok;
		g.db_folder_unusable = st.db_folder_unusable;
	}
	if ((buf = malloc(SERVER_METRICS_MAX)) == NULL)
		return MHD_NO;
	len = metrics_render(buf, SERVER_METRICS_MAX, &g);
	return reply_new(r, METRICS_ROUTE_METRICS, MHD_HTTP_OK,
	    "text/plain; version=0.0.4; charset=utf-8", buf, len, MHD_RESPMEM_MUST_FREE);
}

#define SERVER_HOST_MAX 255	/* bytes of a Host header echoed in a redirect */

/* 1 when a Host header may go into a Location as it is: a name or address and a port. */
static int
host_ok(const char *h)
{
	size_t n = h != NULL ? strlen(h) : 0;

	if (n == 0 || n > SERVER_HOST_MAX)
		return 0;
	return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") == n;
}

/* 308 to the path with its slashes merged, as Werkzeug's RequestRedirect: an absolute URL from the
 * scheme and Host (its default port left out), or the path alone when Host is missing or odd. The
 * query string is not carried over: libmicrohttpd's copy was cut (see server_uri), and no route
 * reads one. */
static enum MHD_Result
answer_redirect(struct server *srv, struct request *r, const struct api_route_def *rt,
    const char *path)
{
	const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	const char *scheme = srv->tls_cert != NULL ? "https" : "http";
	const char *dflt = srv->tls_cert != NULL ? ":443" : ":80";
	char loc[SERVER_HOST_MAX + API_PATH_MAX + 16];
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t hl;

	if (host_ok(host)) {
		hl = strlen(host);
		if (hl > strlen(dflt) && strcmp(host + hl - strlen(dflt), dflt) == 0)
			hl -= strlen(dflt);
		snprintf(loc, sizeof(loc), "%s://%.*s%s", scheme, (int)hl, host, path);
	} else
		snprintf(loc, sizeof(loc), "%s", path);
	resp = MHD_create_response_from_buffer(strlen("Permanent Redirect"),
	    (void *)(uintptr_t)"Permanent Redirect", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
	ret = reply(r, route_metric(rt), MHD_HTTP_PERMANENT_REDIRECT, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Requests whose body means nothing (GET, HEAD, OPTIONS, and redirects of any method but POST):
 * answered on the second call, once any body was read and dropped, so libmicrohttpd keeps the
 * connection alive. The first call checked that the path resolves and the method is allowed. */
static enum MHD_Result
handle_get(struct request *r, const char *url, const char *method)
{
	struct server *srv = r->srv;
	const struct api_route_def *rt;
	char merged[API_PATH_MAX];
	enum api_resolve how = api_resolve(url, &rt, merged, sizeof(merged));
	const struct canned *c = &srv->canned.not_found;

	if (how == API_NOT_FOUND)
		return reply_canned(r, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, c, "no such route");
	if (how == API_REDIRECT)
		return answer_redirect(srv, r, rt, merged);
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return reply_canned(r, route_metric(rt), MHD_HTTP_OK,
		    rt->post ? &srv->canned.options_post : &srv->canned.options_get, NULL);
	switch (rt->route) {
	case API_CHECK:
		if (!server_ready(srv))
			return reply_canned(r, route_metric(rt), MHD_HTTP_SERVICE_UNAVAILABLE,
			    &srv->canned.unavailable, server_reloading(srv) ?
			    "the signature database is reloading (RELOAD_MODE=low-memory)" :
			    "no signature database loaded yet (DB_WAIT)");
		if (atomic_load(&srv->draining))
			return reply_canned(r, route_metric(rt), MHD_HTTP_SERVICE_UNAVAILABLE,
			    &srv->canned.unavailable, "draining after SIGTERM");
		return reply_canned(r, route_metric(rt), MHD_HTTP_OK, &srv->canned.ok, NULL);
	case API_VERSION:
		return answer_version(srv, r);
	case API_WARNING:
		return answer_warning(srv, r);
	case API_METRICS:
		return answer_metrics(srv, r);
	case API_ABOUT:
		return answer_about(srv, r);
	default:
		return reply_canned(r, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, c, "no such route");
	}
}

static enum MHD_Result
framing_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	framing_header(cls, key, value);
	return MHD_YES;
}

/* Reads the framing headers into f; 1 when they are unambiguous. */
static int
request_framing_ok(struct MHD_Connection *conn, struct framing *f)
{
	memset(f, 0, sizeof(*f));
	MHD_get_connection_values(conn, MHD_HEADER_KIND, framing_iter, f);
	return framing_ok(f);
}

/* 1 when the request declares a Content-Length above limit. */
static int
request_has_length_over(const struct request *r, uint64_t limit)
{
	return r->framing.content_length == 1 && r->framing.length > limit;
}

/* Stores body bytes; a refusal is kept, so that it is answered as the server's fault (500, or 503
 * when the temporary-folder budget is spent), never as a malformed request. */
static int
request_sink(void *ud, const char *data, size_t len)
{
	struct request *r = ud;
	int rc = r->v3 != NULL ? v3_upload_append(r->v3, data, len) : body_append(r->body, data, len);

	if (rc != 0 && r->store_rc == 0) {
		r->store_rc = rc;
		r->store_errno = errno;
	}
	return rc;
}

/*
 * libmicrohttpd 0.9.75 answers some chunked bodies itself, with an HTML page and no X-Request-Id:
 * a chunk size that is not hex (400) and a chunk line longer than its read buffer (a 1 MiB chunk
 * extension: 500, "read the documentation about connection management"), and then ends the
 * request as failed. Its error log line comes first, on the connection's thread, but does not name
 * the connection; the socket that thread read last (recvtrack) does. So chunked POSTs are kept
 * by socket here, and chunk_error_answer writes our 400 to that socket and shuts its sending side,
 * as bad_length_answer does for a Content-Length: libmicrohttpd's page then fails to send.
 */
#define SERVER_CHUNKED_BUCKETS 256	/* a power of two */

static pthread_mutex_t server_chunked_lock = PTHREAD_MUTEX_INITIALIZER;
static struct request *server_chunked[SERVER_CHUNKED_BUCKETS];

static void
chunked_add(struct request *r, int fd)
{
	struct request **b = &server_chunked[(unsigned)fd & (SERVER_CHUNKED_BUCKETS - 1)];

	pthread_mutex_lock(&server_chunked_lock);
	r->fd = fd;
	r->fd_next = *b;
	*b = r;
	pthread_mutex_unlock(&server_chunked_lock);
}

static void
chunked_remove(struct request *r)
{
	struct request **pp;

	if (r->fd < 0)
		return;
	pthread_mutex_lock(&server_chunked_lock);
	pp = &server_chunked[(unsigned)r->fd & (SERVER_CHUNKED_BUCKETS - 1)];
	while (*pp != NULL && *pp != r)
		pp = &(*pp)->fd_next;
	if (*pp == r)
		*pp = r->fd_next;
	pthread_mutex_unlock(&server_chunked_lock);
	r->fd = -1;
}

static void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	chunked_remove(r);
	multipart_free(r->mp);
	v3_upload_free(r->v3);
	body_free(r->body);
	if (r->own != NULL)
		MHD_destroy_response(r->own);
	free(r);
}

/* Decides the answer from the head or the body: resp (this request's own, freed with it; NULL when
 * out of memory: the connection is then closed), with why for the log. */
static void
request_reject(struct request *r, unsigned status, struct MHD_Response *resp, const char *why)
{
	if (r->own != NULL && r->own != resp)
		MHD_destroy_response(r->own);
	r->own = resp;
	r->answer = resp;
	r->refused = 1;
	r->status = (int)status;
	if (why != r->why)	/* snprintf onto its own argument wrote "" (v3's too many files) */
		snprintf(r->why, sizeof(r->why), "%s", why);
	if (status == MHD_HTTP_UNAUTHORIZED)
		metrics_auth_failure();
	else if (status == MHD_HTTP_TOO_MANY_REQUESTS)
		metrics_auth_throttled();
}

static void
request_refuse(struct request *r, unsigned status, const struct canned *c, const char *why)
{
	request_reject(r, status, canned_make(c), why);
}

/* A /v3 refusal with its own reason: {"error": why}, closing the connection as the canned 400 does
 * (the body may not have been read). Logged, since it names what the client got wrong. */
static void
request_refuse_json(struct request *r, unsigned status, const char *why)
{
	struct MHD_Response *resp = NULL;
	size_t len;

	len = api_json_error(r->out, sizeof(r->out), why);
	if (len > 0 && (resp = MHD_create_response_from_buffer(len, r->out,
	    MHD_RESPMEM_PERSISTENT)) != NULL) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	}
	request_reject(r, status, resp != NULL ? resp :
	    canned_make(&canned_for(r->srv, r->route)->bad_request), why);
}

/* 503 Service Busy with a Retry-After from the scan pool's measured drain rate (the wait it predicts
 * for a new scan), counted as shed load and logged with why. */
static void
request_busy(struct request *r, const char *why)
{
	struct server *srv = r->srv;
	unsigned retry = pool_retry_after(srv->pool);
	struct MHD_Response *resp;
	const char *text;
	char v[16];

	log_info("answering 503 Service Busy, Retry-After %u (%.2f scans/s, %u waiting): %s", retry,
	    pool_rate(srv->pool), pool_waiting(srv->pool), why);
	text = route_v3(r->route) ? "{\"error\":\"Service Busy\"}\n" : "Service Busy";
	resp = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
	    MHD_RESPMEM_PERSISTENT);
	if (resp != NULL) {
		snprintf(v, sizeof(v), "%u", retry);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    route_v3(r->route) ? "application/json" : "text/plain; charset=utf-8");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
	}
	request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, resp, why);
	metrics_shed();
}

/* RELOAD_MODE=low-memory: the upload reached a scan thread while the engine was away. 503 with the
 * reload's expected remaining time as Retry-After; never a verdict without an engine. */
static void
request_unavailable(struct request *r, unsigned retry)
{
	const char *text = route_v3(r->route) ?
	    "{\"error\":\"Service Unavailable: reloading signatures\"}\n" :
	    "Service Unavailable: reloading signatures";
	struct MHD_Response *resp;
	char v[16];

	log_info("answering 503, Retry-After %u: the signature database is reloading "
	    "(RELOAD_MODE=low-memory)", retry);
	resp = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
	    MHD_RESPMEM_PERSISTENT);
	if (resp != NULL) {
		snprintf(v, sizeof(v), "%u", retry);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, route_v3(r->route) ?
		    "application/json" : "text/plain; charset=utf-8");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
	}
	request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, resp,
	    "the signature database is reloading (RELOAD_MODE=low-memory)");
	metrics_shed();
}

static void
addr_str(const struct sockaddr *sa, char *ip, size_t len)
{
	ip[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
		    (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
		    (socklen_t)len);
}

/* One line when an address starts being throttled, at most one every SERVER_THROTTLE_LOG_GAP
 * seconds; the addresses left out are counted in the next line. */
static void
log_throttled(struct server *srv, const struct request *r)
{
	double now = util_now(), last = atomic_load(&srv->throttle_logged);

	if (now - last < SERVER_THROTTLE_LOG_GAP ||
	    !atomic_compare_exchange_strong(&srv->throttle_logged, &last, now)) {
		atomic_fetch_add(&srv->throttle_unlogged, 1);
		return;
	}
	log_warnx("client %s used up its failed password checks (AUTH_FAIL_BURST %u, AUTH_FAIL_RATE "
	    "%u a minute; wrong passwords and refusals for a full AUTH_QUEUE count, right ones do "
	    "not): answering 429 without checking new passwords from it until it regains one; "
	    "%lu other addresses throttled since the last such line", r->ip[0] ? r->ip : "unknown",
	    srv->cfg->auth_fail_burst, srv->cfg->auth_fail_rate,
	    atomic_exchange(&srv->throttle_unlogged, 0));
}

/* On a verifier thread: PBKDF2, off the HTTP threads. */
static int
verify_check(void *ctx, const char *user, size_t ulen, const char *pass, size_t plen)
{
	return auth_verify(ctx, user, ulen, pass, plen);
}

/* Under the verifier's lock, when r's credentials need a check of their own: a token from its
 * address's bucket, whose tokens left put the addresses that spent fewer first in the verifier's
 * queue. Checks of credentials already queued are joined and take none. */
static long
verify_admit(void *arg)
{
	struct request *r = arg;
	unsigned left;

	r->tv = throttle_take_left(r->srv->throttle, r->addr, util_now(), &left);
	r->charged = r->tv == THROTTLE_ALLOW;
	return r->charged ? (long)left : -1;
}

/* The verdict, on a verifier thread: a right password (or no verdict) gives back the token its
 * check took; a wrong one, and a check dropped from a full queue, keep it. Then r belongs to the
 * connection again. */
static void
verify_done(void *arg, int verdict)
{
	struct request *r = arg;

	r->verdict = verdict;
	if (r->charged && verdict != 0 && verdict != VERIFIER_DROPPED)
		throttle_refund(r->srv->throttle, r->addr, util_now());
	MHD_resume_connection(r->conn);
}

/* Credentials not in the cache: the connection is suspended until the verifier has a verdict, or
 * resumed at once with the reason there is none (r->verdict). */
static void
request_verify(struct request *r, const char *user, size_t ulen, const char *pass, size_t plen)
{
	struct server *srv = r->srv;
	unsigned char addr[THROTTLE_KEY_LEN];
	enum verifier_submitted rc;

	throttle_addr_key(r->addr, addr);
	r->verifying = 1;
	/* Suspend first: the check may finish, and resume, before verifier_submit returns.
	 * libmicrohttpd quirk: a connection suspended in the head's callback stays in that state
	 * and, once resumed, calls the handler again for the head (with no body data); only after
	 * a call that leaves it unsuspended does it send "100 Continue" or read the body. So
	 * handle_post finishes the head's checks there. */
	MHD_suspend_connection(r->conn);
	rc = verifier_submit(srv->verifier, addr, user, ulen, pass, plen, verify_admit, verify_done,
	    r);
	if (rc == VERIFIER_JOINED || rc == VERIFIER_QUEUED) {
		r->joined = rc == VERIFIER_JOINED;
		return;
	}
	r->verdict = rc == VERIFIER_REFUSED ? VERIFY_THROTTLED : rc == VERIFIER_FULL ?
	    VERIFY_FULL : VERIFY_ERROR;
	MHD_resume_connection(r->conn);
}

/* Basic auth of a configured user, from the cache; 1 when authorised now, else 0 with either an
 * answer decided or the check on its way (r->verifying). The user name is kept for the log. */
static int
request_auth(struct request *r)
{
	const char *h, *user, *pass;
	char buf[SERVER_AUTH_MAX];
	size_t ulen, plen;
	int verdict;

	h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || auth_parse_basic(h, buf, sizeof(buf), &user, &ulen, &pass, &plen) != 0) {
		request_refuse(r, MHD_HTTP_UNAUTHORIZED, &canned_for(r->srv, r->route)->unauthorized,
		    h == NULL ? "no Authorization header" : "Authorization is not well-formed Basic");
		return 0;
	}
	snprintf(r->user, sizeof(r->user), "%.*s", (int)ulen, user);
	verdict = auth_lookup(r->srv->auth, user, ulen, pass, plen);
	if (verdict == -1)
		request_verify(r, user, ulen, pass, plen);
	else if (verdict == 0)
		request_refuse(r, MHD_HTTP_UNAUTHORIZED, &canned_for(r->srv, r->route)->unauthorized,
		    "unknown user or wrong password");
	explicit_bzero(buf, sizeof(buf));
	return verdict == 1;
}

/* A file part of a /v3/scan begins: its own body. Past MAX_FILES_PER_REQUEST, the parse stops and
 * the request is answered 400 with the limit. */
static int
request_part(void *ud, const char *filename, size_t flen, const char *field, size_t nlen)
{
	struct request *r = ud;

	if (v3_upload_begin(r->v3, filename, flen, field, nlen) == 0)
		return 0;
	if (errno == E2BIG) {
		snprintf(r->why, sizeof(r->why), "too many files: at most %u file parts per request "
		    "(MAX_FILES_PER_REQUEST)", r->srv->cfg->max_files_per_request);
	} else if (r->store_rc == 0) {
		r->store_rc = -1;
		r->store_errno = errno;
	}
	return -1;
}

/* A /v3 request's own head checks, after the shared ones: the query, then the upload's files. */
static void
request_precheck_v3(struct request *r, const char *ctype)
{
	const struct config *cfg = r->srv->cfg;
	const char *am;
	int all;

	am = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, V3_ARG);
	if (am != NULL && strcmp(am, "x") == 0) {
		request_refuse_json(r, MHD_HTTP_BAD_REQUEST, V3_BAD_ALL_MATCHES);
		return;
	}
	all = am != NULL && strcmp(am, "1") == 0;
	r->v3 = v3_upload_new(cfg->max_files_per_request, (size_t)cfg->spill_threshold, cfg->tmpdir,
	    all);
	if (r->v3 == NULL) {
		request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR, &canned_for(r->srv, r->route)->internal,
		    "out of memory for a /v3 upload");
		return;
	}
	if (r->route->route == API_V3_SCAN_CHUNKED) {
		if (v3_upload_begin(r->v3, NULL, 0, "", 0) != 0)
			request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    &canned_for(r->srv, r->route)->internal, "cannot begin a /v3 upload");
		return;
	}
	r->mp = ctype != NULL ? multipart_new(ctype, request_sink, r) : NULL;
	if (r->mp == NULL) {
		request_refuse_json(r, MHD_HTTP_BAD_REQUEST, "the body must be multipart/form-data with a "
		    "boundary (or use /v3/scan-chunked)");
		return;
	}
	if (multipart_each_file(r->mp, request_part) != 0)
		request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR, &canned_for(r->srv, r->route)->internal,
		    "out of memory for a multipart parser");
}

/* Checks an authorised POST before its body: load, size and content type. */
static void
request_precheck(struct request *r)
{
	struct server *srv = r->srv;
	struct MHD_Connection *conn = r->conn;
	char why[128];
	const char *h;

	if (!server_ready(srv)) {
		struct scanner *sc = atomic_load(&srv->scanner);

		if (server_reloading(srv))	/* a low-memory reload is under way */
			request_unavailable(r, scanner_retry_after(sc));
		else
			request_refuse(r, MHD_HTTP_SERVICE_UNAVAILABLE,
			    &canned_for(srv, r->route)->unavailable,
			    "no signature database loaded yet (DB_WAIT)");
		return;
	}
	/* Only a scan that could not start in time is refused here: at most SCAN_QUEUE uploads
	 * waiting, or the measured rate predicting a wait past SCAN_QUEUE_TIMEOUT. A burst the
	 * budgets can hold is taken; its bodies are counted in BODY_MEMORY and BODY_DISK. */
	if (pool_full(srv->pool)) {
		request_busy(r, "no scan thread can take this upload within SCAN_QUEUE_TIMEOUT "
		    "(or SCAN_QUEUE uploads wait)");
		return;
	}
	if (request_has_length_over(r, srv->cfg->max_content_length)) {
		snprintf(why, sizeof(why), "Content-Length %llu is over MAX_CONTENT_LENGTH (%llu bytes)",
		    (unsigned long long)r->framing.length, srv->cfg->max_content_length);
		request_refuse(r, MHD_HTTP_CONTENT_TOO_LARGE, &canned_for(srv, r->route)->too_large, why);
		return;
	}
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (route_v3(r->route)) {
		request_precheck_v3(r, h);
		return;
	}
	if (r->route->route != API_SCAN_CHUNKED) {
		r->mp = h != NULL ? multipart_new(h, request_sink, r) : NULL;
		if (r->mp == NULL)
			request_refuse(r, MHD_HTTP_BAD_REQUEST, &canned_for(srv, r->route)->single_file, h == NULL ?
			    "no Content-Type: a multipart/form-data body is expected" :
			    "Content-Type is not multipart/form-data with a usable boundary");
	}
}

struct xff_lines {
	const char *v[PROXY_XFF_LINES];
	size_t n;
};

/* Keeps the last PROXY_XFF_LINES X-Forwarded-For lines, in their order. libmicrohttpd's
 * MHD_lookup_connection_value gives only the first line of a repeated header, whose right end is
 * not the list's: every line is read here. */
static enum MHD_Result
xff_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct xff_lines *x = cls;

	(void)kind;
	if (strcasecmp(key, "X-Forwarded-For") != 0 || value == NULL)
		return MHD_YES;
	if (x->n == PROXY_XFF_LINES) {
		memmove(x->v, x->v + 1, sizeof(x->v[0]) * (PROXY_XFF_LINES - 1));
		x->n--;
	}
	x->v[x->n++] = value;
	return MHD_YES;
}

static const char *
header(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The request's id, from its headers or made (see reqid.h). */
static void
request_id(struct MHD_Connection *conn, char *id)
{
	reqid_pick(header(conn, "X-Request-Id"), header(conn, "traceparent"),
	    header(conn, "X-B3-TraceId"), id);
}

/* What every request's log line needs: its id, client address, method, path and User-Agent. */
static struct request *
request_new(struct server *srv, struct MHD_Connection *conn, const char *url, const char *method)
{
	struct request *r = calloc(1, sizeof(*r));
	const union MHD_ConnectionInfo *ci;
	struct xff_lines xff = { .n = 0 };
	const char *ua;

	if (r == NULL)
		return NULL;
	r->srv = srv;
	r->conn = conn;
	r->fd = -1;
	r->t0 = util_now();
	request_id(conn, r->id);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (proxy_list_count(srv->proxies) > 0)
		MHD_get_connection_values(conn, MHD_HEADER_KIND, xff_iter, &xff);
	proxy_client(srv->proxies, ci != NULL ? ci->client_addr : NULL, xff.v, xff.n, &r->client);
	r->addr = (const struct sockaddr *)(const void *)&r->client;
	addr_str(r->addr, r->ip, sizeof(r->ip));
	snprintf(r->method, sizeof(r->method), "%s", method);
	snprintf(r->path, sizeof(r->path), "%s", url);
	if ((ua = header(conn, MHD_HTTP_HEADER_USER_AGENT)) != NULL)
		snprintf(r->ua, sizeof(r->ua), "%s", ua);
	return r;
}

/* A POST to a scan route: its body store, then the head's checks (auth, load, size, type). */
static int
request_post(struct request *r, const struct api_route_def *rt, const struct framing *f)
{
	struct server *srv = r->srv;

	const union MHD_ConnectionInfo *ci;

	r->post = 1;
	r->route = rt;
	r->framing = *f;
	r->body = body_new((size_t)srv->cfg->spill_threshold, srv->cfg->tmpdir);
	if (r->body == NULL)
		return -1;
	if (f->te_chunked && srv->tls_cert == NULL &&
	    (ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD)) != NULL)
		chunked_add(r, ci->connect_fd);
	recvtrack_note(r->fd);
	if (request_auth(r))
		request_precheck(r);
	return 0;
}

/* No check ran: the queue was full, or this check's place went to an address with fewer checks
 * served. Either counts against the address like a failed check. */
static void
request_verify_shed(struct request *r)
{
	struct server *srv = r->srv;
	const char *why = r->verdict == VERIFY_FULL ?
	    "password check queue full (AUTH_THREADS, AUTH_QUEUE): not checked, counted as a failed "
	    "check of this address" :
	    "password check queue full (AUTH_THREADS, AUTH_QUEUE): this check gave its place to an "
	    "address with fewer checks served, counted as a failed check of this address";

	log_debug("%s (AUTH_THREADS %u, AUTH_QUEUE %u): 503", why, srv->cfg->auth_threads,
	    srv->cfg->auth_queue);
	request_refuse(r, MHD_HTTP_SERVICE_UNAVAILABLE, &canned_for(srv, r->route)->busy, why);
	metrics_shed();
}

/* The verifier's verdict, back on the connection's thread. */
static void
request_verified(struct request *r)
{
	struct server *srv = r->srv;

	r->verifying = 0;
	if (r->joined)
		log_debug("waited for the check of the same credentials already queued (no "
		    "AUTH_FAIL_BURST token taken): %s", r->verdict == 1 ? "right" : "not right");
	switch (r->verdict) {
	case 1:
		request_precheck(r);
		break;
	case 0:
		request_refuse(r, MHD_HTTP_UNAUTHORIZED, &canned_for(srv, r->route)->unauthorized,
		    "unknown user or wrong password");
		break;
	case VERIFY_THROTTLED:
		if (r->tv == THROTTLE_REFUSE_FIRST)
			log_throttled(srv, r);
		request_refuse(r, MHD_HTTP_TOO_MANY_REQUESTS, &canned_for(srv, r->route)->throttled,
		    "this client address used up its failed password checks (AUTH_FAIL_BURST, "
		    "AUTH_FAIL_RATE)");
		break;
	case VERIFY_FULL:
	case VERIFIER_DROPPED:
		request_verify_shed(r);
		break;
	case VERIFY_ERROR:	/* a passing state: 503 and Retry-After, as a full queue */
		request_refuse(r, MHD_HTTP_SERVICE_UNAVAILABLE, &canned_for(srv, r->route)->busy,
		    "no password check now: shutting down, or out of memory");
		metrics_shed();
		break;
	default:
		log_errorx("password check failed inside OpenSSL");
		request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR, &canned_for(srv, r->route)->internal,
		    "password check failed inside OpenSSL");
		break;
	}
}

static void
request_discard(struct request *r, uint64_t limit)
{
	r->discarding = 1;
	guard_discard(conn_guard(r->conn), limit);
	multipart_free(r->mp);
	r->mp = NULL;
	body_reset(r->body);
	v3_upload_reset(r->v3);
}

/* An answer decided from the head: given at once, closing the connection, when the body is too
 * large or its framing untrusted; otherwise after reading and dropping the body, so the connection
 * lives on and a proxy in front does not take the early close for a failed upstream. */
static int
request_answer_now(struct request *r)
{
	if (r->status == MHD_HTTP_CONTENT_TOO_LARGE || r->status == MHD_HTTP_BAD_REQUEST)
		return 1;
	/* A client waiting for "100 Continue" has sent no body: it gets the answer instead. */
	if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT) != NULL)
		return 1;
	if (request_has_length_over(r, SERVER_DISCARD_SLACK))
		return 1;
	request_discard(r, SERVER_DISCARD_SLACK);
	return 0;
}

/* The body could not be stored: 503 when the temporary-folder budget is spent, else 500 with the
 * reason. Logged with the errno; the partial body is never scanned. */
static void
request_store_failed(struct request *r)
{
	const struct config *cfg = r->srv->cfg;
	struct MHD_Response *resp;
	char reason[256];
	size_t len;

	if (r->store_rc == BODY_FULL) {
		log_warnx("uploads in progress hold BODY_DISK (%llu bytes) in TMPDIR: answering 503",
		    cfg->body_disk);
		request_busy(r, "BODY_DISK is spent");
		return;
	}
	errno = r->store_errno;
	log_error("cannot store an upload in TMPDIR %s", cfg->tmpdir);
	metrics_store_failure();
	snprintf(reason, sizeof(reason), "cannot store the upload in the temporary folder: %s",
	    strerror(r->store_errno));
	len = api_json_error(r->out, sizeof(r->out), reason);
	resp = MHD_create_response_from_buffer(len, r->out, MHD_RESPMEM_PERSISTENT);
	if (resp != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	request_reject(r, MHD_HTTP_INTERNAL_SERVER_ERROR, resp, reason);
}

/* Body bytes: stored (or, after an error, counted and dropped). 0 to go on, -1 to hang up. */
static int
request_data(struct request *r, const char *data, size_t len)
{
	const struct config *cfg = r->srv->cfg;
	char why[128];
	int rc;

	r->seen += len;
	if (guard_body(conn_guard(r->conn), len) != 0)
		return -1;
	if (r->discarding)
		return 0;
	if (r->seen > cfg->max_content_length) {
		snprintf(why, sizeof(why), "body over MAX_CONTENT_LENGTH (%llu bytes)",
		    cfg->max_content_length);
		request_refuse(r, MHD_HTTP_CONTENT_TOO_LARGE, &canned_for(r->srv, r->route)->too_large, why);
	} else {
		rc = r->mp != NULL ? multipart_feed(r->mp, data, len) : request_sink(r, data, len);
		if (rc == 0)
			return 0;
		if (r->store_rc != 0)
			request_store_failed(r);
		else if (r->v3 != NULL && r->why[0] != '\0')
			request_refuse_json(r, MHD_HTTP_BAD_REQUEST, r->why);
		else
			request_refuse(r, MHD_HTTP_BAD_REQUEST, &canned_for(r->srv, r->route)->bad_request,
			    "malformed multipart/form-data body");
	}
	/* Nothing more is kept; the rest is read and dropped so the client gets the answer. */
	request_discard(r, cfg->max_content_length + SERVER_DISCARD_SLACK);
	return 0;
}

/* Whose upload it is, for the scan queue's round-robin: the user and the client address. */
static unsigned long
request_key(const struct request *r)
{
	unsigned long h = 14695981039346656037UL;	/* FNV-1a */

	for (const char *p = r->user; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211UL;
	h = (h ^ 0xff) * 1099511628211UL;
	for (const char *p = r->ip; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211UL;
	return h;
}

static void
scan_job(void *arg)
{
	struct request *r = arg;
	struct scanner *sc = atomic_load(&r->srv->scanner);
	unsigned char digest[BODY_DIGEST_LEN];
	struct scan_request q = { 0 };

	if (r->v3 != NULL) {
		/* One file per turn: the upload goes back to the queue after each (scan_done). */
		log_set_request(r->id);
		r->v3_more = v3_upload_scan_next(r->v3, sc, r->srv->cfg->max_scan_time / 1000.0);
		r->scanned = !r->v3_more;
		log_set_request(NULL);
		return;
	}
	_Static_assert(BODY_DIGEST_LEN == SCANNER_DIGEST_LEN, "one SHA-256 for both");
	log_set_request(r->id);
	/* The digest was computed as the body arrived: the scanner does not read it again. */
	q.digest = body_digest(r->body, digest) == 0 ? digest : NULL;
	q.data = body_mem(r->body, &q.len);
	q.fd = q.data != NULL ? -1 : body_fd(r->body);
	scanner_scan(sc, &q, &r->res);
	metrics_scan(r->res.verdict == SCAN_ERROR ? METRICS_ERROR :
	    r->res.limit_exceeded ? METRICS_LIMITS_EXCEEDED :
	    r->res.verdict == SCAN_MALWARE ? METRICS_MALWARE : METRICS_CLEAN,
	    r->res.seconds, r->res.bytes);
	r->scanned = 1;
	log_set_request(NULL);
}

/* Runs once the scan's place in the pool is free, so a client that sends its next scan as soon
 * as it has this answer finds room. r belongs to the connection again from here on. */
static void
scan_done(void *arg)
{
	struct request *r = arg;

	if (r->v3_more) {
		r->v3_more = 0;
		if (pool_requeue(r->srv->pool, scan_job, scan_done, r, request_key(r)) == 0)
			return;
		/* The pool stops: what is left is not scanned, and the answer says so (500). */
		v3_upload_fail(r->v3, "the server is shutting down");
		r->scanned = 1;
	}
	MHD_resume_connection(r->conn);
}

/* The upload waited SCAN_QUEUE_TIMEOUT and no scan thread took it: on the pool's reaper thread,
 * the job already out of the queue. The connection, resumed, answers 503 (handle_post). */
static void
scan_expired(void *arg)
{
	struct request *r = arg;

	r->expired = 1;
	MHD_resume_connection(r->conn);
}

/* A POST's answer: counted when queued, before the client can see it. */
static enum MHD_Result
post_answer(struct request *r, unsigned status, struct MHD_Response *resp)
{
	return reply(r, route_metric(r->route), status, resp);
}

/* A POST's own body (in r->out or static), sent without a copy. */
static enum MHD_Result
post_reply(struct request *r, unsigned status, const char *ctype, const char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = post_answer(r, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A /v3 answer: every file, or 500 with the reason of a scan that failed. */
static enum MHD_Result
answer_v3(struct request *r)
{
	struct scanner *sc = atomic_load(&r->srv->scanner);
	struct v3_engine e = { .libclamav = scanner_engine_version(), .database = -1 };
	const char *err = v3_upload_error(r->v3);
	struct scanner_stats st;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len;
	char *json;

	if (err != NULL) {
		log_errorx("scan failed: %s", err);
		snprintf(r->why, sizeof(r->why), "scan failed: %s", err);
		len = api_json_error(r->out, sizeof(r->out), err);
		return post_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", r->out, len);
	}
	scanner_stats(sc, &st);
	e.database = st.db_version;
	if ((json = v3_upload_json(r->v3, &e, &len)) == NULL) {
		log_errorx("out of memory writing a /v3 answer");
		snprintf(r->why, sizeof(r->why), "out of memory writing a /v3 answer");
		resp = canned_make(&canned_for(r->srv, r->route)->internal);
		ret = post_answer(r, MHD_HTTP_INTERNAL_SERVER_ERROR, resp);
		if (resp != NULL)
			MHD_destroy_response(resp);
		return ret;
	}
	resp = MHD_create_response_from_buffer(len, json, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(json);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = post_answer(r, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
answer_scan(struct request *r)
{
	const struct scan_result *res = &r->res;
	size_t len;

	if (r->v3 != NULL)
		return answer_v3(r);
	if (res->verdict == SCAN_ERROR) {
		log_errorx("scan failed: %s", res->reason);
		snprintf(r->why, sizeof(r->why), "scan failed: %s", res->reason);
		len = api_json_error(r->out, sizeof(r->out), res->reason);
		return post_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", r->out, len);
	}
	if (r->route->route == API_SCAN_LEGACY) {
		const char *text = res->verdict == SCAN_CLEAN ? "OK" : "NOTOK";

		return post_reply(r, MHD_HTTP_OK, "text/plain; charset=utf-8", text, strlen(text));
	}
	len = api_json_scan(r->out, sizeof(r->out), res->verdict == SCAN_MALWARE,
	    res->verdict == SCAN_MALWARE ? res->reason : NULL, res->seconds);
	return post_reply(r, MHD_HTTP_OK, "application/json", r->out, len);
}

/* The whole body is in: check the multipart framing, then hand the upload to a scan thread. */
static enum MHD_Result
request_complete(struct request *r)
{
	struct server *srv = r->srv;

	if (r->v3 != NULL && r->mp != NULL && multipart_finish(r->mp) != 0) {
		request_refuse_json(r, MHD_HTTP_BAD_REQUEST,
		    "the multipart body has no closing boundary");
		return post_answer(r, MHD_HTTP_BAD_REQUEST, r->answer);
	}
	if (r->v3 != NULL && v3_upload_count(r->v3) == 0) {
		request_refuse(r, MHD_HTTP_BAD_REQUEST, &canned_for(srv, r->route)->single_file,
		    "multipart/form-data body without a file part");
		return post_answer(r, MHD_HTTP_BAD_REQUEST, r->answer);
	}
	if (r->v3 == NULL && r->mp != NULL && multipart_finish(r->mp) != 0) {
		request_refuse(r, MHD_HTTP_BAD_REQUEST, &srv->canned.single_file,
		    "multipart/form-data body without its closing boundary");
		return post_answer(r, MHD_HTTP_BAD_REQUEST, r->answer);
	}
	if (r->v3 == NULL && r->mp != NULL && multipart_file_count(r->mp) != 1) {
		request_refuse(r, MHD_HTTP_BAD_REQUEST, &srv->canned.single_file,
		    multipart_file_count(r->mp) == 0 ? "multipart/form-data body without a file part" :
		    "multipart/form-data body with more than one file part");
		return post_answer(r, MHD_HTTP_BAD_REQUEST, r->answer);
	}
	/* Suspend first: the scan may finish, and resume, before pool_submit returns. */
	MHD_suspend_connection(r->conn);
	if (pool_submit_keyed(srv->pool, scan_job, scan_done, scan_expired, r, request_key(r)) != 0) {
		request_busy(r, "no scan thread can take this upload within SCAN_QUEUE_TIMEOUT "
		    "(or SCAN_QUEUE uploads wait)");
		MHD_resume_connection(r->conn);
	}
	return MHD_YES;
}

/* The head's checks are done (a password check too, when one ran): an early answer, or on to the
 * body. */
static enum MHD_Result
request_head_done(struct request *r)
{
	if (r->verifying)
		return MHD_YES;	/* suspended: called again for the head once resumed */
	if (r->refused && request_answer_now(r))
		return post_answer(r, (unsigned)r->status, r->answer);
	return MHD_YES;
}

static enum MHD_Result
handle_post(struct request *r, const char *data, size_t *size)
{
	unsigned retry;

	/* libmicrohttpd goes on with this connection's buffered body after this call (a resumed
	 * connection is not read first): what it then refuses is this request's (server_chunked). */
	recvtrack_note(r->fd);
	if (r->verifying) {	/* resumed by verify_done: the head's call again, no body yet */
		request_verified(r);
		return request_head_done(r);
	}
	if (*size > 0) {
		if (request_data(r, data, *size) != 0)
			return MHD_NO;
		*size = 0;
		return MHD_YES;
	}
	guard_body_end(conn_guard(r->conn));
	if (r->expired) {	/* resumed by scan_expired */
		r->expired = 0;
		request_busy(r, "the upload waited SCAN_QUEUE_TIMEOUT for a scan thread");
	}
	if (r->scanned && !r->refused && r->v3 != NULL && v3_upload_unavailable(r->v3, &retry))
		request_unavailable(r, retry);
	else if (r->scanned && !r->refused && r->v3 == NULL && r->res.unavailable)
		request_unavailable(r, r->res.retry_after);
	if (r->refused)
		return post_answer(r, (unsigned)r->status, r->answer);
	if (r->scanned)
		return answer_scan(r);
	return request_complete(r);
}

/*
 * libmicrohttpd 0.9.75 quirk: a Content-Length it cannot read ("abc", "-1", "+3", empty) or that
 * overflows 64 bits makes its header parser queue its own 400 or 413 page, and then, overwriting
 * the connection's state, build that page's header block a second time: the client reads two
 * header blocks for one request, and our handler is never called. The one hook in between is its
 * error log line, written on the connection's own thread just before. So each thread remembers the
 * connection whose request line it read last (server_uri) until that head reaches our handler;
 * when the log line comes, that connection, if its head is whole and it has no answer yet (asked
 * of libmicrohttpd, so a connection whose head is still partial is never taken for another), gets
 * our one answer written straight to its socket and its sending side shut: libmicrohttpd's answer
 * then fails to send, and it closes the connection. Over TLS the socket cannot be written to raw:
 * the connection is only shut, so the client gets no answer rather than a garbled one.
 */
static _Thread_local struct MHD_Connection *server_head_conn;

/* The head of conn reached our handler: the quirk above can no longer strike it. */
static void
head_parsed(struct MHD_Connection *conn)
{
	if (server_head_conn == conn)
		server_head_conn = NULL;
}

/* Our answer to a Content-Length libmicrohttpd refused, on the raw socket (see above). */
static void
bad_length_answer(struct server *srv, unsigned status)
{
	struct MHD_Connection *conn = server_head_conn;
	const union MHD_ConnectionInfo *ci;
	const char *text = status == MHD_HTTP_BAD_REQUEST ? "Bad Request" : "File Too Large";
	char out[256 + REQID_SIZE], date[64], id[REQID_SIZE];
	struct tm tm;
	time_t now;
	int n, fd;

	server_head_conn = NULL;
	if (conn == NULL ||
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE) == NULL ||
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS) != NULL ||
	    (ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD)) == NULL)
		return;
	fd = ci->connect_fd;
	metrics_request(METRICS_ROUTE_OTHER, status, guard_request_age(conn_guard(conn)));
	request_id(conn, id);
	log_set_request(id);
	log_warnx("answered %u: a Content-Length that is not a number, or too large a one", status);
	log_set_request(NULL);
	if (srv->tls_cert == NULL) {
		now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		n = snprintf(out, sizeof(out), "HTTP/1.1 %u %s\r\nDate: %s\r\nConnection: close\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\nX-Request-Id: %s\r\n"
		    "Content-Length: %zu\r\n\r\n%s", status,
		    status == MHD_HTTP_BAD_REQUEST ? "Bad Request" : "Content Too Large", date, id,
		    strlen(text), text);
		/* A fresh request's socket has nothing of ours queued: this fits its buffer. */
		if (n > 0 && (size_t)n < sizeof(out))
			(void)send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	shutdown(fd, SHUT_WR);
}

/* libmicrohttpd's pages for a chunked body it cannot read (see server_chunked). */
static int
chunk_error_message(const char *msg)
{
	return strncmp(msg, "Error processing request (HTTP response code is ", 48) == 0 &&
	    (strstr(msg, "chunked encoding was syntactically incorrect") != NULL ||
	    strstr(msg, "chunk size used in your HTTP chunked encoded request") != NULL ||
	    strstr(msg, "connection management") != NULL);
}

/* Writes r's 400 (JSON on /v3) to its socket; the request lock is held. */
static void
chunk_error_write(struct request *r, const char *why)
{
	char out[SERVER_OUT_MAX + 512], date[64], body[SERVER_OUT_MAX];
	int v3 = route_v3(r->route), n;
	struct tm tm;
	time_t now;
	size_t len;

	len = v3 ? api_json_error(body, sizeof(body), why) : (size_t)snprintf(body, sizeof(body),
	    "Bad Request: %s", why);
	if (len == 0 || len >= sizeof(body))
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(out, sizeof(out), "HTTP/1.1 400 Bad Request\r\nDate: %s\r\nConnection: close\r\n"
	    "Content-Type: %s\r\nX-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n%.*s", date,
	    v3 ? "application/json" : "text/plain; charset=utf-8", r->id, len, (int)len, body);
	/* Nothing of this request went out yet: the answer fits the socket's buffer. */
	if (n > 0 && (size_t)n < sizeof(out))
		(void)send(r->fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(r->fd, SHUT_WR);
}

/* Our 400 for a chunked body libmicrohttpd refused, to the request whose socket this thread read
 * last, when it is a chunked POST with no answer yet (see server_chunked). */
static void
chunk_error_answer(const char *msg)
{
	static const char why[] = "malformed chunked encoding: a chunk size that is not a hex "
	    "number, or a chunk line longer than the connection's buffer";
	int fd = recvtrack_last_fd();	/* the last socket read, or request handled, here */
	struct request *r;

	if (fd < 0 || !chunk_error_message(msg))
		return;
	pthread_mutex_lock(&server_chunked_lock);
	for (r = server_chunked[(unsigned)fd & (SERVER_CHUNKED_BUCKETS - 1)]; r != NULL;
	    r = r->fd_next)
		if (r->fd == fd)
			break;
	if (r != NULL && !r->answered && !r->verifying && r->sent_status == 0 &&
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_HTTP_STATUS) == NULL) {
		chunk_error_write(r, why);
		r->sent_status = MHD_HTTP_BAD_REQUEST;
		snprintf(r->why, sizeof(r->why), "%s", why);
		metrics_request(route_metric(r->route), MHD_HTTP_BAD_REQUEST, util_now() - r->t0);
	}
	pthread_mutex_unlock(&server_chunked_lock);
}

static void
server_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct server *srv = cls;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci != NULL ? guard_open(srv->guard, ci->connect_fd) : NULL;
		return;
	}
	/* libmicrohttpd closes the socket only after this: the guard never sees a stale fd. */
	head_parsed(conn);
	guard_close(srv->guard, *socket_context);
	*socket_context = NULL;
}

/* Before libmicrohttpd takes a new connection: room is made by evicting an idle one when the
 * table is full. Its own MHD_OPTION_CONNECTION_LIMIT, set above MAX_CONNECTIONS, would instead stop
 * accepting and leave new clients waiting behind idle ones. Once draining, every new connection is
 * closed as soon as it is accepted (server_drain says why not earlier). */
static enum MHD_Result
server_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct server *srv = cls;

	(void)addr;
	(void)addrlen;
	if (atomic_load(&srv->draining))
		return MHD_NO;
	return guard_admit(srv->guard) == 0 ? MHD_YES : MHD_NO;
}

/* libmicrohttpd 0.9.75 quirk: it parses the query string into records taken from the connection's
 * memory (SERVER_CONN_MEMORY), and when they run out (some 1,000 parameters) it queues a 431 and
 * then overwrites the connection's state, so the answer never goes and the client waits for the
 * timeout. Only /v3 reads a parameter (all_matches): the query is rewritten here, before that parse
 * (this callback runs on the request line, in the library's own writable buffer), to at most one
 * short canonical parameter (v3_query_canon), and the request is served. Not covered: a NUL byte before the '?' hides the query from strchr (the URI's length is
 * not passed to us); such a request line, which no client sends, waits for REQUEST_TIMEOUT like a
 * slowloris head, and is evictable as one. */
static void *
server_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	char *q = strchr(uri, '?');

	(void)cls;
	server_head_conn = conn;
	if (q != NULL)
		v3_query_canon(q + 1);
	return NULL;
}

/* 1 when the request declares a body. */
static int
framing_has_body(const struct framing *f)
{
	return f->te_chunked || (f->content_length > 0 && f->length > 0);
}

/* A GET or HEAD body means nothing: read and dropped, within the rules of every body. */
static enum MHD_Result
handle_get_body(struct MHD_Connection *conn, size_t *size)
{
	size_t len = *size;

	*size = 0;
	return guard_body(conn_guard(conn), len) == 0 ? MHD_YES : MHD_NO;
}

/* The first call: the head is in, the body is not. */
static enum MHD_Result
handle_head(struct request *r, const char *url, const char *method)
{
	struct server *srv = r->srv;
	struct MHD_Connection *conn = r->conn;
	const struct api_route_def *rt;
	char merged[API_PATH_MAX];
	enum api_resolve how;
	struct framing f;

	head_parsed(conn);
	guard_request(conn_guard(conn));
	how = api_resolve(url, &rt, merged, sizeof(merged));
	if (!request_framing_ok(conn, &f))
		return reply_canned(r, route_metric(rt), MHD_HTTP_BAD_REQUEST, &canned_for(srv, rt)->bad_request,
		    "ambiguous body framing (Content-Length and Transfer-Encoding)");
	if (framing_has_body(&f))
		guard_body_begin(conn_guard(conn));
	if (how == API_NOT_FOUND)
		return reply_canned(r, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, &srv->canned.not_found,
		    "no such route");
	if (!api_method_allowed(rt, method))
		return reply_canned(r, route_metric(rt), MHD_HTTP_METHOD_NOT_ALLOWED,
		    rt->post ? &canned_for(srv, rt)->not_allowed_post : &srv->canned.not_allowed_get,
		    "method not allowed on this route");
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		guard_discard(conn_guard(conn), SERVER_DISCARD_SLACK);
		return MHD_YES;
	}
	/* A POST's body is the client's to send again where the redirect points: answered at once,
	 * and libmicrohttpd closes the connection rather than read it. */
	if (how == API_REDIRECT)
		return answer_redirect(srv, r, rt, merged);
	if (request_post(r, rt, &f) != 0)
		return MHD_NO;
	return request_head_done(r);
}

static enum MHD_Result
handle_request(struct request *r, const char *url, const char *method, const char *data,
    size_t *size, int first)
{
	if (first)
		return handle_head(r, url, method);
	if (r->post)
		return handle_post(r, data, size);
	if (r->answered) {	/* refused from its head: nothing more to do */
		*size = 0;
		return MHD_YES;
	}
	if (*size > 0)
		return handle_get_body(r->conn, size);
	guard_body_end(conn_guard(r->conn));
	return handle_get(r, url, method);
}

static enum MHD_Result
server_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *data, size_t *size, void **con_cls)
{
	struct request *r = *con_cls;
	enum MHD_Result ret;
	int first = r == NULL;

	(void)version;
	if (first) {
		if ((r = request_new(cls, conn, url, method)) == NULL)
			return MHD_NO;
		*con_cls = r;
	}
	/* Every line written while handling it carries its id. */
	log_set_request(r->id);
	ret = handle_request(r, url, method, data, size, first);
	log_set_request(NULL);
	return ret;
}

/* Why a request ended without its answer sent. */
static const char *
ended_why(const struct request *r, enum MHD_RequestTerminationCode toe)
{
	const char *cut = guard_reason_text(guard_cut_reason(conn_guard(r->conn)));

	if (r->why[0] != '\0')
		return r->why;
	if (toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
		return "still in progress at the end of SHUTDOWN_GRACE: connection closed";
	if (cut != NULL)
		return cut;
	if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
		return "no progress within REQUEST_TIMEOUT: connection closed";
	if (toe == MHD_REQUEST_TERMINATED_READ_ERROR || toe == MHD_REQUEST_TERMINATED_WITH_ERROR ||
	    toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT)
		return "the client closed the connection (or it failed) before the answer was sent";
	return "the connection ended before the answer was sent";
}

static void
log_request(struct request *r, enum MHD_RequestTerminationCode toe)
{
	const struct scan_result *res = &r->res;
	char sha[2 * SCANNER_DIGEST_LEN + 1];
	int ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->answered;
	const union MHD_ConnectionInfo *ci;
	struct log_access a;

	/* libmicrohttpd answers some bodies itself (a chunk size that is not hex: 400; a chunk line
	 * longer than its buffer: 500) and ends the request with an error: log what it sent. */
	if (r->sent_status != 0) {
		r->status = (int)r->sent_status;
		ok = 1;
	} else if (!r->answered && r->why[0] == '\0' &&
	    (ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_HTTP_STATUS)) != NULL &&
	    ci->http_status >= 400) {
		r->status = (int)ci->http_status;
		r->answered = 1;
		ok = 1;
		snprintf(r->why, sizeof(r->why), "libmicrohttpd answered %u itself: malformed chunked "
		    "encoding, or a chunk line longer than its buffer", ci->http_status);
	}
	for (size_t i = 0; r->scanned && res->hashed && i < SCANNER_DIGEST_LEN; i++)
		snprintf(sha + 2 * i, 3, "%02x", res->sha256[i]);
	a = (struct log_access){
		.method = r->method,
		.path = r->path,
		.status = ok ? r->status : 499,
		.post = r->post || strcmp(r->method, MHD_HTTP_METHOD_POST) == 0,
		.duration = util_now() - r->t0,
		.user = r->user[0] ? r->user : NULL,
		.source_ip = r->ip[0] ? r->ip : NULL,
		.request_id = r->id,
		.user_agent = r->ua[0] ? r->ua : NULL,
		.body_bytes = (long long)r->seen,
		.file_name = r->mp != NULL ? multipart_filename(r->mp) : NULL,
		.sha256 = r->v3 == NULL && r->scanned && res->hashed ? sha : NULL,
		.verdict = !r->scanned ? NULL : r->v3 != NULL ? v3_upload_verdict(r->v3) :
		    res->verdict == SCAN_CLEAN ? "clean" : res->verdict == SCAN_MALWARE ? "malware" :
		    "error",
		.signature = r->v3 == NULL && r->scanned && res->verdict == SCAN_MALWARE ?
		    res->reason : NULL,
		.error = ok ? (r->why[0] ? r->why : NULL) : ended_why(r, toe),
	};
	log_access(&a);
}

static void
server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	(void)cls;
	guard_idle(conn_guard(conn));
	if (r == NULL)
		return;
	if (r->post && !r->answered && r->sent_status == 0)	/* the client went away first */
		metrics_request(route_metric(r->route), METRICS_ABORTED, util_now() - r->t0);
	if (r->post)
		metrics_request_body(r->seen);
	log_set_request(r->id);
	log_request(r, toe);
	log_set_request(NULL);
	request_free(r);
	*con_cls = NULL;
}

/* MHD_start_daemon returns only NULL; the reason (bind's strerror, gnutls_strerror) is in the
 * messages it logs before, from the starting thread: they are kept, joined, for the error. */
static void
server_start_message(struct server *srv, const char *msg)
{
	size_t used = strlen(srv->start_err);

	if (!atomic_load(&srv->starting) || !pthread_equal(pthread_self(), srv->starter))
		return;
	snprintf(srv->start_err + used, sizeof(srv->start_err) - used, "%s%s", used ? "; " : "", msg);
}

static void
server_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	log_debug("libmicrohttpd: %s", msg);
	server_start_message(cls, msg);
	/* The messages of libmicrohttpd 0.9.75's parse_connection_headers (see server_head_conn). */
	if (strncmp(msg, "Failed to parse `Content-Length' header", 39) == 0)
		bad_length_answer(cls, MHD_HTTP_BAD_REQUEST);
	else if (strncmp(msg, "Too large value of 'Content-Length' header", 42) == 0)
		bad_length_answer(cls, MHD_HTTP_CONTENT_TOO_LARGE);
	else
		chunk_error_answer(msg);
}

static int
server_addr(const char *host, unsigned port, struct sockaddr_storage *ss, unsigned *flags)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*flags |= MHD_USE_IPv6;
		return 0;
	}
	return -1;
}

#define SERVER_PEM_MAX (1024 * 1024)	/* bytes of a certificate or key file */

/* Reads a whole (small) file into a NUL-terminated string. Caller owns the result. */
static char *
read_pem(const char *path, char *err, size_t errlen, const char *setting)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (f == NULL || (buf = malloc(SERVER_PEM_MAX)) == NULL)
		goto fail;
	n = fread(buf, 1, SERVER_PEM_MAX - 1, f);
	if (ferror(f) || n == 0 || n == SERVER_PEM_MAX - 1)
		goto fail;
	buf[n] = '\0';
	fclose(f);
	return buf;
fail:
	snprintf(err, errlen, "%s: cannot read %s: %s", setting, path,
	    errno ? strerror(errno) : "empty or too large");
	if (f != NULL)
		fclose(f);
	free(buf);
	return NULL;
}

static int
server_tls(struct server *srv, unsigned *flags, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;

	if (cfg->tls_cert == NULL)
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "TLS_CERT: this libmicrohttpd has no TLS support");
		return -1;
	}
	if ((srv->tls_cert = read_pem(cfg->tls_cert, err, errlen, "TLS_CERT")) == NULL ||
	    (srv->tls_key = read_pem(cfg->tls_key, err, errlen, "TLS_KEY")) == NULL)
		return -1;
	*flags |= MHD_USE_TLS;
	return 0;
}

/* A scan thread's stack: libclamav recurses once per nested layer, up to MAX_RECURSION. Measured
 * (tests/e2e/test_dos_bombs.py, a pattern-filled stack after scans of nested files): zip 18.9 KiB
 * per level, 7z 17.8, gzip 8.9, bzip2 8.8, tar 5.5, xz 2.2, mail 0.8, on top of ~40 KiB. The
 * system's 8 MiB plus SERVER_STACK_PER_LEVEL per level keeps every accepted MAX_RECURSION (up to
 * 1000: 70.5 MiB of address space, of which only what is used is ever backed by memory). */
/* Seconds past SHUTDOWN_GRACE that running scans get to end before the process exits without them. */
#define SERVER_STOP_SLACK	2.0
#define SERVER_STACK_BASE	(8UL << 20)
#define SERVER_STACK_PER_LEVEL	(64UL << 10)

static size_t
server_scan_stack(unsigned max_recursion)
{
	return SERVER_STACK_BASE + (size_t)max_recursion * SERVER_STACK_PER_LEVEL;
}

static struct guard *
server_guard(const struct config *cfg)
{
	struct guard_limits l = {
		.max_connections = cfg->max_connections,
		.timeout = cfg->request_timeout,
		.min_rate = cfg->min_upload_rate,
	};

	return guard_new(&l);
}

static void
server_free(struct server *srv)
{
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	guard_free(srv->guard);
	verifier_free(srv->verifier);
	pool_free(srv->pool);
	throttle_free(srv->throttle);
	proxy_list_free(srv->proxies);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv);
}

static struct MHD_Daemon *
server_daemon(struct server *srv, unsigned flags, struct sockaddr_storage *ss)
{
	const struct config *cfg = srv->cfg;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};

	/* libmicrohttpd 0.9.75 prints to stderr what it logs before MHD_OPTION_EXTERNAL_LOGGER is
	 * seen: the logger comes first. */
	return MHD_start_daemon(flags, (uint16_t)cfg->port, server_accept, srv, server_handler, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, srv,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->io_threads,
	    MHD_OPTION_CONNECTION_LIMIT, guard_table_size(cfg->max_connections),
	    MHD_OPTION_URI_LOG_CALLBACK, server_uri, srv,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->request_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, server_notify, srv,
	    MHD_OPTION_ARRAY, srv->tls_cert != NULL ? tls : tls + 2,
	    MHD_OPTION_END);
}

/* Why MHD_start_daemon failed, naming the setting: libmicrohttpd 0.9.75's messages for a bind
 * ("Failed to bind to port N: <strerror>") and a certificate GnuTLS refuses ("... x509
 * certificate/key: <gnutls_strerror>"); another message is passed on as it is. */
static void
server_start_error(const struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	const char *why = srv->start_err[0] != '\0' ? srv->start_err : "libmicrohttpd gave no reason";

	if (srv->tls_cert != NULL && (strstr(why, "x509") != NULL || strstr(why, "TLS") != NULL ||
	    strstr(why, "GnuTLS") != NULL))
		snprintf(err, errlen, "TLS_CERT, TLS_KEY: %s and %s: %s", cfg->tls_cert, cfg->tls_key, why);
	else
		snprintf(err, errlen, "PORT: cannot listen on %s:%u: %s", cfg->host, cfg->port, why);
}

struct server *
server_start(const struct config *cfg, struct auth *auth, struct dnsver *dnsver,
    struct scanner *scanner, char *err, size_t errlen)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG;
	struct sockaddr_storage ss;
	struct server *srv;
	const union MHD_DaemonInfo *di;

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = cfg;
	srv->auth = auth;
	srv->dnsver = dnsver;
	/* Set before the socket listens: no connection sees a loaded engine answered 503. */
	atomic_init(&srv->scanner, scanner);
	atomic_init(&srv->throttle_logged, 0.0);
	atomic_init(&srv->throttle_unlogged, 0);
	if (server_addr(cfg->host, cfg->port, &ss, &flags) != 0) {
		snprintf(err, errlen, "HOST: '%.60s' is not an IPv4 or IPv6 address", cfg->host);
		goto fail;
	}
	if (server_tls(srv, &flags, err, errlen) != 0)
		goto fail;
	if ((srv->proxies = proxy_list_new(cfg->trusted_proxies, err, errlen)) == NULL)
		goto fail;
	srv->throttle = throttle_new(cfg->auth_fail_rate, cfg->auth_fail_burst);
	if (srv->throttle != NULL) {
		snprintf(srv->throttle_retry, sizeof(srv->throttle_retry), "%u",
		    throttle_retry_after(srv->throttle));
		canned_init(&srv->canned, srv->throttle_retry, 0);
		canned_init(&srv->canned_v3, srv->throttle_retry, 1);
	}
	if (srv->throttle == NULL ||
	    (srv->guard = server_guard(cfg)) == NULL ||
	    (srv->pool = pool_new_stack(cfg->scan_threads, cfg->scan_queue,
	    server_scan_stack(cfg->max_recursion))) == NULL ||
	    pool_set_timeout(srv->pool, cfg->scan_queue_timeout) != 0 ||
	    (srv->verifier = verifier_new(cfg->auth_threads, cfg->auth_queue, verify_check,
	    srv->auth)) == NULL) {
		snprintf(err, errlen, "cannot start the server's threads");
		goto fail;
	}
	srv->starter = pthread_self();
	atomic_store(&srv->starting, 1);
	srv->daemon = server_daemon(srv, flags, &ss);
	atomic_store(&srv->starting, 0);
	if (srv->daemon == NULL) {
		server_start_error(srv, err, errlen);
		goto fail;
	}
	di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di != NULL ? di->port : cfg->port;
	return srv;
fail:
	server_free(srv);
	return NULL;
}

void
server_set_scanner(struct server *srv, struct scanner *scanner)
{
	atomic_store(&srv->scanner, scanner);
}

unsigned
server_port(struct server *srv)
{
	return srv->port;
}

/*
 * libmicrohttpd 0.9.75 quirk: MHD_quiesce_daemon is not safe with a thread pool in epoll mode. It
 * takes each worker's listening socket out of the worker's epoll set from our thread, while the
 * worker's own loop removes it too (when it sees the quiesce flag, or reaches its connection
 * limit); the two read the same unlocked flag, one of the two EPOLL_CTL_DELs fails with ENOENT and
 * the library aborts ("Failed to remove listen FD from epoll set", daemon.c:5531 or 4976): SIGTERM
 * under load was a core dump, not a drain (tests/e2e/test_resilience.py
 * test_sigterm_under_churn_exits_cleanly; 1.0.x takes a lock there). Nor can the listening socket
 * be shut down behind the library's back: its epoll loop ignores the EPOLLHUP that follows and
 * would spin. So the socket stays polled until MHD_stop_daemon, and server_accept closes each new
 * connection as soon as it is accepted: a client sees its connection closed at once (never left
 * waiting), and the load balancer's probes on open connections see 503.
 */
void
server_drain(struct server *srv)
{
	if (srv == NULL || atomic_exchange(&srv->draining, 1) != 0)
		return;
	log_info("draining: new connections closed at once, /check answers 503, %u requests in "
	    "progress get up to %u s (SHUTDOWN_GRACE)", guard_busy(srv->guard), srv->cfg->shutdown_grace);
}

int
server_stop(struct server *srv)
{
	unsigned left;
	double end;

	if (srv == NULL)
		return 0;
	server_drain(srv);
	/* Uploads under way, and scans, get a while to finish and be answered. */
	end = util_now() + srv->cfg->shutdown_grace;
	while ((left = guard_busy(srv->guard)) > 0 && util_now() < end)
		usleep(20000);
	if (left > 0)
		log_warnx("SHUTDOWN_GRACE (%u s) is over: closing %u requests still in progress",
		    srv->cfg->shutdown_grace, left);
	for (unsigned i = 0; i < left; i++)
		metrics_cut(METRICS_CUT_SHUTDOWN);
	/* Every accepted password check and scan that can still end within the grace runs and resumes
	 * its connection before the daemon goes; checks first (each is bounded by its hash rounds, and
	 * the queue by AUTH_QUEUE), since a connection they resume may still hand a scan to the pool.
	 * Scans waiting for a thread are answered 503 at once. A scan libclamav does not end in time (a
	 * layer it unpacks without looking at the time) is not waited for: the caller ends the
	 * process, and its connection is closed unanswered. */
	end += SERVER_STOP_SLACK;
	verifier_stop(srv->verifier);
	if (pool_stop_by(srv->pool, end) != 0) {
		log_warnx("SHUTDOWN_GRACE (%u s) is over: %u scans still running are abandoned, their "
		    "connections closed unanswered", srv->cfg->shutdown_grace, pool_running(srv->pool));
		return -1;
	}
	server_free(srv);
	return 0;
}
