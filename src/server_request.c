/* server_request.c -- the request lifecycle on libmicrohttpd: the head, its checks, the streamed
 * body, the hand-off to the scan and the end of the request. */
#include "server_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api.h"
#include "config.h"
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
#include "upload.h"
#include "util.h"
#include "v3.h"

/* The guard's record of a connection (NULL when it could not be made). libmicrohttpd's timeout
 * only sees idleness, which a client dripping a byte at a time never shows: the guard holds every
 * connection to REQUEST_TIMEOUT and MIN_UPLOAD_RATE, whatever we do with its bytes. */
struct guard_conn *
conn_guard(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
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
	int rc;

	if (r->up == NULL) {	/* no body is taken before the head's checks pass */
		errno = EINVAL;
		rc = -1;
	} else
		rc = upload_append(r->up, data, len);
	if (rc != 0 && r->store_rc == 0) {
		r->store_rc = rc;
		r->store_errno = errno;
	}
	return rc;
}

static void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	quirks_chunked_remove(r);
	multipart_free(r->mp);
	upload_free(r->up);
	if (r->own != NULL)
		MHD_destroy_response(r->own);
	free(r);
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

/* A file part of a /v3/scan begins: its own file of the upload. Past MAX_FILES_PER_REQUEST, the
 * parse stops and the request is answered 400 with the limit. */
static int
request_part(void *ud, const char *filename, size_t flen, const char *field, size_t nlen)
{
	struct request *r = ud;

	if (upload_begin(r->up, filename, flen, field, nlen) == 0)
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

/* 1 when the body is the file itself, not multipart/form-data. */
static int
route_chunked(const struct api_route_def *rt)
{
	return rt->route == API_SCAN_CHUNKED || rt->route == API_V3_SCAN_CHUNKED;
}

/* How a /v3 request asks its files to be scanned (its all_matches query); -1 refused. */
static int
request_scan_how(struct request *r, enum upload_scan *how)
{
	const char *am = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, V3_ARG);

	if (am != NULL && strcmp(am, "x") == 0) {
		request_refuse_json(r, MHD_HTTP_BAD_REQUEST, V3_BAD_ALL_MATCHES);
		return -1;
	}
	*how = am != NULL && strcmp(am, "1") == 0 ? UPLOAD_SCAN_ALL_MATCHES : UPLOAD_SCAN_DETAIL;
	return 0;
}

/* The upload the body goes into, after the shared head checks. One model for both versions: a
 * /v3 upload has up to MAX_FILES_PER_REQUEST files, each a multipart file part, scanned in
 * detail; a v2 upload has one file, the first file part (the others are only counted, and refused
 * at the end), scanned for its verdict. A chunked route's body is its one file. */
static void
request_upload(struct request *r, const char *ctype)
{
	const struct config *cfg = r->srv->cfg;
	const struct canned_set *c = canned_for(r->srv, r->route);
	int v3 = route_v3(r->route), each;
	enum upload_scan how = UPLOAD_SCAN_VERDICT;

	if (v3 && request_scan_how(r, &how) != 0)
		return;
	r->up = upload_new(v3 ? cfg->max_files_per_request : 1, (size_t)cfg->spill_threshold,
	    cfg->tmpdir, how);
	if (r->up == NULL || upload_set_user(r->up, r->user) != 0) {
		request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR, &c->internal,
		    "out of memory for an upload");
		return;
	}
	upload_set_protocol(r->up, METRICS_HTTP);
	if (!route_chunked(r->route))
		r->mp = ctype != NULL ? multipart_new(ctype, request_sink, r) : NULL;
	if (!route_chunked(r->route) && r->mp == NULL) {
		if (v3)
			request_refuse_json(r, MHD_HTTP_BAD_REQUEST, "the body must be multipart/form-data "
			    "with a boundary (or use /v3/scan-chunked)");
		else
			request_refuse(r, MHD_HTTP_BAD_REQUEST, &c->single_file, ctype == NULL ?
			    "no Content-Type: a multipart/form-data body is expected" :
			    "Content-Type is not multipart/form-data with a usable boundary");
		return;
	}
	/* /v3/scan begins a file at each file part; the others have their one file now. */
	each = v3 && r->mp != NULL;
	if ((each ? multipart_each_file(r->mp, request_part) : upload_begin(r->up, NULL, 0, "", 0))
	    != 0)
		request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR, &c->internal,
		    "out of memory for an upload's parser or its file");
}

/* Checks an authorised POST before its body: load, size and content type. */
void
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
	request_upload(r, h);
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
void
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
static void
request_post(struct request *r, const struct api_route_def *rt, const struct framing *f)
{
	const union MHD_ConnectionInfo *ci;

	r->post = 1;
	r->route = rt;
	r->framing = *f;
	if (f->te_chunked && r->srv->tls_cert == NULL &&
	    (ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD)) != NULL)
		quirks_chunked_add(r, ci->connect_fd);
	recvtrack_note(r->fd);
	if (request_auth(r))
		request_precheck(r);
}

static void
request_discard(struct request *r, uint64_t limit)
{
	r->discarding = 1;
	guard_discard(conn_guard(r->conn), limit);
	multipart_free(r->mp);
	r->mp = NULL;
	upload_reset(r->up);
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
		else if (route_v3(r->route) && r->why[0] != '\0')
			request_refuse_json(r, MHD_HTTP_BAD_REQUEST, r->why);
		else
			request_refuse(r, MHD_HTTP_BAD_REQUEST, &canned_for(r->srv, r->route)->bad_request,
			    "malformed multipart/form-data body");
	}
	/* Nothing more is kept; the rest is read and dropped so the client gets the answer. */
	request_discard(r, cfg->max_content_length + SERVER_DISCARD_SLACK);
	return 0;
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
	if (r->scanned && !r->refused && upload_unavailable(r->up, &retry))
		request_unavailable(r, retry);
	if (r->refused)
		return post_answer(r, (unsigned)r->status, r->answer);
	if (r->scanned)
		return answer_scan(r);
	return request_complete(r);
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

	quirks_head_parsed(conn);
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
	request_post(r, rt, &f);
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

enum MHD_Result
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

void
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
	server_log_request(r, toe);
	log_set_request(NULL);
	request_free(r);
	*con_cls = NULL;
}
