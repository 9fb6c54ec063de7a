/* server_scan.c -- a finished upload on the scan pool: the scan on a scan thread, and the POST
 * answers written from its result. */
#include "server_priv.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "filepolicy.h"
#include "log.h"
#include "multipart.h"
#include "pool.h"
#include "scanner.h"
#include "upload.h"
#include "v3.h"

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

/* On a scan thread: the next file of the upload (a v2 upload has one). One file per turn: an
 * upload with more goes back to the queue after each (scan_done), so another client's scan can go
 * between two files. */
static void
scan_job(void *arg)
{
	struct request *r = arg;
	struct scanner *sc = atomic_load(&r->srv->scanner);

	log_set_request(r->id);
	r->more = upload_scan_next(r->up, sc, r->srv->cfg->max_scan_time / 1000.0);
	r->scanned = !r->more;
	log_set_request(NULL);
}

/* Runs once the scan's place in the pool is free, so a client that sends its next scan as soon
 * as it has this answer finds room. r belongs to the connection again from here on. */
static void
scan_done(void *arg)
{
	struct request *r = arg;

	if (r->more) {
		r->more = 0;
		if (pool_requeue(r->srv->pool, scan_job, scan_done, r, request_key(r)) == 0)
			return;
		/* The pool stops: what is left is not scanned, and the answer says so (500). */
		upload_fail(r->up, "the server is shutting down");
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

/* A /v3 answer: every file, with the engine that scanned them. */
static enum MHD_Result
answer_v3(struct request *r)
{
	struct scanner *sc = atomic_load(&r->srv->scanner);
	struct v3_engine e = { .libclamav = scanner_engine_version(), .database = -1 };
	struct scanner_stats st;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len;
	char *json;

	scanner_stats(sc, &st);
	e.database = st.db_version;
	if ((json = api_json_v3(r->up, &e, &len)) == NULL) {
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

/* The answer from the scanned upload, alike for every route but in how it is written: 500 with
 * the reason of a scan that failed, else the route's own form of the verdict. */
enum MHD_Result
answer_scan(struct request *r)
{
	const char *err = upload_error(r->up);
	const struct scan_result *res;
	const struct filepolicy_verdict *pol;
	const char *text;
	size_t len;

	if (err != NULL) {
		log_errorx("scan failed: %s", err);
		snprintf(r->why, sizeof(r->why), "scan failed: %s", err);
		len = api_json_error(r->out, sizeof(r->out), err);
		return post_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", r->out, len);
	}
	if (route_v3(r->route))
		return answer_v3(r);
	res = upload_result(r->up, 0);
	/* The upload policy blocks a clean file as libclamav reports its heuristics (Policy.Type.X);
	 * malware keeps the engine's name. */
	pol = res->verdict == SCAN_CLEAN ? upload_blocked(r->up, 0) : NULL;
	if (r->route->route == API_SCAN_LEGACY) {
		text = api_text_legacy(res->verdict != SCAN_CLEAN || pol != NULL);
		return post_reply(r, MHD_HTTP_OK, "text/plain; charset=utf-8", text, strlen(text));
	}
	len = api_json_scan(r->out, sizeof(r->out), res->verdict == SCAN_MALWARE || pol != NULL,
	    res->verdict == SCAN_MALWARE ? res->reason : pol != NULL ? pol->reason : NULL,
	    res->seconds);
	return post_reply(r, MHD_HTTP_OK, "application/json", r->out, len);
}

/* The whole body is in: check the multipart framing, then hand the upload to a scan thread. */
enum MHD_Result
request_complete(struct request *r)
{
	struct server *srv = r->srv;
	unsigned files;

	if (r->mp != NULL && multipart_finish(r->mp) != 0) {
		if (route_v3(r->route))		/* /v3 says what is wrong */
			request_refuse_json(r, MHD_HTTP_BAD_REQUEST,
			    "the multipart body has no closing boundary");
		else
			request_refuse(r, MHD_HTTP_BAD_REQUEST, &canned_for(srv, r->route)->single_file,
			    "multipart/form-data body without its closing boundary");
		return post_answer(r, MHD_HTTP_BAD_REQUEST, r->answer);
	}
	/* A v2 upload took the first file part only; the others were counted. */
	files = r->mp == NULL || route_v3(r->route) ? upload_count(r->up) :
	    multipart_file_count(r->mp);
	if (files == 0 || (files > 1 && !route_v3(r->route))) {
		request_refuse(r, MHD_HTTP_BAD_REQUEST, &canned_for(srv, r->route)->single_file,
		    files == 0 ? "multipart/form-data body without a file part" :
		    "multipart/form-data body with more than one file part");
		return post_answer(r, MHD_HTTP_BAD_REQUEST, r->answer);
	}
	/* A v2 upload's file is named by its part once parsed (the upload policy's extension rule). */
	if (r->mp != NULL && !route_v3(r->route) &&
	    upload_name_first(r->up, multipart_filename(r->mp)) != 0) {
		request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR, &canned_for(srv, r->route)->internal,
		    "out of memory for an upload");
		return post_answer(r, MHD_HTTP_INTERNAL_SERVER_ERROR, r->answer);
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
