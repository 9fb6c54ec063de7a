/* test_config.c -- unit tests for config: defaults, environment, flags, derived values, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "scanner.h"

#define GiB		(1024ULL * 1024 * 1024)
#define ERR_MAX		256
#define OUT_MAX		16384	/* bytes of --help output read back */
#define TEST_TIMEOUT	10	/* seconds */

/* Every variable config.c reads; each test starts with none set. */
static const char *const config_env[] = {
	"HOST", "PORT", "APPLICATION_USERS", "MAX_CONTENT_LENGTH", "CLAMAV_DB_DIR", "CLAMAV_TXT_URI",
	"CLAMAV_DNS_SERVER", "LOGGING_LEVEL", "TMPDIR", "REQUEST_TIMEOUT", "SCAN_THREADS",
	"SCAN_QUEUE", "SCAN_QUEUE_TIMEOUT", "IO_THREADS", "MAX_CONNECTIONS", "MIN_UPLOAD_RATE", "SPILL_THRESHOLD",
	"DB_CHECK_INTERVAL", "MAX_SCAN_SIZE", "MAX_FILE_SIZE", "MAX_RECURSION", "MAX_FILES",
	"MAX_SCAN_TIME", "TLS_CERT", "TLS_KEY", "ALERT_ENCRYPTED", "SCAN_ARCHIVE", "DETECT_PUA",
	"PUA_INCLUDE", "PUA_EXCLUDE",
};

static void
clear_env(void)
{
	for (size_t i = 0; i < sizeof(config_env) / sizeof(config_env[0]); i++)
		unsetenv(config_env[i]);
}

static int
setup(void **state)
{
	(void)state;
	alarm(TEST_TIMEOUT);
	clear_env();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	alarm(0);
	clear_env();
	return 0;
}

/* config_load with argv = { "clamrest", args..., NULL }; err is always NUL-terminated after it. */
static int
load(struct config *c, char *err, const char *const *args)
{
	char *argv[32] = { "clamrest" };
	int argc = 1;

	for (; args != NULL && args[argc - 1] != NULL; argc++) {
		assert_true(argc < 31);
		argv[argc] = (char *)(uintptr_t)args[argc - 1];
	}
	argv[argc] = NULL;
	err[0] = '\0';
	return config_load(c, argc, argv, err, ERR_MAX);
}

#define ARGS(...)	((const char *const[]){ __VA_ARGS__, NULL })

static void
load_ok(struct config *c, const char *const *args)
{
	char err[ERR_MAX];
	int rc = load(c, err, args);

	if (rc != 0)
		fail_msg("config_load: want 0, got %d: %s", rc, err);
}

/* A refusal: -1 with an err naming what. */
static void
load_bad(const char *const *args, const char *names)
{
	struct config c;
	char err[ERR_MAX];
	int rc = load(&c, err, args);

	config_free(&c);
	if (rc != -1)
		fail_msg("config_load: want -1 naming %s, got %d", names, rc);
	if (strstr(err, names) == NULL)
		fail_msg("err \"%s\" does not name %s", err, names);
	assert_null(strchr(err, '\n'));		/* one line */
}

static void
test_defaults(void **state)
{
	struct config c;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	load_ok(&c, NULL);
	assert_string_equal(c.host, "0.0.0.0");
	assert_int_equal(c.port, 8090);
	assert_string_equal(c.users, "");
	assert_int_equal(c.max_content_length, 1073741824ULL);
	assert_string_equal(c.db_dir, "/var/lib/clamav");
	assert_string_equal(c.txt_uri, "current.cvd.clamav.net");
	assert_null(c.dns_server);
	assert_string_equal(c.log_level, "INFO");
	assert_string_equal(c.tmpdir, "/tmp");
	assert_int_equal(c.request_timeout, 30);
	assert_int_equal(c.scan_threads, ncpu);
	assert_int_equal(c.io_threads, ncpu);
	assert_int_equal(c.scan_queue, 100000);
	assert_int_equal(c.scan_queue_timeout, 60);
	assert_int_equal(c.max_connections, 1000);
	assert_int_equal(c.min_upload_rate, 1024);
	assert_int_equal(c.spill_threshold, 2097152);
	assert_int_equal(c.db_check_interval, 60);
	assert_int_equal(c.max_scan_size, 2 * GiB - 1);	/* 4 x 1 GiB, capped at libclamav's limit */
	assert_int_equal(c.max_file_size, c.max_content_length);
	assert_int_equal(c.max_expansion, 100);
	assert_int_equal(c.scan_cache, 65536);
	assert_int_equal(c.max_recursion, 17);
	assert_int_equal(c.max_files, 10000);
	assert_int_equal(c.max_scan_time, 120000);
	assert_null(c.tls_cert);
	assert_null(c.tls_key);
	config_free(&c);
	/* config_free leaves nothing dangling: a second call is harmless. */
	assert_null(c.host);
	config_free(&c);
}

