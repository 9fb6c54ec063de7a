/* throttle.h -- a token bucket per client address for failed password checks, in a fixed-size
 * table, so a client guessing passwords is answered 429 instead of costing a PBKDF2 per guess.
 * Times are seconds on one monotonic clock, given by the caller (so tests can drive it). */
#ifndef CLAMREST_THROTTLE_H
#define CLAMREST_THROTTLE_H

#include <sys/socket.h>

#define THROTTLE_SETS	1024	/* a power of two; sets * ways = addresses remembered at once */
#define THROTTLE_WAYS	4	/* addresses per set; a full bucket or else the oldest is replaced */
#define THROTTLE_KEY_LEN	16	/* bytes of throttle_addr_key's key */

/* What throttle_take answers. */
enum throttle_verdict {
	THROTTLE_ALLOW,		/* a token was taken: verify, and throttle_refund if right */
	THROTTLE_REFUSE,	/* the bucket is empty: answer 429 without verifying */
	THROTTLE_REFUSE_FIRST,	/* as THROTTLE_REFUSE, the first since the address was last allowed:
				 * worth a log line */
};

struct throttle;

/* The key a client address is counted by: an IPv4 address (also IPv4-mapped IPv6) as its mapped
 * form, an IPv6 address by its /64, since one host commonly holds a whole /64. */
void throttle_addr_key(const struct sockaddr *addr, unsigned char key[THROTTLE_KEY_LEN]);

/* Each address regains per_minute tokens a minute, up to burst; a failure costs one. per_minute 0
 * turns the throttle off (throttle_take always allows). NULL when out of memory. Caller owns the
 * result. */
struct throttle *throttle_new(unsigned per_minute, unsigned burst);
void throttle_free(struct throttle *t);

/* Takes a token from addr's bucket (IPv4, or IPv6 counted by its /64; an IPv4-mapped IPv6
 * address is its IPv4 address) for a password check at now, or refuses when it is empty. A token
 * is taken before the check, not after a failure, so that checks running at once cannot outrun
 * the bucket; a check that succeeds gives it back. Thread-safe. */
enum throttle_verdict throttle_take(struct throttle *t, const struct sockaddr *addr, double now);
/* As throttle_take; *left (when not NULL) is set to the whole tokens left after it (0 with the
 * throttle off), which tells how much of its burst the address has spent. */
enum throttle_verdict throttle_take_left(struct throttle *t, const struct sockaddr *addr, double now,
    unsigned *left);
/* Gives back the token of a check that succeeded (or never ran). Thread-safe. */
void throttle_refund(struct throttle *t, const struct sockaddr *addr, double now);
/* Whole seconds an empty bucket takes to regain a token: the Retry-After of a 429. */
unsigned throttle_retry_after(const struct throttle *t);

#endif
