/* test_util.c -- unit tests for util: the range-checked number parser, JSON escaping, ct compare. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "util.h"

#define CANARY	0x5a	/* byte written past the end of a buffer to see it untouched */

static long long
parse_ok(const char *s, long long min, long long max)
{
	long long v = 0x7777;

	if (util_parse_ll(s, min, max, &v) != 0)
		fail_msg("util_parse_ll(\"%s\", %lld, %lld) refused a valid number", s, min, max);
	return v;
}

/* A refused input must leave *out alone. */
static void
parse_bad(const char *s, long long min, long long max)
{
	long long v = 0x7777;

	if (util_parse_ll(s, min, max, &v) != -1)
		fail_msg("util_parse_ll(\"%s\", %lld, %lld) accepted it as %lld", s, min, max, v);
	assert_int_equal(v, 0x7777);
}

/* Durations: bare seconds or one unit; the range applies to the seconds. */
static void
test_parse_seconds(void **state)
{
	long long v = 0x7777;

	(void)state;
	assert_int_equal(util_parse_seconds("3600", 0, 1000000, &v), 0);
	assert_int_equal(v, 3600);
	assert_int_equal(util_parse_seconds("90s", 0, 1000000, &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(util_parse_seconds("5m", 0, 1000000, &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(util_parse_seconds("12h", 0, 1000000, &v), 0);
	assert_int_equal(v, 43200);
	assert_int_equal(util_parse_seconds("3d", 0, 1000000, &v), 0);
	assert_int_equal(v, 259200);
	assert_int_equal(util_parse_seconds("0d", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	v = 0x7777;
	assert_int_equal(util_parse_seconds("12d", 0, 1000000, &v), -1);	/* past max */
	assert_int_equal(util_parse_seconds("1m", 61, 1000, &v), -1);		/* under min */
	assert_int_equal(util_parse_seconds("d", 0, 1000, &v), -1);
	assert_int_equal(util_parse_seconds("", 0, 1000, &v), -1);
	assert_int_equal(util_parse_seconds("-1h", 0, 100000, &v), -1);
	assert_int_equal(util_parse_seconds("1.5h", 0, 100000, &v), -1);
	assert_int_equal(util_parse_seconds("1 h", 0, 100000, &v), -1);
	assert_int_equal(util_parse_seconds("1w", 0, 100000000, &v), -1);
	assert_int_equal(util_parse_seconds("1hh", 0, 100000, &v), -1);
	assert_int_equal(util_parse_seconds("99999999999999999999d", 0, 1LL << 62, &v), -1);
	assert_int_equal(util_parse_seconds("106751991167301d", 0, 1LL << 62, &v), -1);
	assert_int_equal(v, 0x7777);
}

static void
test_parse_ll_valid(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("0", 0, 10), 0);
	assert_int_equal(parse_ok("10", 0, 10), 10);		/* max is inclusive */
	assert_int_equal(parse_ok("1", 1, 1), 1);		/* min is inclusive */
	assert_int_equal(parse_ok("8090", 1, 65535), 8090);
	assert_int_equal(parse_ok("-5", -10, 10), -5);
	assert_int_equal(parse_ok("-10", -10, 10), -10);
	assert_int_equal(parse_ok("007", 0, 10), 7);		/* leading zeros are still decimal */
	assert_int_equal(parse_ok("4294967295", 0, 4294967295LL), 4294967295LL);
	assert_true(parse_ok("9223372036854775807", 0, LLONG_MAX) == LLONG_MAX);
	assert_true(parse_ok("-9223372036854775808", LLONG_MIN, 0) == LLONG_MIN);
}

static void
test_parse_ll_range(void **state)
{
	(void)state;
	parse_bad("11", 0, 10);
	parse_bad("0", 1, 65535);
	parse_bad("65536", 1, 65535);
	parse_bad("70000", 1, 65535);
	parse_bad("-1", 0, 10);
	parse_bad("-11", -10, 10);
	parse_bad("4294967296", 0, 4294967295LL);
}

static void
test_parse_ll_garbage(void **state)
{
	long long v = 0;

	(void)state;
	parse_bad("", 0, 10);
	parse_bad("abc", 0, 10);
	parse_bad("5abc", 0, 10);
	parse_bad("5 ", 0, 10);
	parse_bad(" 5", 0, 10);
	parse_bad("\t5", 0, 10);
	parse_bad("5\n", 0, 10);
	parse_bad("+5", 0, 10);			/* no sign games */
	parse_bad("--5", -10, 10);
	parse_bad("-", -10, 10);
	parse_bad("- 5", -10, 10);
	parse_bad("0x10", 0, 100);
	parse_bad("1e3", 0, 100000);
	parse_bad("1.5", 0, 10);
	parse_bad("1,5", 0, 100);
	parse_bad("\xd9\xa5", 0, 10);		/* ARABIC-INDIC DIGIT FIVE is not a digit here */
	assert_int_equal(util_parse_ll(NULL, 0, 10, &v), -1);
}

static void
test_parse_ll_overflow(void **state)
{
	(void)state;
	parse_bad("9223372036854775808", 0, LLONG_MAX);
	parse_bad("-9223372036854775809", LLONG_MIN, 0);
	parse_bad("99999999999999999999999999", LLONG_MIN, LLONG_MAX);
	parse_bad("18446744073709551617", LLONG_MIN, LLONG_MAX);	/* 2^64 + 1 does not wrap to 1 */
}

/* Escapes s into a buffer of outlen bytes starting at pos; checks nothing is written past outlen. */
static int
json(const char *s, size_t len, size_t outlen, size_t start, char *res, size_t *pos)
{
	char buf[256];
	int rc;

	assert_true(outlen + 16 <= sizeof(buf));
	memset(buf, CANARY, sizeof(buf));
	*pos = start;
	rc = util_json_str(buf, outlen, pos, s, len);
	for (size_t i = outlen; i < sizeof(buf); i++)
		if ((unsigned char)buf[i] != CANARY)
			fail_msg("util_json_str wrote buf[%zu] = 0x%02x with outlen %zu", i,
			    (unsigned char)buf[i], outlen);
	if (rc == 0) {
		assert_true(*pos < outlen);
		assert_int_equal(buf[*pos], '\0');
		memcpy(res, buf + start, *pos - start + 1);
	}
	return rc;
}

static void
assert_json(const char *s, size_t len, const char *want)
{
	char res[256];
	size_t pos;

	assert_int_equal(json(s, len, 200, 0, res, &pos), 0);
	assert_string_equal(res, want);
	assert_int_equal(pos, strlen(want));
}

static void
test_json_escapes(void **state)
{
	(void)state;
	assert_json("", 0, "\"\"");
	assert_json("plain text", 10, "\"plain text\"");
	assert_json("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
	assert_json("a\\b", 3, "\"a\\\\b\"");
	assert_json("l1\nl2\r\t", 7, "\"l1\\nl2\\r\\t\"");
	assert_json("/path/", 6, "\"/path/\"");			/* '/' needs no escape */
}

static void
test_json_control_chars(void **state)
{
	char all[32];

	(void)state;
	assert_json("\x01", 1, "\"\\u0001\"");
	assert_json("\x1b[31m", 5, "\"\\u001b[31m\"");
	assert_json("\x1f", 1, "\"\\u001f\"");
	assert_json("\x7f", 1, "\"\\u007f\"");
	assert_json("a\0b", 3, "\"a\\u0000b\"");		/* the length counts, not the NUL */
	assert_json("\b\f", 2, "\"\\u0008\\u000c\"");
	/* No control byte may come out raw. */
	for (int i = 0; i < 32; i++)
		all[i] = (char)i;
	{
		char res[256];
		size_t pos;

		assert_int_equal(json(all, sizeof(all), 240, 0, res, &pos), 0);
		for (size_t i = 0; i < pos; i++)
			if ((unsigned char)res[i] < 0x20)
				fail_msg("raw control byte 0x%02x at %zu in %s", (unsigned char)res[i], i,
				    res);
	}
}

static void
test_json_utf8_passthrough(void **state)
{
	static const char s[] = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";

	(void)state;
	assert_json(s, sizeof(s) - 1, "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

/* Bytes that are not well-formed UTF-8 become \ufffd, one per byte; the JSON stays valid UTF-8. */
static void
test_json_invalid_utf8(void **state)
{
	(void)state;
	assert_json("\xff\xfe", 2, "\"\\ufffd\\ufffd\"");
	assert_json("caf\xe9", 4, "\"caf\\ufffd\"");			/* Latin-1 */
	assert_json("\xc3", 1, "\"\\ufffd\"");				/* cut short */
	assert_json("\xc3\xa9\xc3", 3, "\"\xc3\xa9\\ufffd\"");
	assert_json("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
	assert_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");		/* overlong '/' */
	assert_json("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\"");	/* overlong */
	assert_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");	/* a surrogate */
	assert_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");	/* > U+10FFFF */
	assert_json("\xf0\x9f\x98\x80x\x80", 6, "\"\xf0\x9f\x98\x80x\\ufffd\"");
	assert_json("\xef\xbf\xbf", 3, "\"\xef\xbf\xbf\"");		/* U+FFFF is well-formed */
	assert_json("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"");	/* U+10FFFF */
}

/* The result plus its NUL fills the buffer exactly; one byte less is refused without overflow. */
static void
test_json_exact_fit(void **state)
{
	static const struct { const char *s; size_t len; const char *want; } cases[] = {
		{ "ab", 2, "\"ab\"" },
		{ "", 0, "\"\"" },
		{ "a\"", 2, "\"a\\\"\"" },
		{ "\x01", 1, "\"\\u0001\"" },
		{ "x\n", 2, "\"x\\n\"" },
		{ "\xc3\xa9", 2, "\"\xc3\xa9\"" },
		{ "\xff", 1, "\"\\ufffd\"" },
		{ "a\xe2\x82\xac", 4, "\"a\xe2\x82\xac\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t need = strlen(cases[i].want) + 1, pos;
		char res[256];

		for (size_t start = 0; start < 3; start++) {
			assert_int_equal(json(cases[i].s, cases[i].len, start + need, start, res, &pos), 0);
			assert_string_equal(res, cases[i].want);
			assert_int_equal(pos, start + need - 1);
			for (size_t small = 0; small < start + need; small++) {
				if (json(cases[i].s, cases[i].len, small, start, res, &pos) != -1)
					fail_msg("case %zu: outlen %zu (needs %zu) accepted", i, small,
					    start + need);
				assert_int_equal(pos, start);	/* *pos untouched on failure */
			}
		}
	}
}

static void
test_json_appends(void **state)
{
	char buf[64];
	size_t pos = 0;

	(void)state;
	buf[pos++] = '{';
	assert_int_equal(util_json_str(buf, sizeof(buf), &pos, "k", 1), 0);
	buf[pos++] = ':';
	assert_int_equal(util_json_str(buf, sizeof(buf), &pos, "v\"", 2), 0);
	buf[pos++] = '}';
	buf[pos] = '\0';
	assert_string_equal(buf, "{\"k\":\"v\\\"\"}");
}

static void
test_ct_equal(void **state)
{
	static const char a[] = "correct horse battery staple";
	char b[sizeof(a)];

	(void)state;
	memcpy(b, a, sizeof(a));
	assert_int_equal(util_ct_equal(a, b, sizeof(a)), 1);
	assert_int_equal(util_ct_equal(a, b, 0), 1);
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] = (char)(a[i] ^ (1 << bit));
			if (util_ct_equal(a, b, sizeof(a)) != 0)
				fail_msg("byte %zu bit %d differs but compared equal", i, bit);
			b[i] = a[i];
		}
	}
	assert_int_equal(util_ct_equal("abc", "abd", 2), 1);	/* only len bytes count */
	assert_int_equal(util_ct_equal("\x80", "\x00", 1), 0);
}

static void
test_now_monotonic(void **state)
{
	double t0 = util_now(), t1 = util_now();

	(void)state;
	assert_true(t0 > 0);
	assert_true(t1 >= t0);
}

static void
test_bytes(void **state)
{
	char b[UTIL_BYTES_MAX];

	(void)state;
	util_bytes(512, b, sizeof(b));
	assert_string_equal(b, "512 bytes");
	util_bytes(268435456, b, sizeof(b));
	assert_string_equal(b, "256.0 MiB");
	util_bytes(41077110784ULL, b, sizeof(b));
	assert_string_equal(b, "38.3 GiB");
	util_bytes(~0ULL, b, sizeof(b));
	assert_string_equal(b, "16.0 EiB");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ll_valid),
		cmocka_unit_test(test_parse_seconds),
		cmocka_unit_test(test_parse_ll_range),
		cmocka_unit_test(test_parse_ll_garbage),
		cmocka_unit_test(test_parse_ll_overflow),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_control_chars),
		cmocka_unit_test(test_json_utf8_passthrough),
		cmocka_unit_test(test_json_invalid_utf8),
		cmocka_unit_test(test_json_exact_fit),
		cmocka_unit_test(test_json_appends),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_now_monotonic),
		cmocka_unit_test(test_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
