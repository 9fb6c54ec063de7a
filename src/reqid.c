/* reqid.c -- choosing a request's id from the client's headers, or making one. */
#include "reqid.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

#define REQID_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+=@"
#define REQID_TRACE_LEN	32	/* hex digits of a W3C trace-id, and of a 128-bit B3 one */
#define REQID_B3_SHORT	16	/* hex digits of a 64-bit B3 trace id */

int
reqid_valid(const char *s)
{
	size_t n = strnlen(s, REQID_MAX + 1);

	return n > 0 && n <= REQID_MAX && strspn(s, REQID_CHARS) == n;
}

/* 1 when s[0..n) is lower-case hex digits, not all zeros (an invalid id in W3C and B3). */
static int
reqid_hex(const char *s, size_t n)
{
	int nonzero = 0;

	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}

/* version "-" trace-id "-" parent-id "-" flags (W3C Trace Context, level 1): version ff is
 * invalid; a later version may append fields after a '-'. */
static int
reqid_traceparent(const char *s, char *out)
{
	size_t n = strlen(s);

	if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return 0;
	if (!((s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'f')) ||
	    !((s[1] >= '0' && s[1] <= '9') || (s[1] >= 'a' && s[1] <= 'f')) ||
	    (s[0] == 'f' && s[1] == 'f'))
		return 0;
	if (!reqid_hex(s + 3, REQID_TRACE_LEN) || !reqid_hex(s + 36, 16) ||
	    strspn(s + 53, "0123456789abcdef") < 2)
		return 0;
	if (n > 55 && (memcmp(s, "00", 2) == 0 || s[55] != '-'))
		return 0;
	memcpy(out, s + 3, REQID_TRACE_LEN);
	out[REQID_TRACE_LEN] = '\0';
	return 1;
}

static int
reqid_b3(const char *s, char *out)
{
	size_t n = strlen(s);

	if ((n != REQID_TRACE_LEN && n != REQID_B3_SHORT) || !reqid_hex(s, n))
		return 0;
	memcpy(out, s, n + 1);
	return 1;
}

static void
reqid_generate(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[REQID_GEN_LEN / 2];
	static _Thread_local uint64_t state;
	size_t i;

	/* getrandom does not fail for 16 bytes once the pool is ready; when it does, a counter
	 * mixed with the clock still gives ids that differ. */
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		state += (uint64_t)(util_now() * 1e9) | 1;
		for (i = 0; i < sizeof(r); i++) {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			r[i] = (unsigned char)state;
		}
	}
	for (i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[REQID_GEN_LEN] = '\0';
}

enum reqid_source
reqid_pick(const char *x_request_id, const char *traceparent, const char *b3, char *out)
{
	if (x_request_id != NULL && reqid_valid(x_request_id)) {
		memcpy(out, x_request_id, strlen(x_request_id) + 1);
		return REQID_HEADER;
	}
	if (traceparent != NULL && reqid_traceparent(traceparent, out))
		return REQID_TRACEPARENT;
	if (b3 != NULL && reqid_b3(b3, out))
		return REQID_B3;
	reqid_generate(out);
	return REQID_GENERATED;
}
