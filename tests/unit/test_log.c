/* test_log.c -- unit tests for log: levels, one JSON object per line, stdout/stderr split, errno. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	4096	/* bytes, as log.c cuts lines */
#define CAPTURE_MAX	(16 << 20)	/* bytes read back from one stream */
#define PATH_SWEEP	800	/* url.path lengths tried below LOG_LINE_MAX */
#define THREADS		4
#define THREAD_LINES	250
#define TEST_TIMEOUT	10	/* seconds before a hung test kills the process */

/* What one test wrote to stdout and stderr, NUL-terminated. */
struct capture {
	int saved_out, saved_err;
	FILE *out, *err;
	char *outbuf, *errbuf;
	size_t outlen, errlen;
};

static void
capture_start(struct capture *c)
{
	c->out = tmpfile();
	c->err = tmpfile();
	assert_non_null(c->out);
	assert_non_null(c->err);
	fflush(stdout);
	fflush(stderr);
	c->saved_out = dup(STDOUT_FILENO);
	c->saved_err = dup(STDERR_FILENO);
	assert_true(c->saved_out >= 0 && c->saved_err >= 0);
	assert_int_equal(dup2(fileno(c->out), STDOUT_FILENO), STDOUT_FILENO);
	assert_int_equal(dup2(fileno(c->err), STDERR_FILENO), STDERR_FILENO);
}

static char *
capture_read(FILE *f, size_t *len)
{
	char *buf = malloc(CAPTURE_MAX + 1);

	assert_non_null(buf);
	rewind(f);
	*len = fread(buf, 1, CAPTURE_MAX, f);
	buf[*len] = '\0';
	assert_true(*len < CAPTURE_MAX);	/* all of it was read */
	fclose(f);
	return buf;
}

static void
capture_restore(struct capture *c)
{
	if (c->saved_out < 0)
		return;
	dup2(c->saved_out, STDOUT_FILENO);
	dup2(c->saved_err, STDERR_FILENO);
	close(c->saved_out);
	close(c->saved_err);
	c->saved_out = c->saved_err = -1;
}

/* Restores the streams, then reads what was written; assertions are safe to print from here on. */
static void
capture_stop(struct capture *c)
{
	capture_restore(c);
	c->outbuf = capture_read(c->out, &c->outlen);
	c->errbuf = capture_read(c->err, &c->errlen);
	c->out = c->err = NULL;
}

/* A minimal JSON checker: enough to say a line is exactly one well-formed object. */
static const char *json_value(const char *p);

static const char *
json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

static const char *
json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p++;

		if (c == '"')
			return p;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			c = (unsigned char)*p++;
			if (c == 'u') {
				for (int i = 0; i < 4; i++, p++)
					if (strchr("0123456789abcdefABCDEF", *p) == NULL || *p == '\0')
						return NULL;
			} else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
				return NULL;
			}
		}
	}
}

static const char *
json_number(const char *p)
{
	const char *start;

	if (*p == '-')
		p++;
	start = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == start || (*start == '0' && p - start > 1))
		return NULL;
	if (*p == '.') {
		start = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return NULL;
	}
	return p;
}

