/* framing.h -- is a request's body length unambiguous? Requests that two parties could frame
 * differently (request smuggling) are refused; libmicrohttpd 0.9.75 accepts them. */
#ifndef CLAMREST_FRAMING_H
#define CLAMREST_FRAMING_H

#include <stdint.h>

struct framing {
	unsigned content_length;	/* Content-Length headers seen */
	unsigned transfer_encoding;	/* Transfer-Encoding headers seen */
	int te_chunked;			/* the last Transfer-Encoding was exactly "chunked" */
	int cl_valid;			/* every Content-Length was a plain decimal number */
	uint64_t length;		/* the last Content-Length */
	int mangled;			/* a header name that starts like a framing header but is longer */
};

/* Notes one request header (any header may be passed; others are ignored). */
void framing_header(struct framing *f, const char *key, const char *value);
/* 1 when the body length is unambiguous: at most one Content-Length (a number) or one
 * Transfer-Encoding, which must be "chunked", never both; and no header name that merely starts
 * with one of them (libmicrohttpd 0.9.75 turns the folded "Transfer-Encoding:\r\n chunked" into a
 * header named "Transfer-Encodingchunked", and then reads the request as having no body). */
int framing_ok(const struct framing *f);

#endif
