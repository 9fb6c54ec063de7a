/* icap_parse.c -- the ICAP request parser: request line, headers, Encapsulated, chunk lines. Pure. */
#include "icap_parse.h"

#include <string.h>
#include <strings.h>

#define ICAP_OFFSET_MAX (ICAP_HEAD_MAX * 4L)	/* an Encapsulated offset beyond this is refused */
#define ICAP_CHUNK_DIGITS 15			/* hex digits of a chunk size: below 2^60 */

static const char *const icap_services[] = { "avscan", "srv_clamav", "virus_scan", "squidclamav" };

int
icap_service_known(const char *name)
{
	for (size_t i = 0; i < sizeof(icap_services) / sizeof(icap_services[0]); i++)
		if (strcmp(name, icap_services[i]) == 0)
			return 1;
	return 0;
}

long
icap_head_end(const char *buf, size_t len)
{
	size_t lim = len < ICAP_HEAD_MAX ? len : ICAP_HEAD_MAX;

	for (size_t i = 3; i < lim; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return (long)(i + 1);
	return len >= ICAP_HEAD_MAX ? -1 : 0;
}

/* A decimal number of at most 9 digits filling s..s+len (spaces around allowed); -1 if not. */
static long
icap_number(const char *s, size_t len)
{
	long v = 0;
	size_t i = 0, digits = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
		if (digits >= 9)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return digits == 0 || i != len ? -1 : v;
}

/* One "name=offset" of Encapsulated into e, in order after *last (the kind's rank); -1 if wrong. */
static int
icap_encap_item(const char *s, size_t len, struct icap_encap *e, int *last, long *prev)
{
	static const char *const names[] = { "req-hdr", "res-hdr", "req-body", "res-body",
	    "null-body", "opt-body" };
	const char *eq;
	size_t nlen;
	long off;
	int k = -1;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	if ((eq = memchr(s, '=', len)) == NULL)
		return -1;
	nlen = (size_t)(eq - s);
	for (int i = 0; i < 6; i++)
		if (strlen(names[i]) == nlen && strncasecmp(s, names[i], nlen) == 0)
			k = i;
	off = icap_number(eq + 1, len - nlen - 1);
	if (k < 0 || k <= *last || (k >= 2 && *last >= 2) || off < 0 || off > ICAP_OFFSET_MAX ||
	    (*prev < 0 && off != 0) || (*prev >= 0 && off < *prev) ||
	    (*prev >= 0 && off == *prev && *last < 2))
		return -1;
	*last = k;
	*prev = off;
	if (k == 0)
		e->req_hdr = off;
	else if (k == 1)
		e->res_hdr = off;
	else if (k == 2 || k == 3)
		e->body = off;
	else if (k == 4)
		e->null_body = off;
	else
		e->opt_body = 1;
	return 0;
}

int
icap_parse_encap(const char *val, size_t len, struct icap_encap *e)
{
	int last = -1;
	long prev = -1;
	size_t i = 0, j;

	*e = (struct icap_encap){ .req_hdr = -1, .res_hdr = -1, .body = -1, .null_body = -1 };
	while (i < len) {
		for (j = i; j < len && val[j] != ','; j++)
			;
		if (icap_encap_item(val + i, j - i, e, &last, &prev) != 0)
			return -1;
		i = j + 1;
		if (j < len && i >= len)
			return -1;	/* a trailing comma */
	}
	return last >= 2 ? 0 : -1;	/* the body kind comes last, and must come */
}

/* The request line "METHOD URI ICAP/1.0" into r; -1 with *status when wrong. */
static int
icap_request_line(const char *s, size_t len, struct icap_req *r, int *status)
{
	const char *sp1 = memchr(s, ' ', len), *sp2, *p, *end;
	size_t mlen, n;

	*status = 400;
	if (sp1 == NULL || (sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - s))) == NULL)
		return -1;
	mlen = (size_t)(sp1 - s);
	r->method = mlen == 7 && memcmp(s, "OPTIONS", 7) == 0 ? ICAP_OPTIONS :
	    mlen == 6 && memcmp(s, "REQMOD", 6) == 0 ? ICAP_REQMOD :
	    mlen == 7 && memcmp(s, "RESPMOD", 7) == 0 ? ICAP_RESPMOD : ICAP_OTHER;
	if ((size_t)(s + len - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "ICAP/1.", 7) != 0) {
		*status = memcmp(sp2 + 1, "ICAP/", (size_t)(s + len - (sp2 + 1)) < 5 ? 0 : 5) == 0 &&
		    (size_t)(s + len - (sp2 + 1)) >= 5 ? 505 : 400;
		return -1;
	}
	p = sp1 + 1;
	end = sp2;
	if ((size_t)(end - p) > 7 && strncasecmp(p, "icap://", 7) == 0) {
		p += 7;
		while (p < end && *p != '/')
			p++;
	}
	if (p >= end || *p != '/')
		return -1;
	p++;
	for (n = 0; p + n < end && p[n] != '/' && p[n] != '?' && n < ICAP_SERVICE_MAX - 1; n++)
		;
	memcpy(r->service, p, n);
	r->service[n] = '\0';
	if (r->method == ICAP_OTHER) {
		*status = 405;
		return -1;
	}
	return 0;
}

