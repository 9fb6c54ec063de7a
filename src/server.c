/* server.c -- the daemon: listening (TLS too), the accept policy, draining and stopping. The
 * requests it takes are handled in server_request.c. */
#include "server_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "proxy.h"
#include "throttle.h"
#include "util.h"
#include "verifier.h"

static void
server_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct server *srv = cls;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci != NULL ? guard_open(srv->guard, ci->connect_fd) : NULL;
		return;
	}
	/* libmicrohttpd closes the socket only after this: the guard never sees a stale fd. */
	quirks_head_parsed(conn);
	guard_close(srv->guard, *socket_context);
	*socket_context = NULL;
}

/* Before libmicrohttpd takes a new connection: room is made by evicting an idle one when the
 * table is full. Its own MHD_OPTION_CONNECTION_LIMIT, set above MAX_CONNECTIONS, would instead stop
 * accepting and leave new clients waiting behind idle ones. Once draining, every new connection is
 * closed as soon as it is accepted (server_drain says why not earlier). */
static enum MHD_Result
server_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct server *srv = cls;

	(void)addr;
	(void)addrlen;
	if (atomic_load(&srv->draining))
		return MHD_NO;
	return guard_admit(srv->guard) == 0 ? MHD_YES : MHD_NO;
}

/* MHD_start_daemon returns only NULL; the reason (bind's strerror, gnutls_strerror) is in the
 * messages it logs before, from the starting thread: they are kept, joined, for the error. */
static void
server_start_message(struct server *srv, const char *msg)
{
	size_t used = strlen(srv->start_err);

	if (!atomic_load(&srv->starting) || !pthread_equal(pthread_self(), srv->starter))
		return;
	snprintf(srv->start_err + used, sizeof(srv->start_err) - used, "%s%s", used ? "; " : "", msg);
}

static void
server_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	log_debug("libmicrohttpd: %s", msg);
	server_start_message(cls, msg);
	quirks_message(cls, msg);
}

static int
server_addr(const char *host, unsigned port, struct sockaddr_storage *ss, unsigned *flags)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*flags |= MHD_USE_IPv6;
		return 0;
	}
	return -1;
}

#define SERVER_PEM_MAX (1024 * 1024)	/* bytes of a certificate or key file */

/* Reads a whole (small) file into a NUL-terminated string. Caller owns the result. */
static char *
read_pem(const char *path, char *err, size_t errlen, const char *setting)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (f == NULL || (buf = malloc(SERVER_PEM_MAX)) == NULL)
		goto fail;
	n = fread(buf, 1, SERVER_PEM_MAX - 1, f);
	if (ferror(f) || n == 0 || n == SERVER_PEM_MAX - 1)
		goto fail;
	buf[n] = '\0';
	fclose(f);
	return buf;
fail:
	snprintf(err, errlen, "%s: cannot read %s: %s", setting, path,
	    errno ? strerror(errno) : "empty or too large");
	if (f != NULL)
		fclose(f);
	free(buf);
	return NULL;
}

static int
server_tls(struct server *srv, unsigned *flags, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;

	if (cfg->tls_cert == NULL)
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, errlen, "TLS_CERT: this libmicrohttpd has no TLS support");
		return -1;
	}
	if ((srv->tls_cert = read_pem(cfg->tls_cert, err, errlen, "TLS_CERT")) == NULL ||
	    (srv->tls_key = read_pem(cfg->tls_key, err, errlen, "TLS_KEY")) == NULL)
		return -1;
	*flags |= MHD_USE_TLS;
	return 0;
}

/* A scan thread's stack: libclamav recurses once per nested layer, up to MAX_RECURSION. Measured
 * (tests/e2e/test_dos_bombs.py, a pattern-filled stack after scans of nested files): zip 18.9 KiB
 * per level, 7z 17.8, gzip 8.9, bzip2 8.8, tar 5.5, xz 2.2, mail 0.8, on top of ~40 KiB. The
 * system's 8 MiB plus SERVER_STACK_PER_LEVEL per level keeps every accepted MAX_RECURSION (up to
 * 1000: 70.5 MiB of address space, of which only what is used is ever backed by memory). */
