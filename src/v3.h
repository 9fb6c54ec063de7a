/* v3.h -- the /v3 API's own parts: its query (all_matches), the words of its refusals and what its
 * answer reports about the engine. A /v3 request is an upload (upload.h) of up to
 * MAX_FILES_PER_REQUEST files, scanned in detail; api.c writes its answer. */
#ifndef CLAMREST_V3_H
#define CLAMREST_V3_H

#include <stddef.h>

/* The query of a v3 request, as quirks_uri (server_quirks.c) leaves it for libmicrohttpd: one
 * parameter at most, so its parse (see the quirk there) stays cheap whatever the client sent. */
#define V3_ARG			"am"	/* the canonical parameter server_request.c looks up */
#define V3_ARG_TRUE		"am=1"
#define V3_ARG_FALSE		"am=0"
#define V3_ARG_BAD		"am=x"
#define V3_NO_FILE		"no file: send 1 to MAX_FILES_PER_REQUEST multipart/form-data parts " \
				"with a filename"
#define V3_BAD_ALL_MATCHES	"all_matches must be true or false"

/* Reads all_matches from a query string (without its '?', len bytes): 1 true, 0 false or absent,
 * -1 any other value. Names and values are percent-decoded; the values are true and false in any
 * case; the first all_matches counts, as in Flask's request.args.get; other parameters are
 * ignored. */
int v3_query_all_matches(const char *q, size_t len);
/* Rewrites a query string (NUL-terminated, without its '?') in place to the canonical V3_ARG_*
 * form, or to "" when it has no all_matches. */
void v3_query_canon(char *q);

/* What the answer reports about the engine. */
struct v3_engine {
	const char *libclamav;
	long database;			/* daily version; -1: unknown */
};

#endif