/* Does the comma-separated list v carry the token tok? */
static int
icap_has_token(const char *v, size_t len, const char *tok)
{
	size_t tlen = strlen(tok), i = 0, j;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		for (j = i; j < len && v[j] != ',' && v[j] != ' ' && v[j] != '\t'; j++)
			;
		if (j - i == tlen && strncasecmp(v + i, tok, tlen) == 0)
			return 1;
		i = j;
	}
	return 0;
}

/* One header line of the ICAP head into r; -1 when malformed. */
static int
icap_header(const char *s, size_t len, struct icap_req *r)
{
	const char *colon = memchr(s, ':', len), *v;
	size_t nlen, vlen;

	if (len > 0 && (s[0] == ' ' || s[0] == '\t'))
		return 0;	/* a folded line continues a header we do not read */
	if (colon == NULL || colon == s)
		return -1;
	nlen = (size_t)(colon - s);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (nlen == 12 && strncasecmp(s, "Encapsulated", 12) == 0) {
		if (r->has_encap++ || icap_parse_encap(v, vlen, &r->encap) != 0)
			return -1;
	} else if (nlen == 7 && strncasecmp(s, "Preview", 7) == 0) {
		if (r->preview >= 0 || (r->preview = icap_number(v, vlen)) < 0)
			return -1;
	} else if (nlen == 5 && strncasecmp(s, "Allow", 5) == 0) {
		r->allow204 |= icap_has_token(v, vlen, "204");
	} else if (nlen == 10 && strncasecmp(s, "Connection", 10) == 0) {
		r->close |= icap_has_token(v, vlen, "close");
	} else if (nlen == 11 && strncasecmp(s, "X-Client-IP", 11) == 0) {
		vlen = vlen < ICAP_IP_MAX - 1 ? vlen : ICAP_IP_MAX - 1;
		memcpy(r->client_ip, v, vlen);
		r->client_ip[vlen] = '\0';
	}
	return 0;
}

int
icap_parse_head(const char *buf, size_t len, struct icap_req *r, int *status)
{
	size_t i = 0, j;
	int first = 1;

	memset(r, 0, sizeof(*r));
	r->preview = -1;
	*status = 400;
	while (i + 1 < len) {
		for (j = i; j + 1 < len && !(buf[j] == '\r' && buf[j + 1] == '\n'); j++)
			if (buf[j] == '\0' || buf[j] == '\n' || buf[j] == '\r')
				return -1;
		if (j + 1 >= len)
			return -1;
		if (j == i)
			break;
		if (first ? icap_request_line(buf + i, j - i, r, status) != 0 :
		    icap_header(buf + i, j - i, r) != 0)
			return -1;
		first = 0;
		i = j + 2;
	}
	if (first)
		return -1;
	if (r->method == ICAP_OPTIONS) {
		if (r->has_encap && (r->encap.opt_body || r->encap.req_hdr >= 0 || r->encap.res_hdr >= 0))
			return -1;
		return 1;
	}
	if (!r->has_encap || r->encap.opt_body ||
	    (r->method == ICAP_REQMOD && (r->encap.req_hdr < 0 || r->encap.res_hdr >= 0)))
		return -1;
	r->hdr_len = (size_t)(r->encap.body >= 0 ? r->encap.body : r->encap.null_body);
	if (r->hdr_len > ICAP_HEAD_MAX)
		return -1;
	return 1;
}

