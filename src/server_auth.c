/* server_auth.c -- the password check of a POST: Basic credentials from the cache, or a check on
 * the verifier threads with the connection suspended, throttled per client address; its refusals. */
#include "server_priv.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "throttle.h"
#include "verifier.h"
#include "util.h"

#define SERVER_AUTH_MAX    1024	/* bytes of a decoded Authorization header */
#define SERVER_THROTTLE_LOG_GAP 1.0	/* seconds between log lines about throttled addresses, so
					 * a crowd of guessing addresses cannot flood the log */

/* One line when an address starts being throttled, at most one every SERVER_THROTTLE_LOG_GAP
 * seconds; the addresses left out are counted in the next line. */
static void
log_throttled(struct server *srv, const struct request *r)
{
	double now = util_now(), last = atomic_load(&srv->throttle_logged);

	if (now - last < SERVER_THROTTLE_LOG_GAP ||
	    !atomic_compare_exchange_strong(&srv->throttle_logged, &last, now)) {
		atomic_fetch_add(&srv->throttle_unlogged, 1);
		return;
	}
	log_warnx("client %s used up its failed password checks (AUTH_FAIL_BURST %u, AUTH_FAIL_RATE "
	    "%u a minute; wrong passwords and refusals for a full AUTH_QUEUE count, right ones do "
	    "not): answering 429 without checking new passwords from it until it regains one; "
	    "%lu other addresses throttled since the last such line", r->ip[0] ? r->ip : "unknown",
	    srv->cfg->auth_fail_burst, srv->cfg->auth_fail_rate,
	    atomic_exchange(&srv->throttle_unlogged, 0));
}

/* On a verifier thread: PBKDF2, off the HTTP threads. */
int
server_auth_check(void *ctx, const char *user, size_t ulen, const char *pass, size_t plen)
{
	return auth_verify(ctx, user, ulen, pass, plen);
}

/* Under the verifier's lock, when r's credentials need a check of their own: a token from its
 * address's bucket, whose tokens left put the addresses that spent fewer first in the verifier's
 * queue. Checks of credentials already queued are joined and take none. */
static long
verify_admit(void *arg)
{
	struct request *r = arg;
	unsigned left;

	r->tv = throttle_take_left(r->srv->throttle, r->addr, util_now(), &left);
	r->charged = r->tv == THROTTLE_ALLOW;
	return r->charged ? (long)left : -1;
}

/* The verdict, on a verifier thread: a right password (or no verdict) gives back the token its
 * check took; a wrong one, and a check dropped from a full queue, keep it. Then r belongs to the
 * connection again. */
static void
verify_done(void *arg, int verdict)
{
	struct request *r = arg;

	r->verdict = verdict;
	if (r->charged && verdict != 0 && verdict != VERIFIER_DROPPED)
		throttle_refund(r->srv->throttle, r->addr, util_now());
	MHD_resume_connection(r->conn);
}

/* Credentials not in the cache: the connection is suspended until the verifier has a verdict, or
 * resumed at once with the reason there is none (r->verdict). */
static void
request_verify(struct request *r, const char *user, size_t ulen, const char *pass, size_t plen)
{
	struct server *srv = r->srv;
	unsigned char addr[THROTTLE_KEY_LEN];
	enum verifier_submitted rc;

	throttle_addr_key(r->addr, addr);
	r->verifying = 1;
	/* Suspend first: the check may finish, and resume, before verifier_submit returns.
	 * libmicrohttpd quirk: a connection suspended in the head's callback stays in that state
	 * and, once resumed, calls the handler again for the head (with no body data); only after
	 * a call that leaves it unsuspended does it send "100 Continue" or read the body. So
	 * handle_post finishes the head's checks there. */
	MHD_suspend_connection(r->conn);
	rc = verifier_submit(srv->verifier, addr, user, ulen, pass, plen, verify_admit, verify_done,
	    r);
	if (rc == VERIFIER_JOINED || rc == VERIFIER_QUEUED) {
		r->joined = rc == VERIFIER_JOINED;
		return;
	}
	r->verdict = rc == VERIFIER_REFUSED ? VERIFY_THROTTLED : rc == VERIFIER_FULL ?
	    VERIFY_FULL : VERIFY_ERROR;
	MHD_resume_connection(r->conn);
}