static void
test_env_overrides(void **state)
{
	struct config c;

	(void)state;
	setenv("PORT", "9001", 1);
	setenv("HOST", "127.0.0.1", 1);
	setenv("MAX_CONTENT_LENGTH", "1000", 1);
	setenv("SCAN_THREADS", "3", 1);
	setenv("IO_THREADS", "5", 1);
	setenv("APPLICATION_USERS", "alice::x\\nbob::y", 1);
	setenv("CLAMAV_DB_DIR", "/srv/db", 1);
	setenv("CLAMAV_DNS_SERVER", "192.0.2.1:5353", 1);
	setenv("LOGGING_LEVEL", "DEBUG", 1);
	setenv("TMPDIR", "/var/tmp", 1);
	setenv("REQUEST_TIMEOUT", "86400", 1);
	setenv("SCAN_QUEUE", "0", 1);
	setenv("SPILL_THRESHOLD", "0", 1);
	setenv("DB_CHECK_INTERVAL", "0", 1);
	setenv("MAX_RECURSION", "1", 1);
	setenv("MAX_FILES", "1", 1);
	setenv("MAX_SCAN_TIME", "1", 1);
	load_ok(&c, NULL);
	assert_int_equal(c.port, 9001);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.max_content_length, 1000);
	assert_int_equal(c.max_scan_size, 4000);	/* derived from MAX_CONTENT_LENGTH */
	assert_int_equal(c.max_file_size, 1000);	/* derived from MAX_CONTENT_LENGTH */
	assert_int_equal(c.scan_threads, 3);
	assert_int_equal(c.io_threads, 5);
	assert_string_equal(c.users, "alice::x\\nbob::y");
	assert_string_equal(c.db_dir, "/srv/db");
	assert_string_equal(c.dns_server, "192.0.2.1:5353");
	assert_string_equal(c.log_level, "DEBUG");
	assert_string_equal(c.tmpdir, "/var/tmp");
	assert_int_equal(c.request_timeout, 86400);
	assert_int_equal(c.scan_queue, 0);
	assert_int_equal(c.spill_threshold, 0);
	assert_int_equal(c.db_check_interval, 0);
	assert_int_equal(c.max_recursion, 1);
	assert_int_equal(c.max_files, 1);
	assert_int_equal(c.max_scan_time, 1);
	config_free(&c);
}

/* An empty number means the default; an empty DNS server means the system resolver. */
static void
test_env_empty_values(void **state)
{
	struct config c;

	(void)state;
	setenv("PORT", "", 1);
	setenv("CLAMAV_DNS_SERVER", "", 1);
	setenv("APPLICATION_USERS", "", 1);
	load_ok(&c, NULL);
	assert_int_equal(c.port, 8090);
	assert_null(c.dns_server);
	assert_string_equal(c.users, "");
	config_free(&c);
}

static void
test_flags_override_env(void **state)
{
	struct config c;

	(void)state;
	setenv("PORT", "9001", 1);
	setenv("HOST", "10.0.0.1", 1);
	load_ok(&c, ARGS("--port", "9000"));
	assert_int_equal(c.port, 9000);
	assert_string_equal(c.host, "10.0.0.1");
	config_free(&c);

	load_ok(&c, ARGS("--port=9000"));
	assert_int_equal(c.port, 9000);
	config_free(&c);

	load_ok(&c, ARGS("--host=::1", "--port", "1", "--port=65535", "--db-dir", "/a=b",
	    "--max-content-length=2048", "--max-file-size", "16384", "--tls-cert=c.pem",
	    "--tls-key", "k.pem", "--dns-server="));
	assert_string_equal(c.host, "::1");
	assert_int_equal(c.port, 65535);		/* the last one wins */
	assert_string_equal(c.db_dir, "/a=b");		/* only the first '=' splits */
	assert_int_equal(c.max_content_length, 2048);
	assert_int_equal(c.max_file_size, 16384);
	assert_int_equal(c.max_scan_size, 8192);
	assert_string_equal(c.tls_cert, "c.pem");
	assert_string_equal(c.tls_key, "k.pem");
	assert_null(c.dns_server);
	config_free(&c);

	/* A value that looks like a flag is still the value. */
	load_ok(&c, ARGS("--users", "--port"));
	assert_string_equal(c.users, "--port");
	assert_int_equal(c.port, 9001);
	config_free(&c);
}

