/* api.c -- the HTTP contract: routes, Werkzeug's path rules, and every answer's bytes: v2's as
 * dit-clamav-rest's Flask writes them, /v3's from the same upload model. */
#include "api.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "filepolicy.h"
#include "scanner.h"
#include "upload.h"
#include "util.h"
#include "v3.h"

#define API_FLOAT_MAX	32	/* bytes of a float as Python writes it */
#define API_OUT_INITIAL	4096	/* bytes of a /v3 answer's first buffer: one file's answer fits */

static const struct api_route_def api_routes[] = {
	{ "/", API_CHECK, 0, API_ALLOW_GET },
	{ "/check", API_CHECK, 0, API_ALLOW_GET },
	{ "/check_version", API_VERSION, 0, API_ALLOW_GET },
	{ "/check_warning", API_WARNING, 0, API_ALLOW_GET },
	{ "/metrics", API_METRICS, 0, API_ALLOW_GET },
	{ "/version", API_ABOUT, 0, API_ALLOW_GET },
	{ "/v2/scan", API_SCAN, 1, API_ALLOW_POST },
	{ "/v2/scan-chunked", API_SCAN_CHUNKED, 1, API_ALLOW_POST },
	{ "/scan", API_SCAN_LEGACY, 1, API_ALLOW_POST },
	{ "/v3/scan", API_V3_SCAN, 1, API_ALLOW_POST },
	{ "/v3/scan-chunked", API_V3_SCAN_CHUNKED, 1, API_ALLOW_POST },
};

static const struct api_route_def *
api_find(const char *path)
{
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++)
		if (strcmp(path, api_routes[i].path) == 0)
			return &api_routes[i];
	return NULL;
}

/* Copies path with every run of slashes made one; -1 when it does not fit. */
static int
api_merge_slashes(const char *path, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *s = path; *s != '\0'; s++) {
		if (*s == '/' && o > 0 && out[o - 1] == '/')
			continue;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = *s;
	}
	out[o] = '\0';
	return 0;
}

/*
 * Werkzeug's MapAdapter.match builds "/" + path.lstrip("/"), so leading slashes never count; a
 * path that then matches no rule is merged (runs of slashes made one) and, when that matches, is
 * answered with a redirect to it (RequestRedirect, 308). A trailing slash matches nothing here.
 */
enum api_resolve
api_resolve(const char *path, const struct api_route_def **rt, char *merged, size_t mergedlen)
{
	while (path[0] == '/' && path[1] == '/')
		path++;
	if ((*rt = api_find(path)) != NULL)
		return API_SERVE;
	if (strstr(path, "//") == NULL || api_merge_slashes(path, merged, mergedlen) != 0)
		return API_NOT_FOUND;
	*rt = api_find(merged);
	return *rt != NULL ? API_REDIRECT : API_NOT_FOUND;
}

