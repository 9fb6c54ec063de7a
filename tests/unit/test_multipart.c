/* test_multipart.c -- unit tests of the streaming multipart/form-data parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "util.h"

#define CT_B	"multipart/form-data; boundary=b0undary"

/* The EICAR string, escaped so that this source file is not itself a test virus. */
#define EICAR	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

/* Exact bytes of requests 2.28: files={'file': ('eicar.txt', EICAR)}. */
static const char requests_ct[] = "multipart/form-data; boundary=fc59b21e12726ab44eaaa8407a092931";
static const char requests_body[] =
    "--fc59b21e12726ab44eaaa8407a092931\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"eicar.txt\"\r\n"
    "\r\n"
    EICAR "\r\n"
    "--fc59b21e12726ab44eaaa8407a092931--\r\n";

/* Exact bytes of curl 7.88: -F file=@eicar.com -F name=x, the file holding "hello\n". */
static const char curl_ct[] =
    "multipart/form-data; boundary=------------------------88366d339c0d1d68";
static const char curl_body[] =
    "--------------------------88366d339c0d1d68\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"eicar.com\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    "hello\n\r\n"
    "--------------------------88366d339c0d1d68\r\n"
    "Content-Disposition: form-data; name=\"name\"\r\n"
    "\r\n"
    "x\r\n"
    "--------------------------88366d339c0d1d68--\r\n";

/* Content that looks like delimiters without being one to any reader (the boundary cut short or
 * not at a line start), NULs and a CR right before the real one. */
#define TRICKY	"a\r\n--b0undar\r\n--b0undarX\r\nx--b0undary\n\t--b0undary--b0und\0\r\n\r\n-\r\r\n\r"
static const char tricky[] = TRICKY;
static const char two_files_body[] =
    "preamble\r\n--not-it\r\n"
    "--b0undary \t\r\n"
    "content-disposition: form-data; name=\"f1\"; filename=\"one.bin\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "\r\n"
    TRICKY "\r\n"
    "--b0undary\r\n"
    "Content-Disposition: form-data; name=\"note\"\r\n"
    "\r\n"
    "just a field\r\n"
    "--b0undary\r\n"
    "Content-Disposition: form-data; name=\"f2\"; filename=\"two.bin\"\r\n"
    "\r\n"
    "second file\r\n"
    "--b0undary--\r\n"
    "epilogue --b0undary\r\n";

struct sink {
	char	*buf;
	size_t	 len;
	size_t	 cap;
	size_t	 calls;
	size_t	 stop_after;	/* stop once this many bytes arrived; 0 for never */
	int	 count_only;	/* for the throughput runs: no copies */
};

struct result {
	int		feed;	/* -1 when any feed failed */
	int		finish;
	unsigned	files;
	struct sink	sink;
};

static int
sink_cb(void *ud, const char *data, size_t len)
{
	struct sink *s = ud;

	assert_true(len > 0);
	s->calls++;
	if (!s->count_only) {
		if (s->len + len > s->cap) {
			s->cap = (s->len + len) * 2;
			s->buf = realloc(s->buf, s->cap);
			assert_non_null(s->buf);
		}
		memcpy(s->buf + s->len, data, len);
	}
	s->len += len;
	if (s->stop_after > 0 && s->len >= s->stop_after)
		return -1;
	return 0;
}

/* Parses body fed in pieces ending at each of cuts[] (ascending), then the rest. */
static struct result
parse_cuts(const char *ct, const char *body, size_t len, const size_t *cuts, size_t ncuts)
{
	struct result r;
	struct multipart *m;
	size_t at = 0;

	memset(&r, 0, sizeof(r));
	m = multipart_new(ct, sink_cb, &r.sink);
	assert_non_null(m);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		if (multipart_feed(m, body + at, to - at) == -1)
			r.feed = -1;
		at = to;
	}
	r.finish = multipart_finish(m);
	r.files = multipart_file_count(m);
	multipart_free(m);
	return r;
}

static struct result
parse(const char *ct, const char *body, size_t len)
{
	return parse_cuts(ct, body, len, NULL, 0);
}

static void
result_free(struct result *r)
{
	free(r->sink.buf);
}

