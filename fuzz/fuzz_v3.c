/* fuzz_v3.c -- libFuzzer target for what /v3 parses from clients: the all_matches query (its parse
 * and the canonical rewrite server_uri makes in libmicrohttpd's buffer) and multipart bodies of
 * several files (multipart_each_file): fed whole and in 1-byte pieces, the parts, their names and
 * contents must be the same, and every file part counted must have been announced. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "v3.h"

#define FUZZ_CT		"multipart/form-data; boundary=----fuzzb0undary"
#define FUZZ_PARTS	64	/* parts recorded; more are only counted */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_parts {
	unsigned n;
	size_t names[FUZZ_PARTS];	/* a digest of each part's names: their lengths */
	size_t len;			/* content bytes of every part */
	unsigned long sum;		/* and a checksum of them, part boundaries included */
};

static int
fuzz_part(void *ud, const char *fn, size_t flen, const char *field, size_t nlen)
{
	struct fuzz_parts *p = ud;

	if (flen > MULTIPART_HEADER_MAX_BYTES || nlen > MULTIPART_HEADER_MAX_BYTES ||
	    (flen > 0 && fn == NULL) || (nlen > 0 && field == NULL))
		abort();
	if (p->n < FUZZ_PARTS)
		p->names[p->n] = flen * 65536 + nlen;
	p->n++;
	p->sum = p->sum * 31 + 7;
	return 0;
}

static int
fuzz_data(void *ud, const char *d, size_t len)
{
	struct fuzz_parts *p = ud;

	if (p->n == 0 || len == 0)
		abort();	/* content before any file part was announced */
	p->len += len;
	for (size_t i = 0; i < len; i++)
		p->sum = p->sum * 131 + (unsigned char)d[i];
	return 0;
}

static int
fuzz_each(const char *body, size_t len, size_t piece, struct fuzz_parts *p)
{
	struct multipart *m = multipart_new(FUZZ_CT, fuzz_data, p);
	int rc = 0;

	if (m == NULL || multipart_each_file(m, fuzz_part) != 0)
		abort();
	for (size_t at = 0; at < len && rc == 0; at += piece)
		rc = multipart_feed(m, body + at, len - at < piece ? len - at : piece);
	if (rc == 0)
		rc = multipart_finish(m);
	if (rc == 0 && multipart_file_count(m) != p->n)
		abort();
	multipart_free(m);
	return rc;
}

static void
fuzz_query(const char *q, size_t len)
{
	char *buf = malloc(len + 1);
	int v = v3_query_all_matches(q, len);
	const char *want = v == 1 ? V3_ARG_TRUE : v == -1 ? V3_ARG_BAD : "";

	if (buf == NULL)
		abort();
	memcpy(buf, q, len);
	buf[len] = '\0';
	v3_query_canon(buf);
	/* A NUL inside hides the rest from the rewrite (as from libmicrohttpd): only compare when none. */
	if (memchr(q, '\0', len) == NULL && strcmp(buf, want) != 0)
		abort();
	if (strlen(buf) > len)
		abort();
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_parts a = { 0 }, b = { 0 };
	const char *s = (const char *)data;
	int ra, rb;

	fuzz_query(s, size);
	ra = fuzz_each(s, size, size + 1, &a);
	rb = fuzz_each(s, size, 1, &b);
	if (ra != rb || (ra == 0 && (a.n != b.n || a.len != b.len || a.sum != b.sum ||
	    memcmp(a.names, b.names, sizeof(a.names)) != 0)))
		abort();
	return 0;
}
