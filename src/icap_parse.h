/* icap_parse.h -- the ICAP request parser (RFC 3507): the request head, its Encapsulated list, the
 * encapsulated HTTP headers and the chunk lines of the encapsulated body. Pure: bytes in, a parse
 * out, no I/O and no allocation, so it is fuzzed (fuzz/fuzz_icap.c).
 * Functions returning int return 1 when done, 0 when more bytes are needed, -1 on a malformed
 * input (the caller answers 400 and closes), unless said otherwise. */
#ifndef CLAMREST_ICAP_PARSE_H
#define CLAMREST_ICAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define ICAP_HEAD_MAX	 16384	/* bytes of an ICAP request head, and of its encapsulated headers */
#define ICAP_CHUNK_LINE_MAX 256	/* bytes of a chunk-size line with its extensions */
#define ICAP_SERVICE_MAX 64	/* bytes of a service name */
#define ICAP_IP_MAX	 64	/* bytes of X-Client-IP kept */

enum icap_method { ICAP_OPTIONS, ICAP_REQMOD, ICAP_RESPMOD, ICAP_OTHER };

/* The Encapsulated header: each section's offset in the encapsulated part, -1 when absent. */
struct icap_encap {
	long req_hdr, res_hdr;
	long body;		/* req-body or res-body: where the chunked body starts */
	long null_body;		/* null-body: no body, headers end here */
	int opt_body;		/* opt-body (OPTIONS): refused */
};

struct icap_req {
	enum icap_method method;
	char service[ICAP_SERVICE_MAX];	/* the path's first segment, without '/' or query */
	long preview;			/* Preview: bytes; -1 when not a preview */
	int allow204;			/* Allow: carries 204 */
	int close;			/* Connection: close */
	int has_encap;
	struct icap_encap encap;
	char client_ip[ICAP_IP_MAX];	/* X-Client-IP, "" when not sent */
	size_t hdr_len;			/* bytes of encapsulated headers before the body (or null-body) */
};

/* The head ends at the first CRLFCRLF of buf: its length with the blank line, 0 when not in yet
 * (-1 when buf holds ICAP_HEAD_MAX bytes without one). */
long icap_head_end(const char *buf, size_t len);

/* Parses a whole head (len from icap_head_end) into r. -1 with *status the ICAP status to answer
 * (400, 404 is left to the caller, 405 for an unknown method, 505 for another version). */
int icap_parse_head(const char *buf, size_t len, struct icap_req *r, int *status);

/* Parses an Encapsulated value: offsets ascending from 0, at most one header of each kind, exactly
 * one of req-body, res-body, null-body, opt-body and it last, in the order RFC 3507 4.4.1 lists.
 * 0 on success, -1 when malformed. */
int icap_parse_encap(const char *val, size_t len, struct icap_encap *e);

/* Checks the encapsulated headers hdr (hdr_len bytes): each section present ends with its blank
 * line exactly at the next section's offset, and starts with an HTTP request or status line.
 * 0 on success, -1 when not. */
int icap_check_sections(const struct icap_req *r, const char *hdr, size_t hdr_len);

/* The value of HTTP header name (case-insensitive) in an encapsulated header section (a request
 * or status line, then headers, then CRLFCRLF): pointer into sec and *vlen, NULL when absent. */
const char *icap_http_header(const char *sec, size_t len, const char *name, size_t *vlen);

/* One chunk-size line at buf: 1 with *size, *ieof (the "ieof" extension) and *used (the line
 * with its CRLF); 0 when the line is not all in; -1 when malformed or longer than
 * ICAP_CHUNK_LINE_MAX. */
int icap_chunk_line(const char *buf, size_t len, uint64_t *size, int *ieof, size_t *used);

/* The service names we answer: /avscan, /srv_clamav, /virus_scan, /squidclamav. 1 when known. */
int icap_service_known(const char *name);

#endif
