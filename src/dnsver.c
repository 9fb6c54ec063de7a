/* dnsver.c -- keeps the ClamAV daily database version published in DNS, refreshed by a background thread. */
#include "dnsver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>

#include "log.h"
#include "util.h"

#define DNSVER_REASON_MAX	160	/* bytes, including the NUL */
#define DNSVER_TXT_MAX		1024	/* bytes; real records are ~50, longer ones are not ours */
#define DNSVER_FIELD_MAX	24	/* bytes; more digits than any long has */

struct dnsver {
	char *name;
	ares_channel channel;		/* used by the background thread only */
	pthread_t thread;
	pthread_mutex_t lock;		/* guards everything below */
	pthread_cond_t cond;		/* first result in, or stop requested */
	int stop;
	int done_first;			/* the first lookup has finished, well or not */
	int have;			/* version holds a good value */
	int failing;			/* the last lookup failed */
	long version;
	unsigned hold;			/* seconds the value is kept, TTL clamped */
	char reason[DNSVER_REASON_MAX];	/* why the last lookup failed */
};

/* What one lookup produced; filled by the c-ares callback. */
struct dnsver_result {
	int done;
	int ok;
	long version;
	unsigned ttl;
	char reason[DNSVER_REASON_MAX];
};

static void
dnsver_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
dnsver_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * ClamAV publishes "clamav:main:daily:time:0:flevel:safebrowsing:bytecode", e.g.
 * "0.103.1:59:26120:1616707740:0:63:49191:333". The loaded database we compare against is the daily
 * one, so the version wanted is field 2 counted from 0 (26120 here), as upstream dit-clamav-rest's
 * split_version(text, ':', 2) takes it; "59" is the main database and would never match.
 */
int
dnsver_parse_txt(const char *txt, size_t len, long *version)
{
	char field[DNSVER_FIELD_MAX];
	const char *p = txt, *end = txt + len, *colon;
	long long v;
	size_t flen;

	if (txt == NULL)
		return -1;
	for (int i = 0; i < 2; i++) {
		colon = memchr(p, ':', (size_t)(end - p));
		if (colon == NULL)
			return -1;
		p = colon + 1;
	}
	colon = memchr(p, ':', (size_t)(end - p));
	flen = (size_t)((colon != NULL ? colon : end) - p);
	/* A NUL would end the string early and let trailing garbage pass. */
	if (flen == 0 || flen >= sizeof(field) || memchr(p, '\0', flen) != NULL)
		return -1;
	memcpy(field, p, flen);
	field[flen] = '\0';
	if (util_parse_ll(field, 0, LONG_MAX, &v) != 0)
		return -1;
	*version = (long)v;
	return 0;
}

/* Joins the length-prefixed character-strings of TXT rdata into txt, NUL-terminated. */
static int
dnsver_join_strings(const unsigned char *p, size_t len, char *txt, size_t txtlen)
{
	const unsigned char *end = p + len;
	size_t o = 0, n;

	if (len == 0 || txtlen == 0)	/* RFC 1035: at least one string */
		return -1;
	while (p < end) {
		n = *p++;
		if (n > (size_t)(end - p) || n >= txtlen - o)
			return -1;
		/* Embedded NULs would make the C string lie about the record. */
		if (memchr(p, '\0', n) != NULL)
			return -1;
		memcpy(txt + o, p, n);
		o += n;
		p += n;
	}
	txt[o] = '\0';
	return 0;
}

int
dnsver_parse_answer(const unsigned char *abuf, size_t alen, char *txt, size_t txtlen, unsigned *ttl)
{
	ns_msg msg;
	ns_rr rr;
	uint32_t t;

	if (abuf == NULL || alen > NS_MAXMSG)
		return -1;
	if (ns_initparse(abuf, (int)alen, &msg) != 0)
		return -1;
	if (ns_msg_getflag(msg, ns_f_rcode) != ns_r_noerror)
		return -1;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
			return -1;
		/* Skips the CNAMEs a resolver puts before the record it followed them to. */
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;
		if (dnsver_join_strings(ns_rr_rdata(rr), ns_rr_rdlen(rr), txt, txtlen) != 0)
			return -1;
		t = ns_rr_ttl(rr);
		/* RFC 2181 section 8: a TTL with the top bit set means zero. */
		*ttl = t > INT32_MAX ? 0 : (unsigned)t;
		return 0;
	}
	return -1;
}