/* A section of hdr from off to end: a start line, then headers, ending with CRLFCRLF at end. */
static int
icap_section_ok(const char *hdr, size_t off, size_t end)
{
	if (end < off + 4 || memcmp(hdr + end - 4, "\r\n\r\n", 4) != 0)
		return 0;
	for (size_t i = off; i + 4 < end; i++)
		if (hdr[i] == '\r' && hdr[i + 1] == '\n' && hdr[i + 2] == '\r' && hdr[i + 3] == '\n')
			return 0;	/* a blank line before the section's end */
	return hdr[off] != '\r' && hdr[off] != ' ';
}

int
icap_check_sections(const struct icap_req *r, const char *hdr, size_t hdr_len)
{
	const struct icap_encap *e = &r->encap;
	size_t end = hdr_len;

	if (e->res_hdr >= 0) {
		if (!icap_section_ok(hdr, (size_t)e->res_hdr, end))
			return -1;
		end = (size_t)e->res_hdr;
	}
	if (e->req_hdr >= 0 && !icap_section_ok(hdr, (size_t)e->req_hdr, end))
		return -1;
	return 0;
}

const char *
icap_http_header(const char *sec, size_t len, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name), i = 0, j;
	const char *v;

	while (i < len && sec[i] != '\n')	/* the start line */
		i++;
	for (i++; i < len; i = j + 1) {
		for (j = i; j < len && sec[j] != '\n'; j++)
			;
		if (j - i > nlen && sec[i + nlen] == ':' && strncasecmp(sec + i, name, nlen) == 0) {
			v = sec + i + nlen + 1;
			*vlen = (size_t)(sec + j - v);
			while (*vlen > 0 && (*v == ' ' || *v == '\t')) {
				v++;
				(*vlen)--;
			}
			while (*vlen > 0 && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' ' ||
			    v[*vlen - 1] == '\t'))
				(*vlen)--;
			return v;
		}
	}
	return NULL;
}

/* "ieof" among the extensions s..s+len (";ieof", "; ieof"). */
static int
icap_ext_ieof(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ';')
			continue;
		i++;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (len - i >= 4 && strncasecmp(s + i, "ieof", 4) == 0 &&
		    (len - i == 4 || s[i + 4] == ' ' || s[i + 4] == ';' || s[i + 4] == '\t'))
			return 1;
	}
	return 0;
}

int
icap_chunk_line(const char *buf, size_t len, uint64_t *size, int *ieof, size_t *used)
{
	size_t i, lim = len < ICAP_CHUNK_LINE_MAX ? len : ICAP_CHUNK_LINE_MAX;
	uint64_t v = 0;
	int d, digits = 0;

	for (i = 0; i < lim && buf[i] != '\n'; i++)
		;
	if (i == lim)
		return len >= ICAP_CHUNK_LINE_MAX ? -1 : 0;
	if (i == 0 || buf[i - 1] != '\r')
		return -1;
	for (size_t k = 0; k < i - 1; k++) {
		char c = buf[k];

		d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0) {
			if (digits == 0 || (c != ';' && c != ' ' && c != '\t'))
				return -1;
			*ieof = icap_ext_ieof(buf + k, i - 1 - k);
			break;
		}
		if (++digits > ICAP_CHUNK_DIGITS)
			return -1;
		v = v * 16 + (uint64_t)d;
		*ieof = 0;
	}
	if (digits == 0)
		return -1;
	if (digits == (int)(i - 1))
		*ieof = 0;
	*size = v;
	*used = i + 1;
	return 1;
}