/* Seconds past SHUTDOWN_GRACE that running scans get to end before the process exits without them. */
#define SERVER_STOP_SLACK	2.0
#define SERVER_STACK_BASE	(8UL << 20)
#define SERVER_STACK_PER_LEVEL	(64UL << 10)

static size_t
server_scan_stack(unsigned max_recursion)
{
	return SERVER_STACK_BASE + (size_t)max_recursion * SERVER_STACK_PER_LEVEL;
}

static struct guard *
server_guard(const struct config *cfg)
{
	struct guard_limits l = {
		.max_connections = cfg->max_connections,
		.timeout = cfg->request_timeout,
		.min_rate = cfg->min_upload_rate,
		.protocol = METRICS_HTTP,
	};

	return guard_new(&l);
}

static void
server_free(struct server *srv)
{
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	guard_free(srv->guard);
	verifier_free(srv->verifier);
	pool_free(srv->pool);
	throttle_free(srv->throttle);
	proxy_list_free(srv->proxies);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv);
}

static struct MHD_Daemon *
server_daemon(struct server *srv, unsigned flags, struct sockaddr_storage *ss)
{
	const struct config *cfg = srv->cfg;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};

	/* libmicrohttpd 0.9.75 prints to stderr what it logs before MHD_OPTION_EXTERNAL_LOGGER is
	 * seen: the logger comes first. */
	return MHD_start_daemon(flags, (uint16_t)cfg->port, server_accept, srv, server_handler, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, srv,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->io_threads,
	    MHD_OPTION_CONNECTION_LIMIT, guard_table_size(cfg->max_connections),
	    MHD_OPTION_URI_LOG_CALLBACK, quirks_uri, srv,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->request_timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVER_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, server_notify, srv,
	    MHD_OPTION_ARRAY, srv->tls_cert != NULL ? tls : tls + 2,
	    MHD_OPTION_END);
}

/* Why MHD_start_daemon failed, naming the setting: libmicrohttpd 0.9.75's messages for a bind
 * ("Failed to bind to port N: <strerror>") and a certificate GnuTLS refuses ("... x509
 * certificate/key: <gnutls_strerror>"); another message is passed on as it is. */
static void
server_start_error(const struct server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	const char *why = srv->start_err[0] != '\0' ? srv->start_err : "libmicrohttpd gave no reason";

	if (srv->tls_cert != NULL && (strstr(why, "x509") != NULL || strstr(why, "TLS") != NULL ||
	    strstr(why, "GnuTLS") != NULL))
		snprintf(err, errlen, "TLS_CERT, TLS_KEY: %s and %s: %s", cfg->tls_cert, cfg->tls_key, why);
	else
		snprintf(err, errlen, "PORT: cannot listen on %s:%u: %s", cfg->host, cfg->port, why);
}

struct server *
server_start(const struct config *cfg, struct auth *auth, struct dnsver *dnsver,
    struct scanner *scanner, char *err, size_t errlen)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG;
	struct sockaddr_storage ss;
	struct server *srv;
	const union MHD_DaemonInfo *di;

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->cfg = cfg;
	srv->auth = auth;
	srv->dnsver = dnsver;
	/* Set before the socket listens: no connection sees a loaded engine answered 503. */
	atomic_init(&srv->scanner, scanner);
	atomic_init(&srv->throttle_logged, 0.0);
	atomic_init(&srv->throttle_unlogged, 0);
	if (server_addr(cfg->host, cfg->port, &ss, &flags) != 0) {
		snprintf(err, errlen, "HOST: '%.60s' is not an IPv4 or IPv6 address", cfg->host);
		goto fail;
	}
	if (server_tls(srv, &flags, err, errlen) != 0)
		goto fail;
	if ((srv->proxies = proxy_list_new(cfg->trusted_proxies, err, errlen)) == NULL)
		goto fail;
	srv->throttle = throttle_new(cfg->auth_fail_rate, cfg->auth_fail_burst);
	if (srv->throttle != NULL) {
		snprintf(srv->throttle_retry, sizeof(srv->throttle_retry), "%u",
		    throttle_retry_after(srv->throttle));
		canned_init(&srv->canned, srv->throttle_retry, 0);
		canned_init(&srv->canned_v3, srv->throttle_retry, 1);
	}
	if (srv->throttle == NULL ||
	    (srv->guard = server_guard(cfg)) == NULL ||
	    (srv->pool = pool_new_stack(cfg->scan_threads, cfg->scan_queue,
	    server_scan_stack(cfg->max_recursion))) == NULL ||
	    pool_set_timeout(srv->pool, cfg->scan_queue_timeout) != 0 ||
	    (srv->verifier = verifier_new(cfg->auth_threads, cfg->auth_queue, server_auth_check,
	    srv->auth)) == NULL) {
		snprintf(err, errlen, "cannot start the server's threads");
		goto fail;
	}
	srv->starter = pthread_self();
	atomic_store(&srv->starting, 1);
	srv->daemon = server_daemon(srv, flags, &ss);
	atomic_store(&srv->starting, 0);
	if (srv->daemon == NULL) {
		server_start_error(srv, err, errlen);
		goto fail;
	}
	di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di != NULL ? di->port : cfg->port;
	return srv;
