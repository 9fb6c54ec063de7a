/* test_reqid.c -- unit tests for choosing a request's id. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "reqid.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TP_ID "4bf92f3577b34da6a3ce929d0e0e4736"
#define B3 "463ac35c9f6413ad48485a3953bb6124"

static void
assert_pick(const char *x, const char *tp, const char *b3, enum reqid_source want_src,
    const char *want)
{
	char out[REQID_SIZE];
	enum reqid_source src = reqid_pick(x, tp, b3, out);

	if (src != want_src)
		fail_msg("X-Request-Id %s traceparent %s b3 %s: source %d, want %d (id %s)",
		    x ? x : "-", tp ? tp : "-", b3 ? b3 : "-", src, want_src, out);
	if (want != NULL)
		assert_string_equal(out, want);
}

static int
is_generated(const char *s)
{
	return strlen(s) == REQID_GEN_LEN && strspn(s, "0123456789abcdef") == REQID_GEN_LEN;
}

static void
test_precedence(void **state)
{
	(void)state;
	assert_pick("abc-123", TP, B3, REQID_HEADER, "abc-123");
	assert_pick(NULL, TP, B3, REQID_TRACEPARENT, TP_ID);
	assert_pick(NULL, NULL, B3, REQID_B3, B3);
	assert_pick(NULL, NULL, "a3ce929d0e0e4736", REQID_B3, "a3ce929d0e0e4736");
	assert_pick(NULL, NULL, NULL, REQID_GENERATED, NULL);
	/* An invalid one is skipped for the next. */
	assert_pick("bad\"id", TP, B3, REQID_TRACEPARENT, TP_ID);
	assert_pick("", "garbage", B3, REQID_B3, B3);
	assert_pick(NULL, "garbage", "nothex", REQID_GENERATED, NULL);
}

static void
test_x_request_id_validation(void **state)
{
	char longest[REQID_MAX + 1], over[REQID_MAX + 2];
	const char *bad[] = { "", "a b", "a\"b", "a\\b", "a\nb", "a\rb", "a\tb", "{x}", "a;b", "a,b",
	    "\x7f", "caf\xc3\xa9", "<script>", "a'b" };

	(void)state;
	memset(longest, 'a', REQID_MAX);
	longest[REQID_MAX] = '\0';
	memset(over, 'a', REQID_MAX + 1);
	over[REQID_MAX + 1] = '\0';
	assert_true(reqid_valid(longest));
	assert_false(reqid_valid(over));
	assert_true(reqid_valid("f47ac10b-58cc-4372-a567-0e02b2c3d479"));
	assert_true(reqid_valid("Root=1-67891233-abcdef012345678912345678"));
	assert_true(reqid_valid("req_1.2:3/4+5@6"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (reqid_valid(bad[i]))
			fail_msg("'%s' was taken", bad[i]);
}

static void
test_traceparent_validation(void **state)
{
	const char *bad[] = {
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",	/* zero trace-id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",	/* zero parent */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",	/* version ff */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",	/* upper case */
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",	/* short */
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",	/* v00 + more */
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
	};
	char out[REQID_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (reqid_pick(NULL, bad[i], NULL, out) != REQID_GENERATED)
			fail_msg("traceparent '%s' was taken: %s", bad[i], out);
	/* A later version may carry more fields. */
	assert_pick(NULL, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", NULL,
	    REQID_TRACEPARENT, TP_ID);
}

static void
test_generated_differ(void **state)
{
	char a[REQID_SIZE], b[REQID_SIZE];

	(void)state;
	reqid_pick(NULL, NULL, NULL, a);
	reqid_pick(NULL, NULL, NULL, b);
	assert_true(is_generated(a));
	assert_true(is_generated(b));
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_x_request_id_validation),
		cmocka_unit_test(test_traceparent_validation),
		cmocka_unit_test(test_generated_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