static unsigned
dnsver_hold_secs(unsigned ttl)
{
	if (ttl < DNSVER_MIN_TTL)
		return DNSVER_MIN_TTL;
	if (ttl > DNSVER_MAX_TTL)
		return DNSVER_MAX_TTL;
	return ttl;
}

static void
dnsver_answered(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dnsver_result *r = arg;
	char txt[DNSVER_TXT_MAX];

	(void)timeouts;
	r->done = 1;
	if (status != ARES_SUCCESS) {
		dnsver_seterr(r->reason, sizeof(r->reason), "%s", ares_strerror(status));
		return;
	}
	if (alen < 0 || dnsver_parse_answer(abuf, (size_t)alen, txt, sizeof(txt), &r->ttl) != 0) {
		dnsver_seterr(r->reason, sizeof(r->reason), "answer holds no usable TXT record");
		return;
	}
	if (dnsver_parse_txt(txt, strlen(txt), &r->version) != 0) {
		dnsver_seterr(r->reason, sizeof(r->reason), "TXT record \"%.64s\" has no daily version",
		    txt);
		return;
	}
	r->ok = 1;
}

static int
dnsver_stopping(struct dnsver *d)
{
	int stop;

	pthread_mutex_lock(&d->lock);
	stop = d->stop;
	pthread_mutex_unlock(&d->lock);
	return stop;
}

/* Waits for c-ares sockets at most one poll slice, so a stop request is seen promptly. */
static void
dnsver_wait_io(ares_channel ch)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	struct timeval maxtv = { 0, DNSVER_POLL_SLICE_MS * 1000L }, tv, *tvp;
	nfds_t n = 0;
	unsigned bits;
	int ms, ready;

	/* Tested as unsigned: ARES_GETSOCK_WRITABLE shifts 1 into the sign bit of an int for the
	 * last slot, which is undefined behaviour. */
	bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
	for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
		short ev = 0;

		if (bits & (1u << i))
			ev |= POLLIN;
		if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
			ev |= POLLOUT;
		if (ev == 0)
			continue;
		pfd[n].fd = socks[i];
		pfd[n].events = ev;
		pfd[n].revents = 0;
		n++;
	}
	tvp = ares_timeout(ch, &maxtv, &tv);
	ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
	ready = poll(pfd, n, ms);
	for (nfds_t i = 0; ready > 0 && i < n; i++) {
		if (pfd[i].revents == 0)
			continue;
		ares_process_fd(ch,
		    (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD,
		    (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
	}
	if (ready <= 0)		/* lets c-ares notice its timeouts */
		ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* One lookup, bounded by DNSVER_LOOKUP_DEADLINE and cut short by a stop request. */
static void
dnsver_lookup(struct dnsver *d, struct dnsver_result *r)
{
	double deadline = util_now() + DNSVER_LOOKUP_DEADLINE;
	int late = 0;

	memset(r, 0, sizeof(*r));
	ares_query(d->channel, d->name, ns_c_in, ns_t_txt, dnsver_answered, r);
	while (!r->done) {
		late = util_now() >= deadline;
		if (late || dnsver_stopping(d)) {
			/* Runs the callback now with ARES_ECANCELLED, so r is not used afterwards. */
			ares_cancel(d->channel);
			break;
		}
		dnsver_wait_io(d->channel);
	}
	if (late)
		dnsver_seterr(r->reason, sizeof(r->reason), "no answer within %d s",
		    DNSVER_LOOKUP_DEADLINE);
}

/* Stores a result for readers and says how many seconds to wait before the next lookup. */
static unsigned
dnsver_record(struct dnsver *d, const struct dnsver_result *r)
{
	int changed = 0, was_failing, had;
	long old;

	pthread_mutex_lock(&d->lock);
	was_failing = d->failing;
	had = d->have;
	old = d->version;
	if (r->ok) {
		changed = !d->have || d->version != r->version;
		d->have = 1;
		d->version = r->version;
		d->hold = dnsver_hold_secs(r->ttl);
		d->failing = 0;
	} else {
		d->failing = 1;
		dnsver_seterr(d->reason, sizeof(d->reason), "lookup of %s failed: %s", d->name,
		    r->reason);
	}
	d->done_first = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);

	/* Logged outside the lock, and only on changes, so a slow log never stalls readers. */
	if (r->ok) {
		if (changed || was_failing)
			log_info("dnsver: required version now %ld, ttl %u s, kept %u s", r->version,
			    r->ttl, dnsver_hold_secs(r->ttl));
		else
			log_debug("dnsver: required version still %ld", r->version);
		return dnsver_hold_secs(r->ttl);
	}
	if (!was_failing) {
		if (had)
			log_warnx("dnsver: lookup of %s failed: %s; keeping %ld, retry in %d s",
			    d->name, r->reason, old, DNSVER_RETRY);
		else
			log_warnx("dnsver: lookup of %s failed: %s; retry in %d s", d->name,
			    r->reason, DNSVER_RETRY);
	} else
		log_debug("dnsver: lookup of %s failed again: %s", d->name, r->reason);
	return DNSVER_RETRY;
}

static void
dnsver_deadline(struct timespec *ts, unsigned secs)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)secs;
}

