/* test_filepolicy.c -- unit tests for the upload policy's parsing and matching (filepolicy.c) and
 * POLICY_FILE's format (filepolicy_file.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "filepolicy.h"
#include "filepolicy_file.h"
#include "scanner.h"

static struct filepolicy *
pol(const char *allow, const char *deny, const char *depth, int mismatch, const char *mode)
{
	struct filepolicy_spec s = { .allow = allow, .deny = deny, .depth = depth, .mode = mode,
	    .block_mismatch = mismatch };
	char err[256] = "";
	struct filepolicy *p = filepolicy_new(&s, "t", err, sizeof(err));

	if (p == NULL)
		fail_msg("refused: %s", err);
	return p;
}

/* Kinds from "TYPE@depth[m|e]" words. */
static void
kinds(struct scan_kinds *k, struct scan_kind *v, const char *const *spec, unsigned n)
{
	memset(k, 0, sizeof(*k));
	for (unsigned i = 0; i < n; i++) {
		const char *at = strchr(spec[i], '@');

		memset(&v[i], 0, sizeof(v[i]));
		snprintf(v[i].type, sizeof(v[i].type), "%.*s", (int)(at - spec[i]), spec[i]);
		v[i].depth = (unsigned)(at[1] - '0');
		v[i].macros = strchr(at, 'm') != NULL;
		v[i].encrypted = strchr(at, 'e') != NULL;
	}
	k->v = v;
	k->n = n;
}

static const char *
judge(const struct filepolicy *p, const char *name, const char *const *spec, unsigned n)
{
	static struct filepolicy_verdict v;
	struct scan_kind kv[8];
	struct scan_kinds k;

	kinds(&k, kv, spec, n);
	filepolicy_judge(p, &k, name, name != NULL ? strlen(name) : 0, &v);
	return v.matched ? v.reason : "ok";
}

static void
test_refuses_unknown_names(void **state)
{
	struct filepolicy_spec s = { .deny = "executables, CL_TYPE_NOPE" };
	char err[256] = "";

	(void)state;
	assert_null(filepolicy_new(&s, "t", err, sizeof(err)));
	assert_non_null(strstr(err, "CL_TYPE_NOPE"));
	s = (struct filepolicy_spec){ .depth = "-1" };
	assert_null(filepolicy_new(&s, "t", err, sizeof(err)));
	s = (struct filepolicy_spec){ .mode = "block" };
	assert_null(filepolicy_new(&s, "t", err, sizeof(err)));
	assert_true(filepolicy_known_type("CL_TYPE_ELF"));
	assert_false(filepolicy_known_type("CL_TYPE_NOPE"));
}

static void
test_no_rule_is_inactive(void **state)
{
	struct filepolicy *p = pol("", " , ", "all", 0, "enforce");
	static const char *const k[] = { "CL_TYPE_MSEXE@0" };

	(void)state;
	assert_false(filepolicy_active(p));
	assert_false(filepolicy_active(NULL));
	assert_string_equal(judge(p, "a.pdf", k, 1), "ok");
	filepolicy_free(p);
}

static void
test_executables_group_and_depth(void **state)
{
	struct filepolicy *p = pol("", "executables", "all", 0, "enforce");
	struct filepolicy *d1 = pol("", "executables", "1", 0, "enforce");
	static const char *const pe[] = { "CL_TYPE_ZIP@0", "CL_TYPE_ZIP@1", "CL_TYPE_MSEXE@2" };
	static const char *const types[] = { "CL_TYPE_ELF@0", "CL_TYPE_MACHO@0",
	    "CL_TYPE_MACHO_UNIBIN@0", "CL_TYPE_JAVA@0", "CL_TYPE_NULSFT@0", "CL_TYPE_AUTOIT@0",
	    "CL_TYPE_PYTHON_COMPILED@0", "CL_TYPE_LNK@0" };

	(void)state;
	assert_string_equal(judge(p, NULL, pe, 3), "Policy.Type.MSEXE");
	assert_string_equal(judge(d1, NULL, pe, 3), "ok");
	for (unsigned i = 0; i < 8; i++)
		assert_string_not_equal(judge(p, NULL, &types[i], 1), "ok");
	filepolicy_free(p);
	filepolicy_free(d1);
}

static void
test_allow_judges_files_not_parts(void **state)
{
	struct filepolicy *p = pol("CL_TYPE_PDF", "", "all", 0, "enforce");
	static const char *const pdf[] = { "CL_TYPE_PDF@0", "CL_TYPE_TEXT_ASCII@1",
	    "CL_TYPE_BINARY_DATA@1" };
	static const char *const text[] = { "CL_TYPE_TEXT_ASCII@0" };
	static const char *const jpeg[] = { "CL_TYPE_PDF@0", "CL_TYPE_JPEG@1" };

	(void)state;
	assert_string_equal(judge(p, NULL, pdf, 3), "ok");
	assert_string_equal(judge(p, NULL, text, 1), "Policy.Type.TEXT_ASCII");
	assert_string_equal(judge(p, NULL, jpeg, 2), "Policy.Type.JPEG");
	filepolicy_free(p);
}