static void
assert_same(const struct result *a, const struct result *b)
{
	assert_int_equal(a->feed, b->feed);
	assert_int_equal(a->finish, b->finish);
	assert_int_equal(a->files, b->files);
	assert_int_equal(a->sink.len, b->sink.len);
	if (a->sink.len > 0)
		assert_memory_equal(a->sink.buf, b->sink.buf, a->sink.len);
}

static void
assert_ok(const struct result *r, unsigned files, const char *content, size_t len)
{
	assert_int_equal(r->feed, 0);
	assert_int_equal(r->finish, 0);
	assert_int_equal(r->files, files);
	assert_int_equal(r->sink.len, len);
	if (len > 0)
		assert_memory_equal(r->sink.buf, content, len);
}

static void
test_requests_sample(void **state)
{
	struct result r = parse(requests_ct, requests_body, sizeof(requests_body) - 1);

	(void)state;
	assert_ok(&r, 1, EICAR, strlen(EICAR));
	result_free(&r);
}

static void
test_curl_sample(void **state)
{
	struct result r = parse(curl_ct, curl_body, sizeof(curl_body) - 1);

	(void)state;
	assert_ok(&r, 1, "hello\n", 6);
	result_free(&r);
}

static void
test_quoted_boundary(void **state)
{
	static const char body[] =
	    "--a b:c=?\r\n"
	    "Content-Disposition: form-data; name=file; filename=x.txt\r\n"
	    "\r\n"
	    "quoted\r\n"
	    "--a b:c=?--";
	static const char *cts[] = {
		"multipart/form-data; boundary=\"a b:c=?\"",
		"Multipart/Form-Data ;BOUNDARY = \"a b:c=?\" ; charset=utf-8",
		"multipart/form-data;charset=\"x;y\";boundary=\"a b:c=?\";",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
		struct result r = parse(cts[i], body, sizeof(body) - 1);

		assert_ok(&r, 1, "quoted", 6);
		result_free(&r);
	}
}

static void
test_two_files(void **state)
{
	struct result r = parse(CT_B, two_files_body, sizeof(two_files_body) - 1);

	(void)state;
	assert_ok(&r, 2, tricky, sizeof(tricky) - 1);
	result_free(&r);
}

static void
test_zero_files(void **state)
{
	static const char body[] =
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"filename\"\r\n"
	    "\r\n"
	    "v\r\n"
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"x; filename=y\"\r\n"
	    "\r\n"
	    "w\r\n"
	    "--b0undary--\r\n";
	struct result r = parse(CT_B, body, sizeof(body) - 1);

	(void)state;
	assert_ok(&r, 0, NULL, 0);
	assert_int_equal(r.sink.calls, 0);
	result_free(&r);
}

static void
test_empty_file(void **state)
{
	/* As requests sends files={'file': ('e.txt', b'')}. */
	static const char body[] =
	    "--e857c63f13f669dfad529ea923d802c1\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename=\"e.txt\"\r\n"
	    "\r\n"
	    "\r\n"
	    "--e857c63f13f669dfad529ea923d802c1--\r\n";
	struct result r = parse("multipart/form-data; boundary=e857c63f13f669dfad529ea923d802c1",
	    body, sizeof(body) - 1);

	(void)state;
	assert_ok(&r, 1, NULL, 0);
	assert_int_equal(r.sink.calls, 0);
	result_free(&r);
}

static void
test_filename_forms(void **state)
{
	static const char *dispositions[] = {
		"Content-Disposition: form-data; name=\"f\"; filename=plain.txt",
		"content-disposition:form-data;FileName=\"a\\\"b.txt\"",
		"CONTENT-DISPOSITION : Form-Data; name=f; filename*=UTF-8''%e2%82%ac.txt",
		"Content-Disposition: form-data; name=\"f\"; filename=\"\"",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(dispositions) / sizeof(dispositions[0]); i++) {
		char body[512];
		int n = snprintf(body, sizeof(body),
		    "--b0undary\r\n%s\r\n\r\nfile\r\n--b0undary--\r\n", dispositions[i]);
		struct result r;

		assert_true(n > 0 && (size_t)n < sizeof(body));
		r = parse(CT_B, body, (size_t)n);
		assert_ok(&r, 1, "file", 4);
		result_free(&r);
	}
}