/* Sleeps secs seconds unless a stop request comes first. */
static void
dnsver_sleep(struct dnsver *d, unsigned secs)
{
	struct timespec ts;

	dnsver_deadline(&ts, secs);
	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&d->lock);
}

static void *
dnsver_main(void *arg)
{
	struct dnsver *d = arg;
	struct dnsver_result r;
	unsigned wait;

	while (!dnsver_stopping(d)) {
		dnsver_lookup(d, &r);
		if (dnsver_stopping(d))
			break;
		wait = dnsver_record(d, &r);
		dnsver_sleep(d, wait);
	}
	return NULL;
}

static int
dnsver_parse_port(const char *s, int *port)
{
	long long v;

	if (util_parse_ll(s, 1, 65535, &v) != 0)
		return -1;
	*port = (int)v;
	return 0;
}

/* "ip", "ip:port", "[ipv6]", "[ipv6]:port" or a bare IPv6 address into one c-ares server node. */
static int
dnsver_parse_server(const char *s, struct ares_addr_port_node *node)
{
	char host[INET6_ADDRSTRLEN];
	const char *hend, *rest;
	size_t hlen;
	int port = NS_DEFAULTPORT;

	memset(node, 0, sizeof(*node));
	if (s[0] == '[') {
		hend = strchr(s, ']');
		if (hend == NULL)
			return -1;
		s++;
		rest = hend + 1;
		if (*rest != '\0' && (*rest != ':' || dnsver_parse_port(rest + 1, &port) != 0))
			return -1;
		node->family = AF_INET6;
	} else if ((hend = strchr(s, ':')) != NULL && strchr(hend + 1, ':') != NULL) {
		hend = s + strlen(s);	/* bare IPv6: several colons, no port */
		node->family = AF_INET6;
	} else {
		if (hend != NULL && dnsver_parse_port(hend + 1, &port) != 0)
			return -1;
		if (hend == NULL)
			hend = s + strlen(s);
		node->family = AF_INET;
	}
	hlen = (size_t)(hend - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(node->family, host, &node->addr) != 1)
		return -1;
	node->udp_port = port;
	node->tcp_port = port;
	return 0;
}

