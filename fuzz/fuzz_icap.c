/* fuzz_icap.c -- libFuzzer target: an ICAP request (head, encapsulated headers, chunked body) through
 * the parser of icap_parse.c, and the body's bytes through the Content-Encoding decoders of
 * icap_decode.c with a small output cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "icap_decode.h"
#include "icap_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_sink(void *arg, const void *p, size_t len)
{
	size_t *total = arg;

	(void)p;
	*total += len;
	return 0;
}

/* The chunk lines from p on, as icap_conn.c reads them: a line, its data, CRLF. */
static void
fuzz_chunks(const char *p, size_t len)
{
	uint64_t csize;
	size_t used;
	int ieof, rc;

	while ((rc = icap_chunk_line(p, len, &csize, &ieof, &used)) == 1) {
		if (used > len)
			abort();	/* a line longer than the bytes given */
		p += used;
		len -= used;
		if (csize == 0 || csize > len)
			return;
		p += csize;
		len -= (size_t)csize;
	}
}

/* The rest through a decoder picked by its first byte, its output capped at 1 MiB. */
static void
fuzz_decode(const uint8_t *p, size_t len)
{
	enum icap_coding c = len == 0 ? ICAP_CODING_GZIP : (enum icap_coding)(1 + p[0] % 3);
	size_t total = 0;
	struct icap_decode *d = icap_decode_new(c, 1 << 20, fuzz_sink, &total);

	if (d == NULL)
		return;
	for (size_t off = len > 0 ? 1 : 0; off < len; off += 4096)
		if (icap_decode_feed(d, p + off, len - off < 4096 ? len - off : 4096) != 0)
			break;
	icap_decode_end(d);
	if (total > (1 << 20) || icap_decode_out(d) != total)
		abort();
	icap_decode_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct icap_req r;
	long end = icap_head_end(buf, size);
	size_t vlen;
	int status;

	fuzz_decode(data, size < 65536 ? size : 65536);
	if (end <= 0)
		return 0;
	if (icap_parse_head(buf, (size_t)end, &r, &status) != 1)
		return 0;
	if (r.hdr_len > ICAP_HEAD_MAX || strlen(r.service) >= ICAP_SERVICE_MAX)
		abort();
	if (r.method == ICAP_OPTIONS || (size_t)end + r.hdr_len > size)
		return 0;
	if (icap_check_sections(&r, buf + end, r.hdr_len) == 0) {
		long sec = r.encap.res_hdr >= 0 ? r.encap.res_hdr : r.encap.req_hdr;

		if (sec >= 0 && (size_t)sec <= r.hdr_len) {
			const char *v = icap_http_header(buf + end + sec, r.hdr_len - (size_t)sec,
			    "Content-Encoding", &vlen);

			if (v != NULL && (v < buf + end + sec || v + vlen > buf + end + r.hdr_len))
				abort();
			if (v != NULL)
				(void)icap_coding_of(v, vlen);
		}
	}
	fuzz_chunks(buf + end + r.hdr_len, size - (size_t)end - r.hdr_len);
	return 0;
}