static void
test_bad_numbers(void **state)
{
	(void)state;
	setenv("PORT", "abc", 1);
	load_bad(NULL, "PORT");
	setenv("PORT", "70000", 1);
	load_bad(NULL, "PORT");
	setenv("PORT", "0", 1);
	load_bad(NULL, "PORT");
	setenv("PORT", "-1", 1);
	load_bad(NULL, "PORT");
	setenv("PORT", "80 ", 1);
	load_bad(NULL, "PORT");
	unsetenv("PORT");
	setenv("REQUEST_TIMEOUT", "0", 1);
	load_bad(NULL, "REQUEST_TIMEOUT");
	unsetenv("REQUEST_TIMEOUT");
	setenv("MAX_CONTENT_LENGTH", "4294967296", 1);	/* 4 GiB: one past the limit */
	load_bad(NULL, "MAX_CONTENT_LENGTH");
	unsetenv("MAX_CONTENT_LENGTH");
	setenv("SCAN_THREADS", "0", 1);
	load_bad(NULL, "SCAN_THREADS");
	unsetenv("SCAN_THREADS");
	setenv("MAX_SCAN_TIME", "99999999999999999999", 1);
	load_bad(NULL, "MAX_SCAN_TIME");
	unsetenv("MAX_SCAN_TIME");
	/* The same checks on flags, named by their variable. */
	load_bad(ARGS("--port", "abc"), "PORT");
	load_bad(ARGS("--port=70000"), "PORT");
	load_bad(ARGS("--port="), "PORT");
	load_bad(ARGS("--request-timeout=0"), "REQUEST_TIMEOUT");
	load_bad(ARGS("--max-files", "0x10"), "MAX_FILES");
}

static void
test_bad_flags(void **state)
{
	(void)state;
	load_bad(ARGS("--bogus", "1"), "--bogus");
	load_bad(ARGS("--bogus=1"), "--bogus");
	load_bad(ARGS("--PORT=1"), "--PORT");		/* flags are lower case */
	load_bad(ARGS("--"), "--");
	load_bad(ARGS("--portx=1"), "--portx");
	load_bad(ARGS("--por=1"), "--por");
	load_bad(ARGS("--port"), "port");		/* no value */
	load_bad(ARGS("--host", "h", "--tls-key"), "tls-key");
	load_bad(ARGS("stray"), "stray");
	load_bad(ARGS("-p", "1"), "-p");
}

/* The args after a refusal are not even looked at, and nothing leaks (run under ASan). */
static void
test_refusal_after_strings_frees(void **state)
{
	(void)state;
	setenv("TLS_CERT", "c.pem", 1);
	setenv("TLS_KEY", "k.pem", 1);
	load_bad(ARGS("--host", "a", "--db-dir", "b", "--port", "x", "--help"), "PORT");
}

static char *
run_capturing_stdout(const char *const *args, int *rc)
{
	FILE *f = tmpfile();
	int saved = dup(STDOUT_FILENO);
	char *buf = calloc(1, OUT_MAX + 1);
	struct config c;
	char err[ERR_MAX];
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	fflush(stdout);
	dup2(fileno(f), STDOUT_FILENO);
	*rc = load(&c, err, args);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	config_free(&c);
	rewind(f);
	n = fread(buf, 1, OUT_MAX, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_help_and_version(void **state)
{
	char *out;
	int rc;

	(void)state;
	out = run_capturing_stdout(ARGS("--help"), &rc);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "--port"));
	assert_non_null(strstr(out, "PORT"));
	assert_non_null(strstr(out, "[8090]"));
	assert_non_null(strstr(out, "MAX_SCAN_TIME"));
	assert_non_null(strstr(out, "TLS_KEY"));
	free(out);
	out = run_capturing_stdout(ARGS("--port", "9000", "-h"), &rc);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "usage:"));
	free(out);
	out = run_capturing_stdout(ARGS("--version"), &rc);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "clamrest "));
	free(out);
}