static void check_splits(const char *ct, const char *body, size_t len);

/* A body written with bare LF line ends throughout, as Werkzeug (upstream) reads it. */
static const char lf_body[] =
    "--b0undary\n"
    "Content-Disposition: form-data; name=\"note\"\n"
    "\n"
    "a field\n"
    "--b0undary \n"
    "Content-Disposition: attachment; name=\"f\"; filename=\"a\"\n"
    "Content-Type: text/plain\n"
    "\n"
    "lf\r\nline\r--b0undar\nx--b0undary\n\n"
    "--b0undary--\n"
    "epilogue\r\n--b0undary\r\n";

static void
test_lf_body(void **state)
{
	static const char content[] = "lf\r\nline\r--b0undar\nx--b0undary\n";
	static const char empty[] = "--b0undary\nContent-Disposition: form-data; name=\"f\"; "
	    "filename=\"e\"\n\n\n--b0undary--";
	struct result r = parse(CT_B, lf_body, sizeof(lf_body) - 1);

	(void)state;
	assert_ok(&r, 1, content, sizeof(content) - 1);
	result_free(&r);
	check_splits(CT_B, lf_body, sizeof(lf_body) - 1);
	r = parse(CT_B, empty, sizeof(empty) - 1);
	assert_ok(&r, 1, NULL, 0);
	result_free(&r);
}

/*
 * Bodies that Werkzeug (which takes CR, LF or CRLF before a delimiter, the first one of the preamble
 * even mid-line, and a CR as a line end in headers) and a strict reader would split differently:
 * each one is refused, never scanned in one reader's way. The first is the one that could answer
 * clean on an older parser: Werkzeug finds the first part (the malware) behind "\n--b0undary", a
 * strict reader only the second.
 */
static void
test_line_end_ambiguity_refused(void **state)
{
#define CD_F "Content-Disposition: form-data; name=\"file\"; filename=\"a\""
	static const char *bodies[] = {
		"\n--b0undary\r\n" CD_F "\r\n\r\nMALWARE\r\n--b0undary\r\n" CD_F "\r\n\r\nclean\r\n"
		    "--b0undary--\r\n",
		"junk--b0undary\r\n" CD_F "\r\n\r\nv\r\n--b0undary--\r\n",
		"junk\r--b0undary\r\n" CD_F "\r\n\r\nv\r\n--b0undary--\r\n",
		"--b0undary\r\n" CD_F "\r\n\r\nv\n--b0undary\r\n" CD_F "\r\n\r\nw\r\n--b0undary--\r\n",
		"--b0undary\r\n" CD_F "\r\n\r\nv\r--b0undary\r\n" CD_F "\r\n\r\nw\r\n--b0undary--\r\n",
		"--b0undary\r\n" CD_F "\r\n\r\n--b0undary\r\n" CD_F "\r\n\r\nw\r\n--b0undary--\r\n",
		"--b0undary\r\n" CD_F "\r\n\r\n\n--b0undary--\r\n",
		"--b0undary\n" CD_F "\n\nv\r\n--b0undary--\n",
		"--b0undary\n" CD_F "\n\nv\r--b0undary--\n",
		"--b0undary\n" CD_F "\n\n--b0undary--\n",
		"--b0undary\r\n" CD_F "\n\r\nv\r\n--b0undary--\r\n",
		"--b0undary\r\n" CD_F "\r\n\nv\r\n--b0undary--\r\n",
		"--b0undary\n" CD_F "\r\n\nv\n--b0undary--\n",
		"--b0undary\r\n" CD_F "\rX: y\r\n\r\nv\r\n--b0undary--\r\n",
		"--b0undary\r\n" CD_F "\r\n\r\nv\r\n--b0undary\n" CD_F "\r\n\r\nw\r\n--b0undary--\r\n",
		"--b0undary\r" CD_F "\r\rv\r--b0undary--\r",
		"\r\n--b0undary\n" CD_F "\n\nv\n--b0undary--\n",
		"\n--b0undary\r\n" CD_F "\r\n\r\nv\r\n--b0undary--\r\n",
	};
#undef CD_F

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct result r = parse(CT_B, bodies[i], strlen(bodies[i]));

		if (r.finish != -1)
			fail_msg("body %zu accepted with %u files", i, r.files);
		result_free(&r);
		check_splits(CT_B, bodies[i], strlen(bodies[i]));
	}
}

