/* icap_decode.c -- streaming gzip, deflate (zlib or raw) and br decoding with a cap on the output. */
#include "icap_decode.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <brotli/decode.h>

#define ICAP_DECODE_BUF 65536	/* bytes decoded per step */

struct icap_decode {
	enum icap_coding coding;
	uint64_t max_out, out;
	icap_sink sink;
	void *arg;
	int failed;		/* 0 or the ICAP_DECODE_* that ended it */
	int started, ended;	/* zlib set up (deflate waits for 2 bytes); a stream end was seen */
	z_stream z;
	BrotliDecoderState *br;
	unsigned char buf[ICAP_DECODE_BUF];
};

enum icap_coding
icap_coding_of(const char *v, size_t len)
{
	static const struct { const char *name; enum icap_coding c; } names[] = {
		{ "identity", ICAP_CODING_NONE }, { "gzip", ICAP_CODING_GZIP },
		{ "x-gzip", ICAP_CODING_GZIP }, { "deflate", ICAP_CODING_DEFLATE },
		{ "br", ICAP_CODING_BR },
	};

	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0)
		return ICAP_CODING_NONE;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == len && strncasecmp(v, names[i].name, len) == 0)
			return names[i].c;
	return ICAP_CODING_UNKNOWN;
}

const char *
icap_coding_name(enum icap_coding c)
{
	static const char *const n[] = { "identity", "gzip", "deflate", "br", "unknown" };

	return n[c];
}

struct icap_decode *
icap_decode_new(enum icap_coding c, uint64_t max_out, icap_sink sink, void *arg)
{
	struct icap_decode *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->coding = c;
	d->max_out = max_out;
	d->sink = sink;
	d->arg = arg;
	if (c == ICAP_CODING_BR && (d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL)) == NULL) {
		free(d);
		return NULL;
	}
	if (c == ICAP_CODING_GZIP) {
		if (inflateInit2(&d->z, 15 + 16) != Z_OK) {
			free(d);
			return NULL;
		}
		d->started = 1;
	}
	return d;
}

void
icap_decode_free(struct icap_decode *d)
{
	if (d == NULL)
		return;
	if (d->started)
		inflateEnd(&d->z);
	if (d->br != NULL)
		BrotliDecoderDestroyInstance(d->br);
	free(d);
}

/* n decoded bytes of d->buf to the sink, within the cap. */
static int
icap_emit(struct icap_decode *d, size_t n)
{
	if (n == 0)
		return 0;
	if (d->out + n > d->max_out)
		return ICAP_DECODE_LIMIT;
	d->out += n;
	return d->sink(d->arg, d->buf, n) == 0 ? 0 : ICAP_DECODE_SINK;
}

/* HTTP's deflate is zlib's format, though some servers send it raw: the first two bytes tell. */
static int
icap_zlib_start(struct icap_decode *d, const unsigned char *in, size_t len)
{
	/* A first feed of one byte: zlib's format (what RFC 9110 says deflate is). */
	int zlib = len < 2 || ((in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0);

	if (inflateInit2(&d->z, zlib ? 15 : -15) != Z_OK)
		return ICAP_DECODE_SINK;
	d->started = 1;
	return 0;
}

static int
icap_feed_zlib(struct icap_decode *d, const unsigned char *in, size_t len)
{
	int zr, rc;

	d->z.next_in = (unsigned char *)(uintptr_t)in;
	d->z.avail_in = (uInt)len;
	while (d->z.avail_in > 0) {
		if (d->ended) {
			/* gzip: another member follows; deflate: bytes after the end are corrupt. */
			if (d->coding != ICAP_CODING_GZIP || inflateReset(&d->z) != Z_OK)
				return ICAP_DECODE_CORRUPT;
			d->ended = 0;
		}
		d->z.next_out = d->buf;
		d->z.avail_out = sizeof(d->buf);
		zr = inflate(&d->z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			return ICAP_DECODE_CORRUPT;
		if ((rc = icap_emit(d, sizeof(d->buf) - d->z.avail_out)) != 0)
			return rc;
		if (zr == Z_STREAM_END)
			d->ended = 1;
		else if (zr == Z_BUF_ERROR && d->z.avail_out > 0)
			return ICAP_DECODE_CORRUPT;
	}
	return 0;
}

static int
icap_feed_br(struct icap_decode *d, const unsigned char *in, size_t len)
{
	BrotliDecoderResult br;
	size_t avail_out;
	int rc;

	do {
		uint8_t *next_out = d->buf;

		avail_out = sizeof(d->buf);
		br = BrotliDecoderDecompressStream(d->br, &len, &in, &avail_out, &next_out, NULL);
		if (br == BROTLI_DECODER_RESULT_ERROR)
			return ICAP_DECODE_CORRUPT;
		if ((rc = icap_emit(d, sizeof(d->buf) - avail_out)) != 0)
			return rc;
		if (br == BROTLI_DECODER_RESULT_SUCCESS) {
			d->ended = 1;
			return len > 0 ? ICAP_DECODE_CORRUPT : 0;
		}
	} while (br == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT || len > 0);
	return 0;
}

int
icap_decode_feed(struct icap_decode *d, const void *in, size_t len)
{
	const unsigned char *p = in;

	if (d->failed || len == 0)
		return d->failed;
	if (d->coding == ICAP_CODING_BR) {
		d->failed = icap_feed_br(d, p, len);
		return d->failed;
	}
	if (!d->started && (d->failed = icap_zlib_start(d, p, len)) != 0)
		return d->failed;
	d->failed = icap_feed_zlib(d, p, len);
	return d->failed;
}

int
icap_decode_end(struct icap_decode *d)
{
	if (d->failed)
		return d->failed;
	if (!d->ended && (d->started || d->br != NULL))
		d->failed = ICAP_DECODE_CORRUPT;
	if (!d->started && d->br == NULL)
		d->failed = ICAP_DECODE_CORRUPT;	/* deflate with no byte at all */
	return d->failed;
}

uint64_t
icap_decode_out(const struct icap_decode *d)
{
	return d->out;
}

void
icap_decode_set_max(struct icap_decode *d, uint64_t max_out)
{
	d->max_out = max_out;
}
