/* icap_priv.h -- the ICAP service's one private header: struct icap, struct icap_conn and what
 * icap.c (the listener) and icap_conn.c (a connection's requests) share. Included by them only. */
#ifndef CLAMREST_ICAP_PRIV_H
#define CLAMREST_ICAP_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "icap_parse.h"
#include "icap_reply.h"

#define ICAP_BUF (64 * 1024)	/* bytes of a connection's read buffer */

struct config;
struct guard;
struct guard_conn;
struct pool;
struct scanner;
struct upload;
struct icap_decode;

struct icap {
	const struct config *cfg;
	struct scanner *scanner;
	struct pool *pool;		/* the HTTP side's: shared scan threads */
	struct guard *guard;		/* ICAP's own table, with the HTTP side's limits */
	char *page;			/* ICAP_TEMPLATE's text; NULL: the built-in page */
	int lfd;
	unsigned port;
	pthread_t acceptor;
	atomic_int draining, stop;
	pthread_mutex_t lock;		/* guards conns and nconns */
	struct icap_conn *conns;
	unsigned nconns;
};

/* One connection and the request in progress on it. */
struct icap_conn {
	struct icap_conn *prev, *next;
	struct icap *ic;
	int fd;
	struct guard_conn *gc;
	char ip[64];
	char buf[ICAP_BUF];		/* bytes read, from off to len not used yet */
	size_t off, len;
	/* The request in progress. */
	struct icap_req req;
	char hdr[ICAP_HEAD_MAX];	/* its encapsulated HTTP headers (req.hdr_len bytes) */
	double t0;
	struct upload *raw;		/* the body as it came */
	struct upload *dec;		/* the body with its Content-Encoding undone; NULL: none */
	struct icap_decode *decoder;
	uint64_t body_bytes;		/* body bytes received (after chunking) */
	const char *unscanned;		/* why the body cannot be scanned whole; NULL: it can */
	int store_failed;		/* the body store refused bytes (BODY_DISK, TMPDIR) */
	char istag[ICAP_ISTAG_MAX];
	/* The scan's hand-over with a pool thread. */
	pthread_mutex_t m;
	pthread_cond_t cv;
	int scan_state;			/* 0 running or waiting, 1 done, 2 expired */
};

struct icap_conn *icap_conn_new(struct icap *ic, int fd, const struct sockaddr_storage *ss);
void icap_conn_free(struct icap_conn *c);
/* Reads and answers one request: 0 to read the next one on the connection, -1 to close it. */
int icap_serve(struct icap_conn *c);

#endif
