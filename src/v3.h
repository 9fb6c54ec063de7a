/* v3.h -- the upload model, one for both API versions: the files of a request (a v2 request is an
 * upload of one file, /v3 has up to MAX_FILES_PER_REQUEST), each streamed into its own body and
 * scanned one after the other (for /v3 with every match and where in the archive it was found,
 * hashes and types); and the /v3 query. api.c writes the answers from it. No HTTP library types
 * here: server_request.c feeds bytes in, server_scan.c scans and answers.
 * Functions returning int return 0 on success and -1 on failure, unless said otherwise. */
#ifndef CLAMREST_V3_H
#define CLAMREST_V3_H

#include <stddef.h>

struct scanner;
struct scan_detail;

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

struct v3_upload;
struct scan_result;

/* How an upload's files are scanned: for the verdict alone (a v2 request, an upload of one file),
 * or with every match placed and the file's type (/v3), first match or all of them. */
enum v3_scan {
	V3_SCAN_VERDICT,
	V3_SCAN_DETAIL,
	V3_SCAN_ALL_MATCHES,
};

/* An empty upload of at most max files, each body spilling past spill bytes into tmpdir (borrowed:
 * it must outlive the upload); every body counts in the process-wide BODY_MEMORY and BODY_DISK
 * budgets (body.h). Caller owns the result; NULL when out of memory. */
struct v3_upload *v3_upload_new(unsigned max, size_t spill, const char *tmpdir, enum v3_scan how);
void v3_upload_free(struct v3_upload *u);
/* Forgets every file (an upload refused midway: its bytes are dropped). */
void v3_upload_reset(struct v3_upload *u);

/* Starts the next file: filename (NULL: none, as in /v3/scan-chunked) and the form field's name,
 * neither NUL-terminated. -1 with errno E2BIG past max files, ENOMEM when out of memory. */
int v3_upload_begin(struct v3_upload *u, const char *filename, size_t flen, const char *field,
    size_t nlen);
/* Appends to the current file; body_append's answer (0, -1 with errno, BODY_FULL). */
int v3_upload_append(struct v3_upload *u, const char *data, size_t len);
unsigned v3_upload_count(const struct v3_upload *u);

/* Scans every file in order, on the scan thread; the bodies are given back as each is done. */
void v3_upload_scan(struct v3_upload *u, struct scanner *sc);
/* Scans the next file not scanned yet (the caller hands the rest to the scan queue again, so
 * another client's scan can go between two files). The files of one upload share max_seconds of
 * scanning (MAX_SCAN_TIME; 0: no limit): a file scanned once they are spent stops at its next
 * layer, and the files after it are not scanned but answered as cut at MAX_SCAN_TIME. 1 while
 * files remain, 0 once the upload is done (a failed file ends it: the rest is not scanned). */
int v3_upload_scan_next(struct v3_upload *u, struct scanner *sc, double max_seconds);
/* The upload will not be scanned further (shutting down): the next file fails with reason. */
void v3_upload_fail(struct v3_upload *u, const char *reason);
/* The reason of the first file whose scan failed (the request is then answered 500), else NULL. */
const char *v3_upload_error(const struct v3_upload *u);
/* 1 when a file could not be scanned because a low-memory reload had no engine (the request is
 * then answered 503), with the seconds the reload is expected to take yet in *retry. */
int v3_upload_unavailable(const struct v3_upload *u, unsigned *retry);
/* The result of file i (< v3_upload_count), as far as it was scanned (verdict CLEAN before). */
const struct scan_result *v3_upload_result(const struct v3_upload *u, unsigned i);
/* 1 when any file is malware. */
int v3_upload_malware(const struct v3_upload *u);
/* The access log's labels.verdict for the whole request: "error" when a scan failed (the answer
 * is 500), else "malware" when any file is, else "clean". */
const char *v3_upload_verdict(const struct v3_upload *u);

/* What the answer reports about the engine. */
struct v3_engine {
	const char *libclamav;
	long database;			/* daily version; -1: unknown */
};

/* File i of an upload (< v3_upload_count) as its answer reports it; the pointers are into u. */
struct v3_file_info {
	const char *name;		/* the filename; NULL: none (chunked) */
	size_t namelen;
	const char *field;		/* the form field's name */
	size_t fieldlen;
	const struct scan_result *res;	/* verdict CLEAN before it is scanned */
	const struct scan_detail *det;	/* matches and type: a detailed scan's only */
};
void v3_upload_file(const struct v3_upload *u, unsigned i, struct v3_file_info *f);
/* Seconds every scan of the upload took together. */
double v3_upload_seconds(const struct v3_upload *u);

#endif
