/* test_framing.c -- the request-smuggling checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "framing.h"

static int
check(const char *const *hdrs)
{
	struct framing f = { 0 };

	for (; hdrs[0] != NULL; hdrs += 2)
		framing_header(&f, hdrs[0], hdrs[1]);
	return framing_ok(&f);
}

static void
test_plain(void **state)
{
	(void)state;
	assert_int_equal(check((const char *[]){ "Host", "x", NULL }), 1);
	assert_int_equal(check((const char *[]){ "Content-Length", "10", NULL }), 1);
	assert_int_equal(check((const char *[]){ "transfer-encoding", "Chunked", NULL }), 1);
}

static void
test_smuggling(void **state)
{
	(void)state;
	assert_int_equal(check((const char *[]){ "Content-Length", "10", "Content-Length", "10", NULL }), 0);
	assert_int_equal(check((const char *[]){ "Content-Length", "10", "Transfer-Encoding", "chunked",
	    NULL }), 0);
	assert_int_equal(check((const char *[]){ "Transfer-Encoding", "gzip", NULL }), 0);
	assert_int_equal(check((const char *[]){ "Transfer-Encoding", "chunked, gzip", NULL }), 0);
	assert_int_equal(check((const char *[]){ "Transfer-Encoding", "chunked", "Transfer-Encoding",
	    "chunked", NULL }), 0);
	assert_int_equal(check((const char *[]){ "Content-Length", "-1", NULL }), 0);
	assert_int_equal(check((const char *[]){ "Content-Length", "1x", NULL }), 0);
	assert_int_equal(check((const char *[]){ "Content-Length", "", NULL }), 0);
}

/* What libmicrohttpd makes of a folded framing header: the continuation glued to the name. */
static void
test_folded(void **state)
{
	(void)state;
	assert_int_equal(check((const char *[]){ "Transfer-Encodingchunked", "", NULL }), 0);
	assert_int_equal(check((const char *[]){ "content-length68", "", NULL }), 0);
	assert_int_equal(check((const char *[]){ "Content-Type", "text/plain", NULL }), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_folded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
