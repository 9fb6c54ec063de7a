/* icap_reply.c -- ICAP answers written to the socket: OPTIONS, errors, 204, echo, the block page. */
#include "icap_reply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "body.h"
#include "config.h"
#include "scanner.h"

#define ICAP_SERVER "clamrest/" CONFIG_VERSION
#define ICAP_COPY_BUF 65536	/* bytes of a spilled body read per chunk of the echo */

static const char icap_default_page[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Blocked: malware</title></head>\n"
    "<body><h1>This content was blocked</h1>\n"
    "<p>The file you asked for carries malware and was not delivered.</p>\n"
    "<p>Threat: <code>{threat}</code></p>\n<p><small>clamrest</small></p></body></html>\n";

void
icap_istag(struct scanner *sc, char out[ICAP_ISTAG_MAX])
{
	struct scanner_stats st = { .db_version = -1 };

	if (sc != NULL && scanner_ready(sc))
		scanner_stats(sc, &st);
	snprintf(out, ICAP_ISTAG_MAX, "\"CR-%ld-%u\"", st.db_version, st.signatures);
}

int
icap_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
icap_reply_options(int fd, const char *service, const char *istag, unsigned preview,
    unsigned max_connections)
{
	char buf[1024];
	int n;

	n = snprintf(buf, sizeof(buf), "ICAP/1.0 200 OK\r\n"
	    "Methods: RESPMOD, REQMOD\r\n"
	    "Service: clamrest ICAP antivirus (%s)\r\n"
	    "ISTag: %s\r\n"
	    "Server: " ICAP_SERVER "\r\n"
	    "Max-Connections: %u\r\n"
	    "Options-TTL: %u\r\n"
	    "Allow: 204\r\n"
	    "Preview: %u\r\n"
	    "Transfer-Preview: *\r\n"
	    "X-Include: X-Client-IP\r\n"
	    "Encapsulated: null-body=0\r\n\r\n",
	    service, istag, max_connections, ICAP_OPTIONS_TTL, preview);
	return icap_send(fd, buf, (size_t)n);
}

static const char *
icap_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "ICAP Service Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Request Entity Too Large";
	case 503: return "Service Unavailable";
	case 505: return "ICAP Version Not Supported";
	default: return "Server Error";
	}
}

int
icap_reply_status(int fd, int status, const char *istag, int close, unsigned retry_after)
{
	char buf[512], retry[64] = "";
	int n;

	if (retry_after > 0)
		snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", retry_after);
	n = snprintf(buf, sizeof(buf), "ICAP/1.0 %d %s\r\nServer: " ICAP_SERVER "\r\nISTag: %s\r\n"
	    "%s%sEncapsulated: null-body=0\r\n\r\n", status, icap_reason(status), istag, retry,
	    close ? "Connection: close\r\n" : "");
	return icap_send(fd, buf, (size_t)n);
}

int
icap_reply_204(int fd, const char *istag, const char *marker)
{
	char buf[768];
	int n;

	n = snprintf(buf, sizeof(buf), "ICAP/1.0 204 No Content\r\nServer: " ICAP_SERVER "\r\n"
	    "ISTag: %s\r\n%.400s%sEncapsulated: null-body=0\r\n\r\n", istag,
	    marker != NULL ? marker : "", marker != NULL ? "\r\n" : "");
	return icap_send(fd, buf, (size_t)n);
}

/* The body b as chunks, then the last chunk. */
static int
icap_send_chunked(int fd, const struct body *b)
{
	char line[32], *buf;
	const void *mem;
	size_t len;
	uint64_t off = 0, size = body_size(b);
	ssize_t n;
	int rc = 0;

	if ((mem = body_mem(b, &len)) != NULL) {
		n = snprintf(line, sizeof(line), "%zx\r\n", len);
		if (len > 0 && (icap_send(fd, line, (size_t)n) != 0 || icap_send(fd, mem, len) != 0 ||
		    icap_send(fd, "\r\n", 2) != 0))
			return -1;
		return icap_send(fd, "0\r\n\r\n", 5);
	}
	if ((buf = malloc(ICAP_COPY_BUF)) == NULL)
		return -1;
	while (rc == 0 && off < size) {
		n = pread(body_fd(b), buf, ICAP_COPY_BUF, (off_t)off);
		if (n <= 0) {
			rc = -1;
			break;
		}
		len = (size_t)snprintf(line, sizeof(line), "%zx\r\n", (size_t)n);
		rc = icap_send(fd, line, len) || icap_send(fd, buf, (size_t)n) || icap_send(fd, "\r\n", 2);
		off += (uint64_t)n;
	}
	free(buf);
	return rc == 0 ? icap_send(fd, "0\r\n\r\n", 5) : -1;
}

