/* server_reply.c -- answers: the canned answers, the reply helpers every answer goes through
 * (counted, with X-Request-Id), and the refusals decided before a scan. */
#include "server_priv.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "body.h"
#include "config.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "throttle.h"
#include "v3.h"

/* The metric each route counts in. */
enum metrics_route
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

int
route_v3(const struct api_route_def *rt)
{
	return rt != NULL && (rt->route == API_V3_SCAN || rt->route == API_V3_SCAN_CHUNKED);
}

/* The answers of a route: /v3 ones are JSON. */
const struct canned_set *
canned_for(const struct server *srv, const struct api_route_def *rt)
{
	return route_v3(rt) ? &srv->canned_v3 : &srv->canned;
}

/* A fresh response for one answer; NULL when out of memory. */
struct MHD_Response *
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

void
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

/* Every answer goes out through here, so every answer is counted and carries X-Request-Id. resp
 * is this request's own (NULL: out of memory, the connection is closed); the caller frees it. */
enum MHD_Result
reply_send(struct request *r, enum metrics_route metric, unsigned status, struct MHD_Response *resp)
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
enum MHD_Result
reply_canned(struct request *r, enum metrics_route metric, unsigned status,
    const struct canned *c, const char *why)
{
	struct MHD_Response *resp = canned_make(c);
	enum MHD_Result ret;

	if (why != NULL)
		snprintf(r->why, sizeof(r->why), "%s", why);
	ret = reply_send(r, metric, status, resp);
	if (resp != NULL)
		MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
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
	ret = reply_send(r, metric, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
reply_json(struct request *r, enum metrics_route metric, unsigned status, const char *json,
    size_t len, enum MHD_ResponseMemoryMode mode)
{
	return reply_new(r, metric, status, "application/json", json, len, mode);
}

enum MHD_Result
reply_text(struct request *r, enum metrics_route metric, unsigned status, const char *text)
{
	return reply_new(r, metric, status, "text/plain; charset=utf-8", text, strlen(text),
	    MHD_RESPMEM_MUST_COPY);
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

void
request_refuse(struct request *r, unsigned status, const struct canned *c, const char *why)
{
	request_reject(r, status, canned_make(c), why);
}

/* A /v3 refusal with its own reason: {"error": why}, closing the connection as the canned 400 does
 * (the body may not have been read). Logged, since it names what the client got wrong. */
void
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

/* A 503 with a Retry-After of retry seconds, its text as the route writes it ({"error": text} on
 * /v3), counted as shed load. */
static void
request_retry_later(struct request *r, const char *text, const char *json, unsigned retry,
    const char *why)
{
	const char *body = route_v3(r->route) ? json : text;
	struct MHD_Response *resp;
	char v[16];

	resp = MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
	if (resp != NULL) {
		snprintf(v, sizeof(v), "%u", retry);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, route_v3(r->route) ?
		    "application/json" : "text/plain; charset=utf-8");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
	}
	request_reject(r, MHD_HTTP_SERVICE_UNAVAILABLE, resp, why);
	metrics_shed(METRICS_HTTP);
}

/* 503 Service Busy with a Retry-After from the scan pool's measured drain rate (the wait it predicts
 * for a new scan), counted as shed load and logged with why. */
void
request_busy(struct request *r, const char *why)
{
	struct server *srv = r->srv;
	unsigned retry = pool_retry_after(srv->pool);

	log_info("answering 503 Service Busy, Retry-After %u (%.2f scans/s, %u waiting): %s", retry,
	    pool_rate(srv->pool), pool_waiting(srv->pool), why);
	request_retry_later(r, "Service Busy", "{\"error\":\"Service Busy\"}\n", retry, why);
}

/* RELOAD_MODE=low-memory: the upload reached a scan thread while the engine was away. 503 with the
 * reload's expected remaining time as Retry-After; never a verdict without an engine. */
void
request_unavailable(struct request *r, unsigned retry)
{
	log_info("answering 503, Retry-After %u: the signature database is reloading "
	    "(RELOAD_MODE=low-memory)", retry);
	request_retry_later(r, "Service Unavailable: reloading signatures",
	    "{\"error\":\"Service Unavailable: reloading signatures\"}\n", retry,
	    "the signature database is reloading (RELOAD_MODE=low-memory)");
}

/* The body could not be stored: 503 when the temporary-folder budget is spent, else 500 with the
 * reason. Logged with the errno; the partial body is never scanned. */
void
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
	metrics_store_failure(METRICS_HTTP);
	snprintf(reason, sizeof(reason), "cannot store the upload in the temporary folder: %s",
	    strerror(r->store_errno));
	len = api_json_error(r->out, sizeof(r->out), reason);
	resp = MHD_create_response_from_buffer(len, r->out, MHD_RESPMEM_PERSISTENT);
	if (resp != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	request_reject(r, MHD_HTTP_INTERNAL_SERVER_ERROR, resp, reason);
}

/* A POST's answer: counted when queued, before the client can see it. */
enum MHD_Result
post_answer(struct request *r, unsigned status, struct MHD_Response *resp)
{
	return reply_send(r, route_metric(r->route), status, resp);
}

/* A POST's own body (in r->out or static), sent without a copy. */
enum MHD_Result
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
