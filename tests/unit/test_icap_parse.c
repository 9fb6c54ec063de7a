/* test_icap_parse.c -- the ICAP parser (Encapsulated, heads, chunk lines, encapsulated headers) and
 * the Content-Encoding decoders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "icap_decode.h"
#include "icap_parse.h"

static int
encap(const char *v, struct icap_encap *e)
{
	return icap_parse_encap(v, strlen(v), e);
}

static void
test_encapsulated(void **state)
{
	struct icap_encap e;

	(void)state;
	assert_int_equal(encap("req-hdr=0, res-hdr=137, res-body=296", &e), 0);
	assert_int_equal(e.req_hdr, 0);
	assert_int_equal(e.res_hdr, 137);
	assert_int_equal(e.body, 296);
	assert_int_equal(encap("null-body=0", &e), 0);
	assert_int_equal(e.null_body, 0);
	assert_int_equal(encap("req-hdr=0, null-body=40", &e), 0);
	assert_int_equal(encap("res-body=0", &e), 0);
	/* Wrong order, not from 0, going back, no body kind, junk, a trailing comma, twice. */
	assert_int_equal(encap("res-body=0, res-hdr=10", &e), -1);
	assert_int_equal(encap("res-hdr=5, res-body=10", &e), -1);
	assert_int_equal(encap("req-hdr=0, res-hdr=50, res-body=20", &e), -1);
	assert_int_equal(encap("req-hdr=0, res-hdr=0, res-body=20", &e), -1);
	assert_int_equal(encap("res-hdr=0", &e), -1);
	assert_int_equal(encap("res-hdr=0, res-body=1x", &e), -1);
	assert_int_equal(encap("res-hdr=0, res-body=10,", &e), -1);
	assert_int_equal(encap("res-hdr=0, res-hdr=0, res-body=10", &e), -1);
	assert_int_equal(encap("res-hdr=0, res-body=10, null-body=20", &e), -1);
	assert_int_equal(encap("res-hdr=0, res-body=9999999999", &e), -1);
	assert_int_equal(encap("", &e), -1);
}

static int
head(const char *s, struct icap_req *r, int *status)
{
	return icap_parse_head(s, strlen(s), r, status);
}

static void
test_heads(void **state)
{
	struct icap_req r;
	int status;

	(void)state;
	assert_int_equal(head("RESPMOD icap://h:1344/avscan?x=1 ICAP/1.0\r\nAllow: 204, trailers\r\n"
	    "Preview: 1024\r\nX-Client-IP: 192.0.2.1\r\nEncapsulated: res-hdr=0, res-body=20\r\n\r\n",
	    &r, &status), 1);
	assert_int_equal(r.method, ICAP_RESPMOD);
	assert_string_equal(r.service, "avscan");
	assert_int_equal(r.preview, 1024);
	assert_int_equal(r.allow204, 1);
	assert_string_equal(r.client_ip, "192.0.2.1");
	assert_int_equal(r.hdr_len, 20);
	assert_int_equal(head("OPTIONS /srv_clamav ICAP/1.0\r\n\r\n", &r, &status), 1);
	assert_int_equal(r.method, ICAP_OPTIONS);
	assert_int_equal(head("FOO icap://h/avscan ICAP/1.0\r\n\r\n", &r, &status), -1);
	assert_int_equal(status, 405);
	assert_int_equal(head("OPTIONS icap://h/avscan ICAP/2.0\r\n\r\n", &r, &status), -1);
	assert_int_equal(status, 505);
	assert_int_equal(head("OPTIONS icap://h/avscan HTTP/1.1\r\n\r\n", &r, &status), -1);
	assert_int_equal(status, 400);
	/* REQMOD needs req-hdr, takes no res-hdr; a body needs Encapsulated; two Previews. */
	assert_int_equal(head("REQMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-body=0\r\n\r\n",
	    &r, &status), -1);
	assert_int_equal(head("RESPMOD icap://h/avscan ICAP/1.0\r\n\r\n", &r, &status), -1);
	assert_int_equal(head("RESPMOD icap://h/avscan ICAP/1.0\r\nPreview: 1\r\nPreview: 2\r\n"
	    "Encapsulated: res-body=0\r\n\r\n", &r, &status), -1);
	assert_int_equal(head("RESPMOD icap://h/avscan ICAP/1.0\r\nBad header\r\n"
	    "Encapsulated: res-body=0\r\n\r\n", &r, &status), -1);
	assert_int_equal(icap_head_end("OPTIONS / ICAP/1.0\r\n", 20), 0);
	assert_int_equal(icap_service_known("avscan") + icap_service_known("virus_scan") +
	    icap_service_known("srv_clamav") + icap_service_known("squidclamav"), 4);
	assert_int_equal(icap_service_known("echo"), 0);
}