static void
test_macros_encrypted_unknown(void **state)
{
	struct filepolicy *p = pol("", "office-macros", "all", 0, "enforce");
	struct filepolicy *top = pol("", "office-macros", "0", 0, "enforce");
	struct filepolicy *only = pol("images", "", "all", 0, "enforce");
	static const char *const m[] = { "CL_TYPE_OOXML_WORD@0", "CL_TYPE_MSOLE2@1",
	    "CL_TYPE_MSOLE2@1m" };
	static const char *const e[] = { "CL_TYPE_ZIP@0", "CL_TYPE_ZIP@0e" };
	struct scan_kinds none = { 0 };
	struct filepolicy_verdict v;

	(void)state;
	assert_string_equal(judge(p, NULL, m, 3), "Policy.Macros.MSOLE2");
	assert_string_equal(judge(top, NULL, m, 3), "ok");
	assert_string_equal(judge(p, NULL, e, 2), "Policy.Encrypted.ZIP");
	assert_string_equal(judge(top, NULL, e, 2), "ok");
	filepolicy_judge(p, &none, NULL, 0, &v);
	assert_false(v.matched);	/* nothing seen, nothing denied */
	filepolicy_judge(only, &none, NULL, 0, &v);
	assert_string_equal(v.reason, "Policy.Unjudged");	/* but not of an allowed type */
	none.overflow = 1;
	filepolicy_judge(p, &none, NULL, 0, &v);
	assert_true(v.blocked);
	filepolicy_free(p);
	filepolicy_free(top);
	filepolicy_free(only);
}

static void
test_extension_mismatch_and_scripts(void **state)
{
	struct filepolicy *p = pol("", "", "all", 1, "enforce");
	struct filepolicy *s = pol("", "scripts", "all", 0, "report");
	static const char *const pe[] = { "CL_TYPE_MSEXE@0" };
	static const char *const png[] = { "CL_TYPE_PNG@0" };
	static const char *const text[] = { "CL_TYPE_TEXT_ASCII@0" };
	struct filepolicy_verdict v;
	struct scan_kind kv[1];
	struct scan_kinds k;

	(void)state;
	assert_string_equal(judge(p, "dir.x/Invoice.PDF", pe, 1), "Policy.ExtensionMismatch.pdf.MSEXE");
	assert_string_equal(judge(p, "a.exe", pe, 1), "ok");
	assert_string_equal(judge(p, "a.png", png, 1), "ok");
	assert_string_equal(judge(p, "a.jpg", png, 1), "Policy.ExtensionMismatch.jpg.PNG");
	assert_string_equal(judge(p, "a.pdf/", pe, 1), "ok");		/* no extension */
	assert_string_equal(judge(p, "noext", pe, 1), "ok");
	assert_string_equal(judge(p, "a.weird", pe, 1), "ok");
	assert_string_equal(judge(p, NULL, pe, 1), "ok");
	kinds(&k, kv, text, 1);
	filepolicy_judge(s, &k, "run.PS1", 7, &v);
	assert_true(v.matched);
	assert_false(v.blocked);	/* report mode */
	assert_string_equal(v.reason, "Policy.Type.SCRIPT");
	filepolicy_free(p);
	filepolicy_free(s);
}

static void
test_policy_file_format(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(filepolicy_file_parse("# none\n\n", err, sizeof(err)), 0);
	assert_int_equal(filepolicy_file_parse("[a]\nallow = images\nusers = u1, u2\n[b]\n"
	    "deny = executables\r\nmode = report\ndepth = 2\nblock_extension_mismatch = yes\n"
	    "users = u3\n", err, sizeof(err)), 2);
	assert_int_equal(filepolicy_file_parse("allow = images\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 1"));
	assert_int_equal(filepolicy_file_parse("[a]\nallow = pictures\n", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "pictures"));
	assert_int_equal(filepolicy_file_parse("[a]\nusers = u1\n[b]\nusers = u2, u1\n", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "u1"));
	assert_int_equal(filepolicy_file_parse("[a]\ncolour = red\n", err, sizeof(err)), -1);
	assert_int_equal(filepolicy_file_parse("[a\n", err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuses_unknown_names),
		cmocka_unit_test(test_no_rule_is_inactive),
		cmocka_unit_test(test_executables_group_and_depth),
		cmocka_unit_test(test_allow_judges_files_not_parts),
		cmocka_unit_test(test_macros_encrypted_unknown),
		cmocka_unit_test(test_extension_mismatch_and_scripts),
		cmocka_unit_test(test_policy_file_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
