/* server_log.c -- the access log: one line per request, written when it ends. */
#include "server_priv.h"

#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "log.h"
#include "multipart.h"
#include "scanner.h"
#include "upload.h"
#include "util.h"

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

void
server_log_request(struct request *r, enum MHD_RequestTerminationCode toe)
{
	/* A v2 upload's one file is logged with its digest and signature; /v3 answers name them. */
	const struct scan_result *res = r->scanned && !route_v3(r->route) ?
	    upload_result(r->up, 0) : NULL;
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
	for (size_t i = 0; res != NULL && res->hashed && i < SCANNER_DIGEST_LEN; i++)
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
		.sha256 = res != NULL && res->hashed ? sha : NULL,
		.verdict = r->scanned ? upload_verdict(r->up) : NULL,
		.signature = res != NULL && res->verdict == SCAN_MALWARE ? res->reason : NULL,
		.error = ok ? (r->why[0] ? r->why : NULL) : ended_why(r, toe),
	};
	log_access(&a);
}
