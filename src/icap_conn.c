/* icap_conn.c -- one ICAP connection's requests: the head, the encapsulated headers, the chunked
 * body (with its preview and 100 Continue) into the upload model, the scan on the shared pool, the
 * answer, the access-log line. */
#include "icap_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "body.h"
#include "config.h"
#include "filepolicy.h"
#include "guard.h"
#include "icap_decode.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "scanner.h"
#include "upload.h"
#include "util.h"

#define ICAP_POLL_MS	 250		/* ms between looks at the drain flag while reading */
#define ICAP_EXPAND_MIN	 (64ULL << 20)	/* bytes a decoded body may reach whatever its size */
#define ICAP_CLOSED	 (-2)		/* the connection ended (or was cut) */
#define ICAP_MALFORMED	 (-1)		/* answer 400 and close */

/* Why a body is not scanned whole: the names the answer and the log give. */
#define ICAP_UNSCANNED_SIZE	"Heuristics.Limits.Exceeded.MaxContentLength"
#define ICAP_UNSCANNED_CODING	"Heuristics.Unscanned.ContentEncoding"
#define ICAP_UNSCANNED_EXPAND	"Heuristics.Limits.Exceeded.MaxExpansion"

struct icap_conn *
icap_conn_new(struct icap *ic, int fd, const struct sockaddr_storage *ss)
{
	struct icap_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ic = ic;
	c->fd = fd;
	if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, c->ip, sizeof(c->ip));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, c->ip, sizeof(c->ip));
	pthread_mutex_init(&c->m, NULL);
	pthread_cond_init(&c->cv, NULL);
	return c;
}

/* Forgets the request in progress: its bodies go back to the budgets. */
static void
icap_request_end(struct icap_conn *c)
{
	upload_free(c->raw);
	upload_free(c->dec);
	icap_decode_free(c->decoder);
	c->raw = c->dec = NULL;
	c->decoder = NULL;
	c->unscanned = NULL;
	c->store_failed = 0;
	c->body_bytes = 0;
}

void
icap_conn_free(struct icap_conn *c)
{
	icap_request_end(c);
	pthread_mutex_destroy(&c->m);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* More bytes into buf: > 0 read, 0 when the connection ended (or, idle, the service drains). */
static int
icap_fill(struct icap_conn *c, int idle)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf))
		return 0;
	for (;;) {
		if (atomic_load(&c->ic->stop) || (idle && c->len == 0 && atomic_load(&c->ic->draining)))
			return 0;
		if (poll(&p, 1, ICAP_POLL_MS) == 0)
			continue;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		c->len += (size_t)n;
		return 1;
	}
}

/* Counts n bytes of the message past its ICAP head against the guard's rate rule. */
static int
icap_count(struct icap_conn *c, size_t n)
{
	return guard_body(c->gc, n) == 0 ? 0 : ICAP_CLOSED;
}

/* The encapsulated HTTP headers into c->hdr. */
static int
icap_read_hdrs(struct icap_conn *c)
{
	size_t got = 0, n, want = c->req.hdr_len;

	while (got < want) {
		if (c->off == c->len && icap_fill(c, 0) <= 0)
			return ICAP_CLOSED;
		n = c->len - c->off < want - got ? c->len - c->off : want - got;
		memcpy(c->hdr + got, c->buf + c->off, n);
		c->off += n;
		got += n;
		if (icap_count(c, n) != 0)
			return ICAP_CLOSED;
	}
	return icap_check_sections(&c->req, c->hdr, want) == 0 ? 0 : ICAP_MALFORMED;
}

/* Appends to the decoded body (the decoder's sink). */
static int
icap_dec_sink(void *arg, const void *data, size_t len)
{
	struct icap_conn *c = arg;

	if (upload_append(c->dec, data, len) != 0) {
		c->store_failed = 1;
		return -1;
	}
	return 0;
}