/* One-shot, 1 byte at a time, and every way of cutting the body in three give the same result. */
static void
check_splits(const char *ct, const char *body, size_t len)
{
	struct result whole = parse(ct, body, len), r;
	size_t cuts[2];
	struct multipart *m;

	memset(&r, 0, sizeof(r));
	m = multipart_new(ct, sink_cb, &r.sink);
	assert_non_null(m);
	for (size_t i = 0; i < len; i++)
		if (multipart_feed(m, body + i, 1) == -1)
			r.feed = -1;
	r.finish = multipart_finish(m);
	r.files = multipart_file_count(m);
	multipart_free(m);
	assert_same(&whole, &r);
	result_free(&r);

	for (cuts[0] = 0; cuts[0] <= len; cuts[0]++) {
		for (cuts[1] = cuts[0]; cuts[1] <= len; cuts[1]++) {
			r = parse_cuts(ct, body, len, cuts, 2);
			assert_same(&whole, &r);
			result_free(&r);
		}
	}
	result_free(&whole);
}

static void
test_every_split(void **state)
{
	static const char bad[] =
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n"
	    "\r\n"
	    "data\r\n--b0undar\r\n"
	    "--b0undaryX\r\n";

	(void)state;
	check_splits(requests_ct, requests_body, sizeof(requests_body) - 1);
	check_splits(curl_ct, curl_body, sizeof(curl_body) - 1);
	check_splits(CT_B, two_files_body, sizeof(two_files_body) - 1);
	check_splits(CT_B, bad, sizeof(bad) - 1);
}

/* Dense CRs make the search switch from memchr to memmem mid-buffer; nothing may be missed. */
static void
test_cr_dense_content(void **state)
{
	static const char head[] = "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"f\"; filename=\"cr\"\r\n\r\n";
	static const char mid[] = "\r\n--b0undar\r\r\n--b0undarY\r\n-";
	static const char rest[] = "\r\n--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"g\"; filename=\"cr2\"\r\n\r\n"
	    "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r"
	    "\r\n--b0undary--";
	char body[512], content[128];
	size_t len = 0, clen = 0;
	struct result r;

	(void)state;
	memcpy(body, head, sizeof(head) - 1);
	len += sizeof(head) - 1;
	memset(content, '\r', 40);
	clen = 40;
	memcpy(content + clen, mid, sizeof(mid) - 1);
	clen += sizeof(mid) - 1;
	memset(content + clen, '\r', 20);
	clen += 20;
	memcpy(body + len, content, clen);
	len += clen;
	memcpy(body + len, rest, sizeof(rest) - 1);
	len += sizeof(rest) - 1;
	r = parse(CT_B, body, len);
	assert_ok(&r, 2, content, clen);
	result_free(&r);
	check_splits(CT_B, body, len);
}

static void
test_missing_close(void **state)
{
	size_t len = sizeof(requests_body) - 1;
	static const char *bodies[] = {
		"",
		"no boundary at all\r\n",
		"--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv",
		"--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b0undary",
		"--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--b0undary-",
		"--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n",
		"--b0undary\nContent-Disposition: form-data; name=\"a\"\n\nv\n--b0undary",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct result r = parse(CT_B, bodies[i], strlen(bodies[i]));

		assert_int_equal(r.feed, 0);
		assert_int_equal(r.finish, -1);
		result_free(&r);
	}
	/* Every truncation of a good body short of its closing "--". */
	for (size_t cut = 0; cut < len - 2; cut++) {
		struct result r = parse(requests_ct, requests_body, cut);

		assert_int_equal(r.finish, -1);
		result_free(&r);
	}
}

