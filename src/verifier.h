/* verifier.h -- the password checks the cache cannot answer, on threads of their own: one check per
 * credential however many requests wait for it, the queue served round-robin by client address.
 * Functions returning int return 0 on success and -1 on failure unless said otherwise. */
#ifndef CLAMREST_VERIFIER_H
#define CLAMREST_VERIFIER_H

#include <stddef.h>

#define VERIFIER_ADDR_LEN	16	/* bytes of a client address key (throttle_addr_key's) */
#define VERIFIER_SEEN		4096	/* client addresses whose last check is remembered (a power
					 * of two); one forgotten is served as a newcomer */
#define VERIFIER_DROPPED	(-2)	/* done's verdict: the check waited, and its place went to a
					 * client address with fewer checks served; nothing was checked */

/* The check: 1 right, 0 wrong, -1 failed (no verdict). Runs on a verifier thread. */
typedef int (*verifier_check_fn)(void *ctx, const char *user, size_t ulen, const char *pass,
    size_t plen);
/* A waiter's verdict: the check's, or VERIFIER_DROPPED. Runs once, with no lock held, on a verifier
 * thread (or on the thread of the verifier_submit that dropped the check). */
typedef void (*verifier_done_fn)(void *arg, int verdict);
/* Asked, under the verifier's lock, before a new check is queued (not when one is joined): -1 to
 * refuse, else the standing of the client's address (0 or more; a higher one is served first: the
 * password checks it has left). Must not call back into the verifier. */
typedef long (*verifier_admit_fn)(void *arg);

enum verifier_submitted {
	VERIFIER_JOINED,	/* the same credentials were already waiting or being checked: done
				 * runs with that check's verdict; admit was not asked */
	VERIFIER_QUEUED,	/* a new check: done runs with its verdict */
	VERIFIER_REFUSED,	/* admit said no */
	VERIFIER_FULL,		/* admitted, but queue checks wait and none may give its place */
	VERIFIER_ERROR,		/* out of memory, or stopping: nothing queued, admit not asked */
};

struct verifier;

/* threads checking threads at once, at most queue more waiting. Caller owns the result. */
struct verifier *verifier_new(unsigned threads, unsigned queue, verifier_check_fn check,
    void *ctx);
/* Refuses new checks, runs those still waiting, then joins the threads. */
void verifier_stop(struct verifier *v);
/* verifier_stop, then frees. Accepts NULL. */
void verifier_free(struct verifier *v);

/* Asks for a check of user/pass (copied, wiped when done) for the client whose address key is
 * addr (VERIFIER_ADDR_LEN bytes). done(arg) runs only for VERIFIER_JOINED and VERIFIER_QUEUED, and
 * may run before this returns. The queue is served round-robin by address, the address of the
 * highest standing (at its latest admission) first: of those, the one whose last check started
 * longest ago (never: first), then the one waiting longest. When the queue is full a new check
 * takes the place of the newest check of the address with the most checks waiting (of those, the
 * one served last in that order), whose waiters get VERIFIER_DROPPED, unless its own address would
 * be that one: then VERIFIER_FULL. No admit (NULL): every standing is 0. */
enum verifier_submitted verifier_submit(struct verifier *v, const unsigned char *addr,
    const char *user, size_t ulen, const char *pass, size_t plen, verifier_admit_fn admit,
    verifier_done_fn done, void *arg);

unsigned verifier_waiting(struct verifier *v);

#endif
