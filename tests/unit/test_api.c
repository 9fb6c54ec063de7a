/* test_api.c -- unit tests for api: Werkzeug's path rules, Allow, and JSON bytes as Flask writes them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api.h"
#include "config.h"
#include "util.h"

static void
test_resolve(void **state)
{
	static const struct { const char *path; enum api_resolve how; const char *route; } cases[] = {
		{ "/", API_SERVE, "/" },
		{ "//", API_SERVE, "/" },
		{ "/check", API_SERVE, "/check" },
		{ "//check_version", API_SERVE, "/check_version" },
		{ "///v2/scan", API_SERVE, "/v2/scan" },
		{ "/v2//scan-chunked", API_REDIRECT, "/v2/scan-chunked" },
		{ "//v2//scan", API_REDIRECT, "/v2/scan" },
		{ "/v2///scan", API_REDIRECT, "/v2/scan" },
		{ "/check/", API_NOT_FOUND, NULL },
		{ "/check//", API_NOT_FOUND, NULL },
		{ "/check_version//x", API_NOT_FOUND, NULL },
		{ "/v2/", API_NOT_FOUND, NULL },
		{ "/v2", API_NOT_FOUND, NULL },
		{ "", API_NOT_FOUND, NULL },
		{ "check", API_NOT_FOUND, NULL },
		{ "/CHECK", API_NOT_FOUND, NULL },
	};
	char merged[API_PATH_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct api_route_def *rt = NULL;
		enum api_resolve how = api_resolve(cases[i].path, &rt, merged, sizeof(merged));

		if (how != cases[i].how)
			fail_msg("%s: resolved %d, want %d", cases[i].path, how, cases[i].how);
		if (how != API_NOT_FOUND)
			assert_string_equal(rt->path, cases[i].route);
		if (how == API_REDIRECT)
			assert_string_equal(merged, cases[i].route);
	}
}

static void
test_resolve_long_path(void **state)
{
	char path[API_PATH_MAX * 2], merged[API_PATH_MAX];
	const struct api_route_def *rt;

	(void)state;
	memset(path, '/', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(api_resolve(path, &rt, merged, sizeof(merged)), API_SERVE);	/* "/" */
	memcpy(path + sizeof(path) - 6, "check", 6);
	assert_int_equal(api_resolve(path, &rt, merged, sizeof(merged)), API_SERVE);
	memcpy(path, "/v2", 3);
	memcpy(path + sizeof(path) - 6, "/scan", 6);
	/* Merged it fits; the copy stops at the buffer's end otherwise. */
	assert_int_equal(api_resolve(path, &rt, merged, sizeof(merged)), API_REDIRECT);
	assert_string_equal(merged, "/v2/scan");
	assert_int_equal(api_resolve(path, &rt, merged, 4), API_NOT_FOUND);
}

static void
test_methods_and_allow(void **state)
{
	const struct api_route_def *get, *post;
	char merged[API_PATH_MAX];

	(void)state;
	api_resolve("/check", &get, merged, sizeof(merged));
	api_resolve("/v2/scan", &post, merged, sizeof(merged));
	assert_true(api_method_allowed(get, "GET") && api_method_allowed(get, "HEAD"));
	assert_true(api_method_allowed(get, "OPTIONS") && api_method_allowed(post, "OPTIONS"));
	assert_false(api_method_allowed(get, "POST") || api_method_allowed(get, "get"));
	assert_true(api_method_allowed(post, "POST"));
	assert_false(api_method_allowed(post, "GET") || api_method_allowed(post, "HEAD"));
	assert_string_equal(get->allow, "GET, HEAD, OPTIONS");
	assert_string_equal(post->allow, "POST, OPTIONS");
}

/* Python's repr(float) of each (from Python 3.11). */
static void
test_py_float(void **state)
{
	static const struct { double v; const char *repr; } cases[] = {
		{ 0.0, "0.0" }, { 1.0, "1.0" }, { 0.5, "0.5" }, { 0.000713, "0.000713" },
		{ 1e-05, "1e-05" }, { 1.5e-07, "1.5e-07" }, { 0.0001, "0.0001" },
		{ 123.456, "123.456" }, { 1e+16, "1e+16" },
		{ 1.2345678901234568e+16, "1.2345678901234568e+16" },
		{ 9999999999999998.0, "9999999999999998.0" },
		{ 0.30000000000000004, "0.30000000000000004" }, { 2.5e-05, "2.5e-05" },
		{ 100.0, "100.0" }, { 0.003457000013440847, "0.003457000013440847" },
	};
	char out[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = api_py_float(out, sizeof(out), cases[i].v);

		assert_int_equal(n, strlen(cases[i].repr));
		assert_string_equal(out, cases[i].repr);
	}
	assert_int_equal(api_py_float(out, 4, 123.456), 0);
	assert_int_equal(api_py_float(out, sizeof(out), -1.0), 0);
}