/* Basic auth of a configured user, from the cache; 1 when authorised now, else 0 with either an
 * answer decided or the check on its way (r->verifying). The user name is kept for the log. */
int
request_auth(struct request *r)
{
	const char *h, *user, *pass;
	char buf[SERVER_AUTH_MAX];
	size_t ulen, plen;
	int verdict;

	h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || auth_parse_basic(h, buf, sizeof(buf), &user, &ulen, &pass, &plen) != 0) {
		request_refuse(r, MHD_HTTP_UNAUTHORIZED, &canned_for(r->srv, r->route)->unauthorized,
		    h == NULL ? "no Authorization header" : "Authorization is not well-formed Basic");
		return 0;
	}
	snprintf(r->user, sizeof(r->user), "%.*s", (int)ulen, user);
	verdict = auth_lookup(r->srv->auth, user, ulen, pass, plen);
	if (verdict == -1)
		request_verify(r, user, ulen, pass, plen);
	else if (verdict == 0)
		request_refuse(r, MHD_HTTP_UNAUTHORIZED, &canned_for(r->srv, r->route)->unauthorized,
		    "unknown user or wrong password");
	explicit_bzero(buf, sizeof(buf));
	return verdict == 1;
}

/* No check ran: the queue was full, or this check's place went to an address with fewer checks
 * served. Either counts against the address like a failed check. */
static void
request_verify_shed(struct request *r)
{
	struct server *srv = r->srv;
	const char *why = r->verdict == VERIFY_FULL ?
	    "password check queue full (AUTH_THREADS, AUTH_QUEUE): not checked, counted as a failed "
	    "check of this address" :
	    "password check queue full (AUTH_THREADS, AUTH_QUEUE): this check gave its place to an "
	    "address with fewer checks served, counted as a failed check of this address";

	log_debug("%s (AUTH_THREADS %u, AUTH_QUEUE %u): 503", why, srv->cfg->auth_threads,
	    srv->cfg->auth_queue);
	request_refuse(r, MHD_HTTP_SERVICE_UNAVAILABLE, &canned_for(srv, r->route)->busy, why);
	metrics_shed(METRICS_HTTP);
}

/* The verifier's verdict, back on the connection's thread. */
void
request_verified(struct request *r)
{
	struct server *srv = r->srv;

	r->verifying = 0;
	if (r->joined)
		log_debug("waited for the check of the same credentials already queued (no "
		    "AUTH_FAIL_BURST token taken): %s", r->verdict == 1 ? "right" : "not right");
	switch (r->verdict) {
	case 1:
		request_precheck(r);
		break;
	case 0:
		request_refuse(r, MHD_HTTP_UNAUTHORIZED, &canned_for(srv, r->route)->unauthorized,
		    "unknown user or wrong password");
		break;
	case VERIFY_THROTTLED:
		if (r->tv == THROTTLE_REFUSE_FIRST)
			log_throttled(srv, r);
		request_refuse(r, MHD_HTTP_TOO_MANY_REQUESTS, &canned_for(srv, r->route)->throttled,
		    "this client address used up its failed password checks (AUTH_FAIL_BURST, "
		    "AUTH_FAIL_RATE)");
		break;
	case VERIFY_FULL:
	case VERIFIER_DROPPED:
		request_verify_shed(r);
		break;
	case VERIFY_ERROR:	/* a passing state: 503 and Retry-After, as a full queue */
		request_refuse(r, MHD_HTTP_SERVICE_UNAVAILABLE, &canned_for(srv, r->route)->busy,
		    "no password check now: shutting down, or out of memory");
		metrics_shed(METRICS_HTTP);
		break;
	default:
		log_errorx("password check failed inside OpenSSL");
		request_refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR, &canned_for(srv, r->route)->internal,
		    "password check failed inside OpenSSL");
		break;
	}
}
