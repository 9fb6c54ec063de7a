/* verifier.c -- password checks on threads of their own: coalesced by credential, served
 * round-robin by client address, a full queue giving places to the addresses served least. */
#include "verifier.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct vwaiter {
	verifier_done_fn done;
	void *arg;
	struct vwaiter *next;
};

/* One check and the requests waiting for its verdict. */
struct vjob {
	struct vjob *next;		/* in its flow's queue, or in the running list */
	struct vwaiter *waiters;
	size_t ulen, plen, size;
	char cred[];			/* user NUL pass NUL, wiped when freed */
};

/* A client address with checks waiting. */
struct vflow {
	unsigned char addr[VERIFIER_ADDR_LEN];
	long standing;			/* admit's answer at its latest check: higher first */
	unsigned long long served;	/* clock when its last check started; 0: never (or forgotten) */
	unsigned long long since;	/* when it began waiting: first come, first served on ties */
	unsigned njobs;
	struct vjob *head;
	struct vflow *next;
};

struct vseen {
	unsigned char addr[VERIFIER_ADDR_LEN];
	unsigned long long served;
};

struct verifier {
	pthread_mutex_t lock;
	pthread_cond_t work;
	unsigned nthreads, queue, waiting, running;
	int stopping, stopped;
	unsigned long long clock;	/* counts checks started and flows begun */
	uint64_t seed;
	verifier_check_fn check;
	void *ctx;
	struct vflow *flows;
	struct vjob *runs;
	struct vseen seen[VERIFIER_SEEN];
	pthread_t threads[];
};

static void
vjob_free(struct vjob *j)
{
	if (j == NULL)
		return;
	explicit_bzero(j->cred, j->size);
	free(j);
}

/* Runs every waiter of j with verdict and frees them and j; no lock held. */
static void
vjob_finish(struct vjob *j, int verdict)
{
	struct vwaiter *w, *next;

	if (j == NULL)
		return;
	for (w = j->waiters; w != NULL; w = next) {
		next = w->next;
		w->done(w->arg, verdict);
		free(w);
	}
	vjob_free(j);
}

static struct vseen *
seen_slot(struct verifier *v, const unsigned char *addr)
{
	uint64_t h = v->seed;

	for (size_t i = 0; i < VERIFIER_ADDR_LEN; i++)
		h = (h ^ addr[i]) * 0x100000001b3ULL;
	h ^= h >> 29;
	return &v->seen[h & (VERIFIER_SEEN - 1)];
}

static unsigned long long
seen_get(struct verifier *v, const unsigned char *addr)
{
	struct vseen *s = seen_slot(v, addr);

	return memcmp(s->addr, addr, VERIFIER_ADDR_LEN) == 0 ? s->served : 0;
}

static void
seen_put(struct verifier *v, const unsigned char *addr, unsigned long long served)
{
	struct vseen *s = seen_slot(v, addr);

	memcpy(s->addr, addr, VERIFIER_ADDR_LEN);
	s->served = served;
}

static int
vjob_matches(const struct vjob *j, const char *user, size_t ulen, const char *pass, size_t plen)
{
	return j->ulen == ulen && j->plen == plen && memcmp(j->cred, user, ulen) == 0 &&
	    memcmp(j->cred + ulen + 1, pass, plen) == 0;
}

/* The check of these credentials waiting or running, or NULL. */
static struct vjob *
vjob_find(struct verifier *v, const char *user, size_t ulen, const char *pass, size_t plen)
{
	struct vjob *j;

	for (j = v->runs; j != NULL; j = j->next)
		if (vjob_matches(j, user, ulen, pass, plen))
			return j;
	for (struct vflow *f = v->flows; f != NULL; f = f->next)
		for (j = f->head; j != NULL; j = j->next)
			if (vjob_matches(j, user, ulen, pass, plen))
				return j;
	return NULL;
}

static struct vflow *
vflow_find(struct verifier *v, const unsigned char *addr)
{
	for (struct vflow *f = v->flows; f != NULL; f = f->next)
		if (memcmp(f->addr, addr, VERIFIER_ADDR_LEN) == 0)
			return f;
	return NULL;
}

/* Where a flow stands in the order of service. */
struct vrank {
	long standing;
	unsigned long long served, since;
};

static struct vrank
vflow_rank(const struct vflow *f)
{
	return (struct vrank){ f->standing, f->served, f->since };
}

/* 1 when a is served after b: the higher standing first, then the one served longest ago, then
 * the one waiting longest. */
