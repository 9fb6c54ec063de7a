/* icap_decode.h -- the Content-Encoding of an encapsulated HTTP body (gzip, deflate, br) undone as
 * the body streams in, so libclamav sees the file a browser would save; the output is bounded (the
 * same expansion limit as archives). zlib and libbrotli. */
#ifndef CLAMREST_ICAP_DECODE_H
#define CLAMREST_ICAP_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum icap_coding { ICAP_CODING_NONE, ICAP_CODING_GZIP, ICAP_CODING_DEFLATE, ICAP_CODING_BR,
	ICAP_CODING_UNKNOWN };

#define ICAP_DECODE_CORRUPT (-1)	/* the stream is not valid in its coding */
#define ICAP_DECODE_LIMIT   (-2)	/* the output passed its cap */
#define ICAP_DECODE_SINK    (-3)	/* the sink refused bytes */

/* The coding a Content-Encoding value names ("identity" and "" are NONE; a list of more than one,
 * or a coding we do not know, is UNKNOWN). */
enum icap_coding icap_coding_of(const char *v, size_t len);
const char *icap_coding_name(enum icap_coding c);

/* Where decoded bytes go: 0 to go on, else the feed stops with ICAP_DECODE_SINK. */
typedef int (*icap_sink)(void *arg, const void *data, size_t len);

struct icap_decode;
/* A decoder of c (GZIP, DEFLATE or BR) writing at most max_out bytes to sink; NULL when out of
 * memory. */
struct icap_decode *icap_decode_new(enum icap_coding c, uint64_t max_out, icap_sink sink, void *arg);
void icap_decode_free(struct icap_decode *d);
/* 0, or one of ICAP_DECODE_* (the decoder is then done: later feeds answer the same). */
int icap_decode_feed(struct icap_decode *d, const void *in, size_t len);
/* The input is over: 0 when the stream ended where it should, ICAP_DECODE_CORRUPT when it was cut
 * short, or the feed's earlier failure. */
int icap_decode_end(struct icap_decode *d);
/* Changes the cap on the output (it grows with the input: MAX_EXPANSION bytes per byte). */
void icap_decode_set_max(struct icap_decode *d, uint64_t max_out);
uint64_t icap_decode_out(const struct icap_decode *d);	/* bytes written to the sink */

#endif
