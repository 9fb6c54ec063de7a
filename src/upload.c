/* upload.c -- the upload model: the files of a request (one for v2, up to MAX_FILES_PER_REQUEST for
 * /v3), each streamed into its own body and scanned in turn, one file per call. */
#include "upload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "filepolicy.h"
#include "filepolicy_file.h"
#include "log.h"
#include "metrics.h"
#include "scanner.h"
#include "util.h"

struct upload_file {
	struct body *body;
	char *name;			/* the filename; NULL: none (chunked) */
	size_t namelen;
	char *field;			/* the form field's name */
	size_t fieldlen;
	struct scan_result res;
	struct scan_detail det;
	int scanned;
	/* The upload policy's stage: the kinds of layers the scan met and what the policy said. */
	int judged;			/* a policy was in force: kinds and pol hold its answer */
	struct scan_kinds kinds;
	struct filepolicy_verdict pol;
	char polname[64];
};

struct upload {
	struct upload_file *files;		/* cap of them, grown as files begin, up to max */
	unsigned max, n, cap;
	unsigned next;			/* the first file not scanned yet (upload_scan_next) */
	size_t spill;
	const char *tmpdir;
	enum upload_scan how;
	double seconds;			/* every scan of the upload together */
	char *user;			/* whose upload it is, for the policy; NULL: none */
	int keep;			/* bodies kept after their scan (upload_keep) */
	enum metrics_protocol protocol;	/* the front it came through, for the scan metrics */
};

struct upload *
upload_new(unsigned max, size_t spill, const char *tmpdir, enum upload_scan how)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->max = max;
	u->spill = spill;
	u->tmpdir = tmpdir;
	u->how = how;
	u->protocol = METRICS_HTTP;
	return u;
}

void
upload_set_protocol(struct upload *u, enum metrics_protocol protocol)
{
	u->protocol = protocol;
}

void
upload_reset(struct upload *u)
{
	if (u == NULL)
		return;
	for (unsigned i = 0; i < u->n; i++) {
		struct upload_file *f = &u->files[i];

		body_free(f->body);
		free(f->name);
		free(f->field);
		scanner_detail_free(&f->det);
		scanner_kinds_free(&f->kinds);
		memset(f, 0, sizeof(*f));
	}
	u->n = 0;
	u->next = 0;
	u->seconds = 0;
}

void
upload_free(struct upload *u)
{
	if (u == NULL)
		return;
	upload_reset(u);
	free(u->user);
	free(u->files);
	free(u);
}

