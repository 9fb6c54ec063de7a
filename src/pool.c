/* pool.c -- a pool of worker threads: a queue of waiting jobs bounded by a count and, optionally,
 * by how long a job may wait, predicted from the measured seconds per job and enforced by a
 * reaper thread. Workers take jobs round-robin over their keys: each job gets a round, one past the
 * last waiting job of its key (and not before the round being served), and the first job of the
 * lowest round goes next; jobs of one key, or all with key 0, keep their submit order. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define POOL_EWMA 0.2		/* weight of the newest job in the seconds-per-job average */

struct pool_job {
	pool_fn fn;
	pool_fn done;		/* after the job's place is free again; may be NULL */
	pool_fn expired;	/* instead of fn and done after waiting too long; may be NULL */
	void *arg;
	double deadline;	/* monotonic seconds; 0: never expires */
	unsigned long key;	/* whose job: served round-robin among keys */
	unsigned long long round;
	struct pool_job *next;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work;	/* a job waits, or stopping */
	pthread_cond_t reap;	/* the reaper's: a new job, or stopping */
	pthread_cond_t idle;	/* monotonic: no job runs nor waits (pool_stop_by) */
	pthread_t *threads;
	unsigned nthreads;
	pthread_t reaper;
	int reaping;		/* the reaper thread runs */
	int reaper_idle;	/* it waits with no deadline: a job with one must wake it */
	struct pool_job *head, *tail;
	unsigned count;		/* jobs waiting */
	unsigned running;
	unsigned queue;		/* jobs allowed to wait while every worker is busy */
	double timeout;		/* seconds a job may wait; 0: no limit */
	double service;		/* weighted seconds one job takes on one worker; 0: none ended yet */
	unsigned long long round;	/* the round of the job taken last */
	int stopping;
};

static double
pool_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Jobs ahead of one submitted now, times seconds per job, over the workers; lock held. */
static double
pool_wait_locked(const struct pool *p)
{
	unsigned ahead = p->running + p->count;

	if (ahead < p->nthreads || p->nthreads == 0)
		return 0;
	return (double)(ahead - p->nthreads + 1) * p->service / (double)p->nthreads;
}

static int
pool_full_locked(const struct pool *p)
{
	if (p->stopping || p->running + p->count >= p->nthreads + p->queue)
		return 1;
	return p->timeout > 0 && pool_wait_locked(p) > p->timeout;
}

/* Unlinks j (whose predecessor is prev, NULL for the head) from the waiting jobs. */
static void
pool_unlink_locked(struct pool *p, struct pool_job *prev, struct pool_job *j)
{
	if (prev != NULL)
		prev->next = j->next;
	else
		p->head = j->next;
	if (p->tail == j)
		p->tail = prev;
	p->count--;
}

/* The first waiting job of the lowest round. O(waiting jobs): the queue is short (SCAN_QUEUE). */
static struct pool_job *
pool_pop_locked(struct pool *p)
{
	struct pool_job *best = p->head, *best_prev = NULL, *prev = p->head;

	for (struct pool_job *j = p->head->next; j != NULL; prev = j, j = j->next)
		if (j->round < best->round) {
			best = j;
			best_prev = prev;
		}
	pool_unlink_locked(p, best_prev, best);
	p->round = best->round;
	return best;
}

/* Queues j with its round: one past the last waiting job of its key, at least the round served. */
static void
pool_push_locked(struct pool *p, struct pool_job *j)
{
	j->round = p->round;
	for (const struct pool_job *w = p->head; w != NULL; w = w->next)
		if (w->key == j->key && w->round >= j->round)
			j->round = w->round + 1;
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->count++;
	pthread_cond_signal(&p->work);
}

static void *
pool_main(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct pool_job *job;
		double t0, dt;

		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->count == 0)
			break;
		job = pool_pop_locked(p);
		p->running++;
		pthread_mutex_unlock(&p->lock);
		t0 = pool_now();
		job->fn(job->arg);
		dt = pool_now() - t0;
		pthread_mutex_lock(&p->lock);
		p->running--;
		if (p->running == 0 && p->count == 0)
			pthread_cond_broadcast(&p->idle);
		p->service = p->service == 0 ? dt : p->service + POOL_EWMA * (dt - p->service);
		if (job->done != NULL) {
			pthread_mutex_unlock(&p->lock);
			job->done(job->arg);
			pthread_mutex_lock(&p->lock);
		}
		free(job);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Takes back the jobs that waited past their deadline and runs their expired outside the lock.
 * Jobs share one timeout and wait in submit order, so the first job with a deadline is the next to
 * expire. */
