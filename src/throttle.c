/* throttle.c -- per-address token buckets for failed password checks, in a fixed set-associative table. */
#include "throttle.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define THROTTLE_V6_MARK	0x01	/* last key byte of an IPv6 /64 (bytes 8..14 zero), so it is
					 * never a mapped IPv4 key (bytes 10 and 11 0xff) */

struct throttle_entry {
	unsigned char	 key[THROTTLE_KEY_LEN];
	double		 tokens;	/* as of stamp */
	double		 stamp;
	int		 used;
	int		 refused;	/* refused since it was last allowed: the next refusal is not news */
};

struct throttle {
	pthread_mutex_t		 lock;
	unsigned		 per_minute;	/* 0: off */
	double			 rate;		/* tokens a second */
	double			 burst;
	uint64_t		 seed[2];	/* so no client can aim its addresses at one set */
	struct throttle_entry	 set[THROTTLE_SETS][THROTTLE_WAYS];
};

struct throttle *
throttle_new(unsigned per_minute, unsigned burst)
{
	struct throttle *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t);
		return NULL;
	}
	t->per_minute = per_minute;
	t->rate = per_minute / 60.0;
	t->burst = burst > 0 ? burst : 1;
	/* Without randomness the table still works; its sets are only easier to aim at. */
	if (getrandom(t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed))
		t->seed[0] = t->seed[1] = (uint64_t)(uintptr_t)t;
	return t;
}

void
throttle_free(struct throttle *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

unsigned
throttle_retry_after(const struct throttle *t)
{
	if (t == NULL || t->per_minute == 0 || t->per_minute >= 60)
		return 1;
	return (60 + t->per_minute - 1) / t->per_minute;
}

void
throttle_addr_key(const struct sockaddr *addr, unsigned char key[THROTTLE_KEY_LEN])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(key, 0, THROTTLE_KEY_LEN);
	if (addr == NULL)
		return;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)addr;

		memcpy(key, mapped, sizeof(mapped));
		memcpy(key + sizeof(mapped), &in4->sin_addr, 4);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(key, &in6->sin6_addr, THROTTLE_KEY_LEN);
			return;
		}
		memcpy(key, &in6->sin6_addr, 8);
		key[THROTTLE_KEY_LEN - 1] = THROTTLE_V6_MARK;
	}
}

static uint64_t
throttle_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static struct throttle_entry *
throttle_set(struct throttle *t, const unsigned char *key)
{
	uint64_t w[2];

	memcpy(w, key, sizeof(w));
	return t->set[throttle_mix(throttle_mix(w[0] ^ t->seed[0]) ^ w[1] ^ t->seed[1]) &
	    (THROTTLE_SETS - 1)];
}

/* Brings e's tokens up to now. */
static void
throttle_refill(const struct throttle *t, struct throttle_entry *e, double now)
{
	if (now > e->stamp) {
		e->tokens += (now - e->stamp) * t->rate;
		if (e->tokens > t->burst)
			e->tokens = t->burst;
		e->stamp = now;
	}
}

static struct throttle_entry *
throttle_find(struct throttle *t, const unsigned char *key)
{
	struct throttle_entry *set = throttle_set(t, key);

	for (size_t i = 0; i < THROTTLE_WAYS; i++)
		if (set[i].used && memcmp(set[i].key, key, THROTTLE_KEY_LEN) == 0)
			return &set[i];
	return NULL;
}

/* A place for key: a free one, else the entry with the most tokens, which is the one that
 * carries the least (a full bucket is the same as none). */
static struct throttle_entry *
throttle_victim(struct throttle *t, const unsigned char *key, double now)
{
	struct throttle_entry *set = throttle_set(t, key), *victim = NULL;

	for (size_t i = 0; i < THROTTLE_WAYS; i++) {
		if (!set[i].used)
			return &set[i];
		throttle_refill(t, &set[i], now);
		if (victim == NULL || set[i].tokens > victim->tokens)
			victim = &set[i];
	}
	return victim;
}

enum throttle_verdict
throttle_take(struct throttle *t, const struct sockaddr *addr, double now)
{
	return throttle_take_left(t, addr, now, NULL);
}

enum throttle_verdict
throttle_take_left(struct throttle *t, const struct sockaddr *addr, double now, unsigned *left)
{
	unsigned char key[THROTTLE_KEY_LEN];
	enum throttle_verdict v = THROTTLE_ALLOW;
	struct throttle_entry *e;

	if (left != NULL)
		*left = 0;
	if (t == NULL || t->per_minute == 0)
		return THROTTLE_ALLOW;
	throttle_addr_key(addr, key);
	pthread_mutex_lock(&t->lock);
	e = throttle_find(t, key);
	if (e == NULL) {
		e = throttle_victim(t, key, now);
		memcpy(e->key, key, THROTTLE_KEY_LEN);
		e->used = 1;
		e->refused = 0;
		e->tokens = t->burst;
		e->stamp = now;
	}
	throttle_refill(t, e, now);
	if (e->tokens >= 1) {
		e->tokens -= 1;
		e->refused = 0;
	} else {
		v = e->refused ? THROTTLE_REFUSE : THROTTLE_REFUSE_FIRST;
		e->refused = 1;
	}
	if (left != NULL)
		*left = (unsigned)e->tokens;
	pthread_mutex_unlock(&t->lock);
	return v;
}

void
throttle_refund(struct throttle *t, const struct sockaddr *addr, double now)
{
	unsigned char key[THROTTLE_KEY_LEN];
	struct throttle_entry *e;

	if (t == NULL || t->per_minute == 0)
		return;
	throttle_addr_key(addr, key);
	pthread_mutex_lock(&t->lock);
	/* Gone when a crowd of other addresses replaced it meanwhile: then it is full anyway. */
	e = throttle_find(t, key);
	if (e != NULL) {
		throttle_refill(t, e, now);
		e->tokens = e->tokens + 1 > t->burst ? t->burst : e->tokens + 1;
	}
	pthread_mutex_unlock(&t->lock);
}