static void
test_bad_content_types(void **state)
{
	char long_b[128];
	static const char *bad[] = {
		"",
		"text/plain",
		"multipart/mixed; boundary=abc",
		"multipart/form-data",
		"multipart/form-data;",
		"multipart/form-data; boundary=",
		"multipart/form-data; boundary=\"\"",
		"multipart/form-data; boundary=\"abc",
		"multipart/form-data; boundary=\"a\\\"b\"",
		"multipart/form-data; boundary=\"trailing \"",
		"multipart/form-data; boundary=a@b",
		"multipart/form-data; boundary=abc; boundary=abd",
		"multipart/form-data; boundary=abc junk",
		"multipart/form-data x; boundary=abc",
		"multipart/form-datax; boundary=abc",
		"multipart/form-data; =abc",
		"multipart/form-data; boundary",
		"multipart/form-data; bound\"ary=abc",
	};
	struct multipart *m;
	int n;

	(void)state;
	assert_null(multipart_new(NULL, sink_cb, NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = multipart_new(bad[i], sink_cb, NULL);
		if (m != NULL)
			fail_msg("accepted content type: %s", bad[i]);
	}
	n = snprintf(long_b, sizeof(long_b), "multipart/form-data; boundary=%071d", 7);
	assert_true(n > 0 && (size_t)n < sizeof(long_b));
	assert_null(multipart_new(long_b, sink_cb, NULL));
	n = snprintf(long_b, sizeof(long_b), "multipart/form-data; boundary=%070d", 7);
	assert_true(n > 0 && (size_t)n < sizeof(long_b));
	m = multipart_new(long_b, sink_cb, NULL);
	assert_non_null(m);
	multipart_free(m);
	multipart_free(NULL);
}

/* Feeds body in one go, expecting failure, and checks that the failure sticks. */
static void
assert_malformed(const char *body, size_t len)
{
	struct sink sink = { 0 };
	struct multipart *m = multipart_new(CT_B, sink_cb, &sink);

	assert_non_null(m);
	if (multipart_feed(m, body, len) != -1)
		fail_msg("accepted body: %.*s", (int)len, body);
	assert_int_equal(multipart_feed(m, "--b0undary--\r\n", 14), -1);
	assert_int_equal(multipart_finish(m), -1);
	multipart_free(m);
	free(sink.buf);
}

/* A filename makes a file part whatever the disposition type, as in Werkzeug: an attachment next to
 * a clean form-data file is a second file (the server answers 400), never skipped unscanned. */
static void
test_any_disposition_with_filename_is_a_file(void **state)
{
	static const char *types[] = { "attachment", "inline", "ATTACHMENT", "x-custom", "form-data" };
	static const char two[] =
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename=\"clean.txt\"\r\n"
	    "\r\n"
	    "clean\r\n"
	    "--b0undary\r\n"
	    "Content-Disposition: attachment; filename=\"eicar.com\"\r\n"
	    "\r\n"
	    EICAR "\r\n"
	    "--b0undary--\r\n";
	struct result r;

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		char body[512];
		int n = snprintf(body, sizeof(body), "--b0undary\r\nContent-Disposition: %s; "
		    "filename=\"f.bin\"\r\n\r\nfile\r\n--b0undary--\r\n", types[i]);

		assert_true(n > 0 && (size_t)n < sizeof(body));
		r = parse(CT_B, body, (size_t)n);
		assert_ok(&r, 1, "file", 4);
		result_free(&r);
	}
	r = parse(CT_B, two, sizeof(two) - 1);
	assert_ok(&r, 2, "clean", 5);
	result_free(&r);
}

/* Identity encodings are content as it is; any other encoding is refused, not scanned as text. */
static void
test_transfer_encoding(void **state)
{
	static const char *fine[] = { "binary", "8bit", "7bit", "BINARY", " 8Bit " };
	static const char *refused[] = { "base64", "quoted-printable", "x-uuencode", "", "binary; x=y",
	    "binary base64" };
	char body[512];
	struct result r;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		n = snprintf(body, sizeof(body), "--b0undary\r\nContent-Disposition: form-data; "
		    "name=f; filename=a\r\nContent-Transfer-Encoding:%s\r\n\r\nfile\r\n"
		    "--b0undary--\r\n", fine[i]);
		assert_true(n > 0 && (size_t)n < sizeof(body));
		r = parse(CT_B, body, (size_t)n);
		assert_ok(&r, 1, "file", 4);
		result_free(&r);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		n = snprintf(body, sizeof(body), "--b0undary\r\nContent-Disposition: form-data; "
		    "name=f; filename=a\r\nContent-Transfer-Encoding: %s\r\n\r\n"
		    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FS\r\n--b0undary--\r\n", refused[i]);
		assert_true(n > 0 && (size_t)n < sizeof(body));
		assert_malformed(body, (size_t)n);
	}
	/* On a field too: what it carries is unknown, so the request is refused as a whole. */
	{
		static const char field[] = "--b0undary\r\nContent-Disposition: form-data; name=n\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\neA==\r\n--b0undary--\r\n";

		assert_malformed(field, sizeof(field) - 1);
	}
}