static const char *
json_object(const char *p)
{
	if (*p++ != '{')
		return NULL;
	p = json_ws(p);
	if (*p == '}')
		return p + 1;
	for (;;) {
		if ((p = json_string(json_ws(p))) == NULL)
			return NULL;
		p = json_ws(p);
		if (*p++ != ':' || (p = json_value(json_ws(p))) == NULL)
			return NULL;
		p = json_ws(p);
		if (*p == '}')
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *
json_value(const char *p)
{
	if (*p == '"')
		return json_string(p);
	if (*p == '{')
		return json_object(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return json_number(p);
}

/* 1 when line[0..len) is one JSON object and nothing else (no NUL inside either). */
static int
json_line_ok(const char *line, size_t len)
{
	char *copy = strndup(line, len);
	const char *end;
	int ok;

	assert_non_null(copy);
	end = json_object(copy);
	ok = end != NULL && *end == '\0' && end == copy + len;
	free(copy);
	return ok;
}

/* 1 when s[0..len) is well-formed UTF-8 (RFC 3629), which a JSON reader needs before anything. */
static int
utf8_ok(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i], lo = 0x80, hi = 0xbf;
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
		    c >= 0xf0 && c <= 0xf4 ? 4 : 0;

		if (n == 0 || len - i < n)
			return 0;
		lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : lo;
		hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : hi;
		for (size_t k = 1; k < n; k++)
			if (s[i + k] < (k == 1 ? lo : 0x80) || s[i + k] > (k == 1 ? hi : 0xbf))
				return 0;
		i += n;
	}
	return 1;
}

static void
assert_json_line(const char *line, size_t len)
{
	if (!utf8_ok((const unsigned char *)line, len))
		fail_msg("not UTF-8 (%zu bytes): %.300s", len, line);
	if (!json_line_ok(line, len))
		fail_msg("not one JSON object (%zu bytes): %.300s ... %.*s", len, line,
		    (int)(len > 120 ? 120 : len), len > 120 ? line + len - 120 : line);
}

/* Checks buf is lines of JSON objects, each ending in a newline; returns how many. */
static int
assert_json_lines(const char *buf, size_t len)
{
	int n = 0;

	for (size_t i = 0; i < len;) {
		const char *nl = memchr(buf + i, '\n', len - i);

		if (nl == NULL)
			fail_msg("last line has no newline: %.200s", buf + i);
		assert_json_line(buf + i, (size_t)(nl - (buf + i)));
		assert_true((size_t)(nl - (buf + i)) + 1 <= LOG_LINE_MAX);
		i = (size_t)(nl - buf) + 1;
		n++;
	}
	return n;
}

/* The decoded string value of "key" in one line, or NULL when absent. Caller frees. */
static char *
json_get(const char *line, const char *key)
{
	char pat[128], *out, *o;
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = strstr(line, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	if (*p != '"')
		return strndup(p, strcspn(p, ",}"));	/* a number, as its text */
	out = o = malloc(strlen(p) + 1);
	assert_non_null(out);
	for (p++; *p != '"' && *p != '\0'; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		switch (*++p) {
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			char hex[5] = { p[1], p[2], p[3], p[4], '\0' };

			*o++ = (char)strtol(hex, NULL, 16);
			p += 4;
			break;
		}
		default: *o++ = *p; break;
		}
	}
	*o = '\0';
	return out;
}

static void
assert_field(const char *line, const char *key, const char *want)
{
	char *got = json_get(line, key);
	int same = got != NULL && strcmp(got, want) == 0;

	if (!same)
		print_error("\"%s\": got \"%s\", want \"%s\" in %s\n", key, got ? got : "(absent)",
		    want, line);
	free(got);
	assert_true(same);
}

static void
assert_no_field(const char *line, const char *key)
{
	char *got = json_get(line, key);

	if (got != NULL)
		print_error("unexpected \"%s\":\"%s\" in %s\n", key, got, line);
	free(got);
	assert_null(got);
}

/* {"@timestamp":"2024-01-02T03:04:05.678Z", ... */
static void
assert_timestamp(const char *line)
{
	static const char prefix[] = "{\"@timestamp\":\"";
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ\"";
	const char *p = line + sizeof(prefix) - 1;

	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
		fail_msg("line does not start with %s: %s", prefix, line);
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		int ok = shape[i] == 'd' ? p[i] >= '0' && p[i] <= '9' : p[i] == shape[i];

		if (!ok)
			fail_msg("timestamp byte %zu is '%c', want like %s: %s", i, p[i], shape, line);
	}
}

/* Each test gets a capture and a scratch pointer, both freed here even when an assertion fails. */
struct fixture {
	struct capture c;
	void *scratch;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	alarm(TEST_TIMEOUT);
	if (f == NULL)
		return -1;
	f->c.saved_out = f->c.saved_err = -1;
	*state = f;
	log_set_format("json");
	return log_set_level("INFO");
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	alarm(0);
	capture_restore(&f->c);
	if (f->c.out != NULL)
		fclose(f->c.out);
	if (f->c.err != NULL)
		fclose(f->c.err);
	free(f->c.outbuf);
	free(f->c.errbuf);
	free(f->scratch);
	free(f);
	return log_set_level("INFO");
}

