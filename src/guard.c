/* guard.c -- the connection table and its watchdog: cuts connections that break the timeout and
 * rate rules, frees those whose client has gone, evicts the longest idle one when the table is full. */
#include "guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define GUARD_TICK        0.05	/* seconds between two checks of the table */
#define GUARD_EVENTS      256	/* epoll events taken per wait */
#define GUARD_SLACK_MIN   16	/* connections the table holds beyond the cap, at least... */
#define GUARD_SLACK_SHARE 4	/* ...or a quarter of the cap: room for those being cut */
#define GUARD_LOG_EVERY   1.0	/* seconds: at most one warning line per reason this often */
#define GUARD_REFUSED     METRICS_CUTS	/* the report slot of refusals */

struct guard_conn {
	struct guard_conn *prev, *next;
	struct guard *g;
	int fd;
	int closed;		/* in the graveyard */
	int rdhup;		/* the client has closed its side, or the socket failed */
	int gone;		/* seen closed with nothing unread, and idle, at the last pass */
	atomic_int busy;	/* a request is in progress */
	atomic_int receiving;	/* its body is coming */
	atomic_int cut;		/* we have closed it, or are about to: 1 + the metrics_cut reason */
	_Atomic double since;	/* when it became idle (or was accepted) */
	_Atomic double head_t0;	/* when the head of its request in progress was in */
	_Atomic double t0;	/* when its body began */
	_Atomic double discard_t0;	/* when its body became unwanted; 0: it is wanted */
	_Atomic uint64_t seen;	/* body bytes received */
	_Atomic uint64_t cap;	/* body bytes after which an unwanted body is cut; 0: none */
};

struct report {
	double last;		/* when the last line was written */
	unsigned more;		/* reports since, not written */
};

struct guard {
	struct guard_limits lim;
	pthread_mutex_t lock;	/* guards the lists, open, stop, and every rdhup/gone/closed */
	struct guard_conn head;	/* list of open connections */
	struct guard_conn *grave;	/* closed ones, freed by the watchdog once no event can name them */
	unsigned open;
	atomic_uint cutting;	/* open ones already cut, on their way out */
	int ep;			/* epoll set that reports clients closing their side */
	pthread_t thread;
	int running, stop;
	pthread_mutex_t report_lock;
	struct report reports[METRICS_CUTS + 1];
};

unsigned
guard_table_size(unsigned max_connections)
{
	unsigned slack = max_connections / GUARD_SLACK_SHARE;

	return max_connections + (slack > GUARD_SLACK_MIN ? slack : GUARD_SLACK_MIN);
}

static void
guard_log(const struct guard *g, int reason, unsigned more)
{
	char also[64] = "";

	if (more > 0)
		snprintf(also, sizeof(also), " (and %u more in the last %.0f s)", more, GUARD_LOG_EVERY);
	switch (reason) {
	case METRICS_CUT_HEAD_TIMEOUT:
		log_debug("no whole request head within REQUEST_TIMEOUT (%.0f s): closing the "
		    "connection%s", g->lim.timeout, also);
		break;
	case METRICS_CUT_SLOW_BODY:
		log_warnx("request body below MIN_UPLOAD_RATE (%u bytes/s) after REQUEST_TIMEOUT "
		    "(%.0f s): closing the connection%s", g->lim.min_rate, g->lim.timeout, also);
		break;
	case METRICS_CUT_DISCARD_DEADLINE:
		log_warnx("refused request's body still arriving REQUEST_TIMEOUT (%.0f s) after the "
		    "refusal: closing the connection%s", g->lim.timeout, also);
		break;
	case METRICS_CUT_DISCARD_LIMIT:
		log_warnx("refused request's body too large to read to its end: closing the "
		    "connection%s", also);
		break;
	case METRICS_CUT_PEER_CLOSED:
		log_debug("client closed the connection with no request to answer: freeing it%s",
		    also);
		break;
	case METRICS_CUT_EVICTED:
		log_warnx("connection table full (MAX_CONNECTIONS %u): evicting the connection idle "
		    "longest%s", g->lim.max_connections, also);
		break;
	default:
		log_warnx("connection table full (MAX_CONNECTIONS %u) and every connection has a "
		    "request in progress: refusing a new one%s", g->lim.max_connections, also);
		break;
	}
}

/* Counts every cut or refusal; logs the first of a kind at once and the rest once a second. */
static void
guard_report(struct guard *g, int reason)
{
	struct report *r = &g->reports[reason];
	double now = util_now();
	unsigned more;

	if (reason == GUARD_REFUSED)
		metrics_refused(g->lim.protocol);
	else
		metrics_cut(g->lim.protocol, (enum metrics_cut)reason);
	pthread_mutex_lock(&g->report_lock);
	if (r->last > 0 && now - r->last < GUARD_LOG_EVERY) {
		r->more++;
		pthread_mutex_unlock(&g->report_lock);
		return;
	}
	more = r->more;
	r->more = 0;
	r->last = now;
	pthread_mutex_unlock(&g->report_lock);
	guard_log(g, reason, more);
}