static void
test_tls_needs_both(void **state)
{
	struct config c;

	(void)state;
	setenv("TLS_CERT", "/etc/c.pem", 1);
	load_bad(NULL, "TLS_CERT");
	load_bad(ARGS("--tls-cert=/etc/c.pem"), "TLS_KEY");
	unsetenv("TLS_CERT");
	load_bad(ARGS("--tls-key", "/etc/k.pem"), "TLS_KEY");
	setenv("TLS_KEY", "/etc/k.pem", 1);
	load_bad(NULL, "TLS_CERT");
	load_ok(&c, ARGS("--tls-cert", "/etc/c.pem"));
	assert_string_equal(c.tls_cert, "/etc/c.pem");
	assert_string_equal(c.tls_key, "/etc/k.pem");
	config_free(&c);
}

static void
test_sizes_must_cover_content_length(void **state)
{
	struct config c;

	(void)state;
	/* MAX_FILE_SIZE below MAX_CONTENT_LENGTH: a large upload could never be scanned. Below
	 * MAX_SCAN_SIZE is fine: the scanner reports a member cut at that size as over the limit. */
	setenv("MAX_FILE_SIZE", "99", 1);
	load_bad(ARGS("--max-content-length=100"), "MAX_FILE_SIZE");
	setenv("MAX_FILE_SIZE", "100", 1);
	load_ok(&c, ARGS("--max-content-length=100"));
	assert_int_equal(c.max_file_size, 100);
	assert_int_equal(c.max_scan_size, 400);
	config_free(&c);
	unsetenv("MAX_FILE_SIZE");
	setenv("MAX_SCAN_SIZE", "1000", 1);
	load_bad(NULL, "MAX_SCAN_SIZE");
	load_ok(&c, ARGS("--max-content-length", "1000"));
	assert_int_equal(c.max_scan_size, 1000);
	config_free(&c);
	unsetenv("MAX_SCAN_SIZE");
	/* The largest body: the derived sizes stop at libclamav's 4 GiB limit. */
	load_bad(ARGS("--max-content-length", "2147483648"), "MAX_CONTENT_LENGTH");
	load_ok(&c, ARGS("--max-content-length", "2147483647"));
	assert_int_equal(c.max_file_size, 2 * GiB - 1);
	assert_int_equal(c.max_scan_size, 2 * GiB - 1);
	config_free(&c);
	/* Just under the cap / 4 still multiplies. */
	load_ok(&c, ARGS("--max-content-length", "536870911"));
	assert_int_equal(c.max_scan_size, 4 * 536870911ULL);
	config_free(&c);
}

static void
test_empty_strings_refused(void **state)
{
	(void)state;
	setenv("HOST", "", 1);
	load_bad(NULL, "HOST");
	unsetenv("HOST");
	load_bad(ARGS("--db-dir="), "CLAMAV_DB_DIR");
	setenv("CLAMAV_DB_DIR", "", 1);
	load_bad(NULL, "CLAMAV_DB_DIR");
}

/* err is cut to errlen, never overrun. */
static void
test_small_err_buffer(void **state)
{
	char *argv[] = { "clamrest", "--this-option-does-not-exist-and-has-a-long-name", NULL };
	char err[16];
	struct config c;

	(void)state;
	memset(err, 'Z', sizeof(err));
	assert_int_equal(config_load(&c, 2, argv, err, 8), -1);
	assert_int_equal(strlen(err), 7);
	for (size_t i = 8; i < sizeof(err); i++)
		assert_int_equal(err[i], 'Z');
	config_free(&c);
}

