/* test_auth.c -- unit tests for auth: APPLICATION_USERS parsing, checks, the cache, basic auth headers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "util.h"

/* Made with Debian's passlib 1.7.4: pbkdf2_sha256.using(rounds=...).hash(password). */
#define H_LETMEIN_29000	"$pbkdf2-sha256$29000$MqbUGqP0XmttDcFYa03J.Q$eARjwbZto6NXUkbfIWxpbwnNNGk5eAFBlORNcOaBs6k"
#define H_LETMEIN	"$pbkdf2-sha256$1000$uNf6X8vZe0.pFcL433vPWQ$RmgEeEo1wHBEydsITG2/Dv2YRh7XOwdv6n0F0d0LTjg"
#define H_COLONS	"$pbkdf2-sha256$1000$I.R8L4Xw/v8/J.TcGwNgbA$NxSxaWVSFqEEhOI6SFxk4.PphdYC10jJZNsR2HMHG84"
#define H_EMPTY		"$pbkdf2-sha256$1000$UAoBQAhh7J0TgvB.D0FoDQ$hBPDrJFnW1jSyAUEtqHQvqooHHXjSZhIoJC4YseDQe4"
#define H_NOSALT	"$pbkdf2-sha256$1000$$ji5KeEafdvvWP/bv3qrwLZfQOa9UgkxVieJdUQVzLmU"
#define H_UTF8		"$pbkdf2-sha256$1000$Wutdq5XS2jvnHEPI2bu3Ng$nOKGVsD3siHQweGl5IjVcEJreDUVH/ewuPFtIippQUk"
#define H_ONE		"$pbkdf2-sha256$1$lHJu7b33/n8PgVBKaa3VGg$N6puXgzuefGoEjs7yuWeyw6JI5HPMPc8ctlW1yNnWk4"
#define H_B0B		"$pbkdf2-sha256$10$cs5Za00JYWytFWLMGWOMEQ$8pb0D1IuWdVSP5xMn6CwmMiAlGAGnI8A2PzRbGVwuJA"
#define H_LONGSALT	"$pbkdf2-sha256$1000$b21trTXGmPN.r5XS.n8P4VyLMYaQklLqndMag9B6r9V6bw3h3JsTgjDG2Jsz" \
			"JiSE8L43BiBEaO09ByDEuBdizA$ys746U3ivJM1jPM5Z26/9hr0ljnKx6hIGMaAwCyeVaU"
#define SUM_LETMEIN	"RmgEeEo1wHBEydsITG2"	/* part of H_LETMEIN's checksum, never to be echoed */
#define SALT_LETMEIN	"uNf6X8vZe0"

#define THREADS		4
#define THREAD_ROUNDS	300

static int
check(struct auth *a, const char *user, const char *pass)
{
	return auth_check(a, user, strlen(user), pass, strlen(pass));
}

static struct auth *
must_new(const char *spec)
{
	char err[256];
	struct auth *a = auth_new(spec, err, sizeof(err));

	if (a == NULL)
		fail_msg("auth_new: %s", err);
	return a;
}

static void
test_right_and_wrong(void **state)
{
	struct auth *a = must_new("alice::" H_LETMEIN);

	(void)state;
	assert_int_equal(auth_user_count(a), 1);
	assert_int_equal(check(a, "alice", "letmein"), 1);
	assert_int_equal(check(a, "alice", "letmeiN"), 0);	/* differs in the last byte only */
	assert_int_equal(check(a, "alice", "letmei"), 0);	/* a prefix */
	assert_int_equal(check(a, "alice", "letmein2"), 0);
	assert_int_equal(check(a, "alice", ""), 0);
	assert_int_equal(check(a, "Alice", "letmein"), 0);	/* names are case-sensitive */
	assert_int_equal(auth_check(a, "alice", 5, "letme\0in", 8), 0);
	/* HMAC pads short keys with zeros, so PBKDF2 cannot tell trailing NULs apart; passlib agrees. */
	assert_int_equal(auth_check(a, "alice", 5, "letmein\0", 8), 1);
	assert_int_equal(auth_check(a, "alice\0", 6, "letmein", 7), 0);
	assert_int_equal(auth_check(a, NULL, 0, "letmein", 7), 0);
	assert_int_equal(auth_check(NULL, "alice", 5, "letmein", 7), 0);
	auth_free(a);
}

static double
time_check(struct auth *a, const char *user, const char *pass, int want)
{
	double t = util_now();

	assert_int_equal(check(a, user, pass), want);
	return util_now() - t;
}