/* Marks c cut, once. From the watchdog or an admission (lock held, so c->fd is still open) the
 * socket is shut down so the HTTP library's event loop sees it close; from c's own thread, the
 * caller tells the library to close instead. */
static void
guard_cut(struct guard_conn *c, int reason, int shut)
{
	if (atomic_exchange(&c->cut, 1 + reason) != 0)
		return;
	atomic_fetch_add(&c->g->cutting, 1);
	if (shut)
		shutdown(c->fd, SHUT_RDWR);
	guard_report(c->g, reason);
}

/* The rule c breaks now, or -1. */
static int
guard_rule(const struct guard_conn *c, double now)
{
	const struct guard_limits *l = &c->g->lim;
	double dt, elapsed;

	if (!atomic_load(&c->busy))
		return now - atomic_load(&c->since) > l->timeout ? METRICS_CUT_HEAD_TIMEOUT : -1;
	if (!atomic_load(&c->receiving))
		return -1;
	dt = atomic_load(&c->discard_t0);
	if (dt > 0 && now - dt > l->timeout)
		return METRICS_CUT_DISCARD_DEADLINE;
	elapsed = now - atomic_load(&c->t0);
	if (l->min_rate > 0 && elapsed > l->timeout &&
	    (double)atomic_load(&c->seen) < (double)l->min_rate * elapsed)
		return METRICS_CUT_SLOW_BODY;
	return -1;
}

/* libmicrohttpd 0.9.75 quirk: its epoll loop is edge-triggered and takes a read shorter than its
 * buffer to mean the socket is drained. When the client's FIN arrives with (or right after) the
 * last bytes it sent, no new edge comes, the 0 of recv() is never read, and the connection sits in
 * CLOSE-WAIT until the timeout: 3,000 clients sending half a head and closing filled the table for
 * 48 s. So the guard's own epoll set listens for EPOLLRDHUP, and a connection whose client has
 * closed with nothing left unread is cut when it has no request, or one whose body can now never
 * be whole. It must be seen so at two passes in a row: bytes read but not yet handed to us would
 * otherwise make it look so for an instant. A client that closes its side after a whole request
 * (a half-close) still gets its answer. */
static int
guard_gone(struct guard_conn *c)
{
	char b;
	ssize_t n;

	if (atomic_load(&c->busy) && !atomic_load(&c->receiving)) {
		c->gone = 0;	/* a request whose answer the client may still read */
		return -1;
	}
	n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
		if (n < 0)
			c->rdhup = 0;	/* not closed after all */
		c->gone = 0;
		return -1;
	}
	if (c->gone)
		return METRICS_CUT_PEER_CLOSED;
	c->gone = 1;
	return -1;
}

static void
guard_pass(struct guard *g, double now)
{
	for (struct guard_conn *c = g->head.next; c != &g->head; c = c->next) {
		int reason;

		if (atomic_load(&c->cut))
			continue;
		reason = guard_rule(c, now);
		if (reason < 0 && c->rdhup)
			reason = guard_gone(c);
		if (reason >= 0)
			guard_cut(c, reason, 1);
	}
}

static void
guard_bury(struct guard *g)
{
	while (g->grave != NULL) {
		struct guard_conn *c = g->grave;

		g->grave = c->next;
		free(c);
	}
}

