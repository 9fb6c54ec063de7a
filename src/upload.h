/* upload.h -- the upload model, one for both API versions: the files of a request (a v2 request is
 * an upload of one file, /v3 has up to MAX_FILES_PER_REQUEST), each streamed into its own body and
 * scanned one after the other (for /v3 with every match and where in the archive it was found,
 * hashes and types). api.c writes the answers from it. No HTTP library types here:
 * server_request.c feeds bytes in, server_scan.c scans and answers.
 * Functions returning int return 0 on success and -1 on failure, unless said otherwise. */
#ifndef CLAMREST_UPLOAD_H
#define CLAMREST_UPLOAD_H

#include <stddef.h>

#include "metrics.h"

struct scanner;
struct scan_detail;
struct upload;
struct scan_result;
struct scan_kinds;
struct filepolicy_verdict;

/* How an upload's files are scanned: for the verdict alone (a v2 request, an upload of one file),
 * or with every match placed and the file's type (/v3), first match or all of them. */
enum upload_scan {
	UPLOAD_SCAN_VERDICT,
	UPLOAD_SCAN_DETAIL,
	UPLOAD_SCAN_ALL_MATCHES,
};

/* An empty upload of at most max files, each body spilling past spill bytes into tmpdir (borrowed:
 * it must outlive the upload); every body counts in the process-wide BODY_MEMORY and BODY_DISK
 * budgets (body.h). Caller owns the result; NULL when out of memory. */
struct upload *upload_new(unsigned max, size_t spill, const char *tmpdir, enum upload_scan how);
void upload_free(struct upload *u);
/* The front the upload came through (METRICS_HTTP, METRICS_ICAP): the label protocol of its scans
 * in the metrics. The HTTP side and the ICAP side each set theirs. */
void upload_set_protocol(struct upload *u, enum metrics_protocol protocol);
/* Forgets every file (an upload refused midway: its bytes are dropped). */
void upload_reset(struct upload *u);

/* Starts the next file: filename (NULL: none, as in /v3/scan-chunked) and the form field's name,
 * neither NUL-terminated. -1 with errno E2BIG past max files, ENOMEM when out of memory. */
int upload_begin(struct upload *u, const char *filename, size_t flen, const char *field,
    size_t nlen);
/* Appends to the current file; body_append's answer (0, -1 with errno, BODY_FULL). */
int upload_append(struct upload *u, const char *data, size_t len);
unsigned upload_count(const struct upload *u);

/* Scans the next file not scanned yet (the caller hands the rest to the scan queue again, so
 * another client's scan can go between two files). The files of one upload share max_seconds of
 * scanning (MAX_SCAN_TIME; 0: no limit): a file scanned once they are spent stops at its next
 * layer, and the files after it are not scanned but answered as cut at MAX_SCAN_TIME. 1 while
 * files remain, 0 once the upload is done (a failed file ends it: the rest is not scanned). */
int upload_scan_next(struct upload *u, struct scanner *sc, double max_seconds);
/* The upload will not be scanned further (shutting down): the next file fails with reason. */
void upload_fail(struct upload *u, const char *reason);
/* The reason of the first file whose scan failed (the request is then answered 500), else NULL. */
const char *upload_error(const struct upload *u);
/* 1 when a file could not be scanned because a low-memory reload had no engine (the request is
 * then answered 503), with the seconds the reload is expected to take yet in *retry. */
int upload_unavailable(const struct upload *u, unsigned *retry);
/* The result of file i (< upload_count), as far as it was scanned (verdict CLEAN before). */
const struct scan_result *upload_result(const struct upload *u, unsigned i);
/* 1 when any file is malware. */
int upload_malware(const struct upload *u);
/* Whose upload it is (the basic-auth user; NULL or "": none): their POLICY_FILE policy applies. */
int upload_set_user(struct upload *u, const char *user);
/* A v2 upload's one file gets its name once the multipart body is parsed (the first file part's
 * filename; the upload policy's extension rule reads it). A file that has a name keeps it. */
int upload_name_first(struct upload *u, const char *name);
/* What the upload policy said of file i when it blocks it (not in report mode), else NULL. A
 * blocked file that the engine found clean is answered malware by v2 with the policy's reason. */
const struct filepolicy_verdict *upload_blocked(const struct upload *u, unsigned i);
/* The access log's labels.verdict for the whole request: "error" when a scan failed (the answer
 * is 500), else "malware" when any file is, else "blocked" when the upload policy blocks one,
 * else "clean". */
const char *upload_verdict(const struct upload *u);

/* File i of an upload (< upload_count) as its answer reports it; the pointers are into u. */
struct upload_file_info {
	const char *name;		/* the filename; NULL: none (chunked) */
	size_t namelen;
	const char *field;		/* the form field's name */
	size_t fieldlen;
	const struct scan_result *res;	/* verdict CLEAN before it is scanned */
	const struct scan_detail *det;	/* matches and type: a detailed scan's only */
	const struct scan_kinds *kinds;	/* with an upload policy in force: every kind of layer */
	const struct filepolicy_verdict *policy;	/* and what it said; NULL: no policy */
	const char *policy_name;
};
void upload_file(const struct upload *u, unsigned i, struct upload_file_info *f);
/* The bodies stay after their scan (they are given back at upload_free), for upload_body. */
void upload_keep(struct upload *u);
/* The bytes of file i (< upload_count), to be sent back (ICAP's echo of a clean message; with
 * upload_keep, else empty once scanned); NULL past the count. */
struct body;
const struct body *upload_body(const struct upload *u, unsigned i);
/* Seconds every scan of the upload took together. */
double upload_seconds(const struct upload *u);

#endif