/* The default rounds, and what the cache buys: one real verify against one cached answer. */
static void
test_default_rounds_and_timing(void **state)
{
	struct auth *a = must_new("alice::" H_LETMEIN_29000);
	double slow, fast, slow_bad, fast_bad;

	(void)state;
	slow = time_check(a, "alice", "letmein", 1);
	fast = time_check(a, "alice", "letmein", 1);
	slow_bad = time_check(a, "alice", "nope", 0);
	fast_bad = time_check(a, "alice", "nope", 0);
	print_message("auth: 29000 rounds: verify %.3f ms, cached %.4f ms; wrong %.3f ms, cached %.4f ms\n",
	    slow * 1e3, fast * 1e3, slow_bad * 1e3, fast_bad * 1e3);
	assert_true(fast < slow);
	assert_true(fast_bad < slow_bad);
	assert_int_equal(auth_pbkdf2_count(a), 2);
	auth_free(a);
}

static void
test_unknown_user_costs_the_same(void **state)
{
	struct auth *a = must_new("alice::" H_LETMEIN);

	(void)state;
	assert_int_equal(check(a, "mallory", "letmein"), 0);
	assert_int_equal(auth_pbkdf2_count(a), 1);	/* a decoy PBKDF2 ran */
	assert_int_equal(check(a, "mallory", "letmein"), 0);
	assert_int_equal(auth_pbkdf2_count(a), 1);	/* and the answer is cached */
	assert_int_equal(check(a, "alic", "letmein"), 0);
	assert_int_equal(check(a, "", "letmein"), 0);
	assert_int_equal(auth_pbkdf2_count(a), 3);
	auth_free(a);
}

static void
test_many_users_both_separators(void **state)
{
	const char *spec =
	    "\r\n  alice::" H_LETMEIN "\r\n"
	    "\n"
	    "carol::" H_COLONS "\\n\\n"
	    "  dave :: " H_EMPTY " \\n"
	    "erin::" H_NOSALT "\n"
	    "fr\xc3\xa9" "d::" H_UTF8 "\\n"
	    "gus::" H_LONGSALT "\n"
	    "hal::" H_ONE "\n   \n";
	struct auth *a = must_new(spec);

	(void)state;
	assert_int_equal(auth_user_count(a), 7);
	assert_int_equal(check(a, "alice", "letmein"), 1);
	assert_int_equal(check(a, "carol", "s3cret:with:colons"), 1);
	assert_int_equal(check(a, "carol", "s3cret"), 0);
	assert_int_equal(check(a, "dave", ""), 1);
	assert_int_equal(check(a, "dave", " "), 0);
	assert_int_equal(check(a, "erin", "nosalt"), 1);
	assert_int_equal(check(a, "fr\xc3\xa9" "d", "p\xc3\xa4ssw\xc3\xb6rd"), 1);
	assert_int_equal(check(a, "gus", "longsalt"), 1);
	assert_int_equal(check(a, "hal", "one"), 1);
	assert_int_equal(check(a, "alice", "s3cret:with:colons"), 0);	/* not another user's */
	auth_free(a);
}

static void
test_empty_specs(void **state)
{
	const char *specs[] = { "", "\n", "\\n", "  \r\n\\n\t\n", NULL };
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct auth *a = auth_new(specs[i], err, sizeof(err));

		assert_non_null(a);
		assert_int_equal(auth_user_count(a), 0);
		assert_int_equal(check(a, "alice", "letmein"), 0);
		assert_int_equal(check(a, "", ""), 0);
		auth_free(a);
	}
	auth_free(NULL);
}

struct bad_spec {
	const char	*spec;
	const char	*where;		/* must appear in the error */
	const char	*why;		/* so must this */
};

