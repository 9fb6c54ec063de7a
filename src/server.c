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
#include "scanner.h"
#include "throttle.h"
#include "util.h"

#define SERVER_AUTH_MAX    1024	/* bytes of a decoded Authorization header */
#define SERVER_USER_MAX    64	/* bytes of a user name kept for the log */
#define SERVER_TRACE_MAX   64	/* bytes of an X-B3-Traceid kept for the log */
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
		[API_ABOUT] = METRICS_ROUTE_OTHER,	/* no label of its own yet */
		[API_SCAN] = METRICS_ROUTE_SCAN,
		[API_SCAN_CHUNKED] = METRICS_ROUTE_SCAN_CHUNKED,
		[API_SCAN_LEGACY] = METRICS_ROUTE_SCAN_LEGACY,
	};

	return rt != NULL ? m[rt->route] : METRICS_ROUTE_OTHER;
}

/* Answers prepared once and shared by every connection. */
struct canned {
	struct MHD_Response *ok, *unavailable, *not_found, *not_allowed_get, *not_allowed_post,
	    *unauthorized, *too_large, *single_file, *bad_request, *busy, *internal, *throttled,
	    *options_get, *options_post;
};

struct server {
	const struct config *cfg;
	struct auth *auth;
	struct dnsver *dnsver;
	_Atomic(struct scanner *) scanner;
	struct pool *pool;
	struct pool *verifier;		/* PBKDF2 for credentials not in the cache */
	struct throttle *throttle;	/* failed password checks per client address */
	_Atomic double throttle_logged;	/* when the last throttle line was logged */
	atomic_ulong throttle_unlogged;	/* throttled addresses not logged since */
	struct MHD_Daemon *daemon;
	struct canned canned;
	unsigned port;
	atomic_int draining;		/* SIGTERM came: /check answers 503 */
	int listen_fd;			/* quiesced listening socket, closed after the daemon; -1 */

	struct guard *guard;		/* every open connection, held to the timeouts */
	char *tls_cert, *tls_key;	/* PEM contents */
};

/* Basic-auth credentials on their way to the verifier pool: the only copy of a password kept
 * beyond the head's first callback, wiped once checked. */
struct cred {
	size_t ulen, plen;
	char buf[SERVER_AUTH_MAX];	/* user NUL password NUL */
};

/* What the verifier found, besides auth_verify's 1 (right), 0 (wrong) and -1 (OpenSSL failed). */
#define VERIFY_SHED	(-2)	/* the verifier queue was full: nothing was checked */

/* A POST request in progress; GET requests keep no state. */
struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	const struct sockaddr *addr;	/* the client's; libmicrohttpd's, lives with the connection */
	const struct api_route_def *route;
	struct cred *cred;		/* on the verifier pool */
	int verifying;			/* suspended until the verifier has a verdict */
	int verdict;			/* auth_verify's, or VERIFY_SHED */
	struct MHD_Response *answer;	/* decided before the scan (an error); NULL: scan */
	int status;
	int scanned;			/* res holds the verdict */
	int expired;			/* waited SCAN_QUEUE_TIMEOUT for a scan thread: 503 */
	int answered;			/* an answer was queued (and counted) */
	int discarding;
	uint64_t seen;			/* body bytes received, counted against MAX_CONTENT_LENGTH */
	struct framing framing;		/* Content-Length / Transfer-Encoding, checked */
	double t0;
	struct body *body;
	int store_rc, store_errno;	/* the body store's refusal (BODY_FULL or -1), its errno */
	struct MHD_Response *own;	/* an answer made for this request alone, freed with it */
	struct multipart *mp;
	struct scan_result res;
	char user[SERVER_USER_MAX];
	char trace[SERVER_TRACE_MAX];
	char out[SERVER_OUT_MAX];
};

/* The con_cls of GET requests: their answer depends on nothing but the URL. */
static char server_get_marker;

static struct MHD_Response *
canned_text(const char *text, int close)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (close)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	return r;
}

/* OPTIONS: 200, no body, the methods in Allow; as Flask's default answer, text/html. */
static struct MHD_Response *
canned_options(const char *allow)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	return r;
}

