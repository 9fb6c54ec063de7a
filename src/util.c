/* util.c -- small helpers shared by every module: number parsing, JSON escaping, clocks. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
util_parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || ((*s < '0' || *s > '9') && *s != '-'))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Seconds in a unit suffix of util_parse_seconds; 0 for a byte that is not one. */
static long long
util_unit_seconds(char c)
{
	switch (c) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	default: return 0;
	}
}

int
util_parse_seconds(const char *s, long long min, long long max, long long *out)
{
	char num[24];
	size_t n = s != NULL ? strlen(s) : 0;
	long long unit = n > 0 ? util_unit_seconds(s[n - 1]) : 0, v;

	if (unit == 0)
		return util_parse_ll(s, min, max, out);
	if (n - 1 >= sizeof(num))
		return -1;
	memcpy(num, s, n - 1);
	num[n - 1] = '\0';
	if (util_parse_ll(num, 0, max / unit, &v) != 0 || v * unit < min)
		return -1;
	*out = v * unit;
	return 0;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, nothing
 * past U+10FFFF), 0 when s[0] does not start one within len bytes. */
static size_t
util_utf8_len(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;		/* overlong */
	else if (s[0] == 0xed)
		hi = 0x9f;		/* UTF-16 surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90;		/* overlong */
	else if (s[0] == 0xf4)
		hi = 0x8f;		/* past U+10FFFF */
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Appends one escape: \c, or \uXXXX for code point cp. */
static int
util_json_esc(char *out, size_t outlen, size_t *p, char esc, unsigned cp)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = esc != 0 ? 2 : 6;

	if (*p + need > outlen)
		return -1;
	out[(*p)++] = '\\';
	if (esc != 0) {
		out[(*p)++] = esc;
		return 0;
	}
	out[(*p)++] = 'u';
	for (int shift = 12; shift >= 0; shift -= 4)
		out[(*p)++] = hex[(cp >> shift) & 15];
	return 0;
}

static char
util_json_short_esc(unsigned char c)
{
	switch (c) {
	case '"': return '"';
	case '\\': return '\\';
	case '\n': return 'n';
	case '\r': return 'r';
	case '\t': return 't';
	default: return 0;
	}
}

int
util_json_str(char *out, size_t outlen, size_t *pos, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p = *pos, n;

	if (p >= outlen)
		return -1;
	out[p++] = '"';
	for (size_t i = 0; i < len; i += n) {
		unsigned char c = u[i];
		char esc = util_json_short_esc(c);

		n = 1;
		if (esc != 0 || c < 0x20 || c == 0x7f) {
			if (util_json_esc(out, outlen, &p, esc, c) != 0)
				return -1;
		} else if (c < 0x80 || (n = util_utf8_len(u + i, len - i)) > 0) {
			if (p + n > outlen)
				return -1;
			memcpy(out + p, u + i, n);
			p += n;
		} else {
			/* Not UTF-8 (a client's bytes): the byte becomes U+FFFD, the line stays JSON. */
			n = 1;
			if (util_json_esc(out, outlen, &p, 0, 0xfffd) != 0)
				return -1;
		}
	}
	if (p + 2 > outlen)	/* closing quote and room for a NUL */
		return -1;
	out[p++] = '"';
	out[p] = '\0';
	*pos = p;
	return 0;
}

/* Python's json escapes \b and \f with a letter too; the log's escaper writes them as \u00XX. */
static char
util_json_py_esc(unsigned char c)
{
	if (c == '\b')
		return 'b';
	if (c == '\f')
		return 'f';
	return util_json_short_esc(c);
}

/* The code point of the well-formed UTF-8 sequence of n bytes at s. */
static unsigned
util_utf8_cp(const unsigned char *s, size_t n)
{
	unsigned cp = n == 2 ? s[0] & 0x1fu : n == 3 ? s[0] & 0x0fu : s[0] & 0x07u;

	for (size_t i = 1; i < n; i++)
		cp = cp << 6 | (s[i] & 0x3fu);
	return cp;
}

int
util_json_str_ascii(char *out, size_t outlen, size_t *pos, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p = *pos, n;
	unsigned cp;
	char esc;
	int rc = 0;

	if (p >= outlen)
		return -1;
	out[p++] = '"';
	for (size_t i = 0; i < len && rc == 0; i += n) {
		n = 1;
		esc = util_json_py_esc(u[i]);
		if (u[i] >= 0x20 && u[i] < 0x7f && esc == 0) {
			if (p + 1 > outlen)
				return -1;
			out[p++] = (char)u[i];
			continue;
		}
		if (esc != 0 || u[i] < 0x80) {
			rc = util_json_esc(out, outlen, &p, esc, u[i]);
			continue;
		}
		n = util_utf8_len(u + i, len - i);
		cp = n > 0 ? util_utf8_cp(u + i, n) : 0xfffd;
		if (n == 0)
			n = 1;
		if (cp > 0xffff) {	/* a surrogate pair, as Python writes it */
			cp -= 0x10000;
			rc = util_json_esc(out, outlen, &p, 0, 0xd800 | (cp >> 10));
			if (rc == 0)
				rc = util_json_esc(out, outlen, &p, 0, 0xdc00 | (cp & 0x3ff));
		} else
			rc = util_json_esc(out, outlen, &p, 0, cp);
	}
	if (rc != 0 || p + 2 > outlen)
		return -1;
	out[p++] = '"';
	out[p] = '\0';
	*pos = p;
	return 0;
}

double
util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
util_ct_equal(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < len; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

int
util_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
util_bytes(unsigned long long bytes, char *out, size_t outlen)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(out, outlen, "%llu bytes", bytes);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, outlen, "%.1f %s", v, units[u]);
}