static void
test_set_level_names(void **state)
{
	static const struct { const char *name; enum log_level lvl; } names[] = {
		{ "DEBUG", LOG_LVL_DEBUG }, { "debug", LOG_LVL_DEBUG }, { "INFO", LOG_LVL_INFO },
		{ "Info", LOG_LVL_INFO }, { "WARNING", LOG_LVL_WARNING }, { "warning", LOG_LVL_WARNING },
		{ "WARN", LOG_LVL_WARNING }, { "ERROR", LOG_LVL_ERROR }, { "error", LOG_LVL_ERROR },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(log_set_level(names[i].name), 0);
		assert_int_equal(log_enabled(names[i].lvl), 1);
		if (names[i].lvl > LOG_LVL_DEBUG)
			assert_int_equal(log_enabled((enum log_level)(names[i].lvl - 1)), 0);
		assert_int_equal(log_enabled(LOG_LVL_ERROR), 1);
	}
	assert_int_equal(log_set_level("WARNING"), 0);
	assert_int_equal(log_set_level("VERBOSE"), -1);
	assert_int_equal(log_set_level(""), -1);
	assert_int_equal(log_set_level("INFOX"), -1);
	assert_int_equal(log_set_level("ERR"), -1);
	/* A refused name leaves the level alone. */
	assert_int_equal(log_enabled(LOG_LVL_INFO), 0);
	assert_int_equal(log_enabled(LOG_LVL_WARNING), 1);
}

/* Every level Python's logging.setLevel takes by name, and numbers, as upstream reads them. */
static void
test_set_level_python(void **state)
{
	static const struct { const char *name; int shown; } levels[] = {
		/* shown: how many of DEBUG, INFO, WARNING, ERROR (from the top) a level lets out */
		{ "NOTSET", 4 }, { "CRITICAL", 0 }, { "FATAL", 0 }, { "critical", 0 }, { "WARN", 2 },
		{ "0", 4 }, { "10", 4 }, { "11", 3 }, { "20", 3 }, { "25", 2 }, { "30", 2 },
		{ "40", 1 }, { "41", 0 }, { "50", 0 }, { "1000", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		assert_int_equal(log_set_level(levels[i].name), 0);
		for (int l = LOG_LVL_DEBUG; l <= LOG_LVL_ERROR; l++)
			if (log_enabled((enum log_level)l) != (l >= 4 - levels[i].shown))
				fail_msg("LOGGING_LEVEL %s: level %d shown %d", levels[i].name, l,
				    log_enabled((enum log_level)l));
	}
	assert_int_equal(log_set_level("-1"), -1);
	assert_int_equal(log_set_level("1001"), -1);
	assert_int_equal(log_set_level("10.0"), -1);
	assert_int_equal(log_set_level("Level 10"), -1);
	assert_int_equal(log_set_level("INFO"), 0);
}

static void
test_info_line_is_one_json_object(void **state)
{
	static const char msg[] = "say \"hi\" \\ tab\there\nnew line \x01 caf\xc3\xa9";
	struct fixture *fx = *state;
	struct capture *c = &fx->c;

	capture_start(c);
	log_info("say \"%s\" \\ tab\there\nnew line \x01 caf\xc3\xa9", "hi");
	capture_stop(c);
	assert_int_equal(c->errlen, 0);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 1);
	assert_timestamp(c->outbuf);
	assert_non_null(strstr(c->outbuf, ",\"log.level\":\"INFO\""));
	assert_field(c->outbuf, "message", msg);
	assert_int_equal(c->outbuf[c->outlen - 1], '\n');
	assert_int_equal(c->outbuf[c->outlen - 2], '}');
}