static void
test_json_answers(void **state)
{
	char out[512];
	size_t n;

	(void)state;
	n = api_json_version(out, sizeof(out), 27401, 27401, 0);
	assert_string_equal(out,
	    "{\"clamd-actual\":\"27401\",\"clamd-required\":\"27401\",\"outdated\":false,"
	    "\"service\":\"1.0.0\"}\n");
	assert_int_equal(n, strlen(out));
	api_json_version(out, sizeof(out), 27401, 27405, 1);
	assert_string_equal(out,
	    "{\"clamd-actual\":\"27401\",\"clamd-required\":\"27405\",\"outdated\":true,"
	    "\"service\":\"1.0.0\"}\n");
	api_json_version_error(out, sizeof(out), "no \"TXT\"");
	assert_string_equal(out, "{\"error\":\"no \\\"TXT\\\"\",\"service\":\"1.0.0\"}\n");
	api_json_scan(out, sizeof(out), 1, "Win.Test.EICAR_HDB-1", 0.000713);
	assert_string_equal(out, "{\"malware\":true,\"reason\":\"Win.Test.EICAR_HDB-1\","
	    "\"time\":0.000713}\n");
	api_json_scan(out, sizeof(out), 0, NULL, 1e-05);
	assert_string_equal(out, "{\"malware\":false,\"reason\":null,\"time\":1e-05}\n");
	api_json_error(out, sizeof(out), "disk full");
	assert_string_equal(out, "{\"error\":\"disk full\"}\n");
	assert_int_equal(api_json_error(out, 12, "disk full"), 0);
	assert_int_equal(api_json_version(out, 20, 1, 1, 0), 0);
}

/* GET /version: sorted keys, compact, a final newline; nulls before a database is loaded. */
static void
test_json_about(void **state)
{
	struct api_about a = { .engine = "1.4.6", .db_version = 27000, .db_time = 1616707740,
	    .signatures = 3, .libclamav_patched = 1 };
	char out[512];

	(void)state;
	assert_int_not_equal(api_json_about(out, sizeof(out), &a), 0);
	assert_string_equal(out, "{\"clamav\":\"1.4.6\",\"clamrest\":\"" CONFIG_VERSION "\","
	    "\"database_build_time\":\"2021-03-25T21:29:00Z\",\"database_signatures\":3,"
	    "\"database_version\":27000,\"libclamav_patched\":true}\n");
	a.db_version = -1;
	a.libclamav_patched = 0;
	assert_int_not_equal(api_json_about(out, sizeof(out), &a), 0);
	assert_string_equal(out, "{\"clamav\":\"1.4.6\",\"clamrest\":\"" CONFIG_VERSION "\","
	    "\"database_build_time\":null,\"database_signatures\":null,\"database_version\":null,"
	    "\"libclamav_patched\":false}\n");
	assert_int_equal(api_json_about(out, 40, &a), 0);
}

/* json.dumps(..., ensure_ascii=True) of "a\"b\\c\n\t\b\f\x01\x7f" "é€😀" and a stray byte. */
static void
test_json_ascii(void **state)
{
	static const char in[] = "a\"b\\c\n\t\b\f\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff";
	char out[256];
	size_t pos = 0;

	(void)state;
	assert_int_equal(util_json_str_ascii(out, sizeof(out), &pos, in, sizeof(in) - 1), 0);
	assert_string_equal(out, "\"a\\\"b\\\\c\\n\\t\\b\\f\\u0001\\u007f\\u00e9\\u20ac"
	    "\\ud83d\\ude00\\ufffd\"");
	assert_int_equal(pos, strlen(out));
	pos = 0;
	assert_int_equal(util_json_str_ascii(out, 10, &pos, in, sizeof(in) - 1), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_json_about),
		cmocka_unit_test(test_resolve_long_path),
		cmocka_unit_test(test_methods_and_allow),
		cmocka_unit_test(test_py_float),
		cmocka_unit_test(test_json_answers),
		cmocka_unit_test(test_json_ascii),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