static int
vrank_after(struct vrank a, struct vrank b)
{
	if (a.standing != b.standing)
		return a.standing < b.standing;
	return a.served != b.served ? a.served > b.served : a.since > b.since;
}

/* The flow whose newest check gives its place: the most checks waiting, then served last. */
static struct vflow *
vflow_victim(struct verifier *v)
{
	struct vflow *worst = NULL;

	for (struct vflow *f = v->flows; f != NULL; f = f->next)
		if (worst == NULL || f->njobs > worst->njobs || (f->njobs == worst->njobs &&
		    vrank_after(vflow_rank(f), vflow_rank(worst))))
			worst = f;
	return worst;
}

static void
vflow_unlink(struct verifier *v, struct vflow *gone)
{
	struct vflow **pp;

	for (pp = &v->flows; *pp != gone; pp = &(*pp)->next)
		;
	*pp = gone->next;
	free(gone);
}

/* Takes the newest waiting check of f out of the queue. */
static struct vjob *
vflow_pop_tail(struct verifier *v, struct vflow *f)
{
	struct vjob **pp, *j;

	for (pp = &f->head; (*pp)->next != NULL; pp = &(*pp)->next)
		;
	j = *pp;
	*pp = NULL;
	v->waiting--;
	if (--f->njobs == 0)
		vflow_unlink(v, f);
	return j;
}

/* Room for one more check from addr: free, or made by dropping another address's (returned in
 * *dropped). -1 when addr's own check would be the one to go. */
static int
verifier_make_room(struct verifier *v, const unsigned char *addr, long standing,
    struct vjob **dropped)
{
	struct vflow *own, *victim;
	struct vrank mine;
	unsigned njobs;

	*dropped = NULL;
	if (v->waiting + v->running < v->queue + v->nthreads)
		return 0;
	if ((victim = vflow_victim(v)) == NULL)
		return -1;	/* every place is a running check */
	own = vflow_find(v, addr);
	njobs = own != NULL ? own->njobs + 1 : 1;
	mine.standing = standing;
	mine.served = own != NULL ? own->served : seen_get(v, addr);
	mine.since = own != NULL ? own->since : v->clock + 1;
	if (own == victim || njobs > victim->njobs || (njobs == victim->njobs &&
	    !vrank_after(vflow_rank(victim), mine)))
		return -1;
	*dropped = vflow_pop_tail(v, victim);
	return 0;
}

/* Queues j for addr; flow is a fresh allocation, used (or freed) here. */
static void
verifier_enqueue(struct verifier *v, const unsigned char *addr, long standing, struct vjob *j,
    struct vflow *fresh)
{
	struct vflow *f = vflow_find(v, addr);
	struct vjob **pp;

	if (f == NULL) {
		f = fresh;
		fresh = NULL;
		memcpy(f->addr, addr, VERIFIER_ADDR_LEN);
		f->served = seen_get(v, addr);
		f->since = ++v->clock;
		f->njobs = 0;
		f->head = NULL;
		f->next = v->flows;
		v->flows = f;
	}
	free(fresh);
	f->standing = standing;
	for (pp = &f->head; *pp != NULL; pp = &(*pp)->next)
		;
	j->next = NULL;
	*pp = j;
	f->njobs++;
	v->waiting++;
	pthread_cond_signal(&v->work);
}

static struct vjob *
vjob_new(const char *user, size_t ulen, const char *pass, size_t plen)
{
	size_t size = ulen + plen + 2;
	struct vjob *j = malloc(sizeof(*j) + size);

	if (j == NULL)
		return NULL;
	j->next = NULL;
	j->waiters = NULL;
	j->ulen = ulen;
	j->plen = plen;
	j->size = size;
	memcpy(j->cred, user, ulen);
	j->cred[ulen] = '\0';
	memcpy(j->cred + ulen + 1, pass, plen);
	j->cred[ulen + 1 + plen] = '\0';
	return j;
}

