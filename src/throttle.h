/* throttle.h -- a token bucket per client address for failed password checks, in a fixed-size
 * table, so a client guessing passwords is answered 429 instead of costing a PBKDF2 per guess.
 * Times are seconds on one monotonic clock, given by the caller (so tests can drive it). */
#ifndef CLAMREST_THROTTLE_H
#define CLAMREST_THROTTLE_H

#include <sys/socket.h>

#define THROTTLE_SETS	1024	/* a power of two; sets * ways = addresses remembered at once */
#define THROTTLE_WAYS	4	/* addresses per set; a full bucket or else the oldest is replaced */

/* What throttle_allow answers. */
enum throttle_verdict {
	THROTTLE_ALLOW,		/* a failure may be afforded: verify */
	THROTTLE_REFUSE,	/* the bucket is empty: answer 429 without verifying */
	THROTTLE_REFUSE_FIRST,	/* as THROTTLE_REFUSE, the first since the address was last allowed:
				 * worth a log line */
};

struct throttle;

/* Each address regains per_minute tokens a minute, up to burst; a failure costs one. per_minute 0
 * turns the throttle off (throttle_allow always allows). NULL when out of memory. Caller owns the
 * result. */
struct throttle *throttle_new(unsigned per_minute, unsigned burst);
void throttle_free(struct throttle *t);

/* Whether addr (IPv4, or IPv6 counted by its /64; an IPv4-mapped IPv6 address is its IPv4
 * address) may have a password checked at now. An empty bucket regains its next token within
 * throttle_retry_after seconds. Takes nothing: a check that succeeds costs nothing, so a client whose
 * password is right is only refused while its address has used up its failures. Thread-safe. */
enum throttle_verdict throttle_allow(struct throttle *t, const struct sockaddr *addr, double now);
/* Whole seconds an empty bucket takes to regain a token: the Retry-After of a 429. */
unsigned throttle_retry_after(const struct throttle *t);
/* A check from addr failed at now: one token less. Thread-safe. */
void throttle_fail(struct throttle *t, const struct sockaddr *addr, double now);

#endif