static char *
upload_dup(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

int
upload_begin(struct upload *u, const char *filename, size_t flen, const char *field,
    size_t nlen)
{
	struct upload_file *f;

	if (u->n == u->max) {
		errno = E2BIG;
		return -1;
	}
	if (u->n == u->cap) {
		unsigned cap = u->cap == 0 ? 1 : u->cap * 2 > u->max ? u->max : u->cap * 2;

		if ((f = realloc(u->files, cap * sizeof(*f))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		u->files = f;
		u->cap = cap;
	}
	f = &u->files[u->n];
	memset(f, 0, sizeof(*f));
	f->body = body_new(u->spill, u->tmpdir);
	f->name = filename != NULL ? upload_dup(filename, flen) : NULL;
	f->namelen = flen;
	f->field = upload_dup(field, nlen);
	f->fieldlen = nlen;
	u->n++;		/* counted at once, so reset frees what was taken */
	if (f->body == NULL || f->field == NULL || (filename != NULL && f->name == NULL)) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
upload_append(struct upload *u, const char *data, size_t len)
{
	if (u->n == 0) {	/* a caller's mistake: no file begun */
		errno = EINVAL;
		return -1;
	}
	return body_append(u->files[u->n - 1].body, data, len);
}

unsigned
upload_count(const struct upload *u)
{
	return u->n;
}

int
upload_set_user(struct upload *u, const char *user)
{
	free(u->user);
	u->user = user != NULL ? strdup(user) : NULL;
	return user != NULL && u->user == NULL ? -1 : 0;
}

int
upload_name_first(struct upload *u, const char *name)
{
	struct upload_file *f;

	if (u->n == 0 || name == NULL || u->files[0].name != NULL)
		return 0;
	f = &u->files[0];
	if ((f->name = strdup(name)) == NULL)
		return -1;
	f->namelen = strlen(name);
	return 0;
}

/* The policy stage, after the scan: the file's kinds of layers judged by its user's policy. A
 * policy never makes malware clean: the engine's verdict stays in res; the v2 answer of a blocked
 * clean file is written from pol (upload_blocked). */
static void
upload_judge(struct upload *u, struct upload_file *f)
{
	const struct filepolicy_verdict *v = &f->pol;

	filepolicy_file_judge(u->user, &f->kinds, f->name, f->namelen, &f->pol, f->polname,
	    sizeof(f->polname));
	f->judged = 1;
	if (!v->matched)
		return;
	log_info("upload policy %s: rule %s %s (%s, %s, at depth %u)%s", f->polname, v->rule,
	    v->blocked ? "blocks" : "would block (POLICY_MODE=report)", v->reason,
	    v->type[0] != '\0' ? v->type : "-", v->kind != NULL ? v->kind->depth : 0,
	    f->res.verdict == SCAN_MALWARE ? "; the engine's verdict, malware, stands" : "");
	if (v->blocked)
		metrics_policy_blocked(v->rule);
	else
		metrics_policy_reported(v->rule);	/* matched: POLICY_MODE=report */
}

static void
upload_scan_file(struct upload *u, struct upload_file *f, struct scanner *sc, double deadline)
{
	unsigned char digest[BODY_DIGEST_LEN];
	/* A verdict alone (v2) needs no layer tracking: the plain scans are cheaper, and their verdict
	 * rules are the detailed ones'. The deadline, like the detail, is the detailed scans' only. */
	struct scan_request q = {
		.fd = -1,
		.detail = u->how == UPLOAD_SCAN_VERDICT ? NULL : &f->det,
		.all_matches = u->how == UPLOAD_SCAN_ALL_MATCHES,
		.deadline = u->how == UPLOAD_SCAN_VERDICT ? 0 : deadline,
	};

	_Static_assert(BODY_DIGEST_LEN == SCANNER_DIGEST_LEN, "one SHA-256 for both");
	/* The digest was computed as the part arrived: the scanner does not hash it again. */
	q.digest = body_digest(f->body, digest) == 0 ? digest : NULL;
	q.data = body_mem(f->body, &q.len);
	if (q.data == NULL)
		q.fd = body_fd(f->body);
	q.kinds = filepolicy_file_active() ? &f->kinds : NULL;
	scanner_scan(sc, &q, &f->res);
	f->scanned = 1;
	if (q.kinds != NULL && f->res.verdict != SCAN_ERROR)
		upload_judge(u, f);
	metrics_scan(u->protocol, f->res.verdict == SCAN_ERROR ? METRICS_ERROR :
	    f->res.limit_exceeded ? METRICS_LIMITS_EXCEEDED :
	    f->res.verdict == SCAN_MALWARE ? METRICS_MALWARE : METRICS_CLEAN,
	    f->res.seconds, f->res.bytes);
	/* Its memory and temporary file go back to the budgets before the next file is scanned. */
	if (!u->keep)
		body_reset(f->body);
}

int
upload_scan_next(struct upload *u, struct scanner *sc, double max_seconds)
{
	struct upload_file *f;
	double t0 = util_now();

	if (u->next >= u->n)
		return 0;
	f = &u->files[u->next++];
	if (max_seconds > 0 && u->seconds >= max_seconds) {
		/* The upload's MAX_SCAN_TIME is spent: this file is cut before its first byte. */
		scanner_skipped(sc, SCANNER_LIMIT_TIME, &f->det, &f->res);
		f->scanned = 1;
		if (filepolicy_file_active())
			upload_judge(u, f);	/* nothing seen: not accepted by a type rule */
		metrics_scan(u->protocol, f->res.limit_exceeded ? METRICS_LIMITS_EXCEEDED : METRICS_CLEAN,
		    0, 0);
		body_reset(f->body);
		return u->next < u->n;
	}
	upload_scan_file(u, f, sc, max_seconds > 0 ? t0 + max_seconds - u->seconds : 0);
	u->seconds += util_now() - t0;
	/* One failure decides the answer (500): the rest is not scanned. */
	if (f->res.verdict == SCAN_ERROR) {
		u->next = u->n;
		return 0;
	}
	return u->next < u->n;
}

void
upload_fail(struct upload *u, const char *reason)
{
	struct upload_file *f;

	if (u->next >= u->n)
		return;
	f = &u->files[u->next];
	f->res = (struct scan_result){ .verdict = SCAN_ERROR };
	snprintf(f->res.reason, sizeof(f->res.reason), "%s", reason);
	f->scanned = 1;
	u->next = u->n;
}

const char *
upload_error(const struct upload *u)
{
	for (unsigned i = 0; i < u->n; i++)
		if (u->files[i].scanned && u->files[i].res.verdict == SCAN_ERROR)
			return u->files[i].res.reason;
	return NULL;
}

const struct scan_result *
upload_result(const struct upload *u, unsigned i)
{
	return &u->files[i].res;
}

int
upload_malware(const struct upload *u)
{
	for (unsigned i = 0; i < u->n; i++)
		if (u->files[i].scanned && u->files[i].res.verdict == SCAN_MALWARE)
			return 1;
	return 0;
}

int
upload_unavailable(const struct upload *u, unsigned *retry)
{
	for (unsigned i = 0; i < u->n; i++)
		if (u->files[i].scanned && u->files[i].res.unavailable) {
			*retry = u->files[i].res.retry_after;
			return 1;
		}
	return 0;
}

const struct filepolicy_verdict *
upload_blocked(const struct upload *u, unsigned i)
{
	const struct upload_file *f = &u->files[i];

	return f->scanned && f->judged && f->pol.blocked ? &f->pol : NULL;
}

const char *
upload_verdict(const struct upload *u)
{
	if (upload_error(u) != NULL)
		return "error";
	if (upload_malware(u))
		return "malware";
	for (unsigned i = 0; i < u->n; i++)
		if (upload_blocked(u, i) != NULL)
			return "blocked";
	return "clean";
}

void
upload_file(const struct upload *u, unsigned i, struct upload_file_info *fi)
{
	const struct upload_file *f = &u->files[i];

	*fi = (struct upload_file_info){ .name = f->name, .namelen = f->namelen, .field = f->field,
	    .fieldlen = f->fieldlen, .res = &f->res, .det = &f->det,
	    .kinds = f->judged ? &f->kinds : NULL, .policy = f->judged ? &f->pol : NULL,
	    .policy_name = f->polname };
}

double
upload_seconds(const struct upload *u)
{
	return u->seconds;
}

void
upload_keep(struct upload *u)
{
	u->keep = 1;
}

const struct body *
upload_body(const struct upload *u, unsigned i)
{
	return i < u->n ? u->files[i].body : NULL;
}