fail:
	server_free(srv);
	return NULL;
}

void
server_set_scanner(struct server *srv, struct scanner *scanner)
{
	atomic_store(&srv->scanner, scanner);
}

unsigned
server_port(struct server *srv)
{
	return srv->port;
}

/*
 * libmicrohttpd 0.9.75 quirk: MHD_quiesce_daemon is not safe with a thread pool in epoll mode. It
 * takes each worker's listening socket out of the worker's epoll set from our thread, while the
 * worker's own loop removes it too (when it sees the quiesce flag, or reaches its connection
 * limit); the two read the same unlocked flag, one of the two EPOLL_CTL_DELs fails with ENOENT and
 * the library aborts ("Failed to remove listen FD from epoll set", daemon.c:5531 or 4976): SIGTERM
 * under load was a core dump, not a drain (tests/e2e/test_resilience.py
 * test_sigterm_under_churn_exits_cleanly; 1.0.x takes a lock there). Nor can the listening socket
 * be shut down behind the library's back: its epoll loop ignores the EPOLLHUP that follows and
 * would spin. So the socket stays polled until MHD_stop_daemon, and server_accept closes each new
 * connection as soon as it is accepted: a client sees its connection closed at once (never left
 * waiting), and the load balancer's probes on open connections see 503.
 */
void
server_drain(struct server *srv)
{
	if (srv == NULL || atomic_exchange(&srv->draining, 1) != 0)
		return;
	log_info("draining: new connections closed at once, /check answers 503, %u requests in "
	    "progress get up to %u s (SHUTDOWN_GRACE)", guard_busy(srv->guard), srv->cfg->shutdown_grace);
}

int
server_stop(struct server *srv, double end)
{
	unsigned left;

	if (srv == NULL)
		return 0;
	server_drain(srv);
	/* Uploads under way, and scans, get until end (SHUTDOWN_GRACE from the signal, shared with
	 * the ICAP side's requests) to finish and be answered. */
	while ((left = guard_busy(srv->guard)) > 0 && util_now() < end)
		usleep(20000);
	if (left > 0)
		log_warnx("SHUTDOWN_GRACE (%u s) is over: closing %u requests still in progress",
		    srv->cfg->shutdown_grace, left);
	for (unsigned i = 0; i < left; i++)
		metrics_cut(METRICS_HTTP, METRICS_CUT_SHUTDOWN);
	/* Every accepted password check and scan that can still end within the grace runs and resumes
	 * its connection before the daemon goes; checks first (each is bounded by its hash rounds, and
	 * the queue by AUTH_QUEUE), since a connection they resume may still hand a scan to the pool.
	 * Scans waiting for a thread are answered 503 at once. A scan libclamav does not end in time (a
	 * layer it unpacks without looking at the time) is not waited for: the caller ends the
	 * process, and its connection is closed unanswered. */
	end += SERVER_STOP_SLACK;
	verifier_stop(srv->verifier);
	if (pool_stop_by(srv->pool, end) != 0) {
		log_warnx("SHUTDOWN_GRACE (%u s) is over: %u scans still running are abandoned, their "
		    "connections closed unanswered", srv->cfg->shutdown_grace, pool_running(srv->pool));
		return -1;
	}
	server_free(srv);
	return 0;
}

struct pool *
server_pool(struct server *srv)
{
	return srv->pool;
}
