/* api.h -- the HTTP contract of dit-clamav-rest, apart from the HTTP plumbing: the route table, paths
 * resolved as upstream's Werkzeug resolves them, and the JSON answers written byte for byte as
 * upstream's Flask jsonify writes them (sorted keys, compact separators, ASCII only, a final newline);
 * /v3's answers too, written from the same upload (upload.h) in the same style.
 * The api_json_* functions return the length written to out (NUL-terminated), 0 when it does not fit.
 */
#ifndef CLAMREST_API_H
#define CLAMREST_API_H

#include <stddef.h>
#include <time.h>

/* Allow, as upstream's: Werkzeug adds HEAD to GET rules and Flask OPTIONS to every rule. Upstream
 * lists them in the order of a Python set, which changes from process to process; ours is fixed. */
#define API_ALLOW_GET		"GET, HEAD, OPTIONS"
#define API_ALLOW_POST		"POST, OPTIONS"
#define API_PATH_MAX		256	/* bytes of a path we resolve; longer ones are not ours */

enum api_route {
	API_CHECK,
	API_VERSION,
	API_WARNING,
	API_METRICS,
	API_ABOUT,		/* /version: what this instance runs */
	API_SCAN,		/* /v2/scan: multipart, JSON answer */
	API_SCAN_CHUNKED,	/* /v2/scan-chunked: the body is the file */
	API_SCAN_LEGACY,	/* /scan: multipart, OK/NOTOK */
	API_V3_SCAN,		/* /v3/scan: multipart, 1..MAX_FILES_PER_REQUEST files (v3.h) */
	API_V3_SCAN_CHUNKED,	/* /v3/scan-chunked: the body is the file (v3.h) */
};

struct api_route_def {
	const char *path;
	enum api_route route;
	int post;		/* 1: POST with auth and a body; 0: GET and HEAD */
	const char *allow;	/* the Allow header of OPTIONS and 405 answers */
};

enum api_resolve {
	API_NOT_FOUND,
	API_SERVE,		/* the path names a route (leading slashes merged, as Werkzeug does) */
	API_REDIRECT,		/* only with inner slashes merged: 308 to the merged path */
};

/* Resolves a request path. Werkzeug serves "//check" as "/check" (it strips leading slashes) and
 * redirects "/v2//scan" to "/v2/scan"; nothing else is matched. *rt is set unless API_NOT_FOUND;
 * with API_REDIRECT, merged holds the path to redirect to. */
enum api_resolve api_resolve(const char *path, const struct api_route_def **rt, char *merged,
    size_t mergedlen);

/* 1 when rt answers method (GET routes: GET and HEAD; POST routes: POST; all: OPTIONS). */
int api_method_allowed(const struct api_route_def *rt, const char *method);

/* {"clamd-actual":"N","clamd-required":"M","outdated":B,"service":"V"}\n: the versions are strings,
 * as upstream reads them from clamd and DNS; V is CONFIG_VERSION. */
size_t api_json_version(char *out, size_t len, long local, long remote, int outdated);
/* {"error":"...","service":"V"}\n */
size_t api_json_version_error(char *out, size_t len, const char *err);
/* What GET /version reports. */
struct api_about {
	const char *engine;		/* libclamav's version */
	long db_version;		/* daily database version; -1: none loaded yet */
	time_t db_time;			/* its build time; 0: unknown */
	unsigned signatures;
	int libclamav_patched;		/* the library is clamrest's patched build */
};

/* {"clamav":"E","clamrest":"V","database_build_time":"YYYY-MM-DDTHH:MM:SSZ","database_signatures":N,
 * "database_version":N,"libclamav_patched":B}\n; the database fields are null while none is loaded (the time also when
 * unknown). */
size_t api_json_about(char *out, size_t len, const struct api_about *a);
/* {"malware":B,"reason":"..." or null,"time":T}\n, T written as Python writes a float. */
size_t api_json_scan(char *out, size_t len, int malware, const char *reason, double seconds);
/* {"error":"..."}\n */
size_t api_json_error(char *out, size_t len, const char *err);
/* /scan's answer: OK for a clean file, NOTOK for a malware one. */
const char *api_text_legacy(int malware);

struct upload;
struct v3_engine;
/* A /v3 answer: {"engine":{...},"files":[...],"malware":B,"time":T}\n, keys sorted, compact, ASCII
 * only, as v2's. Caller owns the result (free); NULL when out of memory. */
char *api_json_v3(const struct upload *u, const struct v3_engine *e, size_t *len);

/* Writes v as Python's repr(float) does (shortest round trip; "1e-05", "0.5", "3.0"); v >= 0 and
 * finite. Returns the length, 0 when it does not fit. */
size_t api_py_float(char *out, size_t len, double v);

#endif