static int
canned_init(struct canned *c, unsigned throttle_retry)
{
	char retry[16];

	c->ok = canned_text("Service OK", 0);
	c->unavailable = canned_text("Service Unavailable", 0);
	c->not_found = canned_text("Not Found", 0);
	c->not_allowed_get = canned_text("Method Not Allowed", 0);
	c->not_allowed_post = canned_text("Method Not Allowed", 0);
	c->unauthorized = canned_text("Unauthorized Access", 0);
	c->too_large = canned_text("File Too Large", 1);
	c->single_file = canned_text("Provide a single file", 0);
	c->bad_request = canned_text("Bad Request", 1);
	c->busy = canned_text("Service Busy", 0);
	c->internal = canned_text("Internal Server Error", 0);
	c->throttled = canned_text("Too Many Requests", 0);
	c->options_get = canned_options(API_ALLOW_GET);
	c->options_post = canned_options(API_ALLOW_POST);
	if (c->throttled == NULL || c->options_get == NULL || c->options_post == NULL ||
	    c->ok == NULL || c->unavailable == NULL || c->not_found == NULL ||
	    c->not_allowed_get == NULL || c->not_allowed_post == NULL || c->unauthorized == NULL ||
	    c->too_large == NULL || c->single_file == NULL || c->bad_request == NULL ||
	    c->busy == NULL || c->internal == NULL)
		return -1;
	MHD_add_response_header(c->not_allowed_get, MHD_HTTP_HEADER_ALLOW, API_ALLOW_GET);
	MHD_add_response_header(c->not_allowed_post, MHD_HTTP_HEADER_ALLOW, API_ALLOW_POST);
	MHD_add_response_header(c->unauthorized, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	    "Basic realm=\"Authentication Required\"");
	MHD_add_response_header(c->busy, MHD_HTTP_HEADER_RETRY_AFTER, SERVER_RETRY_AFTER);
	/* No WWW-Authenticate: the credentials were not judged, and a client should wait, not ask
	 * its user for another password. */
	snprintf(retry, sizeof(retry), "%u", throttle_retry);
	MHD_add_response_header(c->throttled, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	return 0;
}

static void
canned_free(struct canned *c)
{
	struct MHD_Response *all[] = { c->ok, c->unavailable, c->not_found, c->not_allowed_get,
	    c->not_allowed_post, c->unauthorized, c->too_large, c->single_file, c->bad_request,
	    c->busy, c->internal, c->throttled, c->options_get, c->options_post };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i] != NULL)
			MHD_destroy_response(all[i]);
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

/* Every answer goes out through here, so every answer is counted. */
static enum MHD_Result
reply(struct MHD_Connection *conn, enum metrics_route metric, unsigned status,
    struct MHD_Response *r)
{
	metrics_request(metric, status, guard_request_age(conn_guard(conn)));
	return MHD_queue_response(conn, status, r);
}

