/* server_quirks.c -- libmicrohttpd 0.9.75 quirks worked around: a Content-Length or a chunked body
 * it refuses with its own page, and a long query string it cannot parse. */
#include "server_priv.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "recvtrack.h"
#include "reqid.h"
#include "util.h"
#include "v3.h"

/*
 * libmicrohttpd 0.9.75 answers some chunked bodies itself, with an HTML page and no X-Request-Id:
 * a chunk size that is not hex (400) and a chunk line longer than its read buffer (a 1 MiB chunk
 * extension: 500, "read the documentation about connection management"), and then ends the
 * request as failed. Its error log line comes first, on the connection's thread, but does not name
 * the connection; the socket that thread read last (recvtrack) does. So chunked POSTs are kept
 * by socket here, and chunk_error_answer writes our 400 to that socket and shuts its sending side,
 * as bad_length_answer does for a Content-Length: libmicrohttpd's page then fails to send.
 */
#define SERVER_CHUNKED_BUCKETS 256	/* a power of two */

static pthread_mutex_t server_chunked_lock = PTHREAD_MUTEX_INITIALIZER;
static struct request *server_chunked[SERVER_CHUNKED_BUCKETS];

void
quirks_chunked_add(struct request *r, int fd)
{
	struct request **b = &server_chunked[(unsigned)fd & (SERVER_CHUNKED_BUCKETS - 1)];

	pthread_mutex_lock(&server_chunked_lock);
	r->fd = fd;
	r->fd_next = *b;
	*b = r;
	pthread_mutex_unlock(&server_chunked_lock);
}

void
quirks_chunked_remove(struct request *r)
{
	struct request **pp;

	if (r->fd < 0)
		return;
	pthread_mutex_lock(&server_chunked_lock);
	pp = &server_chunked[(unsigned)r->fd & (SERVER_CHUNKED_BUCKETS - 1)];
	while (*pp != NULL && *pp != r)
		pp = &(*pp)->fd_next;
	if (*pp == r)
		*pp = r->fd_next;
	pthread_mutex_unlock(&server_chunked_lock);
	r->fd = -1;
}

/*
 * libmicrohttpd 0.9.75 quirk: a Content-Length it cannot read ("abc", "-1", "+3", empty) or that
 * overflows 64 bits makes its header parser queue its own 400 or 413 page, and then, overwriting
 * the connection's state, build that page's header block a second time: the client reads two
 * header blocks for one request, and our handler is never called. The one hook in between is its
 * error log line, written on the connection's own thread just before. So each thread remembers the
 * connection whose request line it read last (quirks_uri) until that head reaches our handler;
 * when the log line comes, that connection, if its head is whole and it has no answer yet (asked
 * of libmicrohttpd, so a connection whose head is still partial is never taken for another), gets
 * our one answer written straight to its socket and its sending side shut: libmicrohttpd's answer
 * then fails to send, and it closes the connection. Over TLS the socket cannot be written to raw:
 * the connection is only shut, so the client gets no answer rather than a garbled one.
 */
static _Thread_local struct MHD_Connection *server_head_conn;

/* The head of conn reached our handler: the quirk above can no longer strike it. */
void
quirks_head_parsed(struct MHD_Connection *conn)
{
	if (server_head_conn == conn)
		server_head_conn = NULL;
}

/* Our answer to a Content-Length libmicrohttpd refused, on the raw socket (see above). */
static void
bad_length_answer(struct server *srv, unsigned status)
{
	struct MHD_Connection *conn = server_head_conn;
	const union MHD_ConnectionInfo *ci;
	const char *text = status == MHD_HTTP_BAD_REQUEST ? "Bad Request" : "File Too Large";
	char out[256 + REQID_SIZE], date[64], id[REQID_SIZE];
	struct tm tm;
	time_t now;
	int n, fd;

	server_head_conn = NULL;
	if (conn == NULL ||
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE) == NULL ||
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS) != NULL ||
	    (ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD)) == NULL)
		return;
	fd = ci->connect_fd;
	metrics_request(METRICS_ROUTE_OTHER, status, guard_request_age(conn_guard(conn)));
	request_id(conn, id);
	log_set_request(id);
	log_warnx("answered %u: a Content-Length that is not a number, or too large a one", status);
	log_set_request(NULL);
	if (srv->tls_cert == NULL) {
		now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		n = snprintf(out, sizeof(out), "HTTP/1.1 %u %s\r\nDate: %s\r\nConnection: close\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\nX-Request-Id: %s\r\n"
		    "Content-Length: %zu\r\n\r\n%s", status,
		    status == MHD_HTTP_BAD_REQUEST ? "Bad Request" : "Content Too Large", date, id,
		    strlen(text), text);
		/* A fresh request's socket has nothing of ours queued: this fits its buffer. */
		if (n > 0 && (size_t)n < sizeof(out))
			(void)send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	shutdown(fd, SHUT_WR);
}

