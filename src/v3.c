/* v3.c -- the /v3 API's query: all_matches read as Flask reads it, and its canonical form. */
#include "v3.h"

#include <string.h>
#include <strings.h>

#include "util.h"

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
