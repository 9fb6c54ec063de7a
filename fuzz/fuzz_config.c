/* fuzz_config.c -- libFuzzer target for the settings parsers: util_parse_ll, util_json_str, and
 * config_load over an environment and argv made from the input. Lines "NAME=value" whose NAME is a
 * setting become environment variables; every other line, empty ones too, is one argument. Invariants that must hold
 * whatever the input abort, so the fuzzer reports them as crashes. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

#define FUZZ_MAX_ARGS	32	/* argv entries at most, argv[0] included */
#define FUZZ_MAX_INPUT	8192	/* bytes looked at */
#define FUZZ_ERR_MAX	128
#define GiB		(1024ULL * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every variable config.c reads: the fuzzer's own environment must not leak into the results. */
static const char *const fuzz_env[] = {
	"HOST", "PORT", "APPLICATION_USERS", "MAX_CONTENT_LENGTH", "CLAMAV_DB_DIR", "CLAMAV_TXT_URI",
	"CLAMAV_DNS_SERVER", "LOGGING_LEVEL", "TMPDIR", "REQUEST_TIMEOUT", "SCAN_THREADS",
	"SCAN_QUEUE", "IO_THREADS", "MAX_CONNECTIONS", "MIN_UPLOAD_RATE", "SPILL_THRESHOLD",
	"DB_CHECK_INTERVAL", "MAX_SCAN_SIZE", "MAX_FILE_SIZE", "MAX_RECURSION", "MAX_FILES",
	"MAX_SCAN_TIME", "TLS_CERT", "TLS_KEY",
};
#define FUZZ_NENV (sizeof(fuzz_env) / sizeof(fuzz_env[0]))

static void
check(int ok)
{
	if (!ok)
		abort();
}

static void
clear_env(void)
{
	for (size_t i = 0; i < FUZZ_NENV; i++)
		unsetenv(fuzz_env[i]);
}

static int
all_digits(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static void
fuzz_parse_ll(const char *s)
{
	static const long long ranges[][2] = {
		{ 0, 65535 }, { 1, 1 }, { LLONG_MIN, LLONG_MAX }, { -10, 10 }, { 0, (long long)(4 * GiB - 1) },
	};

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		long long v = 0x5a5a;

		if (util_parse_ll(s, ranges[i][0], ranges[i][1], &v) == 0) {
			char back[32];

			check(v >= ranges[i][0] && v <= ranges[i][1]);
			check(all_digits(s));
			/* The same number, give or take leading zeros and "-0". */
			snprintf(back, sizeof(back), "%lld", v);
			check(strtoll(back, NULL, 10) == strtoll(s, NULL, 10));
		} else {
			check(v == 0x5a5a);
		}
	}
}

static void
fuzz_json_str(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 7, 64, 4096 };
	char out[4096 + 8];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t pos = sizes[i] > 2 ? 1 : 0;

		memset(out, 'Z', sizeof(out));
		if (util_json_str(out, sizes[i], &pos, (const char *)data, size) == 0) {
			check(pos < sizes[i] && out[pos] == '\0' && out[pos - 1] == '"');
			for (size_t j = 0; j < pos; j++)
				check((unsigned char)out[j] >= 0x20);
		}
		for (size_t j = sizes[i]; j < sizeof(out); j++)
			check(out[j] == 'Z');
	}
}

/* NAME=value with NAME a setting: set it and say so. */
static int
maybe_setenv(char *line)
{
	char *eq = strchr(line, '=');

	if (eq == NULL || line[0] == '-')
		return 0;
	for (size_t i = 0; i < FUZZ_NENV; i++) {
		if (strlen(fuzz_env[i]) == (size_t)(eq - line) &&
		    strncmp(line, fuzz_env[i], (size_t)(eq - line)) == 0) {
			*eq = '\0';
			setenv(line, eq + 1, 1);
			*eq = '=';
			return 1;
		}
	}
	return 0;
}

static void
check_config(const struct config *c)
{
	check(c->host != NULL && c->host[0] != '\0');
	check(c->port >= 1 && c->port <= 65535);
	check(c->db_dir != NULL && c->db_dir[0] != '\0');
	check(c->max_content_length >= 1 && c->max_content_length < 4 * GiB);
	check(c->max_file_size >= c->max_content_length && c->max_file_size < 4 * GiB);
	check(c->max_scan_size >= c->max_content_length && c->max_scan_size < 4 * GiB);
	check(c->request_timeout >= 1);
	check(c->scan_threads >= 1 && c->io_threads >= 1);
	check((c->tls_cert == NULL) == (c->tls_key == NULL));
	check(c->dns_server == NULL || c->dns_server[0] != '\0');
}

static void
fuzz_config_load(char *text)
{
	char *argv[FUZZ_MAX_ARGS + 1] = { "clamrest" };
	char err[FUZZ_ERR_MAX];
	struct config c;
	int argc = 1, rc;

	for (char *rest = text, *line; (line = strsep(&rest, "\n")) != NULL;) {
		/* --help and --version print the usage; they are one strcmp each, not worth the noise. */
		if (strcmp(line, "--help") == 0 || strcmp(line, "-h") == 0 ||
		    strcmp(line, "--version") == 0)
			goto out;
		if (!maybe_setenv(line) && argc < FUZZ_MAX_ARGS)
			argv[argc++] = line;
	}
	argv[argc] = NULL;
	memset(err, 'Z', sizeof(err));
	err[0] = '\0';
	rc = config_load(&c, argc, argv, err, sizeof(err));
	check(rc == 0 || rc == -1);
	if (rc == 0)
		check_config(&c);
	else
		check(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	config_free(&c);
out:
	clear_env();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int started;
	char *text;

	if (!started) {
		clear_env();
		started = 1;
	}
	if (size > FUZZ_MAX_INPUT)
		size = FUZZ_MAX_INPUT;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_parse_ll(text);
	fuzz_json_str(data, size);
	fuzz_config_load(text);
	free(text);
	return 0;
}
