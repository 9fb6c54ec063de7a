/* icap_reply.h -- ICAP answers: OPTIONS, errors, 204, the echo of a clean message, the 403 page of
 * an infected one (with X-Infection-Found and X-Violations-Found), and the ISTag.
 * Functions returning int return 0 when the answer was sent whole, -1 when the socket failed. */
#ifndef CLAMREST_ICAP_REPLY_H
#define CLAMREST_ICAP_REPLY_H

#include <stddef.h>

#include "icap_parse.h"

#define ICAP_ISTAG_MAX 40	/* bytes of an ISTag with its quotes */
#define ICAP_OPTIONS_TTL 3600	/* seconds a client may keep our OPTIONS */

struct scanner;
struct body;

/* The ISTag: "CR-<daily version>-<signatures>", so it changes with the signatures. */
void icap_istag(struct scanner *sc, char out[ICAP_ISTAG_MAX]);

/* Sends all of buf (MSG_NOSIGNAL). */
int icap_send(int fd, const void *buf, size_t len);

int icap_reply_options(int fd, const char *service, const char *istag, unsigned preview,
    unsigned max_connections);
/* A status without a message (400, 404, 405, 500, 503, 505), Connection: close when close. */
int icap_reply_status(int fd, int status, const char *istag, int close, unsigned retry_after);
/* 204: the message is unmodified; marker (may be NULL) is an extra header line without CRLF. */
int icap_reply_204(int fd, const char *istag, const char *marker);
/* 200 with the message as it came: the encapsulated headers hdr (hdr_len bytes, per r's
 * Encapsulated) and the body b (NULL: none), chunked again. */
int icap_reply_echo(int fd, const char *istag, const struct icap_req *r, const char *hdr,
    const struct body *b);
/* The 403 page: tmpl (NULL: ours) with every {threat} replaced by threat, HTML-escaped. Caller
 * frees; NULL when out of memory. */
char *icap_page(const char *tmpl, const char *threat, size_t *len);
/* 200 with an HTTP 403 and page: threat in X-Infection-Found and X-Violations-Found. */
int icap_reply_block(int fd, const char *istag, const char *threat, const char *page, size_t plen);

#endif