/* n body bytes: into the raw body and through the decoder, within MAX_CONTENT_LENGTH. */
static int
icap_body_data(struct icap_conn *c, const char *p, size_t n)
{
	const struct config *cfg = c->ic->cfg;
	uint64_t cap;
	int rc;

	if (icap_count(c, n) != 0)
		return ICAP_CLOSED;
	c->body_bytes += n;
	if (c->unscanned != NULL || c->store_failed)
		return 0;	/* read and dropped: the answer is decided already */
	if (c->body_bytes > cfg->max_content_length) {
		c->unscanned = ICAP_UNSCANNED_SIZE;
		return 0;
	}
	if (upload_append(c->raw, p, n) != 0) {
		c->store_failed = 1;
		return 0;
	}
	if (c->decoder == NULL)
		return 0;
	cap = cfg->max_expansion == 0 ? cfg->max_scan_size : (uint64_t)cfg->max_expansion * c->body_bytes;
	cap = cap < ICAP_EXPAND_MIN ? ICAP_EXPAND_MIN : cap;
	icap_decode_set_max(c->decoder, cap < cfg->max_file_size ? cap : cfg->max_file_size);
	rc = icap_decode_feed(c->decoder, p, n);
	if (rc == ICAP_DECODE_LIMIT)
		c->unscanned = ICAP_UNSCANNED_EXPAND;
	else if (rc == ICAP_DECODE_CORRUPT)
		c->unscanned = ICAP_UNSCANNED_CODING;
	return 0;
}

/* A chunk's data (size bytes) and its CRLF. */
static int
icap_chunk_data(struct icap_conn *c, uint64_t size)
{
	size_t n;

	while (size > 0) {
		if (c->off == c->len && icap_fill(c, 0) <= 0)
			return ICAP_CLOSED;
		n = c->len - c->off < size ? c->len - c->off : (size_t)size;
		if (icap_body_data(c, c->buf + c->off, n) != 0)
			return ICAP_CLOSED;
		c->off += n;
		size -= n;
	}
	while (c->len - c->off < 2)
		if (icap_fill(c, 0) <= 0)
			return ICAP_CLOSED;
	if (memcmp(c->buf + c->off, "\r\n", 2) != 0)
		return ICAP_MALFORMED;	/* the chunk was longer than its size said */
	c->off += 2;
	return icap_count(c, 2);
}

/* Chunks up to the last one: at most limit body bytes (-1: any), *ieof from the last chunk. */
static int
icap_read_chunks(struct icap_conn *c, long limit, int *ieof)
{
	uint64_t size, seen = 0;
	size_t used;
	int rc;

	for (;;) {
		while ((rc = icap_chunk_line(c->buf + c->off, c->len - c->off, &size, ieof, &used)) == 0)
			if (icap_fill(c, 0) <= 0)
				return ICAP_CLOSED;
		if (rc < 0 || (limit >= 0 && (seen += size) > (uint64_t)limit))
			return ICAP_MALFORMED;
		c->off += used;
		if (icap_count(c, used) != 0)
			return ICAP_CLOSED;
		if (size == 0)
			break;
		if ((rc = icap_chunk_data(c, size)) != 0)
			return rc;
	}
	/* The last chunk: no trailers, its blank line. */
	while (c->len - c->off < 2)
		if (icap_fill(c, 0) <= 0)
			return ICAP_CLOSED;
	if (memcmp(c->buf + c->off, "\r\n", 2) != 0)
		return ICAP_MALFORMED;
	c->off += 2;
	return icap_count(c, 2);
}

