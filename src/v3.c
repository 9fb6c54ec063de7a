/* v3.c -- the /v3 API: uploads of several files, detailed scans, and their JSON answers. */
#include "v3.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "metrics.h"
#include "scanner.h"
#include "util.h"

#define V3_FLOAT_MAX	32	/* bytes of a time in seconds as written */
#define V3_OUT_INITIAL	4096	/* bytes of an answer's first buffer: one file's answer fits */

struct v3_file {
	struct body *body;
	char *name;			/* the filename; NULL: none (chunked) */
	size_t namelen;
	char *field;			/* the form field's name */
	size_t fieldlen;
	struct scan_result res;
	struct scan_detail det;
	int scanned;
};

struct v3_upload {
	struct v3_file *files;		/* cap of them, grown as files begin, up to max */
	unsigned max, n, cap;
	unsigned next;			/* the first file not scanned yet (v3_upload_scan_next) */
	size_t spill;
	const char *tmpdir;
	int all_matches;
	double seconds;			/* every scan of the upload together */
};

/* Percent-decodes s[0..len) into out (room for len bytes); returns the decoded length. */
static size_t
v3_pct_decode(const char *s, size_t len, char *out)
{
	size_t o = 0;
	int hi, lo;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && (hi = util_hex_digit(s[i + 1])) >= 0 &&
		    (lo = util_hex_digit(s[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[o++] = s[i] == '+' ? ' ' : s[i];
	}
	return o;
}

/* 1 when s[0..len), percent-decoded, is lit (compared as asked: case or not). */
static int
v3_pct_eq(const char *s, size_t len, const char *lit, int nocase)
{
	char buf[32];
	size_t n;

	if (len > sizeof(buf))
		return 0;
	n = v3_pct_decode(s, len, buf);
	if (n != strlen(lit))
		return 0;
	return nocase ? strncasecmp(buf, lit, n) == 0 : memcmp(buf, lit, n) == 0;
}

int
v3_query_all_matches(const char *q, size_t len)
{
	const char *end = q + len, *amp, *eq;

	while (q < end) {
		amp = memchr(q, '&', (size_t)(end - q));
		if (amp == NULL)
			amp = end;
		eq = memchr(q, '=', (size_t)(amp - q));
		if (v3_pct_eq(q, (size_t)((eq != NULL ? eq : amp) - q), "all_matches", 0)) {
			if (eq == NULL)
				return -1;
			if (v3_pct_eq(eq + 1, (size_t)(amp - eq - 1), "true", 1))
				return 1;
			if (v3_pct_eq(eq + 1, (size_t)(amp - eq - 1), "false", 1))
				return 0;
			return -1;
		}
		q = amp + 1;
	}
	return 0;
}

/* Every canonical form is shorter than the shortest query naming all_matches ("all_matches"). */
void
v3_query_canon(char *q)
{
	const char *canon;
	size_t len = strlen(q);

	if (len == 0)
		return;
	switch (v3_query_all_matches(q, len)) {
	case 1:
		canon = V3_ARG_TRUE;
		break;
	case -1:
		canon = V3_ARG_BAD;
		break;
	default:
		/* false and absent alike: nothing to read. */
		canon = "";
		break;
	}
	if (strlen(canon) <= len)
		memcpy(q, canon, strlen(canon) + 1);
	else
		q[0] = '\0';
}

struct v3_upload *
v3_upload_new(unsigned max, size_t spill, const char *tmpdir, int all_matches)
{
	struct v3_upload *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->max = max;
	u->spill = spill;
	u->tmpdir = tmpdir;
	u->all_matches = all_matches;
	return u;
}

void
v3_upload_reset(struct v3_upload *u)
{
	if (u == NULL)
		return;
	for (unsigned i = 0; i < u->n; i++) {
		struct v3_file *f = &u->files[i];

		body_free(f->body);
		free(f->name);
		free(f->field);
		scanner_detail_free(&f->det);
		memset(f, 0, sizeof(*f));
	}
	u->n = 0;
	u->next = 0;
	u->seconds = 0;
}

void
v3_upload_free(struct v3_upload *u)
{
	if (u == NULL)
		return;
	v3_upload_reset(u);
	free(u->files);
	free(u);
}

static char *
v3_dup(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

int
v3_upload_begin(struct v3_upload *u, const char *filename, size_t flen, const char *field,
    size_t nlen)
{
	struct v3_file *f;

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
	f->name = filename != NULL ? v3_dup(filename, flen) : NULL;
	f->namelen = flen;
	f->field = v3_dup(field, nlen);
	f->fieldlen = nlen;
	u->n++;		/* counted at once, so reset frees what was taken */
	if (f->body == NULL || f->field == NULL || (filename != NULL && f->name == NULL)) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
v3_upload_append(struct v3_upload *u, const char *data, size_t len)
{
	if (u->n == 0) {	/* a caller's mistake: no file begun */
		errno = EINVAL;
		return -1;
	}
	return body_append(u->files[u->n - 1].body, data, len);
}

unsigned
v3_upload_count(const struct v3_upload *u)
{
	return u->n;
}

static void
v3_scan_file(struct v3_upload *u, struct v3_file *f, struct scanner *sc, double deadline)
{
	unsigned char digest[BODY_DIGEST_LEN];
	struct scan_request q = { .detail = &f->det, .all_matches = u->all_matches,
	    .deadline = deadline };

	/* The digest was computed as the part arrived: the scanner does not hash it again. */
	q.digest = body_digest(f->body, digest) == 0 ? digest : NULL;
	q.data = body_mem(f->body, &q.len);
	q.fd = q.data != NULL ? -1 : body_fd(f->body);
	scanner_scan(sc, &q, &f->res);
	f->scanned = 1;
	metrics_scan(f->res.verdict == SCAN_ERROR ? METRICS_ERROR :
	    f->res.limit_exceeded ? METRICS_LIMITS_EXCEEDED :
	    f->res.verdict == SCAN_MALWARE ? METRICS_MALWARE : METRICS_CLEAN,
	    f->res.seconds, f->res.bytes);
	/* Its memory and temporary file go back to the budgets before the next file is scanned. */
	body_reset(f->body);
}

void
v3_upload_scan(struct v3_upload *u, struct scanner *sc)
{
	while (v3_upload_scan_next(u, sc, 0) == 1)
		;
}

int
v3_upload_scan_next(struct v3_upload *u, struct scanner *sc, double max_seconds)
{
	struct v3_file *f;
	double t0 = util_now();

	if (u->next >= u->n)
		return 0;
	f = &u->files[u->next++];
	if (max_seconds > 0 && u->seconds >= max_seconds) {
		/* The upload's MAX_SCAN_TIME is spent: this file is cut before its first byte. */
		scanner_skipped(sc, SCANNER_LIMIT_TIME, &f->det, &f->res);
		f->scanned = 1;
		metrics_scan(f->res.limit_exceeded ? METRICS_LIMITS_EXCEEDED : METRICS_CLEAN, 0, 0);
		body_reset(f->body);
		return u->next < u->n;
	}
	v3_scan_file(u, f, sc, max_seconds > 0 ? t0 + max_seconds - u->seconds : 0);
	u->seconds += util_now() - t0;
	/* One failure decides the answer (500): the rest is not scanned. */
	if (f->res.verdict == SCAN_ERROR) {
		u->next = u->n;
		return 0;
	}
	return u->next < u->n;
}

void
v3_upload_fail(struct v3_upload *u, const char *reason)
{
	struct v3_file *f;

	if (u->next >= u->n)
		return;
	f = &u->files[u->next];
	f->res = (struct scan_result){ .verdict = SCAN_ERROR };
	snprintf(f->res.reason, sizeof(f->res.reason), "%s", reason);
	f->scanned = 1;
	u->next = u->n;
}

const char *
v3_upload_error(const struct v3_upload *u)
{
	for (unsigned i = 0; i < u->n; i++)
		if (u->files[i].scanned && u->files[i].res.verdict == SCAN_ERROR)
			return u->files[i].res.reason;
	return NULL;
}

int
v3_upload_malware(const struct v3_upload *u)
{
	for (unsigned i = 0; i < u->n; i++)
		if (u->files[i].scanned && u->files[i].res.verdict == SCAN_MALWARE)
			return 1;
	return 0;
}

int
v3_upload_unavailable(const struct v3_upload *u, unsigned *retry)
{
	for (unsigned i = 0; i < u->n; i++)
		if (u->files[i].scanned && u->files[i].res.unavailable) {
			*retry = u->files[i].res.retry_after;
			return 1;
		}
	return 0;
}

const char *
v3_upload_verdict(const struct v3_upload *u)
{
	return v3_upload_error(u) != NULL ? "error" : v3_upload_malware(u) ? "malware" : "clean";
}

/* The answer under construction; failed once memory ran out (and stays so). */
struct v3_out {
	char *p;
	size_t len, cap;
	int failed;
};

static int
v3_reserve(struct v3_out *o, size_t more)
{
	size_t cap = o->cap != 0 ? o->cap : V3_OUT_INITIAL;
	char *p;

	if (o->failed)
		return -1;
	if (more > SIZE_MAX / 4 - o->len)
		goto fail;
	while (cap < o->len + more + 1)
		cap *= 2;
	if (cap == o->cap)
		return 0;
	if ((p = realloc(o->p, cap)) == NULL)
		goto fail;
	o->p = p;
	o->cap = cap;
	return 0;
fail:
	o->failed = 1;
	return -1;
}

static void
v3_put(struct v3_out *o, const char *s)
{
	size_t n = strlen(s);

	if (v3_reserve(o, n) != 0)
		return;
	memcpy(o->p + o->len, s, n + 1);
	o->len += n;
}

/* A JSON string of s[0..len), escaped as api.c escapes (ASCII only; bytes that are not UTF-8, and
 * so any invalid file name, become \ufffd). */
static void
v3_put_str(struct v3_out *o, const char *s, size_t len)
{
	/* Any input byte takes at most 12 output bytes (util.h), plus the quotes and the NUL. */
	if (len > SIZE_MAX / 16 || v3_reserve(o, len * 12 + 3) != 0)
		return;
	if (util_json_str_ascii(o->p, o->cap, &o->len, s, len) != 0)
		o->failed = 1;
}

/* Seconds to the microsecond: one snprintf, where api_py_float's shortest round trip (v2's
 * contract) tries up to 17 precisions, each with a strtod, and cost v3 a measurable share of an
 * EICAR answer (make bench, v3 against v2). */
static void
v3_put_float(struct v3_out *o, double v)
{
	char t[V3_FLOAT_MAX];

	if (!(v >= 0 && v < 1e9))
		v = 0;
	snprintf(t, sizeof(t), "%.6f", v);
	v3_put(o, t);
}

static void
v3_put_num(struct v3_out *o, unsigned long long v)
{
	char t[32];

	snprintf(t, sizeof(t), "%llu", v);
	v3_put(o, t);
}

/* The upload's own element of every path: its filename, else its field name, else "-". */
static void
v3_put_top(struct v3_out *o, const struct v3_file *f)
{
	if (f->name != NULL && f->namelen > 0)
		v3_put_str(o, f->name, f->namelen);
	else if (f->fieldlen > 0)
		v3_put_str(o, f->field, f->fieldlen);
	else
		v3_put(o, "\"-\"");
}

/* {"path":["top","member",...],"signature":"..."} */
static void
v3_put_match(struct v3_out *o, const struct v3_file *f, const struct scan_match *m)
{
	const char *n = m->names;

	v3_put(o, "{\"path\":[");
	v3_put_top(o, f);
	for (unsigned i = 0; i < m->depth; i++) {
		size_t k = strlen(n);

		v3_put(o, ",");
		v3_put_str(o, n, k);
		n += k + 1;
	}
	v3_put(o, "],\"signature\":");
	v3_put_str(o, m->signature, strlen(m->signature));
	v3_put(o, "}");
}

static void
v3_put_sha256(struct v3_out *o, const struct scan_result *r)
{
	static const char digits[] = "0123456789abcdef";
	char hex[2 * SCANNER_DIGEST_LEN + 3];

	if (!r->hashed) {
		v3_put(o, "null");
		return;
	}
	hex[0] = '"';
	for (size_t i = 0; i < SCANNER_DIGEST_LEN; i++) {
		hex[1 + 2 * i] = digits[r->sha256[i] >> 4];
		hex[2 + 2 * i] = digits[r->sha256[i] & 0xf];
	}
	hex[2 * SCANNER_DIGEST_LEN + 1] = '"';
	hex[2 * SCANNER_DIGEST_LEN + 2] = '\0';
	v3_put(o, hex);
}

/* {"limits_exceeded":B,"malware":B,"matches":[...],"name":"..."|null,"sha256":"..."|null,
 * "size":N,"time":T,"type":"CL_TYPE_..."|null} */
static void
v3_put_file(struct v3_out *o, const struct v3_file *f)
{
	const struct scan_result *r = &f->res;

	v3_put(o, r->limit_exceeded || f->det.cut ? "{\"limits_exceeded\":true" :
	    "{\"limits_exceeded\":false");
	v3_put(o, r->verdict == SCAN_MALWARE ? ",\"malware\":true" : ",\"malware\":false");
	v3_put(o, ",\"matches\":[");
	for (unsigned i = 0; i < f->det.nmatches; i++) {
		if (i > 0)
			v3_put(o, ",");
		v3_put_match(o, f, &f->det.matches[i]);
	}
	v3_put(o, "],\"name\":");
	if (f->name != NULL)
		v3_put_str(o, f->name, f->namelen);
	else
		v3_put(o, "null");
	v3_put(o, ",\"sha256\":");
	v3_put_sha256(o, r);
	v3_put(o, ",\"size\":");
	v3_put_num(o, r->bytes);
	v3_put(o, ",\"time\":");
	v3_put_float(o, r->seconds);
	v3_put(o, ",\"type\":");
	if (f->det.type[0] != '\0')
		v3_put_str(o, f->det.type, strlen(f->det.type));
	else
		v3_put(o, "null");
	v3_put(o, "}");
}

char *
v3_upload_json(const struct v3_upload *u, const struct v3_engine *e, size_t *len)
{
	struct v3_out o = { 0 };

	v3_put(&o, "{\"engine\":{\"database\":");
	if (e->database >= 0)
		v3_put_num(&o, (unsigned long long)e->database);
	else
		v3_put(&o, "null");
	v3_put(&o, ",\"libclamav\":");
	v3_put_str(&o, e->libclamav, strlen(e->libclamav));
	v3_put(&o, "},\"files\":[");
	for (unsigned i = 0; i < u->n; i++) {
		if (i > 0)
			v3_put(&o, ",");
		v3_put_file(&o, &u->files[i]);
	}
	v3_put(&o, v3_upload_malware(u) ? "],\"malware\":true" : "],\"malware\":false");
	v3_put(&o, ",\"time\":");
	v3_put_float(&o, u->seconds);
	v3_put(&o, "}\n");
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}