static void
test_warnings_and_errors_go_to_stderr(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;
	char *lines[4];
	size_t n = 0;

	errno = 0;
	capture_start(c);
	log_warnx("w1");
	log_warn("w2");
	log_errorx("e1");
	log_error("e2");
	capture_stop(c);
	assert_int_equal(c->outlen, 0);
	assert_int_equal(assert_json_lines(c->errbuf, c->errlen), 4);
	for (char *save = NULL, *l = strtok_r(c->errbuf, "\n", &save); l && n < 4;
	    l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	assert_int_equal(n, 4);
	assert_field(lines[0], "log.level", "WARNING");
	assert_field(lines[0], "message", "w1");
	assert_field(lines[1], "log.level", "WARNING");
	assert_field(lines[1], "message", "w2");		/* errno 0: nothing appended */
	assert_field(lines[2], "log.level", "ERROR");
	assert_field(lines[2], "message", "e1");
	assert_field(lines[3], "log.level", "ERROR");
	assert_field(lines[3], "message", "e2");
}

static void
test_below_threshold_suppressed(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;

	capture_start(c);
	log_debug("hidden at INFO");
	log_set_level("WARNING");
	log_info("hidden at WARNING");
	log_set_level("ERROR");
	log_warn("hidden at ERROR");
	log_warnx("hidden at ERROR");
	log_access(&(struct log_access){ .method = "POST", .path = "/v2/scan", .status = 200,
	    .post = 1 });
	log_errorx("shown at ERROR");
	log_access(&(struct log_access){ .method = "POST", .path = "/v2/scan", .status = 503 });
	log_set_level("DEBUG");
	log_debug("shown at DEBUG");
	capture_stop(c);
	assert_null(strstr(c->outbuf, "hidden"));
	assert_null(strstr(c->errbuf, "hidden"));
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 1);
	assert_field(c->outbuf, "log.level", "DEBUG");
	assert_field(c->outbuf, "message", "shown at DEBUG");
	assert_int_equal(assert_json_lines(c->errbuf, c->errlen), 2);
	assert_non_null(strstr(c->errbuf, "shown at ERROR"));
	assert_non_null(strstr(c->errbuf, "\"http.response.status_code\":503"));
}

static void
test_warn_appends_errno_and_preserves_it(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;
	char want[256];
	int e_warn, e_warnx, e_error, e_info, e_debug;
	char *l1, *l2, *l3, *save = NULL;

	snprintf(want, sizeof(want), "open %s: %s", "/nope", strerror(ENOENT));
	capture_start(c);
	errno = ENOENT;
	log_warn("open %s", "/nope");
	e_warn = errno;
	log_warnx("no errno here");
	e_warnx = errno;
	errno = EACCES;
	log_error("denied");
	e_error = errno;
	log_info("info");
	e_info = errno;
	log_debug("suppressed debug");
	e_debug = errno;
	capture_stop(c);
	assert_int_equal(e_warn, ENOENT);
	assert_int_equal(e_warnx, ENOENT);
	assert_int_equal(e_error, EACCES);
	assert_int_equal(e_info, EACCES);
	assert_int_equal(e_debug, EACCES);
	assert_int_equal(assert_json_lines(c->errbuf, c->errlen), 3);
	l1 = strtok_r(c->errbuf, "\n", &save);
	l2 = strtok_r(NULL, "\n", &save);
	l3 = strtok_r(NULL, "\n", &save);
	assert_field(l1, "message", want);
	assert_field(l2, "message", "no errno here");
	snprintf(want, sizeof(want), "denied: %s", strerror(EACCES));
	assert_field(l3, "message", want);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 1);
	assert_field(c->outbuf, "message", "info");
}