/* Parts that readers classify differently are refused: no Content-Disposition (Werkzeug refuses it
 * too), two of them, or a folded header line (Werkzeug joins it to the previous header). */
static void
test_ambiguous_parts_refused(void **state)
{
	static const char *bodies[] = {
		"--b0undary\r\n\r\nno headers\r\n--b0undary--\r\n",
		"--b0undary\r\nContent-Type: text/plain\r\n\r\nx\r\n--b0undary--\r\n",
		"--b0undary\r\nContent-Disposition: form-data; name=a; filename=b\r\n\r\nf\r\n"
		"--b0undary\r\nContent-Type: application/octet-stream\r\n\r\nEICAR\r\n"
		"--b0undary--\r\n",
		"--b0undary\r\nContent-Disposition: form-data; name=a\r\n"
		"Content-Disposition: attachment; filename=b\r\n\r\nf\r\n--b0undary--\r\n",
		"--b0undary\r\nContent-Disposition: form-data; name=a;\r\n"
		" filename=\"b\"\r\n\r\nf\r\n--b0undary--\r\n",
		"--b0undary\r\nContent-Disposition: form-data; name=a\r\n"
		"\tX-Note: y\r\n\r\nf\r\n--b0undary--\r\n",
		"--b0undary\r\nContent-Disposition: ; filename=b\r\n\r\nf\r\n--b0undary--\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_malformed(bodies[i], strlen(bodies[i]));
}

static void
test_malformed(void **state)
{
	static const char *bodies[] = {
		"--b0undaryX\r\n",
		"--b0undary \tX\r\n",
		"--b0undary\rX",
		"--b0undary-X",
		"--b0undary\r\nno colon here\r\n\r\n",
		"--b0undary\r\n: empty name\r\n\r\n",
		"--b0undary\r\nContent-Disposition: form-data; filename=\"open\r\n\r\n",
		"--b0undary\r\nContent-Disposition: form-data; name\r\n\r\n",
		"--b0undary\r\nX: 1\r\n\r\nv\r\n--b0undary\r\nbad\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_malformed(bodies[i], strlen(bodies[i]));
}

/* A part whose header block (the blank line included) is exactly size bytes. */
static char *
header_body(size_t size, size_t *len)
{
	static const char first[] = "--b0undary\r\n";
	static const char cd[] = "Content-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n";
	static const char last[] = "data\r\n--b0undary--\r\n";
	size_t pad = size - (sizeof(cd) - 1) - strlen("X-Pad: \r\n\r\n");
	char *b = malloc(size + 64);
	size_t at = 0;

	assert_non_null(b);
	memcpy(b + at, first, sizeof(first) - 1);
	at += sizeof(first) - 1;
	memcpy(b + at, cd, sizeof(cd) - 1);
	at += sizeof(cd) - 1;
	memcpy(b + at, "X-Pad: ", 7);
	at += 7;
	memset(b + at, 'a', pad);
	at += pad;
	memcpy(b + at, "\r\n\r\n", 4);
	at += 4;
	memcpy(b + at, last, sizeof(last) - 1);
	at += sizeof(last) - 1;
	*len = at;
	return b;
}

static void
test_oversized_header(void **state)
{
	size_t len;
	char *b = header_body(MULTIPART_HEADER_MAX_BYTES, &len);
	struct result r = parse(CT_B, b, len);

	(void)state;
	assert_ok(&r, 1, "data", 4);
	result_free(&r);
	free(b);

	b = header_body(MULTIPART_HEADER_MAX_BYTES + 1, &len);
	assert_malformed(b, len);
	r = parse_cuts(CT_B, b, len, (size_t[]){ 100, 4000, 8000 }, 3);
	assert_int_equal(r.feed, -1);
	result_free(&r);
	free(b);
}

static void
test_callback_stops(void **state)
{
	struct sink s = { .stop_after = 3 };
	struct multipart *m = multipart_new(requests_ct, sink_cb, &s);

	(void)state;
	assert_non_null(m);
	assert_int_equal(multipart_feed(m, requests_body, sizeof(requests_body) - 1), -1);
	assert_int_equal(s.calls, 1);
	assert_int_equal(multipart_feed(m, "x", 1), -1);
	assert_int_equal(multipart_finish(m), -1);
	assert_int_equal(s.calls, 1);
	multipart_free(m);
	free(s.buf);
}

/* The first file part's filename is kept for the log, as sent; a plain filename wins over
 * filename*, and the second file's name is not taken. */
static void
test_filename(void **state)
{
	static const char body[] =
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"note\"\r\n\r\nfield\r\n"
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''a%20b; "
	    "filename=\"a \\\"b\\\".exe\"\r\n\r\nx\r\n"
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"g\"; filename=\"second.bin\"\r\n\r\ny\r\n"
	    "--b0undary--\r\n";
	struct sink s = { 0 };
	struct multipart *m = multipart_new(CT_B, sink_cb, &s);

	(void)state;
	assert_non_null(m);
	assert_null(multipart_filename(m));
	assert_int_equal(multipart_feed(m, body, sizeof(body) - 1), 0);
	assert_int_equal(multipart_finish(m), 0);
	assert_string_equal(multipart_filename(m), "a \\\"b\\\".exe");
	multipart_free(m);
	free(s.buf);
	s = (struct sink){ 0 };
	m = multipart_new(requests_ct, sink_cb, &s);
	assert_int_equal(multipart_feed(m, requests_body, sizeof(requests_body) - 1), 0);
	assert_string_equal(multipart_filename(m), "eicar.txt");
	multipart_free(m);
	free(s.buf);
}

/* Fills len bytes of content of the given kind: random, CRLF text, or near-delimiters. */
static void
fill_content(char *p, size_t len, int kind)
{
	static const char near[] = "\r\n--b0undar";
	uint64_t x = 88172645463325252ULL;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (kind == 0)
			p[i] = (char)(x & 0xff);
		else if (kind == 1)
			p[i] = i % 64 == 62 ? '\r' : i % 64 == 63 ? '\n' : (char)('a' + x % 26);
		else
			p[i] = near[i % (sizeof(near) - 1)];
	}
}

static void
test_throughput(void **state)
{
	static const char head[] = "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"f\"; filename=\"big\"\r\n\r\n";
	static const char tail[] = "\r\n--b0undary--\r\n";
	static const char *kinds[] = { "random", "crlf-text", "near-delimiters" };
	const size_t content = (size_t)64 << 20, feed = (size_t)64 << 10;
	size_t len = sizeof(head) - 1 + content + sizeof(tail) - 1;
	char *body = malloc(len);

	(void)state;
	assert_non_null(body);
	memcpy(body, head, sizeof(head) - 1);
	memcpy(body + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	for (int k = 0; k < 3; k++) {
		struct sink s = { .count_only = 1 };
		struct multipart *m = multipart_new(CT_B, sink_cb, &s);
		double t;

		assert_non_null(m);
		fill_content(body + sizeof(head) - 1, content, k);
		t = util_now();
		for (size_t at = 0; at < len; at += feed)
			assert_int_equal(multipart_feed(m, body + at, len - at < feed ? len - at : feed), 0);
		t = util_now() - t;
		assert_int_equal(multipart_finish(m), 0);
		assert_int_equal(s.len, content);
		printf("multipart throughput (%s, 64 MiB in 64 KiB feeds): %.0f MB/s\n",
		    kinds[k], (double)len / 1e6 / t);
		multipart_free(m);
	}
	free(body);
}

/* multipart_each_file: every file part streams, announced with its names; fields are skipped. */
struct parts {
	char names[8][64];
	char data[8][128];
	size_t len[8];
	int n;
	int stop_at;		/* the part callback refuses this part (1-based); 0: never */
};

static int
each_part(void *ud, const char *fn, size_t flen, const char *field, size_t nlen)
{
	struct parts *p = ud;

	if (p->n + 1 == p->stop_at || p->n == 8)
		return -1;
	snprintf(p->names[p->n], sizeof(p->names[0]), "%.*s|%.*s", (int)flen, fn, (int)nlen, field);
	p->n++;
	return 0;
}

static int
each_data(void *ud, const char *data, size_t len)
{
	struct parts *p = ud;
	size_t *l = &p->len[p->n - 1];

	assert_true(p->n > 0 && *l + len <= sizeof(p->data[0]));
	memcpy(p->data[p->n - 1] + *l, data, len);
	*l += len;
	return 0;
}

static void
run_each(const char *ct, const char *body, size_t blen, size_t step, struct parts *p)
{
	struct multipart *m = multipart_new(ct, each_data, p);

	assert_non_null(m);
	assert_int_equal(multipart_each_file(m, each_part), 0);
	for (size_t at = 0; at < blen; at += step)
		assert_int_equal(multipart_feed(m, body + at, blen - at < step ? blen - at : step), 0);
	assert_int_equal(multipart_finish(m), 0);
	assert_int_equal(multipart_file_count(m), (unsigned)p->n);
	multipart_free(m);
}

static void
test_each_file(void **state)
{
	static const char names_body[] =
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; name=\"a\"; filename=\"q\\\"uo\\\\te\"\r\n\r\n"
	    "one\r\n"
	    "--b0undary\r\n"
	    "Content-Disposition: form-data; filename=\"plain\"; filename*=UTF-8''caf%C3%A9%2\r\n\r\n"
	    "two\r\n"
	    "--b0undary\r\n"
	    "Content-Disposition: attachment; name=c; filename=x\\y\r\n\r\n"
	    "\r\n"
	    "--b0undary--\r\n";
	size_t steps[] = { 1, 2, 7, 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct parts p = { 0 };

		run_each(CT_B, two_files_body, sizeof(two_files_body) - 1, steps[i], &p);
		assert_int_equal(p.n, 2);
		assert_string_equal(p.names[0], "one.bin|f1");
		assert_string_equal(p.names[1], "two.bin|f2");
		assert_int_equal(p.len[0], sizeof(tricky) - 1);
		assert_memory_equal(p.data[0], tricky, sizeof(tricky) - 1);
		assert_int_equal(p.len[1], 11);
		assert_memory_equal(p.data[1], "second file", 11);

		memset(&p, 0, sizeof(p));
		run_each(CT_B, names_body, sizeof(names_body) - 1, steps[i], &p);
		assert_int_equal(p.n, 3);
		assert_string_equal(p.names[0], "q\"uo\\te|a");
		assert_string_equal(p.names[1], "caf\xc3\xa9%2|");	/* filename* wins; a cut escape stays */
		assert_string_equal(p.names[2], "x\\y|c");	/* unquoted: no escapes */
		assert_int_equal(p.len[2], 0);
	}
}

/* The part callback's refusal (too many files) stops the parse. */
static void
test_each_file_refused(void **state)
{
	struct parts p = { .stop_at = 2 };
	struct multipart *m = multipart_new(CT_B, each_data, &p);

	(void)state;
	assert_int_equal(multipart_each_file(m, each_part), 0);
	assert_int_equal(multipart_feed(m, two_files_body, sizeof(two_files_body) - 1), -1);
	assert_int_equal(p.n, 1);
	multipart_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_sample),
		cmocka_unit_test(test_curl_sample),
		cmocka_unit_test(test_quoted_boundary),
		cmocka_unit_test(test_two_files),
		cmocka_unit_test(test_zero_files),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_filename_forms),
		cmocka_unit_test(test_any_disposition_with_filename_is_a_file),
		cmocka_unit_test(test_transfer_encoding),
		cmocka_unit_test(test_ambiguous_parts_refused),
		cmocka_unit_test(test_lf_body),
		cmocka_unit_test(test_line_end_ambiguity_refused),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_cr_dense_content),
		cmocka_unit_test(test_missing_close),
		cmocka_unit_test(test_bad_content_types),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_oversized_header),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_filename),
		cmocka_unit_test(test_throughput),
		cmocka_unit_test(test_each_file),
		cmocka_unit_test(test_each_file_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
