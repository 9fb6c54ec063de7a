/* icap.c -- the ICAP service: listener, one thread per connection, a request's life from its head
 * to its answer (the body into the upload model, the scan on the shared pool, the verdict answered
 * in ICAP's words). */
#include "icap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "guard.h"
#include "icap_priv.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define ICAP_POLL_MS	250	/* ms between looks at the drain flag while a connection waits */
#define ICAP_BACKLOG	128
#define ICAP_STACK	(256 * 1024)	/* bytes of a connection thread's stack: scans run elsewhere */

/* Reads the page template (ICAP_TEMPLATE) whole; -1 with err when it cannot. */
static int
icap_load_template(struct icap *ic, const char *path, char *err, size_t errlen)
{
	FILE *f;
	long n;

	if (path == NULL)
		return 0;
	if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    n > 1024 * 1024 || fseek(f, 0, SEEK_SET) != 0 || (ic->page = malloc((size_t)n + 1)) == NULL ||
	    fread(ic->page, 1, (size_t)n, f) != (size_t)n) {
		snprintf(err, errlen, "ICAP_TEMPLATE: cannot read %.200s: %s", path,
		    errno != 0 ? strerror(errno) : "larger than 1 MiB");
		if (f != NULL)
			fclose(f);
		return -1;
	}
	ic->page[n] = '\0';
	fclose(f);
	return 0;
}

/* The listening socket on ICAP_HOST:ICAP_PORT; -1 with err. */
static int
icap_listen(struct icap *ic, char *err, size_t errlen)
{
	const struct config *cfg = ic->cfg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->icap_host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)cfg->icap_port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, cfg->icap_host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)cfg->icap_port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		snprintf(err, errlen, "ICAP_HOST: '%.60s' is not an IPv4 or IPv6 address", cfg->icap_host);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, ICAP_BACKLOG) != 0) {
		snprintf(err, errlen, "ICAP_PORT: cannot listen on %s:%u: %s", cfg->icap_host,
		    cfg->icap_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	sl = sizeof(ss);
	ic->port = getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 ? ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port) :
	    cfg->icap_port;
	ic->lfd = fd;
	return 0;
}

static void
icap_link(struct icap *ic, struct icap_conn *c, int add)
{
	pthread_mutex_lock(&ic->lock);
	if (add) {
		c->next = ic->conns;
		c->prev = NULL;
		if (ic->conns != NULL)
			ic->conns->prev = c;
		ic->conns = c;
		ic->nconns++;
	} else {
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			ic->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		ic->nconns--;
	}
	pthread_mutex_unlock(&ic->lock);
}

static void *
icap_conn_thread(void *arg)
{
	struct icap_conn *c = arg;
	struct icap *ic = c->ic;

	while (icap_serve(c) == 0)
		;
	guard_close(ic->guard, c->gc);
	icap_link(ic, c, 0);
	close(c->fd);
	icap_conn_free(c);
	return NULL;
}

/* One accepted socket: admitted by the guard, then its own thread. */
static void
icap_take(struct icap *ic, int fd, const struct sockaddr_storage *ss)
{
	struct timeval tv = { .tv_sec = (time_t)ic->cfg->request_timeout };
	int one = 1;
	struct icap_conn *c;
	pthread_attr_t attr;
	pthread_t t;

	if (atomic_load(&ic->draining) || guard_admit(ic->guard) != 0 ||
	    (c = icap_conn_new(ic, fd, ss)) == NULL) {
		close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* An answer goes in several sends (head, headers, chunks): no Nagle wait between them. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->gc = guard_open(ic->guard, fd);
	icap_link(ic, c, 1);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, ICAP_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, icap_conn_thread, c) != 0) {
		guard_close(ic->guard, c->gc);
		icap_link(ic, c, 0);
		close(fd);
		icap_conn_free(c);
	}
	pthread_attr_destroy(&attr);
}

static void *
icap_accept_thread(void *arg)
{
	struct icap *ic = arg;
	struct sockaddr_storage ss;
	struct pollfd p = { .fd = ic->lfd, .events = POLLIN };
	socklen_t sl;
	int fd;

	while (!atomic_load(&ic->draining)) {
		if (poll(&p, 1, ICAP_POLL_MS) <= 0)
			continue;
		sl = sizeof(ss);
		if ((fd = accept4(ic->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC)) < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(10000);
			continue;
		}
		icap_take(ic, fd, &ss);
	}
	return NULL;
}

struct icap *
icap_start(const struct config *cfg, struct scanner *scanner, struct pool *pool, char *err,
    size_t errlen)
{
	struct guard_limits l = { .max_connections = cfg->max_connections,
	    .timeout = cfg->request_timeout, .min_rate = cfg->min_upload_rate,
	    .protocol = METRICS_ICAP };
	struct icap *ic = calloc(1, sizeof(*ic));

	if (ic == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ic->cfg = cfg;
	ic->scanner = scanner;
	ic->pool = pool;
	ic->lfd = -1;
	pthread_mutex_init(&ic->lock, NULL);
	errno = 0;
	if (icap_load_template(ic, cfg->icap_template, err, errlen) != 0 ||
	    icap_listen(ic, err, errlen) != 0)
		goto fail;
	if ((ic->guard = guard_new(&l)) == NULL ||
	    pthread_create(&ic->acceptor, NULL, icap_accept_thread, ic) != 0) {
		snprintf(err, errlen, "cannot start the ICAP threads");
		goto fail;
	}
	log_info("ICAP service on icap://%s:%u/ (services avscan, srv_clamav, virus_scan, squidclamav)",
	    cfg->icap_host, ic->port);
	return ic;
fail:
	guard_free(ic->guard);
	if (ic->lfd >= 0)
		close(ic->lfd);
	free(ic->page);
	pthread_mutex_destroy(&ic->lock);
	free(ic);
	return NULL;
}

unsigned
icap_port(const struct icap *ic)
{
	return ic->port;
}

unsigned
icap_busy(struct icap *ic)
{
	return ic == NULL ? 0 : guard_busy(ic->guard);
}

void
icap_drain(struct icap *ic)
{
	if (ic == NULL || atomic_exchange(&ic->draining, 1) != 0)
		return;
	pthread_join(ic->acceptor, NULL);
	close(ic->lfd);
	ic->lfd = -1;
}

int
icap_stop(struct icap *ic, double deadline)
{
	unsigned left;

	if (ic == NULL)
		return 0;
	icap_drain(ic);
	while ((left = guard_busy(ic->guard)) > 0 && util_now() < deadline)
		usleep(20000);
	/* What is left (requests past SHUTDOWN_GRACE, and idle connections) is cut. */
	atomic_store(&ic->stop, 1);
	pthread_mutex_lock(&ic->lock);
	for (struct icap_conn *c = ic->conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&ic->lock);
	for (int i = 0; i < 200; i++) {
		pthread_mutex_lock(&ic->lock);
		left = ic->nconns;
		pthread_mutex_unlock(&ic->lock);
		if (left == 0)
			break;
		usleep(10000);
	}
	if (left > 0)
		return -1;
	guard_free(ic->guard);
	free(ic->page);
	pthread_mutex_destroy(&ic->lock);
	free(ic);
	return 0;
}