/* The policy's defaults in the table are the scanner's SCANNER_POLICY_DEFAULT, field by field. */
static void
test_scan_policy_defaults(void **state)
{
	const struct scanner_policy want = SCANNER_POLICY_DEFAULT;
	struct config c;

	(void)state;
	load_ok(&c, NULL);
	assert_int_equal(c.alert_encrypted, want.alert_encrypted);
	assert_int_equal(c.alert_encrypted_archive, want.alert_encrypted_archive);
	assert_int_equal(c.alert_encrypted_doc, want.alert_encrypted_doc);
	assert_int_equal(c.alert_exceeds_max, want.alert_exceeds_max);
	assert_int_equal(c.detect_pua, want.detect_pua);
	assert_string_equal(c.pua_include, "");
	assert_string_equal(c.pua_exclude, "");
	assert_int_equal(c.heuristic_alerts, want.heuristic_alerts);
	assert_int_equal(c.alert_broken_executables, want.alert_broken_executables);
	assert_int_equal(c.alert_ole2_macros, want.alert_ole2_macros);
	assert_int_equal(c.alert_phishing_ssl_mismatch, want.alert_phishing_ssl_mismatch);
	assert_int_equal(c.alert_phishing_cloak, want.alert_phishing_cloak);
	assert_int_equal(c.scan_pe, want.scan_pe);
	assert_int_equal(c.scan_elf, want.scan_elf);
	assert_int_equal(c.scan_ole2, want.scan_ole2);
	assert_int_equal(c.scan_pdf, want.scan_pdf);
	assert_int_equal(c.scan_swf, want.scan_swf);
	assert_int_equal(c.scan_html, want.scan_html);
	assert_int_equal(c.scan_xmldocs, want.scan_xmldocs);
	assert_int_equal(c.scan_hwp3, want.scan_hwp3);
	assert_int_equal(c.scan_onenote, want.scan_onenote);
	assert_int_equal(c.scan_archive, want.scan_archive);
	assert_int_equal(c.scan_mail, want.scan_mail);
	assert_int_equal(c.scan_image, want.scan_image);
	assert_int_equal(c.scan_image_fuzzy_hash, want.scan_image_fuzzy_hash);
	config_free(&c);
}

/* clamd.conf's words for a boolean, any case; anything else names the setting. */
static void
test_scan_policy_booleans(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "True", "on", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off", "0" };
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		setenv("ALERT_ENCRYPTED", yes[i], 1);
		setenv("SCAN_ARCHIVE", no[i], 1);
		load_ok(&c, NULL);
		assert_int_equal(c.alert_encrypted, 1);
		assert_int_equal(c.scan_archive, 0);
		config_free(&c);
	}
	unsetenv("ALERT_ENCRYPTED");
	unsetenv("SCAN_ARCHIVE");
	load_ok(&c, ARGS("--alert-ole2-macros", "yes", "--scan-pe=no"));
	assert_int_equal(c.alert_ole2_macros, 1);
	assert_int_equal(c.scan_pe, 0);
	config_free(&c);
	load_bad(ARGS("--scan-pdf", "2"), "SCAN_PDF");
	load_bad(ARGS("--scan-pdf", "yess"), "SCAN_PDF");
	load_bad(ARGS("--scan-pdf", ""), "SCAN_PDF");
}

/* One PUA category, only with DETECT_PUA, include or exclude (libclamav 1.4 matches no list). */
static void
test_scan_policy_pua(void **state)
{
	struct config c;

	(void)state;
	load_ok(&c, ARGS("--detect-pua", "yes", "--pua-include", "Win.Packer"));
	assert_string_equal(c.pua_include, "Win.Packer");
	config_free(&c);
	load_bad(ARGS("--pua-include", "Packer"), "DETECT_PUA");
	load_bad(ARGS("--detect-pua", "yes", "--pua-include", "Packer", "--pua-exclude", "Tool"),
	    "PUA_EXCLUDE");
	load_bad(ARGS("--detect-pua", "yes", "--pua-exclude", "Packer,Tool"), "PUA_EXCLUDE");
	load_bad(ARGS("--detect-pua", "yes", "--pua-include", "Packer Tool"), "PUA_INCLUDE");
	load_bad(ARGS("--detect-pua", "yes", "--pua-include",
	    "AVeryLongCategoryNameThatIsTooLong"), "PUA_INCLUDE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_overrides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_empty_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_override_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_after_strings_frees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_needs_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes_must_cover_content_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_strings_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_err_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_policy_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_policy_booleans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_policy_pua, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