static void
test_malformed_specs(void **state)
{
	static const struct bad_spec bad[] = {
		{ "alice", "entry 1:", "two colons" },
		{ "alice:" H_LETMEIN, "entry 1:", "two colons" },
		{ "alice::" H_LETMEIN "\n\n  \\nbob", "entry 2:", "two colons" },
		{ "::" H_LETMEIN, "entry 1", "empty user" },
		{ "   ::" H_LETMEIN, "entry 1", "empty user" },
		{ "a:b::" H_LETMEIN, "user \"a:b\"", "contains ':'" },
		{ "alice::" H_LETMEIN "\nalice::" H_ONE, "entry 2 (user \"alice\")", "twice" },
		{ "alice::", "entry 1 (user \"alice\")", "form" },
		{ "alice::$pbkdf2-sha512$1000$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "form" },
		{ "alice::$pbkdf2$1000$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "form" },
		{ "alice::$pbkdf2-sha256$1000$" SALT_LETMEIN, "entry 1", "form" },
		{ "alice::$pbkdf2-sha256$1000$a$b$c", "entry 1", "form" },
		{ "alice::$pbkdf2-sha256$0$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "rounds" },
		{ "alice::$pbkdf2-sha256$$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "rounds" },
		{ "alice::$pbkdf2-sha256$-5$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "rounds" },
		{ "alice::$pbkdf2-sha256$01000$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "rounds" },
		{ "alice::$pbkdf2-sha256$1e3$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "rounds" },
		{ "alice::$pbkdf2-sha256$ 1000$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "rounds" },
		{ "alice::$pbkdf2-sha256$10000001$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1", "rounds" },
		{ "alice::$pbkdf2-sha256$99999999999999999999$" SALT_LETMEIN "$" SUM_LETMEIN, "entry 1",
		    "rounds" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X8vZe0+pFcL433vPWQ$RmgEeEo1wHBEydsITG2/Dv2YRh7XOwdv6n0F0d0LTjg",
		    "entry 1", "salt" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X$RmgEeEo1wHBEydsITG2/Dv2YRh7XOwdv6n0F0d0LTjg",
		    "entry 1", "salt" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X8vZe0==$RmgEeEo1wHBEydsITG2/Dv2YRh7XOwdv6n0F0d0LTjg",
		    "entry 1", "salt" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X8vZe0.pFcL433vPWQ$RmgEeEo1wHBEydsITG2/Dv2YRh7XOwdv6n0F0d0LTj",
		    "entry 1", "checksum" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X8vZe0.pFcL433vPWQ$RmgEeEo1wHBEydsITG2/Dv2YRh7XOwdv6n0F0d0LTjgA",
		    "entry 1", "checksum" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X8vZe0.pFcL433vPWQ$RmgEeEo1wHBEydsITG2/Dv2YRh7XOwdv6n0F0d0LTj=",
		    "entry 1", "checksum" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X8vZe0.pFcL433vPWQ$RmgEeEo1wHBEydsITG2+Dv2YRh7XOwdv6n0F0d0LTjg",
		    "entry 1", "checksum" },
		{ "alice::$pbkdf2-sha256$1000$uNf6X8vZe0.pFcL433vPWQ$", "entry 1", "checksum" },
		{ "alice::" H_LETMEIN " trailing", "entry 1", "checksum" },
		/* A hash pasted as a name must not be echoed. */
		{ H_LETMEIN "::x", "entry 1:", "form" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct auth *a;

		memset(err, 'x', sizeof(err));
		a = auth_new(bad[i].spec, err, sizeof(err));
		if (a != NULL)
			fail_msg("case %zu accepted: %s", i, bad[i].spec);
		print_message("  rejected: %s\n", err);
		if (strstr(err, "APPLICATION_USERS") == NULL || strstr(err, bad[i].where) == NULL ||
		    strstr(err, bad[i].why) == NULL)
			fail_msg("case %zu: error \"%s\", want \"%s\" and \"%s\"", i, err, bad[i].where,
			    bad[i].why);
		assert_null(strstr(err, SUM_LETMEIN));
		assert_null(strstr(err, SALT_LETMEIN));
		assert_null(strchr(err, '\n'));
		assert_null(strstr(err, "$1000$"));
	}
	/* A tiny or absent err buffer is fine too. */
	assert_null(auth_new("alice", err, 5));
	assert_int_equal(strlen(err), 4);
	assert_null(auth_new("alice", NULL, 0));
}

static void
test_cache_skips_pbkdf2(void **state)
{
	struct auth *a = must_new("alice::" H_LETMEIN "\nbob::" H_B0B);

	(void)state;
	assert_int_equal(check(a, "alice", "letmein"), 1);
	assert_int_equal(auth_pbkdf2_count(a), 1);
	assert_int_equal(check(a, "alice", "letmein"), 1);
	assert_int_equal(check(a, "alice", "wrong"), 0);
	assert_int_equal(auth_pbkdf2_count(a), 2);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(check(a, "alice", "wrong"), 0);
		assert_int_equal(check(a, "alice", "letmein"), 1);
	}
	assert_int_equal(auth_pbkdf2_count(a), 2);
	/* A cached failure must not shadow the right password, nor another user's. */
	assert_int_equal(check(a, "bob", "wrong"), 0);
	assert_int_equal(check(a, "bob", "b0b"), 1);
	assert_int_equal(check(a, "bob", "letmein"), 0);
	/* Nor may splitting the same bytes differently between user and password hit the cache. */
	assert_int_equal(check(a, "alicel", "etmein"), 0);
	assert_int_equal(auth_pbkdf2_count(a), 6);
	auth_free(a);
}

/* Far more distinct credentials than the cache holds: answers stay right as slots are reused. */
static void
test_cache_overflow(void **state)
{
	struct auth *a = must_new("hal::" H_ONE);
	char pass[32];

	(void)state;
	assert_int_equal(check(a, "hal", "one"), 1);
	for (int i = 0; i < 5000; i++) {
		snprintf(pass, sizeof(pass), "wrong%d", i);
		assert_int_equal(check(a, "hal", pass), 0);
	}
	assert_int_equal(check(a, "hal", "one"), 1);	/* bad ones cannot evict good ones */
	assert_int_equal(auth_pbkdf2_count(a), 5001);
	for (int i = 0; i < 5000; i += 97) {
		snprintf(pass, sizeof(pass), "wrong%d", i);
		assert_int_equal(check(a, "hal", pass), 0);
	}
	auth_free(a);
}

static int
parse(const char *header, char *buf, size_t buflen, const char *want_user, const char *want_pass)
{
	const char *user = NULL, *pass = NULL;
	size_t ulen = 0, plen = 0;

	if (auth_parse_basic(header, buf, buflen, &user, &ulen, &pass, &plen) == -1)
		return -1;
	assert_non_null(want_user);
	assert_int_equal(ulen, strlen(want_user));
	assert_memory_equal(user, want_user, ulen);
	assert_int_equal(plen, strlen(want_pass));
	assert_memory_equal(pass, want_pass, plen);
	assert_int_equal(user[ulen], '\0');
	assert_int_equal(pass[plen], '\0');
	return 0;
}

static void
test_parse_basic(void **state)
{
	const char *user, *pass;
	size_t ulen, plen;
	char buf[64];

	(void)state;
	assert_int_equal(parse("Basic YWxpY2U6bGV0bWVpbg==", buf, sizeof(buf), "alice", "letmein"), 0);
	assert_int_equal(parse("basic YWxpY2U6bGV0bWVpbg==", buf, sizeof(buf), "alice", "letmein"), 0);
	assert_int_equal(parse("BASIC    YWxpY2U6bGV0bWVpbg== ", buf, sizeof(buf), "alice", "letmein"), 0);
	assert_int_equal(parse("Basic YWxpY2U6bGV0bWVpbg", buf, sizeof(buf), "alice", "letmein"), 0);
	assert_int_equal(parse("Basic YWxpY2U6cGE6c3M6d29yZA==", buf, sizeof(buf), "alice", "pa:ss:word"),
	    0);
	assert_int_equal(parse("Basic YWxpY2U6", buf, sizeof(buf), "alice", ""), 0);
	assert_int_equal(parse("Basic OnB3", buf, sizeof(buf), "", "pw"), 0);
	assert_int_equal(parse("Basic YWxpY2U6bGV0bWVpbiE=", buf, sizeof(buf), "alice", "letmein!"), 0);
	/* Binary bytes survive; the password's length is what counts, not its NUL. */
	assert_int_equal(auth_parse_basic("Basic dToA/w==", buf, sizeof(buf), &user, &ulen, &pass, &plen),
	    0);
	assert_int_equal(plen, 2);
	assert_memory_equal(pass, "\0\xff", 2);

	assert_int_equal(parse("Basic bm9jb2xvbg==", buf, sizeof(buf), NULL, NULL), -1);	/* no colon */
	assert_int_equal(parse("Basic ", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basic", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("BasicYTpi", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basic\tYTpi", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse(" Basic YTpi", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Bearer YTpi", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basi YTpi", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basic YT!i", buf, sizeof(buf), NULL, NULL), -1);	/* bad digit */
	assert_int_equal(parse("Basic YTpiY", buf, sizeof(buf), NULL, NULL), -1);	/* 4n+1 digits */
	assert_int_equal(parse("Basic YWI6Yw=", buf, sizeof(buf), NULL, NULL), -1);	/* half padded */
	assert_int_equal(parse("Basic YWI6Y===", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basic ====", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basic YW=6Yw==", buf, sizeof(buf), NULL, NULL), -1);	/* '=' inside */
	assert_int_equal(parse("Basic YT pi", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basic YWxpY2U6bGV0bWVpbg==\r\n", buf, sizeof(buf), NULL, NULL), -1);
	assert_int_equal(parse("Basic YWxpY2U6bGV0bWVpbg.=", buf, sizeof(buf), NULL, NULL), -1);

	/* "a:b" needs 3 bytes and a NUL. */
	assert_int_equal(parse("Basic YTpi", buf, 4, "a", "b"), 0);
	assert_int_equal(parse("Basic YTpi", buf, 3, NULL, NULL), -1);
	assert_int_equal(parse("Basic YTpi", buf, 0, NULL, NULL), -1);
	assert_int_equal(parse("Basic YWxpY2U6bGV0bWVpbg==", buf, 13, NULL, NULL), -1);
	assert_int_equal(parse("Basic YWxpY2U6bGV0bWVpbg==", buf, 14, "alice", "letmein"), 0);
	assert_int_equal(auth_parse_basic(NULL, buf, sizeof(buf), &user, &ulen, &pass, &plen), -1);
}

static void
test_hash_password_round_trip(void **state)
{
	char hash[AUTH_HASH_MAX], spec[AUTH_HASH_MAX + 16], other[AUTH_HASH_MAX];
	char big[AUTH_PASSWORD_MAX + 1];
	struct auth *a;

	(void)state;
	memset(big, 'p', sizeof(big));
	assert_int_equal(auth_hash_password("hunter2", 7, 1000, hash, sizeof(hash)), 0);
	assert_int_equal(strncmp(hash, "$pbkdf2-sha256$1000$", 20), 0);
	assert_int_equal(strlen(hash), 20 + 22 + 1 + 43);
	assert_int_equal(auth_hash_password("hunter2", 7, 1000, other, sizeof(other)), 0);
	assert_string_not_equal(hash, other);	/* fresh salt each time */
	snprintf(spec, sizeof(spec), "bob::%s", hash);
	a = must_new(spec);
	assert_int_equal(check(a, "bob", "hunter2"), 1);
	assert_int_equal(check(a, "bob", "hunter3"), 0);
	auth_free(a);

	assert_int_equal(auth_hash_password("", 0, 1, hash, sizeof(hash)), 0);
	assert_int_equal(auth_hash_password("x", 1, AUTH_ROUNDS_MAX + 1, hash, sizeof(hash)), -1);
	assert_int_equal(auth_hash_password("x", 1, 0, hash, sizeof(hash)), -1);
	assert_int_equal(auth_hash_password("x", 1, 1, hash, 17 + 22 + 1 + 43), -1);	/* no room for NUL */
	assert_int_equal(auth_hash_password("x", 1, 1, hash, 17 + 22 + 1 + 43 + 1), 0);
	assert_int_equal(auth_hash_password("x", 1, 1, hash, 10), -1);
	assert_int_equal(auth_hash_password(big, sizeof(big), 1, hash, sizeof(hash)), -1);
	assert_int_equal(auth_hash_password(big, AUTH_PASSWORD_MAX, 1, hash, sizeof(hash)), 0);
}

/* Asks Debian's passlib whether hash matches pass: 1 yes, 0 no, -1 when passlib is not there. */
static int
passlib_verify(const char *pass, const char *hash)
{
	char cmd[512], out[16] = "";
	FILE *p;

	/* Both are [A-Za-z0-9$./-] only, so single quotes are enough. */
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c 'import sys\n"
	    "from passlib.hash import pbkdf2_sha256 as h\n"
	    "print(h.verify(sys.argv[1], sys.argv[2]))' '%s' '%s' 2>/dev/null", pass, hash);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	pclose(p);
	if (strcmp(out, "True\n") == 0)
		return 1;
	if (strcmp(out, "False\n") == 0)
		return 0;
	return -1;
}

static void
test_passlib_accepts_our_hash(void **state)
{
	char hash[AUTH_HASH_MAX];
	int ok;

	(void)state;
	assert_int_equal(auth_hash_password("c0rrect-horse", 13, AUTH_ROUNDS_DEFAULT, hash, sizeof(hash)), 0);
	ok = passlib_verify("c0rrect-horse", hash);
	if (ok == -1)
		skip();
	assert_int_equal(ok, 1);
	assert_int_equal(passlib_verify("c0rrect-hors", hash), 0);
}

struct worker {
	struct auth	*a;
	int		 id;
	int		 failures;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	char pass[32];

	for (int i = 0; i < THREAD_ROUNDS; i++) {
		/* A fresh wrong password now and then keeps PBKDF2 and cache writes racing. */
		snprintf(pass, sizeof(pass), "w%d-%d", w->id, i % 10);
		w->failures += check(w->a, "hal", "one") != 1;
		w->failures += check(w->a, "bob", "b0b") != 1;
		w->failures += check(w->a, "hal", "b0b") != 0;
		w->failures += check(w->a, "bob", pass) != 0;
		w->failures += check(w->a, "nobody", pass) != 0;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct auth *a = must_new("hal::" H_ONE "\\nbob::" H_B0B);
	struct worker w[THREADS];
	pthread_t t[THREADS];

	(void)state;
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .a = a, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	/* Distinct credentials: 3 good ones plus 2*10 wrong per thread, give or take a race. */
	assert_true(auth_pbkdf2_count(a) >= 3 + THREADS * 20);
	assert_true(auth_pbkdf2_count(a) < THREADS * THREAD_ROUNDS);
	auth_free(a);
}

/* auth_lookup never runs PBKDF2: it knows only what auth_verify (or auth_check) cached. */
static void
test_lookup_then_verify(void **state)
{
	struct auth *a = must_new("alice::" H_LETMEIN);
	char nul[] = "ali\0ce";
	char longpw[AUTH_PASSWORD_MAX + 2];

	(void)state;
	assert_int_equal(auth_lookup(a, "alice", 5, "letmein", 7), -1);
	assert_int_equal(auth_lookup(a, "alice", 5, "wrong", 5), -1);
	assert_int_equal(auth_pbkdf2_count(a), 0);
	assert_int_equal(auth_verify(a, "alice", 5, "letmein", 7), 1);
	assert_int_equal(auth_verify(a, "alice", 5, "wrong", 5), 0);
	assert_int_equal(auth_verify(a, "nobody", 6, "letmein", 7), 0);
	assert_int_equal(auth_pbkdf2_count(a), 3);
	assert_int_equal(auth_lookup(a, "alice", 5, "letmein", 7), 1);
	assert_int_equal(auth_lookup(a, "alice", 5, "wrong", 5), 0);
	assert_int_equal(auth_lookup(a, "nobody", 6, "letmein", 7), 0);
	assert_int_equal(auth_lookup(a, "alice", 5, "letmein2", 8), -1);
	/* Credentials that can never match are answered at once, not sent to PBKDF2. */
	memset(longpw, 'x', sizeof(longpw));
	assert_int_equal(auth_lookup(a, nul, sizeof(nul) - 1, "letmein", 7), 0);
	assert_int_equal(auth_lookup(a, "alice", 5, longpw, sizeof(longpw)), 0);
	assert_int_equal(auth_lookup(NULL, "alice", 5, "letmein", 7), 0);
	assert_int_equal(auth_lookup(a, NULL, 3, "letmein", 7), 0);
	assert_int_equal(auth_verify(a, nul, sizeof(nul) - 1, "letmein", 7), 0);
	assert_int_equal(auth_pbkdf2_count(a), 3);
	/* auth_check is the two together: a cached verdict costs nothing more. */
	assert_int_equal(check(a, "alice", "letmein"), 1);
	assert_int_equal(check(a, "alice", "wrong"), 0);
	assert_int_equal(auth_pbkdf2_count(a), 3);
	assert_int_equal(check(a, "alice", "letmein2"), 0);
	assert_int_equal(auth_pbkdf2_count(a), 4);
	assert_int_equal(auth_lookup(a, "alice", 5, "letmein2", 8), 0);
	/* A check queued behind another of the same credentials finds its verdict cached. */
	assert_int_equal(auth_verify(a, "alice", 5, "letmein", 7), 1);
	assert_int_equal(auth_verify(a, "alice", 5, "letmein2", 8), 0);
	assert_int_equal(auth_pbkdf2_count(a), 4);
	auth_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_right_and_wrong),
		cmocka_unit_test(test_default_rounds_and_timing),
		cmocka_unit_test(test_unknown_user_costs_the_same),
		cmocka_unit_test(test_many_users_both_separators),
		cmocka_unit_test(test_empty_specs),
		cmocka_unit_test(test_malformed_specs),
		cmocka_unit_test(test_cache_skips_pbkdf2),
		cmocka_unit_test(test_cache_overflow),
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_hash_password_round_trip),
		cmocka_unit_test(test_passlib_accepts_our_hash),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_lookup_then_verify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