static void
test_access_fields(void **state)
{
	struct log_access a = {
		.method = "POST", .path = "/v2/scan", .status = 200, .post = 1, .duration = 0.25,
		.user = "ali\"ce", .source_ip = "192.0.2.7", .request_id = "abc-123",
		.verdict = "malware", .signature = "Win.Test.EICAR_HDB-1", .body_bytes = 68,
		.file_name = "a \"b\".com", .user_agent = "curl/8.0", .sha256 = "ab12",
	};
	struct fixture *fx = *state;
	struct capture *c = &fx->c;

	capture_start(c);
	log_access(&a);
	capture_stop(c);
	assert_int_equal(c->errlen, 0);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 1);
	assert_timestamp(c->outbuf);
	assert_field(c->outbuf, "log.level", "INFO");
	assert_field(c->outbuf, "message", "POST /v2/scan 200");
	assert_field(c->outbuf, "http.request.method", "POST");
	assert_field(c->outbuf, "url.path", "/v2/scan");
	assert_field(c->outbuf, "http.response.status_code", "200");
	assert_field(c->outbuf, "event.duration", "250000000");	/* ECS: nanoseconds */
	assert_field(c->outbuf, "labels.user", "ali\"ce");
	assert_field(c->outbuf, "source.ip", "192.0.2.7");
	assert_field(c->outbuf, "http.request.id", "abc-123");
	assert_field(c->outbuf, "labels.verdict", "malware");
	assert_field(c->outbuf, "labels.signature", "Win.Test.EICAR_HDB-1");
	assert_field(c->outbuf, "http.request.body.bytes", "68");
	assert_field(c->outbuf, "file.name", "a \"b\".com");
	assert_field(c->outbuf, "user_agent.original", "curl/8.0");
	assert_field(c->outbuf, "file.hash.sha256", "ab12");
	assert_no_field(c->outbuf, "error.message");
}

/* The level of an access line follows the table of docs/OPERATIONS.md: DEBUG for GETs that succeed, INFO for
 * scans that succeed, WARNING for 4xx, ERROR for 5xx. */
static void
test_access_levels(void **state)
{
	(void)state;
	assert_int_equal(log_access_level(200, 0), LOG_LVL_DEBUG);
	assert_int_equal(log_access_level(308, 0), LOG_LVL_DEBUG);
	assert_int_equal(log_access_level(200, 1), LOG_LVL_INFO);
	assert_int_equal(log_access_level(404, 0), LOG_LVL_WARNING);
	assert_int_equal(log_access_level(401, 1), LOG_LVL_WARNING);
	assert_int_equal(log_access_level(499, 1), LOG_LVL_WARNING);
	assert_int_equal(log_access_level(503, 0), LOG_LVL_ERROR);
	assert_int_equal(log_access_level(500, 1), LOG_LVL_ERROR);
}

/* Every line a thread writes while it works for a request carries the request's id; a fatal line
 * shows whatever the threshold. */
static void
test_request_id_on_lines_and_fatal(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;

	capture_start(c);
	log_set_request("req-1");
	log_info("with id");
	log_set_request(NULL);
	log_info("without id");
	log_set_level("1000");
	log_errorx("hidden");
	log_fatalx("fatal %d", 2);
	log_set_level("INFO");
	capture_stop(c);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 2);
	assert_non_null(strstr(c->outbuf, "\"http.request.id\":\"req-1\",\"message\":\"with id\""));
	assert_null(strstr(strstr(c->outbuf, "req-1") + 1, "req-1"));	/* only on the first line */
	assert_int_equal(assert_json_lines(c->errbuf, c->errlen), 1);
	assert_field(c->errbuf, "log.level", "CRITICAL");
	assert_field(c->errbuf, "message", "fatal 2");
}

static void
test_access_null_fields_and_5xx(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;

	capture_start(c);
	log_access(&(struct log_access){ .status = 500, .duration = 0.0000015 });
	capture_stop(c);
	assert_int_equal(c->outlen, 0);
	assert_int_equal(assert_json_lines(c->errbuf, c->errlen), 1);
	assert_field(c->errbuf, "log.level", "ERROR");
	assert_field(c->errbuf, "message", "- - 500");
	assert_field(c->errbuf, "http.response.status_code", "500");
	assert_field(c->errbuf, "event.duration", "1500");
	assert_no_field(c->errbuf, "http.request.method");
	assert_no_field(c->errbuf, "url.path");
	assert_no_field(c->errbuf, "labels.user");
	assert_no_field(c->errbuf, "source.ip");
	assert_no_field(c->errbuf, "http.request.id");
	assert_no_field(c->errbuf, "labels.verdict");
	assert_no_field(c->errbuf, "http.request.body.bytes");
}

