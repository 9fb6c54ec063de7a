/* fuzz_auth_users.c -- libFuzzer target for APPLICATION_USERS parsing and the checks that follow it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define FUZZ_ROUNDS_MAX	1000	/* above this a check costs too much time per input */
#define FUZZ_ERR_MAX	256	/* bytes, as much as a caller would give auth_new */
#define FUZZ_NAME_MAX	64	/* bytes of input tried as a user name */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when a rounds field may exceed FUZZ_ROUNDS_MAX; auth_new only takes decimal digits there. */
static int
fuzz_costly(const char *s)
{
	const char *p;

	for (p = strstr(s, "$pbkdf2-sha256$"); p != NULL; p = strstr(p, "$pbkdf2-sha256$")) {
		unsigned long v = 0;
		size_t n;

		p += sizeof("$pbkdf2-sha256$") - 1;
		n = strspn(p, "0123456789");
		if (n > 4)
			return 1;
		for (size_t i = 0; i < n; i++)
			v = v * 10 + (unsigned long)(p[i] - '0');
		if (v > FUZZ_ROUNDS_MAX)
			return 1;
	}
	return 0;
}

/* Checks twice: the second answer comes from the cache and must agree with the first. */
static void
fuzz_check(struct auth *a, const char *user, size_t ulen, const char *pass, size_t plen)
{
	int first = auth_check(a, user, ulen, pass, plen);

	if (first != 0 && first != 1)
		abort();
	if (auth_check(a, user, ulen, pass, plen) != first)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[FUZZ_ERR_MAX];
	const char *sep;
	struct auth *a;
	char *s;

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = 'x';
	a = auth_new(s, err, sizeof(err));
	if (a == NULL) {
		/* A rejection always says why, on one line. */
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL || strchr(err, '\n') != NULL)
			abort();
		free(s);
		return 0;
	}
	if (!fuzz_costly(s)) {
		fuzz_check(a, "alice", 5, "letmein", 7);
		sep = strstr(s, "::");
		if (sep != NULL)
			fuzz_check(a, s, (size_t)(sep - s), "letmein", 7);
		fuzz_check(a, (const char *)data, size < FUZZ_NAME_MAX ? size : FUZZ_NAME_MAX,
		    (const char *)data, size < AUTH_PASSWORD_MAX ? size : AUTH_PASSWORD_MAX);
	}
	auth_free(a);
	free(s);
	return 0;
}