/* The stores of the body: as it comes, and decoded when its Content-Encoding asks. */
static int
icap_prepare_body(struct icap_conn *c)
{
	const struct config *cfg = c->ic->cfg;
	const struct icap_encap *e = &c->req.encap;
	long sec = c->req.method == ICAP_RESPMOD ? e->res_hdr : e->req_hdr;
	enum icap_coding coding = ICAP_CODING_NONE;
	const char *v;
	size_t vlen;

	if (sec >= 0 && (v = icap_http_header(c->hdr + sec, c->req.hdr_len - (size_t)sec,
	    "Content-Encoding", &vlen)) != NULL)
		coding = icap_coding_of(v, vlen);
	if ((c->raw = upload_new(1, cfg->spill_threshold, cfg->tmpdir, UPLOAD_SCAN_VERDICT)) == NULL ||
	    upload_begin(c->raw, NULL, 0, "icap", 4) != 0)
		return -1;
	upload_set_protocol(c->raw, METRICS_ICAP);
	if (!c->req.allow204)
		upload_keep(c->raw);	/* a clean message is sent back: it must outlive its scan */
	if (coding == ICAP_CODING_UNKNOWN)
		c->unscanned = ICAP_UNSCANNED_CODING;
	if (coding == ICAP_CODING_NONE || coding == ICAP_CODING_UNKNOWN)
		return 0;
	if ((c->dec = upload_new(1, cfg->spill_threshold, cfg->tmpdir, UPLOAD_SCAN_VERDICT)) == NULL)
		return -1;
	upload_set_protocol(c->dec, METRICS_ICAP);
	if (upload_begin(c->dec, NULL, 0, "icap-decoded", 12) != 0 ||
	    (c->decoder = icap_decode_new(coding, ICAP_EXPAND_MIN, icap_dec_sink, c)) == NULL)
		return -1;
	return 0;
}

/* The body: the preview, 100 Continue unless it was all, the rest. */
static int
icap_read_body(struct icap_conn *c)
{
	int ieof = 0, rc;

	if (c->req.preview >= 0) {
		if ((rc = icap_read_chunks(c, c->req.preview, &ieof)) != 0)
			return rc;
		if (ieof)
			goto done;
		if (icap_send(c->fd, "ICAP/1.0 100 Continue\r\n\r\n", 25) != 0)
			return ICAP_CLOSED;
	}
	if ((rc = icap_read_chunks(c, -1, &ieof)) != 0)
		return rc;
done:
	if (c->decoder != NULL && c->unscanned == NULL && c->body_bytes > 0) {
		rc = icap_decode_end(c->decoder);
		if (rc == ICAP_DECODE_CORRUPT)
			c->unscanned = ICAP_UNSCANNED_CODING;
		else if (rc == ICAP_DECODE_LIMIT)
			c->unscanned = ICAP_UNSCANNED_EXPAND;
	}
	guard_body_end(c->gc);
	return 0;
}

static unsigned long
icap_key(const struct icap_conn *c)
{
	unsigned long h = 14695981039346656037UL;	/* FNV-1a of the client address */

	for (const char *p = c->ip; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211UL;
	return h;
}

static void
icap_scan_job(void *arg)
{
	struct icap_conn *c = arg;
	struct scanner *sc = c->ic->scanner;
	double max = c->ic->cfg->max_scan_time / 1000.0;

	while (upload_scan_next(c->raw, sc, max) > 0)
		;
	if (c->dec != NULL)
		while (upload_scan_next(c->dec, sc, max) > 0)
			;
}

static void
icap_scan_signal(struct icap_conn *c, int state)
{
	pthread_mutex_lock(&c->m);
	c->scan_state = state;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->m);
}

static void
icap_scan_done(void *arg)
{
	icap_scan_signal(arg, 1);
}

static void
icap_scan_expired(void *arg)
{
	icap_scan_signal(arg, 2);
}

/* The body scanned on a pool thread: 0, or -1 when no thread took it in time (503). */
static int
icap_scan(struct icap_conn *c)
{
	int state;

	c->scan_state = 0;
	if (atomic_load(&c->ic->stop) || pool_submit_keyed(c->ic->pool, icap_scan_job, icap_scan_done,
	    icap_scan_expired, c, icap_key(c)) != 0)
		return -1;
	pthread_mutex_lock(&c->m);
	while (c->scan_state == 0)
		pthread_cond_wait(&c->cv, &c->m);
	state = c->scan_state;
	pthread_mutex_unlock(&c->m);
	return state == 1 ? 0 : -1;
}

/* What the answer said, for the log. */
struct icap_outcome {
	int status;
	const char *verdict, *signature, *error;
};

/* The malware found in u, else NULL. */
static const char *
icap_threat(const struct upload *u)
{
	const struct scan_result *r;

	if (u == NULL || upload_count(u) == 0)
		return NULL;
	r = upload_result(u, 0);
	return r->verdict == SCAN_MALWARE ? r->reason : NULL;
}