/* A client's bytes that are not UTF-8 (a Latin-1 user name, a binary trace id) become \ufffd, one
 * per byte; the line stays UTF-8 JSON, also when a long value is cut inside a sequence. */
static void
test_access_invalid_utf8_escaped(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;
	char *path = fx->scratch = malloc(3 * LOG_LINE_MAX + 2);

	assert_non_null(path);
	path[0] = '/';
	for (size_t i = 1; i + 3 <= 3 * LOG_LINE_MAX; i += 3)
		memcpy(path + i, "\xe2\x82\xac", 3);		/* the euro sign, cut somewhere */
	path[3 * LOG_LINE_MAX - 2] = '\0';
	capture_start(c);
	log_access(&(struct log_access){ .method = "POST", .path = "/v2/scan", .status = 200,
	    .post = 1, .user = "j\xf6rg\xff", .file_name = "t\x80\xc0\xaf\xed\xa0\x80" });
	log_access(&(struct log_access){ .method = "POST", .path = path, .status = 200,
	    .post = 1, .user = "\xc3" });
	log_info("caf\xe9 %s", "\xfe");
	capture_stop(c);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 3);
	assert_non_null(strstr(c->outbuf, "\"labels.user\":\"j\\ufffdrg\\ufffd\""));
	assert_non_null(strstr(c->outbuf,
	    "\"file.name\":\"t\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""));
	assert_non_null(strstr(c->outbuf, "\"message\":\"caf\\ufffd \\ufffd\""));
}

/* Messages beyond the line cap are cut; the line stays one object and keeps the message's start. */
static void
test_long_message_is_cut(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;
	char *big = fx->scratch = malloc(3 * LOG_LINE_MAX);
	char *got;

	assert_non_null(big);
	memset(big, 'x', 3 * LOG_LINE_MAX - 1);
	big[3 * LOG_LINE_MAX - 1] = '\0';
	capture_start(c);
	log_info("%s", big);
	capture_stop(c);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 1);
	got = json_get(c->outbuf, "message");
	assert_non_null(got);
	free(big);
	fx->scratch = got;
	assert_true(strlen(got) > 1000);
	for (size_t i = 0; got[i] != '\0'; i++)
		assert_int_equal(got[i], 'x');
}

/* Escaping can make a message six times longer; it must still be cut, not dropped. */
static void
test_long_escaped_message_is_cut(void **state)
{
	char big[LOG_LINE_MAX];
	struct fixture *fx = *state;
	struct capture *c = &fx->c;
	char *got;

	memset(big, '\x01', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start(c);
	log_info("start%s", big);
	log_warnx("%s", big);
	capture_stop(c);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 1);
	assert_int_equal(assert_json_lines(c->errbuf, c->errlen), 1);
	got = fx->scratch = json_get(c->outbuf, "message");
	if (got == NULL)
		fail_msg("log_info of a 4 KiB message of control bytes lost the message: %s", c->outbuf);
	assert_memory_equal(got, "start\x01", 6);
}

/* Whatever the length of the strings, every access line is one JSON object. */
static void
test_access_long_fields_stay_json(void **state)
{
	struct fixture *fx = *state;
	struct capture *c = &fx->c;
	char *path = fx->scratch = malloc(LOG_LINE_MAX + 1);
	int lines = 0;

	assert_non_null(path);
	capture_start(c);
	for (size_t len = LOG_LINE_MAX - PATH_SWEEP; len <= LOG_LINE_MAX; len++) {
		memset(path, 'p', len);
		path[0] = '/';
		path[len] = '\0';
		log_access(&(struct log_access){ .method = "POST", .path = path, .status = 200,
		    .post = 1, .duration = 1.5, .user = "alice", .request_id = "t" });
		lines++;
	}
	capture_stop(c);
	for (size_t i = 0, n = 0; i < c->outlen; n++) {
		const char *nl = memchr(c->outbuf + i, '\n', c->outlen - i);
		size_t len = nl ? (size_t)(nl - c->outbuf) - i : c->outlen - i;

		if (nl == NULL || !json_line_ok(c->outbuf + i, len))
			fail_msg("log_access with a url.path of %zu bytes wrote a line that is not one "
			    "JSON object; it ends: %.*s", LOG_LINE_MAX - PATH_SWEEP + n,
			    (int)(len > 90 ? 90 : len), c->outbuf + i + (len > 90 ? len - 90 : 0));
		i += len + 1;
	}
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), lines);
}