static int
dnsver_channel(struct dnsver *d, const char *server, char *err, size_t errlen)
{
	struct ares_options opts;
	struct ares_addr_port_node node;
	int rc;

	if (server != NULL && *server != '\0' && dnsver_parse_server(server, &node) != 0) {
		dnsver_seterr(err, errlen, "CLAMAV_DNS_SERVER: bad DNS server \"%s\": want ip, ip:port or [ipv6]:port",
		    server);
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.timeout = DNSVER_QUERY_TIMEOUT_MS;
	opts.tries = DNSVER_QUERY_TRIES;
	rc = ares_init_options(&d->channel, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		dnsver_seterr(err, errlen, "c-ares init: %s", ares_strerror(rc));
		return -1;
	}
	if (server == NULL || *server == '\0')
		return 0;
	rc = ares_set_servers_ports(d->channel, &node);
	if (rc != ARES_SUCCESS) {
		dnsver_seterr(err, errlen, "c-ares servers: %s", ares_strerror(rc));
		ares_destroy(d->channel);
		return -1;
	}
	return 0;
}

static int
dnsver_sync_init(struct dnsver *d)
{
	pthread_condattr_t ca;
	int rc = -1;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	/* Monotonic, so a wall-clock step neither stalls nor hurries a refresh. */
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0)
		goto fail;
	if (pthread_cond_init(&d->cond, &ca) != 0)
		goto fail;
	if (pthread_mutex_init(&d->lock, NULL) != 0) {
		pthread_cond_destroy(&d->cond);
		goto fail;
	}
	rc = 0;
fail:
	pthread_condattr_destroy(&ca);
	return rc;
}

struct dnsver *
dnsver_new(const char *name, const char *server, char *err, size_t errlen)
{
	struct dnsver *d;
	int lib = 0, chan = 0, sync = 0;

	if (name == NULL || *name == '\0' || strlen(name) > NS_MAXDNAME) {
		dnsver_seterr(err, errlen, "CLAMAV_TXT_URI: not a DNS name of 1 to %d bytes",
		    NS_MAXDNAME);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->name = strdup(name)) == NULL) {
		dnsver_seterr(err, errlen, "out of memory");
		goto fail;
	}
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		dnsver_seterr(err, errlen, "c-ares library init failed");
		goto fail;
	}
	lib = 1;
	if (dnsver_channel(d, server, err, errlen) != 0)
		goto fail;
	chan = 1;
	if (dnsver_sync_init(d) != 0) {
		dnsver_seterr(err, errlen, "cannot set up locks");
		goto fail;
	}
	sync = 1;
	if (pthread_create(&d->thread, NULL, dnsver_main, d) != 0) {
		dnsver_seterr(err, errlen, "cannot start the DNS thread");
		goto fail;
	}
	return d;
fail:
	if (sync) {
		pthread_cond_destroy(&d->cond);
		pthread_mutex_destroy(&d->lock);
	}
	if (chan)
		ares_destroy(d->channel);
	if (lib)
		ares_library_cleanup();
	if (d != NULL)
		free(d->name);
	free(d);
	return NULL;
}

void
dnsver_free(struct dnsver *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	ares_destroy(d->channel);
	ares_library_cleanup();
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d->name);
	free(d);
}

int
dnsver_get(struct dnsver *d, long *version, char *err, size_t errlen)
{
	struct timespec ts;
	int rc = -1;

	dnsver_deadline(&ts, DNSVER_FIRST_WAIT);
	pthread_mutex_lock(&d->lock);
	while (!d->done_first) {
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
			break;
	}
	if (d->have) {
		*version = d->version;
		rc = 0;
	} else if (d->done_first)
		dnsver_seterr(err, errlen, "%s", d->reason);
	else
		dnsver_seterr(err, errlen, "first lookup of %s still in progress", d->name);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
dnsver_cache_ttl(struct dnsver *d, unsigned *secs)
{
	int rc = -1;

	pthread_mutex_lock(&d->lock);
	if (d->have) {
		*secs = d->hold;
		rc = 0;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}