static enum MHD_Result
reply_new(struct MHD_Connection *conn, enum metrics_route metric, unsigned status,
    const char *ctype, const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, mode);
	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)(uintptr_t)body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = reply(conn, metric, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_json(struct MHD_Connection *conn, enum metrics_route metric, unsigned status,
    const char *json, size_t len, enum MHD_ResponseMemoryMode mode)
{
	return reply_new(conn, metric, status, "application/json", json, len, mode);
}

static enum MHD_Result
reply_text(struct MHD_Connection *conn, enum metrics_route metric, unsigned status,
    const char *text)
{
	return reply_new(conn, metric, status, "text/plain; charset=utf-8", text, strlen(text),
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
answer_version(struct server *srv, struct MHD_Connection *conn)
{
	char out[512], err[256];
	long local, remote;
	time_t built;
	size_t len;
	int outdated;

	if (versions(srv, &local, &remote, &built, err, sizeof(err)) != 0) {
		len = api_json_version_error(out, sizeof(out), err);
		return reply_json(conn, METRICS_ROUTE_VERSION, MHD_HTTP_INTERNAL_SERVER_ERROR, out, len,
		    MHD_RESPMEM_MUST_COPY);
	}
	outdated = labs(remote - local) > 1 || too_old(srv, built);
	len = api_json_version(out, sizeof(out), local, remote, outdated);
	return reply_json(conn, METRICS_ROUTE_VERSION,
	    outdated ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_OK, out, len, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result
answer_warning(struct server *srv, struct MHD_Connection *conn)
{
	char out[256], err[256];
	long local, remote;
	time_t built;

	if (versions(srv, &local, &remote, &built, err, sizeof(err)) != 0)
		return reply_text(conn, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	if (too_old(srv, built)) {
		snprintf(out, sizeof(out), "Outdated local_version: %ld built %.0f s ago, past DB_MAX_AGE "
		    "%u s", local, difftime(time(NULL), built), srv->cfg->db_max_age);
		return reply_text(conn, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, out);
	}
	if (local != remote) {
		snprintf(out, sizeof(out), "Outdated local_version: %ld remote_version: %ld", local,
		    remote);
		return reply_text(conn, METRICS_ROUTE_WARNING, MHD_HTTP_INTERNAL_SERVER_ERROR, out);
	}
	snprintf(out, sizeof(out), "%ld", remote);
	return reply_text(conn, METRICS_ROUTE_WARNING, MHD_HTTP_OK, out);
}

/* A scanner with an engine: not before the first load, nor during a low-memory reload. */
static int
server_ready(struct server *srv)
{
	struct scanner *sc = atomic_load(&srv->scanner);

	return sc != NULL && scanner_ready(sc);
}

/* GET /version: what this instance runs; the database fields are null before the first load. */
static enum MHD_Result
answer_about(struct server *srv, struct MHD_Connection *conn)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct api_about a = { .engine = scanner_engine_version(), .db_version = -1 };
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
	return reply_json(conn, METRICS_ROUTE_OTHER, MHD_HTTP_OK, out, len, MHD_RESPMEM_MUST_COPY);
}

#define SERVER_METRICS_MAX METRICS_TEXT_MAX	/* bytes of the /metrics exposition */

static enum MHD_Result
answer_metrics(struct server *srv, struct MHD_Connection *conn)
{
	struct scanner *sc = atomic_load(&srv->scanner);
	struct metrics_gauges g = { .db_version = -1, .db_folder_ok = -1, .version = CONFIG_VERSION,
	    .libclamav = scanner_engine_version() };
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
		g.db_folder_ok = st.db_folder_ok;
		g.db_folder_unusable = st.db_folder_unusable;
	}
	if ((buf = malloc(SERVER_METRICS_MAX)) == NULL)
		return MHD_NO;
	len = metrics_render(buf, SERVER_METRICS_MAX, &g);
	return reply_new(conn, METRICS_ROUTE_METRICS, MHD_HTTP_OK,
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
answer_redirect(struct server *srv, struct MHD_Connection *conn, const struct api_route_def *rt,
    const char *path)
{
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *scheme = srv->tls_cert != NULL ? "https" : "http";
	const char *dflt = srv->tls_cert != NULL ? ":443" : ":80";
	char loc[SERVER_HOST_MAX + API_PATH_MAX + 16];
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t hl;

	if (host_ok(host)) {
		hl = strlen(host);
		if (hl > strlen(dflt) && strcmp(host + hl - strlen(dflt), dflt) == 0)
			hl -= strlen(dflt);
		snprintf(loc, sizeof(loc), "%s://%.*s%s", scheme, (int)hl, host, path);
	} else
		snprintf(loc, sizeof(loc), "%s", path);
	r = MHD_create_response_from_buffer(strlen("Permanent Redirect"),
	    (void *)(uintptr_t)"Permanent Redirect", MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, loc);
	ret = reply(conn, route_metric(rt), MHD_HTTP_PERMANENT_REDIRECT, r);
	MHD_destroy_response(r);
	return ret;
}

/* Requests whose body means nothing (GET, HEAD, OPTIONS, and redirects of any method but POST):
 * answered on the second call, once any body was read and dropped, so libmicrohttpd keeps the
 * connection alive. The first call checked that the path resolves and the method is allowed. */
static enum MHD_Result
handle_get(struct server *srv, struct MHD_Connection *conn, const char *url, const char *method)
{
	const struct api_route_def *rt;
	char merged[API_PATH_MAX];
	enum api_resolve how = api_resolve(url, &rt, merged, sizeof(merged));

	if (how == API_NOT_FOUND)
		return reply(conn, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, srv->canned.not_found);
	if (how == API_REDIRECT)
		return answer_redirect(srv, conn, rt, merged);
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
		return reply(conn, route_metric(rt), MHD_HTTP_OK,
		    rt->post ? srv->canned.options_post : srv->canned.options_get);
	switch (rt->route) {
	case API_CHECK:
		if (!server_ready(srv) || atomic_load(&srv->draining))
			return reply(conn, route_metric(rt), MHD_HTTP_SERVICE_UNAVAILABLE,
			    srv->canned.unavailable);
		return reply(conn, route_metric(rt), MHD_HTTP_OK, srv->canned.ok);
	case API_VERSION:
		return answer_version(srv, conn);
	case API_WARNING:
		return answer_warning(srv, conn);
	case API_METRICS:
		return answer_metrics(srv, conn);
	case API_ABOUT:
		return answer_about(srv, conn);
	default:
		return reply(conn, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, srv->canned.not_found);
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
	int rc = body_append(r->body, data, len);

	if (rc != 0 && r->store_rc == 0) {
		r->store_rc = rc;
		r->store_errno = errno;
	}
	return rc;
}

static void
cred_free(struct cred *c)
{
	if (c == NULL)
		return;
	explicit_bzero(c, sizeof(*c));
	free(c);
}

static void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	cred_free(r->cred);
	multipart_free(r->mp);
	body_free(r->body);
	if (r->own != NULL)
		MHD_destroy_response(r->own);
	free(r);
}

static void
request_reject(struct request *r, unsigned status, struct MHD_Response *answer)
{
	r->status = (int)status;
	r->answer = answer;
	if (status == MHD_HTTP_UNAUTHORIZED)
		metrics_auth_failure();
	else if (status == MHD_HTTP_TOO_MANY_REQUESTS)
		metrics_auth_throttled();
	else if (answer == r->srv->canned.busy)
		metrics_shed();
}

/* 503 Service Busy with a Retry-After from the scan pool's measured drain rate (the wait it predicts
 * for a new scan), counted as shed load and logged with why. */
static void
request_busy(struct request *r, const char *why)
{
	struct server *srv = r->srv;
	unsigned retry = pool_retry_after(srv->pool);
	struct MHD_Response *resp = NULL;
	char v[16];

	log_info("answering 503 Service Busy, Retry-After %u (%.2f scans/s, %u waiting): %s", retry,
	    pool_rate(srv->pool), pool_waiting(srv->pool), why);
	if (r->own == NULL) {
		resp = MHD_create_response_from_buffer(strlen("Service Busy"),
		    (void *)(uintptr_t)"Service Busy", MHD_RESPMEM_PERSISTENT);
		if (resp != NULL) {
			snprintf(v, sizeof(v), "%u", retry);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
			    "text/plain; charset=utf-8");
			MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
			r->own = resp;
		}
	}
	if (resp == NULL) {
		request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, srv->canned.busy);	/* counted there */
		return;
	}
	request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
	metrics_shed();
}

/* RELOAD_MODE=low-memory: the upload reached a scan thread while the engine was away. 503 with the
 * reload's expected remaining time as Retry-After; never a verdict without an engine. */
static void
request_unavailable(struct request *r, unsigned retry)
{
	struct MHD_Response *resp;
	char v[16];

	log_info("answering 503, Retry-After %u: the signature database is reloading "
	    "(RELOAD_MODE=low-memory)", retry);
	resp = MHD_create_response_from_buffer(strlen("Service Unavailable: reloading signatures"),
	    (void *)(uintptr_t)"Service Unavailable: reloading signatures", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, r->srv->canned.unavailable);
		return;
	}
	snprintf(v, sizeof(v), "%u", retry);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
	if (r->own != NULL)
		MHD_destroy_response(r->own);
	r->own = resp;
	request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
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
	char ip[INET6_ADDRSTRLEN];

	if (now - last < SERVER_THROTTLE_LOG_GAP ||
	    !atomic_compare_exchange_strong(&srv->throttle_logged, &last, now)) {
		atomic_fetch_add(&srv->throttle_unlogged, 1);
		return;
	}
	addr_str(r->addr, ip, sizeof(ip));
	log_warnx("client %s used up its failed password checks (AUTH_FAIL_BURST %u, AUTH_FAIL_RATE "
	    "%u a minute): answering 429 without checking passwords from it until it regains one; "
	    "%lu other addresses throttled since the last such line", ip[0] ? ip : "unknown",
	    srv->cfg->auth_fail_burst, srv->cfg->auth_fail_rate,
	    atomic_exchange(&srv->throttle_unlogged, 0));
}

/* On the verifier pool: PBKDF2, off the HTTP threads. */
static void
verify_job(void *arg)
{
	struct request *r = arg;
	struct cred *c = r->cred;

	r->verdict = auth_verify(r->srv->auth, c->buf, c->ulen, c->buf + c->ulen + 1, c->plen);
	if (r->verdict != 0)	/* only a failure keeps the token it took */
		throttle_refund(r->srv->throttle, r->addr, util_now());
	cred_free(c);
	r->cred = NULL;
}

/* Runs once the verifier's place is free; r belongs to the connection again from here on. */
static void
verify_done(void *arg)
{
	struct request *r = arg;

	MHD_resume_connection(r->conn);
}

/* Credentials not in the cache: unless the client's address has used up its failed checks, they
 * go to the verifier pool and the connection is suspended until it has a verdict. */
static void
request_verify(struct request *r, const char *user, size_t ulen, const char *pass, size_t plen)
{
	struct server *srv = r->srv;
	enum throttle_verdict tv;
	struct cred *c;

	tv = throttle_take(srv->throttle, r->addr, util_now());
	if (tv != THROTTLE_ALLOW) {
		if (tv == THROTTLE_REFUSE_FIRST)
			log_throttled(srv, r);
		request_reject(r, MHD_HTTP_TOO_MANY_REQUESTS, srv->canned.throttled);
		return;
	}
	/* auth_parse_basic fitted user, ':' and password in SERVER_AUTH_MAX, so they fit here. */
	if ((c = malloc(sizeof(*c))) == NULL) {
		throttle_refund(srv->throttle, r->addr, util_now());
		request_reject(r, MHD_HTTP_INTERNAL_SERVER_ERROR, srv->canned.internal);
		return;
	}
	c->ulen = ulen;
	c->plen = plen;
	memcpy(c->buf, user, ulen);
	c->buf[ulen] = '\0';
	memcpy(c->buf + ulen + 1, pass, plen);
	c->buf[ulen + 1 + plen] = '\0';
	r->cred = c;
	r->verifying = 1;
	/* Suspend first: the check may finish, and resume, before pool_submit_then returns.
	 * libmicrohttpd quirk: a connection suspended in the head's callback stays in that state
	 * and, once resumed, calls the handler again for the head (with no body data); only after
	 * a call that leaves it unsuspended does it send "100 Continue" or read the body. So
	 * handle_post finishes the head's checks there. */
	MHD_suspend_connection(r->conn);
	if (pool_submit_then(srv->verifier, verify_job, verify_done, r) != 0) {
		cred_free(c);
		r->cred = NULL;
		throttle_refund(srv->throttle, r->addr, util_now());
		r->verdict = VERIFY_SHED;
		MHD_resume_connection(r->conn);
	}
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
		request_reject(r, MHD_HTTP_UNAUTHORIZED, r->srv->canned.unauthorized);
		return 0;
	}
	snprintf(r->user, sizeof(r->user), "%.*s", (int)ulen, user);
	verdict = auth_lookup(r->srv->auth, user, ulen, pass, plen);
	if (verdict == -1)
		request_verify(r, user, ulen, pass, plen);
	else if (verdict == 0)
		request_reject(r, MHD_HTTP_UNAUTHORIZED, r->srv->canned.unauthorized);
	explicit_bzero(buf, sizeof(buf));
	return verdict == 1;
}

/* Checks an authorised POST before its body: load, size and content type. */
static void
request_precheck(struct request *r)
{
	struct server *srv = r->srv;
	struct MHD_Connection *conn = r->conn;
	const char *h;

	if (!server_ready(srv)) {
		struct scanner *sc = atomic_load(&srv->scanner);

		if (sc != NULL)		/* loaded before: a low-memory reload is under way */
			request_unavailable(r, scanner_retry_after(sc));
		else
			request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, srv->canned.unavailable);
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
		request_reject(r, MHD_HTTP_CONTENT_TOO_LARGE, srv->canned.too_large);
		return;
	}
	if (r->route->route != API_SCAN_CHUNKED) {
		h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
		r->mp = h != NULL ? multipart_new(h, request_sink, r) : NULL;
		if (r->mp == NULL)
			request_reject(r, MHD_HTTP_BAD_REQUEST, srv->canned.single_file);
	}
}

static struct request *
request_new(struct server *srv, struct MHD_Connection *conn, const struct api_route_def *rt,
    const struct framing *f)
{
	struct request *r = calloc(1, sizeof(*r));
	const union MHD_ConnectionInfo *ci;
	const char *trace;

	if (r == NULL)
		return NULL;
	r->srv = srv;
	r->conn = conn;
	r->route = rt;
	r->framing = *f;
	r->t0 = util_now();
	r->body = body_new((size_t)srv->cfg->spill_threshold, srv->cfg->tmpdir);
	if (r->body == NULL) {
		free(r);
		return NULL;
	}
	trace = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-B3-Traceid");
	if (trace != NULL)
		snprintf(r->trace, sizeof(r->trace), "%s", trace);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	r->addr = ci != NULL ? ci->client_addr : NULL;
	if (request_auth(r))
		request_precheck(r);
	return r;
}

/* The verifier's verdict, back on the connection's thread. */
static void
request_verified(struct request *r)
{
	struct server *srv = r->srv;

	r->verifying = 0;
	switch (r->verdict) {
	case 1:
		request_precheck(r);
		break;
	case 0:
		request_reject(r, MHD_HTTP_UNAUTHORIZED, srv->canned.unauthorized);
		break;
	case VERIFY_SHED:
		log_debug("password check queue full (AUTH_THREADS %u, AUTH_QUEUE %u): 503",
		    srv->cfg->auth_threads, srv->cfg->auth_queue);
		request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, srv->canned.busy);
		break;
	default:
		log_errorx("password check failed inside OpenSSL");
		request_reject(r, MHD_HTTP_INTERNAL_SERVER_ERROR, srv->canned.internal);
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
	r->own = MHD_create_response_from_buffer(len, r->out, MHD_RESPMEM_PERSISTENT);
	if (r->own != NULL)
		MHD_add_response_header(r->own, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	request_reject(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
	    r->own != NULL ? r->own : r->srv->canned.internal);
}

/* Body bytes: stored (or, after an error, counted and dropped). 0 to go on, -1 to hang up. */
static int
request_data(struct request *r, const char *data, size_t len)
{
	const struct config *cfg = r->srv->cfg;
	int rc;

	r->seen += len;
	if (guard_body(conn_guard(r->conn), len) != 0)
		return -1;
	if (r->discarding)
		return 0;
	if (r->seen > cfg->max_content_length) {
		request_reject(r, MHD_HTTP_CONTENT_TOO_LARGE, r->srv->canned.too_large);
	} else {
		rc = r->mp != NULL ? multipart_feed(r->mp, data, len) : request_sink(r, data, len);
		if (rc == 0)
			return 0;
		if (r->store_rc != 0)
			request_store_failed(r);
		else
			request_reject(r, MHD_HTTP_BAD_REQUEST, r->srv->canned.bad_request);
	}
	/* Nothing more is kept; the rest is read and dropped so the client gets the answer. */
	request_discard(r, cfg->max_content_length + SERVER_DISCARD_SLACK);
	return 0;
}

static void
scan_job(void *arg)
{
	struct request *r = arg;
	struct scanner *sc = atomic_load(&r->srv->scanner);
	const void *mem;
	size_t len;

	mem = body_mem(r->body, &len);
	if (mem != NULL)
		scanner_scan_mem(sc, mem, len, &r->res);
	else
		scanner_scan_fd(sc, body_fd(r->body), &r->res);
	metrics_scan(r->res.verdict == SCAN_ERROR ? METRICS_ERROR :
	    r->res.limit_exceeded ? METRICS_LIMITS_EXCEEDED :
	    r->res.verdict == SCAN_MALWARE ? METRICS_MALWARE : METRICS_CLEAN,
	    r->res.seconds, r->res.bytes);
	r->scanned = 1;
}

/* Runs once the scan's place in the pool is free, so a client that sends its next scan as soon
 * as it has this answer finds room. r belongs to the connection again from here on. */
static void
scan_done(void *arg)
{
	struct request *r = arg;

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
	r->status = (int)status;
	r->answered = 1;
	return reply(r->conn, route_metric(r->route), status, resp);
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

static enum MHD_Result
answer_scan(struct request *r)
{
	const struct scan_result *res = &r->res;
	size_t len;

	if (res->verdict == SCAN_ERROR) {
		log_errorx("scan failed: %s", res->reason);
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

	if (r->mp != NULL && (multipart_finish(r->mp) != 0 || multipart_file_count(r->mp) != 1)) {
		request_reject(r, MHD_HTTP_BAD_REQUEST, srv->canned.single_file);
		return post_answer(r, MHD_HTTP_BAD_REQUEST, r->answer);
	}
	/* Suspend first: the scan may finish, and resume, before pool_submit returns. */
	MHD_suspend_connection(r->conn);
	if (pool_submit_timed(srv->pool, scan_job, scan_done, scan_expired, r) != 0) {
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
	if (r->answer != NULL && request_answer_now(r))
		return post_answer(r, (unsigned)r->status, r->answer);
	return MHD_YES;
}

static enum MHD_Result
handle_post(struct request *r, const char *data, size_t *size)
{
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
	if (r->scanned && r->res.unavailable && r->answer == NULL)
		request_unavailable(r, r->res.retry_after);
	if (r->answer != NULL)
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
	char out[256], date[64];
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
	log_info("answered %u: a Content-Length that is not a number, or too large a one", status);
	if (srv->tls_cert == NULL) {
		now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		n = snprintf(out, sizeof(out), "HTTP/1.1 %u %s\r\nDate: %s\r\nConnection: close\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s",
		    status, status == MHD_HTTP_BAD_REQUEST ? "Bad Request" : "Content Too Large", date,
		    strlen(text), text);
		/* A fresh request's socket has nothing of ours queued: this fits its buffer. */
		if (n > 0 && (size_t)n < sizeof(out))
			(void)send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	shutdown(fd, SHUT_WR);
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
 * accepting and leave new clients waiting behind idle ones. */
static enum MHD_Result
server_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct server *srv = cls;

	(void)addr;
	(void)addrlen;
	return guard_admit(srv->guard) == 0 ? MHD_YES : MHD_NO;
}

/* libmicrohttpd 0.9.75 quirk: it parses the query string into records taken from the connection's
 * memory (SERVER_CONN_MEMORY), and when they run out (some 1,000 parameters) it queues a 431 and
 * then overwrites the connection's state, so the answer never goes and the client waits for the
 * timeout. No route reads a query parameter: the query is cut off here, before that parse (this
 * callback runs on the request line, in the library's own writable buffer), and the request is
 * served. Not covered: a NUL byte before the '?' hides the query from strchr (the URI's length is
 * not passed to us); such a request line, which no client sends, waits for REQUEST_TIMEOUT like a
 * slowloris head, and is evictable as one. */
static void *
server_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	char *q = strchr(uri, '?');

	(void)cls;
	server_head_conn = conn;
	if (q != NULL)
		q[1] = '\0';
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

static enum MHD_Result
server_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *data, size_t *size, void **con_cls)
{
	struct server *srv = cls;
	const struct api_route_def *rt;
	char merged[API_PATH_MAX];
	enum api_resolve how;
	struct framing f;
	struct request *r;

	(void)version;
	if (*con_cls == &server_get_marker) {
		if (*size > 0)
			return handle_get_body(conn, size);
		guard_body_end(conn_guard(conn));
		return handle_get(srv, conn, url, method);
	}
	if (*con_cls != NULL)
		return handle_post(*con_cls, data, size);

	/* First call: the head is in, the body is not. */
	head_parsed(conn);
	guard_request(conn_guard(conn));
	how = api_resolve(url, &rt, merged, sizeof(merged));
	if (!request_framing_ok(conn, &f))
		return reply(conn, route_metric(rt), MHD_HTTP_BAD_REQUEST, srv->canned.bad_request);
	if (framing_has_body(&f))
		guard_body_begin(conn_guard(conn));
	if (how == API_NOT_FOUND)
		return reply(conn, METRICS_ROUTE_OTHER, MHD_HTTP_NOT_FOUND, srv->canned.not_found);
	if (!api_method_allowed(rt, method))
		return reply(conn, route_metric(rt), MHD_HTTP_METHOD_NOT_ALLOWED,
		    rt->post ? srv->canned.not_allowed_post : srv->canned.not_allowed_get);
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		guard_discard(conn_guard(conn), SERVER_DISCARD_SLACK);
		*con_cls = &server_get_marker;
		return MHD_YES;
	}
	/* A POST's body is the client's to send again where the redirect points: answered at once,
	 * and libmicrohttpd closes the connection rather than read it. */
	if (how == API_REDIRECT)
		return answer_redirect(srv, conn, rt, merged);
	if ((r = request_new(srv, conn, rt, &f)) == NULL)
		return MHD_NO;
	*con_cls = r;
	return request_head_done(r);
}

static void
log_request(struct request *r, enum MHD_RequestTerminationCode toe)
{
	char ip[INET6_ADDRSTRLEN];
	struct log_access a;

	addr_str(r->addr, ip, sizeof(ip));
	a = (struct log_access){
		.method = MHD_HTTP_METHOD_POST,
		.path = r->route->path,
		.status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? r->status : 499,
		.duration = util_now() - r->t0,
		.user = r->user[0] ? r->user : NULL,
		.source_ip = ip[0] ? ip : NULL,
		.trace_id = r->trace[0] ? r->trace : NULL,
		.verdict = !r->scanned ? NULL :
		    r->res.verdict == SCAN_CLEAN ? "clean" : r->res.reason,
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
	if (r == NULL || *con_cls == &server_get_marker)
		return;
	if (!r->answered)	/* the client went away first */
		metrics_request(route_metric(r->route), METRICS_ABORTED, util_now() - r->t0);
	metrics_request_body(r->seen);
	log_request(r, toe);
	request_free(r);
	*con_cls = NULL;
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
	/* The messages of libmicrohttpd 0.9.75's parse_connection_headers (see server_head_conn). */
	if (strncmp(msg, "Failed to parse `Content-Length' header", 39) == 0)
		bad_length_answer(cls, MHD_HTTP_BAD_REQUEST);
	else if (strncmp(msg, "Too large value of 'Content-Length' header", 42) == 0)
		bad_length_answer(cls, MHD_HTTP_CONTENT_TOO_LARGE);
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
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	guard_free(srv->guard);
	pool_free(srv->verifier);
	pool_free(srv->pool);
	throttle_free(srv->throttle);
	canned_free(&srv->canned);
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

	return MHD_start_daemon(flags, (uint16_t)cfg->port, server_accept, srv, server_handler, srv,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->io_threads,
	    MHD_OPTION_CONNECTION_LIMIT, guard_table_size(cfg->max_connections),
	    MHD_OPTION_URI_LOG_CALLBACK, server_uri, srv,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->request_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, server_notify, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, srv,
	    MHD_OPTION_ARRAY, srv->tls_cert != NULL ? tls : tls + 2,
	    MHD_OPTION_END);
}

struct server *
server_start(const struct config *cfg, struct auth *auth, struct dnsver *dnsver, char *err,
    size_t errlen)
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
	srv->listen_fd = -1;
	srv->auth = auth;
	srv->dnsver = dnsver;
	atomic_init(&srv->scanner, NULL);
	atomic_init(&srv->throttle_logged, 0.0);
	atomic_init(&srv->throttle_unlogged, 0);
	if (server_addr(cfg->host, cfg->port, &ss, &flags) != 0) {
		snprintf(err, errlen, "HOST: '%.60s' is not an IPv4 or IPv6 address", cfg->host);
		goto fail;
	}
	if (server_tls(srv, &flags, err, errlen) != 0)
		goto fail;
	srv->throttle = throttle_new(cfg->auth_fail_rate, cfg->auth_fail_burst);
	if (srv->throttle == NULL ||
	    canned_init(&srv->canned, throttle_retry_after(srv->throttle)) != 0 ||
	    (srv->guard = server_guard(cfg)) == NULL ||
	    (srv->pool = pool_new(cfg->scan_threads, cfg->scan_queue)) == NULL ||
	    pool_set_timeout(srv->pool, cfg->scan_queue_timeout) != 0 ||
	    (srv->verifier = pool_new(cfg->auth_threads, cfg->auth_queue)) == NULL) {
		snprintf(err, errlen, "cannot start the server's threads");
		goto fail;
	}
	if ((srv->daemon = server_daemon(srv, flags, &ss)) == NULL) {
		snprintf(err, errlen, "PORT: cannot listen on %s:%u%s", cfg->host, cfg->port,
		    srv->tls_cert ? " (or TLS_CERT/TLS_KEY are not a matching PEM pair)" : "");
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
 * libmicrohttpd quirk: MHD_quiesce_daemon only stops polling the listening socket and hands it
 * back, still listening, and it must not be closed before MHD_stop_daemon (a worker thread may
 * still hold it). The kernel then keeps completing handshakes that nobody accepts: new clients
 * hung until the process exited. shutdown() on a listening socket ends the listen state at once
 * on Linux (queued and new connections are reset or refused) while the descriptor stays ours, so
 * no other file can take its number before the daemon is gone; server_free closes it.
 */
void
server_drain(struct server *srv)
{
	MHD_socket fd;

	if (srv == NULL || atomic_exchange(&srv->draining, 1) != 0)
		return;
	fd = MHD_quiesce_daemon(srv->daemon);
	if (fd != MHD_INVALID_SOCKET) {
		shutdown(fd, SHUT_RDWR);
		srv->listen_fd = fd;
	}
	log_info("draining: new connections refused, /check answers 503, %u requests in progress "
	    "get up to %u s (SHUTDOWN_GRACE)", guard_busy(srv->guard), srv->cfg->shutdown_grace);
}

void
server_stop(struct server *srv)
{
	unsigned left;
	double end;

	if (srv == NULL)
		return;
	server_drain(srv);
	/* Uploads under way, and scans, get a while to finish and be answered. */
	end = util_now() + srv->cfg->shutdown_grace;
	while ((left = guard_busy(srv->guard)) > 0 && util_now() < end)
		usleep(20000);
	if (left > 0)
		log_warnx("SHUTDOWN_GRACE (%u s) is over: closing %u requests still in progress",
		    srv->cfg->shutdown_grace, left);
	/* Every accepted password check and scan runs and resumes its connection before the daemon
	 * goes; checks first, since a connection they resume may still hand a scan to the pool. */
	pool_stop(srv->verifier);
	pool_stop(srv->pool);
	server_free(srv);
}