enum verifier_submitted
verifier_submit(struct verifier *v, const unsigned char *addr, const char *user, size_t ulen,
    const char *pass, size_t plen, verifier_admit_fn admit, verifier_done_fn done, void *arg)
{
	struct vwaiter *w = malloc(sizeof(*w));
	struct vjob *j = vjob_new(user, ulen, pass, plen), *same, *dropped = NULL;
	struct vflow *fresh = malloc(sizeof(*fresh));
	enum verifier_submitted rc = VERIFIER_ERROR;
	long standing = 0;

	pthread_mutex_lock(&v->lock);
	if (w == NULL || j == NULL || fresh == NULL || v->stopping)
		goto out;
	w->done = done;
	w->arg = arg;
	if ((same = vjob_find(v, user, ulen, pass, plen)) != NULL) {
		w->next = same->waiters;
		same->waiters = w;
		w = NULL;
		rc = VERIFIER_JOINED;
	} else if (admit != NULL && (standing = admit(arg)) < 0) {
		rc = VERIFIER_REFUSED;
	} else if (verifier_make_room(v, addr, standing, &dropped) != 0) {
		rc = VERIFIER_FULL;
	} else {
		w->next = NULL;
		j->waiters = w;
		verifier_enqueue(v, addr, standing, j, fresh);
		w = NULL;
		j = NULL;
		fresh = NULL;
		rc = VERIFIER_QUEUED;
	}
out:
	pthread_mutex_unlock(&v->lock);
	free(w);
	free(fresh);
	vjob_free(j);
	vjob_finish(dropped, VERIFIER_DROPPED);
	return rc;
}

/* The next check, round-robin: the head of the flow served longest ago. Lock held. */
static struct vjob *
verifier_next(struct verifier *v)
{
	struct vflow *best = NULL;
	struct vjob *j;

	for (struct vflow *f = v->flows; f != NULL; f = f->next)
		if (best == NULL || vrank_after(vflow_rank(best), vflow_rank(f)))
			best = f;
	if (best == NULL)
		return NULL;
	j = best->head;
	best->head = j->next;
	best->served = ++v->clock;
	seen_put(v, best->addr, best->served);
	v->waiting--;
	if (--best->njobs == 0)
		vflow_unlink(v, best);
	j->next = v->runs;
	v->runs = j;
	v->running++;
	return j;
}

static void
verifier_unrun(struct verifier *v, struct vjob *j)
{
	struct vjob **pp;

	for (pp = &v->runs; *pp != j; pp = &(*pp)->next)
		;
	*pp = j->next;
	v->running--;
}

static void *
verifier_main(void *arg)
{
	struct verifier *v = arg;
	struct vjob *j;
	int verdict;

	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (v->flows == NULL && !v->stopping)
			pthread_cond_wait(&v->work, &v->lock);
		if ((j = verifier_next(v)) == NULL)
			break;	/* stopping, nothing left */
		pthread_mutex_unlock(&v->lock);
		verdict = v->check(v->ctx, j->cred, j->ulen, j->cred + j->ulen + 1, j->plen);
		pthread_mutex_lock(&v->lock);
		/* Taken out with its waiters at once: a request arriving later finds the verdict in
		 * the cache, or starts a check of its own. */
		verifier_unrun(v, j);
		pthread_mutex_unlock(&v->lock);
		vjob_finish(j, verdict);
		pthread_mutex_lock(&v->lock);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

struct verifier *
verifier_new(unsigned threads, unsigned queue, verifier_check_fn check, void *ctx)
{
	struct verifier *v;

	if (threads == 0 || check == NULL ||
	    (v = calloc(1, sizeof(*v) + threads * sizeof(pthread_t))) == NULL)
		return NULL;
	v->queue = queue;
	v->check = check;
	v->ctx = ctx;
	if (getrandom(&v->seed, sizeof(v->seed), GRND_NONBLOCK) != (ssize_t)sizeof(v->seed))
		v->seed = (uint64_t)(uintptr_t)v;
	v->seed |= 1;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->work, NULL);
	for (; v->nthreads < threads; v->nthreads++)
		if (pthread_create(&v->threads[v->nthreads], NULL, verifier_main, v) != 0)
			break;
	if (v->nthreads == 0) {
		verifier_free(v);
		return NULL;
	}
	return v;
}

void
verifier_stop(struct verifier *v)
{
	if (v == NULL)
		return;
	pthread_mutex_lock(&v->lock);
	if (v->stopped) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	v->stopping = 1;
	v->stopped = 1;
	pthread_cond_broadcast(&v->work);
	pthread_mutex_unlock(&v->lock);
	for (unsigned i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
}

void
verifier_free(struct verifier *v)
{
	if (v == NULL)
		return;
	verifier_stop(v);
	pthread_cond_destroy(&v->work);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

unsigned
verifier_waiting(struct verifier *v)
{
	unsigned n;

	pthread_mutex_lock(&v->lock);
	n = v->waiting;
	pthread_mutex_unlock(&v->lock);
	return n;
}