/* libmicrohttpd's pages for a chunked body it cannot read (see server_chunked). */
static int
chunk_error_message(const char *msg)
{
	return strncmp(msg, "Error processing request (HTTP response code is ", 48) == 0 &&
	    (strstr(msg, "chunked encoding was syntactically incorrect") != NULL ||
	    strstr(msg, "chunk size used in your HTTP chunked encoded request") != NULL ||
	    strstr(msg, "connection management") != NULL);
}

/* Writes r's 400 (JSON on /v3) to its socket; the request lock is held. */
static void
chunk_error_write(struct request *r, const char *why)
{
	char out[SERVER_OUT_MAX + 512], date[64], body[SERVER_OUT_MAX];
	int v3 = route_v3(r->route), n;
	struct tm tm;
	time_t now;
	size_t len;

	len = v3 ? api_json_error(body, sizeof(body), why) : (size_t)snprintf(body, sizeof(body),
	    "Bad Request: %s", why);
	if (len == 0 || len >= sizeof(body))
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(out, sizeof(out), "HTTP/1.1 400 Bad Request\r\nDate: %s\r\nConnection: close\r\n"
	    "Content-Type: %s\r\nX-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n%.*s", date,
	    v3 ? "application/json" : "text/plain; charset=utf-8", r->id, len, (int)len, body);
	/* Nothing of this request went out yet: the answer fits the socket's buffer. */
	if (n > 0 && (size_t)n < sizeof(out))
		(void)send(r->fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(r->fd, SHUT_WR);
}

/* Our 400 for a chunked body libmicrohttpd refused, to the request whose socket this thread read
 * last, when it is a chunked POST with no answer yet (see server_chunked). */
static void
chunk_error_answer(const char *msg)
{
	static const char why[] = "malformed chunked encoding: a chunk size that is not a hex "
	    "number, or a chunk line longer than the connection's buffer";
	int fd = recvtrack_last_fd();	/* the last socket read, or request handled, here */
	struct request *r;

	if (fd < 0 || !chunk_error_message(msg))
		return;
	pthread_mutex_lock(&server_chunked_lock);
	for (r = server_chunked[(unsigned)fd & (SERVER_CHUNKED_BUCKETS - 1)]; r != NULL;
	    r = r->fd_next)
		if (r->fd == fd)
			break;
	if (r != NULL && !r->answered && !r->verifying && r->sent_status == 0 &&
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_HTTP_STATUS) == NULL) {
		chunk_error_write(r, why);
		r->sent_status = MHD_HTTP_BAD_REQUEST;
		snprintf(r->why, sizeof(r->why), "%s", why);
		metrics_request(route_metric(r->route), MHD_HTTP_BAD_REQUEST, util_now() - r->t0);
	}
	pthread_mutex_unlock(&server_chunked_lock);
}

/* A message libmicrohttpd logged: the ones that announce its own answer to a request are taken
 * over by ours (see server_head_conn and server_chunked). */
void
quirks_message(struct server *srv, const char *msg)
{
	/* The messages of libmicrohttpd 0.9.75's parse_connection_headers. */
	if (strncmp(msg, "Failed to parse `Content-Length' header", 39) == 0)
		bad_length_answer(srv, MHD_HTTP_BAD_REQUEST);
	else if (strncmp(msg, "Too large value of 'Content-Length' header", 42) == 0)
		bad_length_answer(srv, MHD_HTTP_CONTENT_TOO_LARGE);
	else
		chunk_error_answer(msg);
}

/* libmicrohttpd 0.9.75 quirk: it parses the query string into records taken from the connection's
 * memory (SERVER_CONN_MEMORY), and when they run out (some 1,000 parameters) it queues a 431 and
 * then overwrites the connection's state, so the answer never goes and the client waits for the
 * timeout. Only /v3 reads a parameter (all_matches): the query is rewritten here, before that parse
 * (this callback runs on the request line, in the library's own writable buffer), to at most one
 * short canonical parameter (v3_query_canon), and the request is served. Not covered: a NUL byte
 * before the '?' hides the query from strchr (the URI's length is not passed to us); such a
 * request line, which no client sends, waits for REQUEST_TIMEOUT like a slowloris head, and is
 * evictable as one. */
void *
quirks_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	char *q = strchr(uri, '?');

	(void)cls;
	server_head_conn = conn;
	if (q != NULL)
		v3_query_canon(q + 1);
	return NULL;
}