/* The upload policy's block of u's body (a clean file of a kind the policy refuses), else NULL. */
static const char *
icap_policy_block(const struct upload *u)
{
	const struct filepolicy_verdict *v;

	if (u == NULL || upload_count(u) == 0 || (v = upload_blocked(u, 0)) == NULL)
		return NULL;
	return v->reason;
}

/* The 403 page for threat. */
static int
icap_block(struct icap_conn *c, const char *threat, struct icap_outcome *o)
{
	size_t plen;
	char *page = icap_page(c->ic->page, threat, &plen);
	int rc;

	if (page == NULL) {
		o->status = 500;
		o->error = "out of memory writing the block page";
		(void)icap_reply_status(c->fd, 500, c->istag, 1, 0);
		return -1;	/* an error answer closes the connection */
	}
	o->status = 200;
	o->signature = threat;
	rc = icap_reply_block(c->fd, c->istag, threat, page, plen);
	free(page);
	return rc;
}

/* A body that could not be scanned whole: ICAP_OVERSIZE says block, or pass with a marker. */
static int
icap_unscanned(struct icap_conn *c, struct icap_outcome *o)
{
	char marker[256];

	o->verdict = "not_scanned";
	o->error = c->unscanned;
	if (strcmp(c->ic->cfg->icap_oversize, "pass") != 0 || !c->req.allow204)
		return icap_block(c, c->unscanned, o);
	snprintf(marker, sizeof(marker), "X-Infection-Found: Type=2; Resolution=1; Threat=%s;\r\n"
	    "X-Clamrest-Not-Scanned: %s", c->unscanned, c->unscanned);
	o->status = 204;
	return icap_reply_204(c->fd, c->istag, marker);
}

/* Scans the body (when it can be) and answers. 0 to go on with the connection, -1 to close. */
static int
icap_answer(struct icap_conn *c, struct icap_outcome *o)
{
	const char *threat, *err;
	unsigned retry = 0;

	if (c->store_failed || (c->unscanned == NULL && icap_scan(c) != 0) ||
	    upload_unavailable(c->raw, &retry) || (c->dec != NULL && upload_unavailable(c->dec, &retry))) {
		o->status = 503;
		o->error = c->store_failed ? "the body store is full (BODY_DISK) or TMPDIR failed" :
		    "no scan thread could take the body in time, or the engine is reloading";
		if (c->store_failed)
			metrics_store_failure(METRICS_ICAP);
		else
			metrics_shed(METRICS_ICAP);
		(void)icap_reply_status(c->fd, 503, c->istag, 1, retry > 0 ? retry : 1);
		return -1;	/* an error answer closes the connection */
	}
	if ((threat = icap_threat(c->raw)) == NULL)
		threat = icap_threat(c->dec);
	if (threat != NULL) {
		o->verdict = "malware";
		return icap_block(c, threat, o);
	}
	if (c->unscanned != NULL)
		return icap_unscanned(c, o);
	if ((err = upload_error(c->raw)) != NULL || (c->dec != NULL && (err = upload_error(c->dec)) != NULL)) {
		o->status = 500;
		o->verdict = "error";
		o->error = err;
		(void)icap_reply_status(c->fd, 500, c->istag, 1, 0);
		return -1;	/* an error answer closes the connection */
	}
	/* The upload policy (ALLOW_TYPES, DENY_TYPES, ...; no user here: the global one) judges what
	 * passes through ICAP as it judges uploads: a refused kind gets the block page and its name. */
	if ((threat = icap_policy_block(c->raw)) != NULL ||
	    (threat = icap_policy_block(c->dec)) != NULL) {
		o->verdict = "blocked";
		return icap_block(c, threat, o);
	}
	o->verdict = "clean";
	if (c->req.allow204) {
		o->status = 204;
		return icap_reply_204(c->fd, c->istag, NULL);
	}
	o->status = 200;
	return icap_reply_echo(c->fd, c->istag, &c->req, c->hdr, upload_body(c->raw, 0));
}

static const char *
icap_method_name(enum icap_method m)
{
	return m == ICAP_OPTIONS ? "OPTIONS" : m == ICAP_REQMOD ? "REQMOD" : m == ICAP_RESPMOD ?
	    "RESPMOD" : "-";
}