int
icap_reply_echo(int fd, const char *istag, const struct icap_req *r, const char *hdr,
    const struct body *b)
{
	const struct icap_encap *e = &r->encap;
	char head[512], encap[128];
	const char *sec = hdr;
	size_t seclen = r->hdr_len;
	int n, hasbody = e->body >= 0 && b != NULL;
	const char *kind = r->method == ICAP_REQMOD ? "req" : "res";

	/* RESPMOD answers with the response only; REQMOD with the request. */
	if (r->method == ICAP_RESPMOD && e->res_hdr >= 0) {
		sec = hdr + e->res_hdr;
		seclen = r->hdr_len - (size_t)e->res_hdr;
	} else if (r->method == ICAP_RESPMOD) {
		seclen = 0;
	}
	if (seclen > 0)
		snprintf(encap, sizeof(encap), "%s-hdr=0, %s=%zu", kind, hasbody ? (r->method ==
		    ICAP_REQMOD ? "req-body" : "res-body") : "null-body", seclen);
	else
		snprintf(encap, sizeof(encap), "%s=0", hasbody ? (r->method == ICAP_REQMOD ?
		    "req-body" : "res-body") : "null-body");
	n = snprintf(head, sizeof(head), "ICAP/1.0 200 OK\r\nServer: " ICAP_SERVER "\r\nISTag: %s\r\n"
	    "Encapsulated: %s\r\n\r\n", istag, encap);
	if (icap_send(fd, head, (size_t)n) != 0 || (seclen > 0 && icap_send(fd, sec, seclen) != 0))
		return -1;
	return hasbody ? icap_send_chunked(fd, b) : 0;
}

char *
icap_page(const char *tmpl, const char *threat, size_t *len)
{
	const char *t = tmpl != NULL ? tmpl : icap_default_page, *p;
	size_t cap = strlen(t) + 1, n = 0;
	char *out;

	for (p = t; (p = strstr(p, "{threat}")) != NULL; p += 8)
		cap += strlen(threat) * 6;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	while (*t != '\0') {
		if (strncmp(t, "{threat}", 8) != 0) {
			out[n++] = *t++;
			continue;
		}
		for (const char *s = threat; *s != '\0'; s++) {
			const char *esc = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" :
			    *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;

			if (esc != NULL) {
				memcpy(out + n, esc, strlen(esc));
				n += strlen(esc);
			} else {
				out[n++] = *s;
			}
		}
		t += 8;
	}
	out[n] = '\0';
	*len = n;
	return out;
}

/* A signature name as a header value: printable ASCII without ';' (X-Infection-Found's
 * separator), at most 200 bytes. */
static void
icap_header_safe(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *in != '\0' && n + 1 < outlen && n < 200; in++)
		out[n++] = (*in > 0x20 && *in < 0x7f && *in != ';') ? *in : '_';
	out[n] = '\0';
}

int
icap_reply_block(int fd, const char *istag, const char *threat, const char *page, size_t plen)
{
	char http[256], head[1024], name[256], chunk[32];
	int hn, n, cn;

	icap_header_safe(threat, name, sizeof(name));
	hn = snprintf(http, sizeof(http), "HTTP/1.1 403 Forbidden\r\n"
	    "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\nX-Infection-Found: Type=0; Resolution=2; Threat=%s;\r\n"
	    "Connection: close\r\n\r\n", plen, name);
	if (hn < 0 || (size_t)hn >= sizeof(http))
		hn = snprintf(http, sizeof(http), "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html; "
		    "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", plen);
	n = snprintf(head, sizeof(head), "ICAP/1.0 200 OK\r\nServer: " ICAP_SERVER "\r\nISTag: %s\r\n"
	    "X-Infection-Found: Type=0; Resolution=2; Threat=%s;\r\n"
	    "X-Violations-Found: 1\r\n\t-\r\n\t%s\r\n\t0\r\n\t2\r\n"
	    "Encapsulated: res-hdr=0, res-body=%d\r\n\r\n", istag, name, name, hn);
	cn = snprintf(chunk, sizeof(chunk), "%zx\r\n", plen);
	if (icap_send(fd, head, (size_t)n) != 0 || icap_send(fd, http, (size_t)hn) != 0 ||
	    icap_send(fd, chunk, (size_t)cn) != 0 || icap_send(fd, page, plen) != 0)
		return -1;
	return icap_send(fd, "\r\n0\r\n\r\n", 7);
}
