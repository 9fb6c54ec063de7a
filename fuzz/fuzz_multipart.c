/* fuzz_multipart.c -- libFuzzer target for the multipart parser: one body fed whole, in fixed pieces
 * and in random pieces must give the same result, a stopping callback must stop it, and the content
 * of an accepted file holds nothing any reader (Werkzeug takes CR, LF or CRLF) could end it at. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

/*
 * Input: one control byte, then the body. Control bit 0x80 takes the content type from the input,
 * up to the first newline (at most FUZZ_CT_MAX bytes); otherwise FUZZ_CT is used. The low 7 bits
 * are the fixed piece size (0 for 1-byte pieces) and seed the random pieces.
 */
#define FUZZ_CT		"multipart/form-data; boundary=----fuzzb0undary"
#define FUZZ_DASHB	"------fuzzb0undary"	/* "--" and FUZZ_CT's boundary */
#define FUZZ_CT_MAX	256	/* bytes */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_run {
	int		 feed;	/* -1 when any feed failed */
	int		 finish;
	unsigned	 files;
	char		*buf;	/* content received, never more than the body */
	size_t		 len;
	size_t		 cap;
	size_t		 stop_after;	/* 0 for never */
};

static int
fuzz_cb(void *ud, const char *data, size_t len)
{
	struct fuzz_run *r = ud;

	if (len == 0 || len > r->cap - r->len)
		abort();
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return r->stop_after > 0 && r->len >= r->stop_after ? -1 : 0;
}

/* Feeds body in pieces of the given size, or of random sizes seeded by seed when size is 0. */
static void
fuzz_parse(struct multipart *m, struct fuzz_run *r, const char *body, size_t len, size_t piece,
    uint32_t seed)
{
	size_t at = 0, n;

	while (at < len) {
		if (piece == 0) {
			seed = seed * 1103515245u + 12345u;
			n = (seed >> 16) % 160 + 1;
		} else
			n = piece;
		if (n > len - at)
			n = len - at;
		if (multipart_feed(m, body + at, n) == -1) {
			r->feed = -1;
			if (multipart_feed(m, body, len) != -1)
				abort();	/* errors are sticky */
		}
		at += n;
	}
	r->finish = multipart_finish(m);
	r->files = multipart_file_count(m);
	if (r->finish == 0 && r->feed == -1)
		abort();
}

static int
fuzz_run(const char *ct, const char *body, size_t len, size_t piece, uint32_t seed,
    struct fuzz_run *r)
{
	struct multipart *m;

	r->feed = 0;
	r->len = 0;
	m = multipart_new(ct, fuzz_cb, r);
	if (m == NULL)
		return -1;
	fuzz_parse(m, r, body, len, piece, seed);
	multipart_free(m);
	return 0;
}

static void
fuzz_same(const struct fuzz_run *a, const struct fuzz_run *b)
{
	if (a->feed != b->feed || a->finish != b->finish || a->files != b->files ||
	    a->len != b->len || (a->len > 0 && memcmp(a->buf, b->buf, a->len) != 0))
		abort();
}

/* Stopping halfway through the content must fail the feed after delivering a prefix of it. */
static void
fuzz_stop(const char *ct, const char *body, size_t len, const struct fuzz_run *whole,
    struct fuzz_run *r)
{
	if (whole->len == 0)
		return;
	r->stop_after = whole->len / 2 + 1;
	if (fuzz_run(ct, body, len, 7, 0, r) == -1 || r->feed != -1 || r->finish != -1 ||
	    r->len < r->stop_after || memcmp(r->buf, whole->buf, r->stop_after) != 0)
		abort();
	r->stop_after = 0;
}

/* A file we accepted must not start with "--boundary" nor hold one after a CR or LF: another reader
 * would have ended the file there and seen other parts, so ours would be a different scan. */
static void
fuzz_no_inner_delimiter(const struct fuzz_run *r)
{
	size_t dl = strlen(FUZZ_DASHB);
	const char *p = r->buf, *end = r->buf + r->len, *hit;

	if (r->finish != 0 || r->files == 0)
		return;
	while (p < end && (hit = memmem(p, (size_t)(end - p), FUZZ_DASHB, dl)) != NULL) {
		if (hit == r->buf || hit[-1] == '\r' || hit[-1] == '\n')
			abort();
		p = hit + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char ct[FUZZ_CT_MAX + 1] = FUZZ_CT;
	struct fuzz_run a = { 0 }, b = { 0 };
	const char *body;
	size_t len, piece;
	uint8_t ctl;

	if (size == 0)
		return 0;
	ctl = data[0];
	body = (const char *)data + 1;
	len = size - 1;
	if (ctl & 0x80) {
		const char *nl = memchr(body, '\n', len < FUZZ_CT_MAX ? len : FUZZ_CT_MAX);

		if (nl == NULL)
			return 0;
		memcpy(ct, body, (size_t)(nl - body));
		ct[nl - body] = '\0';
		len -= (size_t)(nl - body) + 1;
		body = nl + 1;
	}
	piece = ctl & 0x7f;
	a.cap = b.cap = len;
	a.buf = malloc(len + 1);
	b.buf = malloc(len + 1);
	if (a.buf == NULL || b.buf == NULL)
		abort();
	if (fuzz_run(ct, body, len, len + 1, 0, &a) == 0) {
		if (!(ctl & 0x80))
			fuzz_no_inner_delimiter(&a);
		fuzz_run(ct, body, len, piece == 0 ? 1 : piece, 0, &b);
		fuzz_same(&a, &b);
		fuzz_run(ct, body, len, 0, (uint32_t)(ctl * 2654435761u) ^ (uint32_t)len, &b);
		fuzz_same(&a, &b);
		fuzz_stop(ct, body, len, &a, &b);
	}
	free(a.buf);
	free(b.buf);
	return 0;
}
