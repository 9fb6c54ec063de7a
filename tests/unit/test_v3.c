/* test_v3.c -- unit tests of the /v3 API's pure parts: the all_matches query, its canonical form,
 * uploads of several files and the JSON answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "body.h"
#include "upload.h"
#include "v3.h"

static int
q(const char *s)
{
	return v3_query_all_matches(s, strlen(s));
}

static void
test_query(void **state)
{
	(void)state;
	assert_int_equal(q(""), 0);
	assert_int_equal(q("x=1"), 0);
	assert_int_equal(q("all_matches=true"), 1);
	assert_int_equal(q("all_matches=TRUE"), 1);
	assert_int_equal(q("all_matches=True"), 1);
	assert_int_equal(q("all_matches=false"), 0);
	assert_int_equal(q("a=b&all_matches=true&c"), 1);
	assert_int_equal(q("all%5Fmatches=tru%65"), 1);
	assert_int_equal(q("all_matches=true&all_matches=bad"), 1);	/* the first counts */
	assert_int_equal(q("all_matches=bad&all_matches=true"), -1);
	assert_int_equal(q("all_matches"), -1);
	assert_int_equal(q("all_matches="), -1);
	assert_int_equal(q("all_matches=1"), -1);
	assert_int_equal(q("all_matches=yes"), -1);
	assert_int_equal(q("all_matches=true "), -1);
	assert_int_equal(q("all_matchesx=true"), 0);
	assert_int_equal(v3_query_all_matches("all_matches=true", 13), -1);	/* "all_matches=t" */
}

static void
canon(const char *in, const char *want)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", in);
	v3_query_canon(buf);
	assert_string_equal(buf, want);
}

static void
test_query_canon(void **state)
{
	(void)state;
	canon("", "");
	canon("a=1&b=2", "");
	canon("all_matches=true", V3_ARG_TRUE);
	canon("all_matches=false", "");
	canon("all_matches", V3_ARG_BAD);
	canon("am=1", "");	/* the canonical name from a client means nothing */
	canon("x&all_matches=nope", V3_ARG_BAD);
}

/* An upload never scanned: every file clean, unhashed, untyped; names escaped as Flask would. */
static void
test_json(void **state)
{
	struct upload *u = upload_new(2, 4, "/tmp", UPLOAD_SCAN_DETAIL);
	struct v3_engine e = { .libclamav = "1.4.6", .database = 27000 };
	const char *want = "{\"engine\":{\"database\":27000,\"libclamav\":\"1.4.6\"},\"files\":["
	    "{\"limits_exceeded\":false,\"malware\":false,\"matches\":[],\"name\":\"a\\\"b\\u0001\\ufffd\","
	    "\"sha256\":null,\"size\":0,\"time\":0.000000,\"type\":null},"
	    "{\"limits_exceeded\":false,\"malware\":false,\"matches\":[],\"name\":null,"
	    "\"sha256\":null,\"size\":0,\"time\":0.000000,\"type\":null}],\"malware\":false,\"time\":0.000000}\n";
	size_t len;
	char *json;

	(void)state;
	assert_non_null(u);
	assert_int_equal(upload_begin(u, "a\"b\x01\xff", 5, "f", 1), 0);
	assert_int_equal(upload_append(u, "0123456789", 10), 0);	/* past 4 bytes: spilled */
	assert_int_equal(upload_begin(u, NULL, 0, "", 0), 0);
	assert_int_equal(upload_begin(u, "c", 1, "", 0), -1);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(upload_count(u), 2);
	assert_null(upload_error(u));
	assert_int_equal(upload_malware(u), 0);
	json = api_json_v3(u, &e, &len);
	assert_non_null(json);
	assert_string_equal(json, want);
	assert_int_equal(len, strlen(want));
	free(json);
	upload_reset(u);
	assert_int_equal(upload_count(u), 0);
	assert_int_equal(body_disk_used(), 0);
	assert_int_equal(body_memory_used(), 0);
	upload_free(u);
	upload_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_query_canon),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
