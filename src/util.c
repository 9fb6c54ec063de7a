/* util.c -- small helpers shared by every module: number parsing, JSON escaping, clocks. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

int
util_json_str(char *out, size_t outlen, size_t *pos, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;

	if (p >= outlen)
		return -1;
	out[p++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc = 0;

		switch (c) {
		case '"': esc = '"'; break;
		case '\\': esc = '\\'; break;
		case '\n': esc = 'n'; break;
		case '\r': esc = 'r'; break;
		case '\t': esc = 't'; break;
		default: break;
		}
		if (esc != 0) {
			if (p + 2 > outlen)
				return -1;
			out[p++] = '\\';
			out[p++] = esc;
		} else if (c < 0x20 || c == 0x7f) {
			if (p + 6 > outlen)
				return -1;
			out[p++] = '\\';
			out[p++] = 'u';
			out[p++] = '0';
			out[p++] = '0';
			out[p++] = hex[c >> 4];
			out[p++] = hex[c & 15];
		} else {
			if (p + 1 > outlen)
				return -1;
			out[p++] = (char)c;
		}
	}
	if (p + 2 > outlen)	/* closing quote and room for a NUL */
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