int
api_method_allowed(const struct api_route_def *rt, const char *method)
{
	if (strcmp(method, "OPTIONS") == 0)
		return 1;
	if (rt->post)
		return strcmp(method, "POST") == 0;
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Python's repr(float): the shortest digits that read back as v, in exponent form when the
 * decimal exponent is below -4 or at least 16, else positional with at least one fraction digit. */
size_t
api_py_float(char *out, size_t len, double v)
{
	char sci[API_FLOAT_MAX], digits[API_FLOAT_MAX];
	int prec = 17, exp10, nd = 0, n;
	size_t o = 0, need;
	char *e;

	if (!isfinite(v) || v < 0)
		return 0;
	/* Once some number of digits reads back as v, more do too (17 always do), so the fewest are
	 * found by bisection: at most 5 snprintf + strtod pairs per scan answer instead of 17. */
	for (int lo = 1, hi = 17; lo <= hi;) {
		int mid = (lo + hi) / 2;

		snprintf(sci, sizeof(sci), "%.*e", mid - 1, v);
		if (strtod(sci, NULL) == v) {
			prec = mid;
			hi = mid - 1;
		} else {
			lo = mid + 1;
		}
	}
	snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
	e = strchr(sci, 'e');
	exp10 = (int)strtol(e + 1, NULL, 10);	/* snprintf's own exponent: always valid */
	for (const char *s = sci; s < e; s++)
		if (*s != '.')
			digits[nd++] = *s;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	if (exp10 < -4 || exp10 >= 16) {
		n = snprintf(out, len, "%c%s%s" "e%c%02d", digits[0], nd > 1 ? "." : "", digits + 1,
		    exp10 < 0 ? '-' : '+', abs(exp10));
		return n > 0 && (size_t)n < len ? (size_t)n : 0;
	}
	/* "0." and zeros then the digits, or the digits (zeros up to the point) and a fraction. */
	need = exp10 < 0 ? (size_t)(1 - exp10 + nd) : (size_t)(nd > exp10 + 1 ? nd : exp10 + 1) + 2;
	if (need + 1 > len)
		return 0;
	if (exp10 < 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = -1; i > exp10; i--)
			out[o++] = '0';
		memcpy(out + o, digits, (size_t)nd);
		o += (size_t)nd;
	} else {
		for (int i = 0; i <= exp10; i++)
			out[o++] = i < nd ? digits[i] : '0';
		out[o++] = '.';
		if (nd > exp10 + 1) {
			memcpy(out + o, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
			o += (size_t)(nd - exp10 - 1);
		} else
			out[o++] = '0';
	}
	out[o] = '\0';
	return o;
}

/* Appends a literal; -1 when it does not fit (with room for the NUL). */
static int
api_put(char *out, size_t len, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (*pos + n + 1 > len)
		return -1;
	memcpy(out + *pos, s, n + 1);
	*pos += n;
	return 0;
}

static int
api_put_str(char *out, size_t len, size_t *pos, const char *s)
{
	return util_json_str_ascii(out, len, pos, s, strlen(s));
}

size_t
api_json_version(char *out, size_t len, long local, long remote, int outdated)
{
	char a[32], b[32];
	size_t pos = 0;

	snprintf(a, sizeof(a), "%ld", local);
	snprintf(b, sizeof(b), "%ld", remote);
	if (api_put(out, len, &pos, "{\"clamd-actual\":") || api_put_str(out, len, &pos, a) ||
	    api_put(out, len, &pos, ",\"clamd-required\":") || api_put_str(out, len, &pos, b) ||
	    api_put(out, len, &pos, outdated ? ",\"outdated\":true" : ",\"outdated\":false") ||
	    api_put(out, len, &pos, ",\"service\":") ||
	    api_put_str(out, len, &pos, CONFIG_VERSION) || api_put(out, len, &pos, "}\n"))
		return 0;
	return pos;
}

size_t
api_json_version_error(char *out, size_t len, const char *err)
{
	size_t pos = 0;

	if (api_put(out, len, &pos, "{\"error\":") || api_put_str(out, len, &pos, err) ||
	    api_put(out, len, &pos, ",\"service\":") ||
	    api_put_str(out, len, &pos, CONFIG_VERSION) || api_put(out, len, &pos, "}\n"))
		return 0;
	return pos;
}

size_t
api_json_about(char *out, size_t len, const struct api_about *a)
{
	char num[32], when[32];
	struct tm tm;
	size_t pos = 0;
	int db = a->db_version >= 0;

	if (api_put(out, len, &pos, "{\"clamav\":") || api_put_str(out, len, &pos, a->engine) ||
	    api_put(out, len, &pos, ",\"clamrest\":") || api_put_str(out, len, &pos, CONFIG_VERSION) ||
	    api_put(out, len, &pos, ",\"database_build_time\":"))
		return 0;
	if (db && a->db_time > 0 && gmtime_r(&a->db_time, &tm) != NULL &&
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) {
		if (api_put_str(out, len, &pos, when))
			return 0;
	} else if (api_put(out, len, &pos, "null"))
		return 0;
	snprintf(num, sizeof(num), "%u", a->signatures);
	if (api_put(out, len, &pos, ",\"database_signatures\":") ||
	    api_put(out, len, &pos, db ? num : "null"))
		return 0;
	snprintf(num, sizeof(num), "%ld", a->db_version);
	if (api_put(out, len, &pos, ",\"database_version\":") ||
	    api_put(out, len, &pos, db ? num : "null") ||
	    api_put(out, len, &pos, a->libclamav_patched ? ",\"libclamav_patched\":true}\n" :
	    ",\"libclamav_patched\":false}\n"))
		return 0;
	return pos;
}

size_t
api_json_scan(char *out, size_t len, int malware, const char *reason, double seconds)
{
	char t[API_FLOAT_MAX];
	size_t pos = 0;

	if (api_py_float(t, sizeof(t), seconds) == 0)
		snprintf(t, sizeof(t), "0.0");
	if (api_put(out, len, &pos, malware ? "{\"malware\":true" : "{\"malware\":false") ||
	    api_put(out, len, &pos, ",\"reason\":") ||
	    (reason != NULL ? api_put_str(out, len, &pos, reason) :
	    api_put(out, len, &pos, "null")) ||
	    api_put(out, len, &pos, ",\"time\":") || api_put(out, len, &pos, t) ||
	    api_put(out, len, &pos, "}\n"))
		return 0;
	return pos;
}

size_t
api_json_error(char *out, size_t len, const char *err)
{
	size_t pos = 0;

	if (api_put(out, len, &pos, "{\"error\":") || api_put_str(out, len, &pos, err) ||
	    api_put(out, len, &pos, "}\n"))
		return 0;
	return pos;
}

const char *
api_text_legacy(int malware)
{
	return malware ? "NOTOK" : "OK";
}

/* The answer under construction; failed once memory ran out (and stays so). */
struct api_out {
	char *p;
	size_t len, cap;
	int failed;
};

static int
api_out_reserve(struct api_out *o, size_t more)
{
	size_t cap = o->cap != 0 ? o->cap : API_OUT_INITIAL;
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
api_out_put(struct api_out *o, const char *s)
{
	size_t n = strlen(s);

	if (api_out_reserve(o, n) != 0)
		return;
	memcpy(o->p + o->len, s, n + 1);
	o->len += n;
}

/* A JSON string of s[0..len), escaped as api.c escapes (ASCII only; bytes that are not UTF-8, and
 * so any invalid file name, become \ufffd). */
static void
api_out_str(struct api_out *o, const char *s, size_t len)
{
	/* Any input byte takes at most 12 output bytes (util.h), plus the quotes and the NUL. */
	if (len > SIZE_MAX / 16 || api_out_reserve(o, len * 12 + 3) != 0)
		return;
	if (util_json_str_ascii(o->p, o->cap, &o->len, s, len) != 0)
		o->failed = 1;
}

/* Seconds to the microsecond: one snprintf, where api_py_float's shortest round trip (v2's
 * contract) tries up to 17 precisions, each with a strtod, and cost v3 a measurable share of an
 * EICAR answer (make bench, v3 against v2). */
static void
api_out_float(struct api_out *o, double v)
{
	char t[API_FLOAT_MAX];

	if (!(v >= 0 && v < 1e9))
		v = 0;
	snprintf(t, sizeof(t), "%.6f", v);
	api_out_put(o, t);
}

static void
api_out_num(struct api_out *o, unsigned long long v)
{
	char t[32];

	snprintf(t, sizeof(t), "%llu", v);
	api_out_put(o, t);
}

/* The upload's own element of every path: its filename, else its field name, else "-". */
static void
api_v3_top(struct api_out *o, const struct upload_file_info *f)
{
	if (f->name != NULL && f->namelen > 0)
		api_out_str(o, f->name, f->namelen);
	else if (f->fieldlen > 0)
		api_out_str(o, f->field, f->fieldlen);
	else
		api_out_put(o, "\"-\"");
}

/* {"path":["top","member",...],"signature":"..."} */
static void
api_v3_match(struct api_out *o, const struct upload_file_info *f, const struct scan_match *m)
{
	const char *n = m->names;

	api_out_put(o, "{\"path\":[");
	api_v3_top(o, f);
	for (unsigned i = 0; i < m->depth; i++) {
		size_t k = strlen(n);

		api_out_put(o, ",");
		api_out_str(o, n, k);
		n += k + 1;
	}
	api_out_put(o, "],\"signature\":");
	api_out_str(o, m->signature, strlen(m->signature));
	api_out_put(o, "}");
}

static void
api_v3_sha256(struct api_out *o, const struct scan_result *r)
{
	static const char digits[] = "0123456789abcdef";
	char hex[2 * SCANNER_DIGEST_LEN + 3];

	if (!r->hashed) {
		api_out_put(o, "null");
		return;
	}
	hex[0] = '"';
	for (size_t i = 0; i < SCANNER_DIGEST_LEN; i++) {
		hex[1 + 2 * i] = digits[r->sha256[i] >> 4];
		hex[2 + 2 * i] = digits[r->sha256[i] & 0xf];
	}
	hex[2 * SCANNER_DIGEST_LEN + 1] = '"';
	hex[2 * SCANNER_DIGEST_LEN + 2] = '\0';
	api_out_put(o, hex);
}

/* ["top","member",...]: the upload's name then names (depth of them, NUL-separated). */
static void
api_v3_path(struct api_out *o, const struct upload_file_info *f, const char *n, size_t len)
{
	const char *end = n + len;

	api_out_put(o, "[");
	api_v3_top(o, f);
	while (n != NULL && n < end) {
		size_t k = strnlen(n, (size_t)(end - n));

		api_out_put(o, ",");
		api_out_str(o, n, k);
		n += k + 1;
	}
	api_out_put(o, "]");
}

/* With an upload policy in force: "layers":[{"depth":N,"encrypted":B,"macros":B,"path":[...],
 * "type":"CL_TYPE_..."}], each kind of layer at the shallowest depth it was met, */
static void
api_v3_layers(struct api_out *o, const struct upload_file_info *f)
{
	api_out_put(o, "\"layers\":[");
	for (unsigned i = 0; i < f->kinds->n; i++) {
		const struct scan_kind *k = &f->kinds->v[i];

		api_out_put(o, i > 0 ? ",{\"depth\":" : "{\"depth\":");
		api_out_num(o, k->depth);
		api_out_put(o, k->encrypted ? ",\"encrypted\":true" : ",\"encrypted\":false");
		api_out_put(o, k->macros ? ",\"macros\":true,\"path\":" : ",\"macros\":false,\"path\":");
		api_v3_path(o, f, k->names, k->names_len);
		api_out_put(o, ",\"type\":");
		api_out_str(o, k->type, strlen(k->type));
		api_out_put(o, "}");
	}
	api_out_put(o, "],");
}

/* and "policy":{"blocked":B,"mode":"enforce"|"report","name":"...","path":[...]|null,
 * "reason":"..."|null,"rule":"..."|null,"type":"..."|null}. */
static void
api_v3_policy(struct api_out *o, const struct upload_file_info *f)
{
	const struct filepolicy_verdict *v = f->policy;

	api_out_put(o, v->blocked ? ",\"policy\":{\"blocked\":true" : ",\"policy\":{\"blocked\":false");
	api_out_put(o, v->report ? ",\"mode\":\"report\",\"name\":" : ",\"mode\":\"enforce\",\"name\":");
	api_out_str(o, f->policy_name, strlen(f->policy_name));
	api_out_put(o, ",\"path\":");
	if (v->matched)
		api_v3_path(o, f, v->kind != NULL ? v->kind->names : NULL,
		    v->kind != NULL ? v->kind->names_len : 0);
	else
		api_out_put(o, "null");
	api_out_put(o, ",\"reason\":");
	if (v->matched)
		api_out_str(o, v->reason, strlen(v->reason));
	else
		api_out_put(o, "null");
	api_out_put(o, ",\"rule\":");
	if (v->matched)
		api_out_str(o, v->rule, strlen(v->rule));
	else
		api_out_put(o, "null");
	api_out_put(o, ",\"type\":");
	if (v->matched && v->type[0] != '\0')
		api_out_str(o, v->type, strlen(v->type));
	else
		api_out_put(o, "null");
	api_out_put(o, "}");
}

/* {["layers":[...],]"limits_exceeded":B,"malware":B,"matches":[...],"name":"..."|null,
 * ["policy":{...},]"sha256":"..."|null,"size":N,"time":T,"type":"CL_TYPE_..."|null} */
static void
api_v3_file(struct api_out *o, const struct upload_file_info *f)
{
	const struct scan_result *r = f->res;

	api_out_put(o, "{");
	if (f->policy != NULL)
		api_v3_layers(o, f);
	api_out_put(o, r->limit_exceeded || f->det->cut ? "\"limits_exceeded\":true" :
	    "\"limits_exceeded\":false");
	api_out_put(o, r->verdict == SCAN_MALWARE ? ",\"malware\":true" : ",\"malware\":false");
	api_out_put(o, ",\"matches\":[");
	for (unsigned i = 0; i < f->det->nmatches; i++) {
		if (i > 0)
			api_out_put(o, ",");
		api_v3_match(o, f, &f->det->matches[i]);
	}
	api_out_put(o, "],\"name\":");
	if (f->name != NULL)
		api_out_str(o, f->name, f->namelen);
	else
		api_out_put(o, "null");
	if (f->policy != NULL)
		api_v3_policy(o, f);
	api_out_put(o, ",\"sha256\":");
	api_v3_sha256(o, r);
	api_out_put(o, ",\"size\":");
	api_out_num(o, r->bytes);
	api_out_put(o, ",\"time\":");
	api_out_float(o, r->seconds);
	api_out_put(o, ",\"type\":");
	if (f->det->type[0] != '\0')
		api_out_str(o, f->det->type, strlen(f->det->type));
	else
		api_out_put(o, "null");
	api_out_put(o, "}");
}

/* With an upload policy in force: ,"policy_blocked":B, whether it blocks any file (the engine's
 * verdict stays in "malware"). */
static void
api_v3_blocked(struct api_out *o, const struct upload *u)
{
	struct upload_file_info f;
	int judged = 0, blocked = 0;

	for (unsigned i = 0; i < upload_count(u); i++) {
		upload_file(u, i, &f);
		judged |= f.policy != NULL;
		blocked |= upload_blocked(u, i) != NULL;
	}
	if (judged)
		api_out_put(o, blocked ? ",\"policy_blocked\":true" : ",\"policy_blocked\":false");
}

char *
api_json_v3(const struct upload *u, const struct v3_engine *e, size_t *len)
{
	struct api_out o = { 0 };
	struct upload_file_info f;

	api_out_put(&o, "{\"engine\":{\"database\":");
	if (e->database >= 0)
		api_out_num(&o, (unsigned long long)e->database);
	else
		api_out_put(&o, "null");
	api_out_put(&o, ",\"libclamav\":");
	api_out_str(&o, e->libclamav, strlen(e->libclamav));
	api_out_put(&o, "},\"files\":[");
	for (unsigned i = 0; i < upload_count(u); i++) {
		if (i > 0)
			api_out_put(&o, ",");
		upload_file(u, i, &f);
		api_v3_file(&o, &f);
	}
	api_out_put(&o, upload_malware(u) ? "],\"malware\":true" : "],\"malware\":false");
	api_v3_blocked(&o, u);
	api_out_put(&o, ",\"time\":");
	api_out_float(&o, upload_seconds(u));
	api_out_put(&o, "}\n");
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}