static void
test_chunk_lines(void **state)
{
	uint64_t size;
	size_t used;
	int ieof;

	(void)state;
	assert_int_equal(icap_chunk_line("1a\r\n", 4, &size, &ieof, &used), 1);
	assert_int_equal(size, 26);
	assert_int_equal(used, 4);
	assert_int_equal(ieof, 0);
	assert_int_equal(icap_chunk_line("0; ieof\r\n", 9, &size, &ieof, &used), 1);
	assert_int_equal(size, 0);
	assert_int_equal(ieof, 1);
	assert_int_equal(icap_chunk_line("0;ieof\r\n", 8, &size, &ieof, &used), 1);
	assert_int_equal(ieof, 1);
	assert_int_equal(icap_chunk_line("0; ieofx\r\n", 10, &size, &ieof, &used), 1);
	assert_int_equal(ieof, 0);
	assert_int_equal(icap_chunk_line("1a", 2, &size, &ieof, &used), 0);
	assert_int_equal(icap_chunk_line("zz\r\n", 4, &size, &ieof, &used), -1);
	assert_int_equal(icap_chunk_line("-1\r\n", 4, &size, &ieof, &used), -1);
	assert_int_equal(icap_chunk_line("1a\n", 3, &size, &ieof, &used), -1);
	assert_int_equal(icap_chunk_line("\r\n", 2, &size, &ieof, &used), -1);
	assert_int_equal(icap_chunk_line("1000000000000000\r\n", 18, &size, &ieof, &used), -1);
}

static void
test_sections(void **state)
{
	const char hdr[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding:  gzip \r\n\r\n";
	struct icap_req r;
	size_t vlen;
	const char *v;
	int status;

	(void)state;
	assert_int_equal(head("RESPMOD icap://h/avscan ICAP/1.0\r\n"
	    "Encapsulated: req-hdr=0, res-hdr=27, res-body=72\r\n\r\n", &r, &status), 1);
	assert_int_equal(icap_check_sections(&r, hdr, r.hdr_len), 0);
	v = icap_http_header(hdr + 27, r.hdr_len - 27, "content-encoding", &vlen);
	assert_non_null(v);
	assert_int_equal(vlen, 4);
	assert_memory_equal(v, "gzip", 4);
	assert_int_equal(icap_coding_of(v, vlen), ICAP_CODING_GZIP);
	/* The offsets one byte off: a section no longer ends with its blank line there. */
	assert_int_equal(head("RESPMOD icap://h/avscan ICAP/1.0\r\n"
	    "Encapsulated: req-hdr=0, res-hdr=26, res-body=72\r\n\r\n", &r, &status), 1);
	assert_int_equal(icap_check_sections(&r, hdr, r.hdr_len), -1);
}

static int
sink(void *arg, const void *p, size_t len)
{
	char *out = arg;
	size_t have = strlen(out);

	memcpy(out + have, p, len);
	out[have + len] = '\0';
	return 0;
}

static void
test_decode(void **state)
{
	unsigned char packed[256];
	uLongf plen = sizeof(packed);
	char out[1024] = "";
	struct icap_decode *d;

	(void)state;
	assert_int_equal(compress(packed, &plen, (const Bytef *)"hello deflate", 13), Z_OK);
	d = icap_decode_new(ICAP_CODING_DEFLATE, 100, sink, out);
	for (uLongf i = 0; i < plen; i++)	/* a byte at a time */
		assert_int_equal(icap_decode_feed(d, packed + i, 1), 0);
	assert_int_equal(icap_decode_end(d), 0);
	assert_string_equal(out, "hello deflate");
	icap_decode_free(d);
	/* Cut short, or past the cap. */
	out[0] = '\0';
	d = icap_decode_new(ICAP_CODING_DEFLATE, 100, sink, out);
	assert_int_equal(icap_decode_feed(d, packed, plen - 3), 0);
	assert_int_equal(icap_decode_end(d), ICAP_DECODE_CORRUPT);
	icap_decode_free(d);
	out[0] = '\0';
	d = icap_decode_new(ICAP_CODING_DEFLATE, 5, sink, out);
	assert_int_equal(icap_decode_feed(d, packed, plen), ICAP_DECODE_LIMIT);
	icap_decode_free(d);
	assert_int_equal(icap_coding_of("identity", 8), ICAP_CODING_NONE);
	assert_int_equal(icap_coding_of("br", 2), ICAP_CODING_BR);
	assert_int_equal(icap_coding_of("gzip, br", 8), ICAP_CODING_UNKNOWN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encapsulated),
		cmocka_unit_test(test_heads),
		cmocka_unit_test(test_chunk_lines),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