static void
icap_log(struct icap_conn *c, const struct icap_outcome *o)
{
	char path[ICAP_SERVICE_MAX + 1];
	struct log_access a = {
		.method = icap_method_name(c->req.method), .path = path, .status = o->status,
		.post = c->req.method != ICAP_OPTIONS, .duration = util_now() - c->t0,
		.source_ip = c->ip, .body_bytes = (long long)c->body_bytes, .verdict = o->verdict,
		.signature = o->signature, .error = o->error, .protocol = "icap", .istag = c->istag,
		.client_ip = c->req.client_ip[0] != '\0' ? c->req.client_ip : NULL,
	};

	snprintf(path, sizeof(path), "/%s", c->req.service);
	log_access(&a);
	if (o->verdict != NULL)
		metrics_icap_verdict(o->verdict);
	metrics_icap_request(c->req.method == ICAP_OPTIONS ? METRICS_ICAP_OPTIONS :
	    c->req.method == ICAP_REQMOD ? METRICS_ICAP_REQMOD : c->req.method == ICAP_RESPMOD ?
	    METRICS_ICAP_RESPMOD : METRICS_ICAP_OTHER, (unsigned)o->status, a.duration, c->body_bytes);
}

/* The head of the next request: 1 when in (hlen set), 0 when the connection ended, -1 when too
 * long. */
static int
icap_read_head(struct icap_conn *c, size_t *hlen)
{
	long end;

	while ((end = icap_head_end(c->buf + c->off, c->len - c->off)) == 0)
		if (icap_fill(c, 1) <= 0)
			return 0;
	if (end < 0)
		return -1;
	*hlen = (size_t)end;
	return 1;
}

/* The request from its head to its body read: 0, or the status to answer before closing (or
 * ICAP_CLOSED). */
static int
icap_take_request(struct icap_conn *c, size_t hlen)
{
	int status, rc;

	if (icap_parse_head(c->buf + c->off, hlen, &c->req, &status) < 0)
		return status;
	c->off += hlen;
	if (!icap_service_known(c->req.service))
		return 404;
	if (c->req.method == ICAP_OPTIONS)
		return 0;
	if (!scanner_ready(c->ic->scanner) || scanner_reloading(c->ic->scanner))
		return 503;
	guard_body_begin(c->gc);
	if ((rc = icap_read_hdrs(c)) != 0)
		return rc == ICAP_MALFORMED ? 400 : rc;
	if (icap_prepare_body(c) != 0)
		return 500;
	if (c->req.encap.body < 0) {
		guard_body_end(c->gc);
		return 0;
	}
	rc = icap_read_body(c);
	return rc == ICAP_MALFORMED ? 400 : rc;
}

int
icap_serve(struct icap_conn *c)
{
	struct icap_outcome o = { 0 };
	size_t hlen;
	int rc, keep;

	if ((rc = icap_read_head(c, &hlen)) == 0)
		return -1;
	c->t0 = util_now();
	guard_request(c->gc);
	memset(&c->req, 0, sizeof(c->req));
	icap_istag(c->ic->scanner, c->istag);
	rc = rc < 0 ? 400 : icap_take_request(c, hlen);
	if (rc == ICAP_CLOSED) {
		o.status = 499;
		o.error = "the client closed the connection (or it was cut) before the request was whole";
		keep = -1;
	} else if (rc != 0) {
		o.status = rc;
		o.error = rc == 503 ? "the signature database is not loaded (DB_WAIT) or is reloading" :
		    "malformed or refused ICAP request";
		icap_reply_status(c->fd, rc, c->istag, 1, rc == 503 ? 1 : 0);
		keep = -1;
	} else if (c->req.method == ICAP_OPTIONS) {
		o.status = 200;
		keep = icap_reply_options(c->fd, c->req.service, c->istag, c->ic->cfg->icap_preview,
		    c->ic->cfg->max_connections);
	} else {
		keep = icap_answer(c, &o);
	}
	icap_log(c, &o);
	icap_request_end(c);
	guard_idle(c->gc);
	return keep != 0 || c->req.close ? -1 : 0;
}