static void *
guard_watchdog(void *arg)
{
	struct guard *g = arg;
	struct epoll_event ev[GUARD_EVENTS];
	double next = util_now() + GUARD_TICK;

	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		double wait = next - util_now();
		int n;

		pthread_mutex_unlock(&g->lock);
		n = epoll_wait(g->ep, ev, GUARD_EVENTS, wait > 0 ? (int)(wait * 1000) + 1 : 0);
		pthread_mutex_lock(&g->lock);
		/* A connection closed since epoll_wait returned is in the graveyard, not freed. */
		for (int i = 0; i < n; i++) {
			struct guard_conn *c = ev[i].data.ptr;

			if (!c->closed)
				c->rdhup = 1;
		}
		guard_bury(g);
		if (util_now() >= next) {
			guard_pass(g, util_now());
			next = util_now() + GUARD_TICK;
		}
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

struct guard *
guard_new(const struct guard_limits *l)
{
	struct guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->lim = *l;
	g->head.next = g->head.prev = &g->head;
	g->ep = -1;
	atomic_init(&g->cutting, 0);
	pthread_mutex_init(&g->lock, NULL);
	pthread_mutex_init(&g->report_lock, NULL);
	if ((g->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		goto fail;
	if (pthread_create(&g->thread, NULL, guard_watchdog, g) != 0)
		goto fail;
	g->running = 1;
	return g;
fail:
	guard_free(g);
	return NULL;
}

void
guard_free(struct guard *g)
{
	if (g == NULL)
		return;
	if (g->running) {
		pthread_mutex_lock(&g->lock);
		g->stop = 1;
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	guard_bury(g);
	while (g->head.next != &g->head) {	/* none, when the caller kept the contract */
		struct guard_conn *c = g->head.next;

		g->head.next = c->next;
		free(c);
	}
	if (g->ep >= 0)
		close(g->ep);
	pthread_mutex_destroy(&g->lock);
	pthread_mutex_destroy(&g->report_lock);
	free(g);
}

int
guard_admit(struct guard *g)
{
	struct guard_conn *victim = NULL;

	pthread_mutex_lock(&g->lock);
	if (g->open - atomic_load(&g->cutting) < g->lim.max_connections) {
		pthread_mutex_unlock(&g->lock);
		return 0;
	}
	for (struct guard_conn *c = g->head.next; c != &g->head; c = c->next) {
		if (atomic_load(&c->cut) || atomic_load(&c->busy))
			continue;
		if (victim == NULL || atomic_load(&c->since) < atomic_load(&victim->since))
			victim = c;
	}
	if (victim != NULL)
		guard_cut(victim, METRICS_CUT_EVICTED, 1);
	pthread_mutex_unlock(&g->lock);
	if (victim == NULL) {
		guard_report(g, GUARD_REFUSED);
		return -1;
	}
	return 0;
}

struct guard_conn *
guard_open(struct guard *g, int fd)
{
	struct guard_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLET };

	if (c == NULL)
		return NULL;
	c->g = g;
	c->fd = fd;
	atomic_init(&c->since, util_now());
	ev.data.ptr = c;
	pthread_mutex_lock(&g->lock);
	c->next = g->head.next;
	c->prev = &g->head;
	g->head.next->prev = c;
	g->head.next = c;
	g->open++;
	/* Without it the connection is still held to the timeouts, only not freed early. */
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		log_warn("guard: cannot watch a connection for its client closing");
	pthread_mutex_unlock(&g->lock);
	return c;
}

void
guard_close(struct guard *g, struct guard_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	g->open--;
	if (atomic_load(&c->cut))
		atomic_fetch_sub(&g->cutting, 1);
	c->closed = 1;
	c->next = g->grave;
	g->grave = c;
	pthread_mutex_unlock(&g->lock);
}

void
guard_request(struct guard_conn *c)
{
	if (c == NULL)
		return;
	atomic_store(&c->head_t0, util_now());
	atomic_store(&c->busy, 1);
}

double
guard_request_age(struct guard_conn *c)
{
	if (c == NULL || !atomic_load(&c->busy))
		return 0;
	return util_now() - atomic_load(&c->head_t0);
}

void
guard_body_begin(struct guard_conn *c)
{
	if (c == NULL)
		return;
	atomic_store(&c->seen, 0);
	atomic_store(&c->cap, 0);
	atomic_store(&c->discard_t0, 0.0);
	atomic_store(&c->t0, util_now());
	atomic_store(&c->receiving, 1);
}

int
guard_body(struct guard_conn *c, size_t len)
{
	uint64_t seen, cap;
	int reason;

	if (c == NULL)
		return 0;
	if (atomic_load(&c->cut))
		return -1;
	seen = atomic_fetch_add(&c->seen, len) + len;
	cap = atomic_load(&c->cap);
	if (cap > 0 && seen > cap)
		reason = METRICS_CUT_DISCARD_LIMIT;
	else
		reason = guard_rule(c, util_now());
	if (reason < 0)
		return 0;
	guard_cut(c, reason, 0);
	return -1;
}

void
guard_discard(struct guard_conn *c, uint64_t cap)
{
	if (c == NULL)
		return;
	atomic_store(&c->cap, cap);
	atomic_store(&c->discard_t0, util_now());
}

void
guard_body_end(struct guard_conn *c)
{
	if (c != NULL)
		atomic_store(&c->receiving, 0);
}

void
guard_idle(struct guard_conn *c)
{
	if (c == NULL)
		return;
	atomic_store(&c->receiving, 0);
	atomic_store(&c->since, util_now());
	atomic_store(&c->busy, 0);
}

unsigned
guard_busy(struct guard *g)
{
	unsigned n = 0;

	pthread_mutex_lock(&g->lock);
	for (struct guard_conn *c = g->head.next; c != &g->head; c = c->next)
		n += atomic_load(&c->busy) != 0;
	pthread_mutex_unlock(&g->lock);
	return n;
}

unsigned
guard_count(struct guard *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->open;
	pthread_mutex_unlock(&g->lock);
	return n;
}

int
guard_cut_reason(struct guard_conn *c)
{
	return c != NULL ? atomic_load(&c->cut) - 1 : -1;
}

const char *
guard_reason_text(int reason)
{
	switch (reason) {
	case METRICS_CUT_HEAD_TIMEOUT:
		return "no whole request head within REQUEST_TIMEOUT";
	case METRICS_CUT_SLOW_BODY:
		return "request body below MIN_UPLOAD_RATE after REQUEST_TIMEOUT: connection cut";
	case METRICS_CUT_DISCARD_DEADLINE:
		return "refused request's body still arriving REQUEST_TIMEOUT after the refusal: "
		    "connection cut";
	case METRICS_CUT_DISCARD_LIMIT:
		return "refused request's body too large to read to its end: connection cut";
	case METRICS_CUT_PEER_CLOSED:
		return "the client closed the connection before the answer";
	case METRICS_CUT_EVICTED:
		return "connection table full (MAX_CONNECTIONS): evicted";
	default:
		return NULL;
	}
}