static void *
pool_reap(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		struct pool_job **link = &p->head, *j, *prev = NULL;
		struct timespec ts;
		double now = pool_now();

		while ((j = *link) != NULL && j->deadline == 0) {
			prev = j;
			link = &j->next;
		}
		if (j == NULL) {
			p->reaper_idle = 1;
			pthread_cond_wait(&p->reap, &p->lock);
			p->reaper_idle = 0;
			continue;
		}
		if (j->deadline > now) {
			ts.tv_sec = (time_t)j->deadline;
			ts.tv_nsec = (long)((j->deadline - (double)ts.tv_sec) * 1e9);
			pthread_cond_timedwait(&p->reap, &p->lock, &ts);
			continue;
		}
		pool_unlink_locked(p, prev, j);
		pthread_mutex_unlock(&p->lock);
		j->expired(j->arg);
		free(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *
pool_new(unsigned threads, unsigned queue)
{
	return pool_new_stack(threads, queue, 0);
}

struct pool *
pool_new_stack(unsigned threads, unsigned queue, size_t stack)
{
	struct pool *p = calloc(1, sizeof(*p));
	pthread_condattr_t attr;
	pthread_attr_t tattr;

	if (p == NULL)
		return NULL;
	p->queue = queue;
	p->threads = calloc(threads, sizeof(*p->threads));
	if (p->threads == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);	/* deadlines are monotonic */
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->reap, &attr);
	pthread_cond_init(&p->idle, &attr);
	pthread_condattr_destroy(&attr);
	pthread_attr_init(&tattr);
	if (stack > 0 && pthread_attr_setstacksize(&tattr, stack) != 0) {
		pthread_attr_destroy(&tattr);
		pool_free(p);
		return NULL;
	}
	for (; p->nthreads < threads; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], &tattr, pool_main, p) != 0) {
			pthread_attr_destroy(&tattr);
			pool_free(p);
			return NULL;
		}
	pthread_attr_destroy(&tattr);
	return p;
}

int
pool_set_timeout(struct pool *p, double timeout)
{
	if (p->reaping || timeout <= 0)
		return -1;
	p->timeout = timeout;
	if (pthread_create(&p->reaper, NULL, pool_reap, p) != 0)
		return -1;
	p->reaping = 1;
	return 0;
}

void
pool_stop(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->reap);
	pthread_mutex_unlock(&p->lock);
	if (p->reaping)
		pthread_join(p->reaper, NULL);
	p->reaping = 0;
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

int
pool_stop_by(struct pool *p, double deadline)
{
	struct pool_job *gone = NULL, *j, *prev = NULL, *next;
	struct timespec ts;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->reap);
	/* Waiting jobs that can expire do, now: their owners answer at once. */
	for (j = p->head; j != NULL; j = next) {
		next = j->next;
		if (j->expired == NULL) {
			prev = j;
			continue;
		}
		pool_unlink_locked(p, prev, j);
		j->next = gone;
		gone = j;
	}
	pthread_mutex_unlock(&p->lock);
	for (; gone != NULL; gone = next) {
		next = gone->next;
		gone->expired(gone->arg);
		free(gone);
	}
	pthread_mutex_lock(&p->lock);
	ts.tv_sec = (time_t)deadline;
	ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
	while ((p->running > 0 || p->count > 0) &&
	    pthread_cond_timedwait(&p->idle, &p->lock, &ts) == 0)
		;
	if (p->running > 0 || p->count > 0) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	pthread_mutex_unlock(&p->lock);
	pool_stop(p);
	return 0;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_stop(p);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->reap);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

int
pool_submit(struct pool *p, pool_fn fn, void *arg)
{
	return pool_submit_timed(p, fn, NULL, NULL, arg);
}

int
pool_submit_then(struct pool *p, pool_fn fn, pool_fn done, void *arg)
{
	return pool_submit_timed(p, fn, done, NULL, arg);
}

int
pool_submit_timed(struct pool *p, pool_fn fn, pool_fn done, pool_fn expired, void *arg)
{
	return pool_submit_keyed(p, fn, done, expired, arg, 0);
}

int
pool_requeue(struct pool *p, pool_fn fn, pool_fn done, void *arg, unsigned long key)
{
	struct pool_job *j = malloc(sizeof(*j));

	if (j == NULL)
		return -1;
	*j = (struct pool_job){ .fn = fn, .done = done, .arg = arg, .key = key };
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return -1;
	}
	pool_push_locked(p, j);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
pool_submit_keyed(struct pool *p, pool_fn fn, pool_fn done, pool_fn expired, void *arg,
    unsigned long key)
{
	struct pool_job *j = malloc(sizeof(*j));

	if (j == NULL)
		return -1;
	*j = (struct pool_job){ .fn = fn, .done = done, .expired = expired, .arg = arg, .key = key };
	pthread_mutex_lock(&p->lock);
	if (pool_full_locked(p)) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return -1;
	}
	if (p->timeout > 0 && expired != NULL)
		j->deadline = pool_now() + p->timeout;
	pool_push_locked(p, j);
	/* Jobs are queued in deadline order (one timeout for all), so a reaper already waiting for an
	 * earlier deadline needs no wake-up: it was one more context switch per scan. */
	if (j->deadline != 0 && p->reaper_idle)
		pthread_cond_signal(&p->reap);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
pool_full(struct pool *p)
{
	int full;

	pthread_mutex_lock(&p->lock);
	full = pool_full_locked(p);
	pthread_mutex_unlock(&p->lock);
	return full;
}

double
pool_wait(struct pool *p)
{
	double w;

	pthread_mutex_lock(&p->lock);
	w = pool_wait_locked(p);
	pthread_mutex_unlock(&p->lock);
	return w;
}

unsigned
pool_retry_after(struct pool *p)
{
	double w = pool_wait(p);
	unsigned s;

	if (!(w > 1))
		return 1;
	if (w >= 86400)
		return 86400;
	s = (unsigned)w;
	return (double)s < w ? s + 1 : s;	/* rounded up */
}

double
pool_rate(struct pool *p)
{
	double r;

	pthread_mutex_lock(&p->lock);
	r = p->service > 0 ? (double)p->nthreads / p->service : 0;
	pthread_mutex_unlock(&p->lock);
	return r;
}

unsigned
pool_waiting(struct pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->count;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned
pool_running(struct pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->running;
	pthread_mutex_unlock(&p->lock);
	return n;
}