static void *
log_many(void *arg)
{
	long id = (long)(intptr_t)arg;

	for (int i = 0; i < THREAD_LINES; i++)
		log_info("thread %ld line %d %s", id, i, "padding padding padding padding padding");
	return NULL;
}

/* One write per line: lines from many threads never interleave. */
static void
test_threads_do_not_interleave(void **state)
{
	pthread_t t[THREADS];
	struct fixture *fx = *state;
	struct capture *c = &fx->c;

	capture_start(c);
	for (long i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_many, (void *)(intptr_t)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	capture_stop(c);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), THREADS * THREAD_LINES);
}

/* LOG_FORMAT=text: one plain line each, a request's fields in a fixed order, client strings that
 * could break the line escaped; start-up objects as key=value. */
static void
test_text_format(void **state)
{
	struct fixture *f = *state;
	struct capture *c = &f->c;
	struct log_access a = {
		.method = "POST", .path = "/v2/scan", .status = 200, .post = 1, .duration = 0.0123,
		.request_id = "abc", .user = "app1", .source_ip = "192.0.2.1", .body_bytes = 68,
		.verdict = "malware", .signature = "Eicar-Test-Signature", .user_agent = "evil\nagent \"x\"",
	};

	assert_int_equal(log_set_format("xml"), -1);
	assert_int_equal(log_set_format("TEXT"), 0);
	capture_start(c);
	log_access(&a);
	a.status = 401;
	a.verdict = a.signature = NULL;
	a.error = "unknown user";
	log_access(&a);
	log_info_object("scan policy", "clamrest.policy", "\"scan_pe\":true,\"pua_include\":\"A,B\"");
	log_set_request("r1");
	log_info("hello");
	log_set_request(NULL);
	capture_stop(c);
	log_set_format("json");
	assert_non_null(strstr(c->outbuf, "Z INFO    200 POST /v2/scan malware Eicar-Test-Signature "
	    "12.3ms id=abc user=app1 ip=192.0.2.1 bytes=68 ua=\"evil\\x0aagent \\\"x\\\"\"\n"));
	assert_non_null(strstr(c->errbuf, "Z WARNING 401 POST /v2/scan - - 12.3ms id=abc "
	    "error=\"unknown user\" user=app1"));
	assert_non_null(strstr(c->outbuf, "Z INFO    scan policy scan_pe=true pua_include=\"A,B\"\n"));
	assert_non_null(strstr(c->outbuf, "Z INFO    hello id=r1\n"));
	assert_null(strchr(c->outbuf, '{'));
}

/* JSON: the object is an object, not a string. */
static void
test_info_object_json(void **state)
{
	struct fixture *f = *state;
	struct capture *c = &f->c;

	capture_start(c);
	log_info_object("scan policy", "clamrest.policy", "\"scan_pe\":true");
	capture_stop(c);
	assert_int_equal(assert_json_lines(c->outbuf, c->outlen), 1);
	assert_non_null(strstr(c->outbuf, "\"message\":\"scan policy\",\"clamrest.policy\":"
	    "{\"scan_pe\":true}}\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_level_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_level_python, setup, teardown),
		cmocka_unit_test_setup_teardown(test_info_line_is_one_json_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_warnings_and_errors_go_to_stderr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_below_threshold_suppressed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_warn_appends_errno_and_preserves_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_null_fields_and_5xx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_id_on_lines_and_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_invalid_utf8_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_message_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_escaped_message_is_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_long_fields_stay_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_info_object_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
