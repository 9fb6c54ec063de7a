/* pool.c -- a bounded pool of worker threads with a fixed ring of waiting jobs. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

struct pool_job {
	pool_fn fn;
	pool_fn done;		/* after the job's place is free again; may be NULL */
	void *arg;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_t *threads;
	unsigned nthreads;
	struct pool_job *ring;
	unsigned cap;		/* ring slots: one per worker plus the queue */
	unsigned head, count;
	unsigned running;
	unsigned queue;		/* jobs allowed to wait while every worker is busy */
	int stopping;
};

static void *
pool_main(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct pool_job job;

		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->count == 0)
			break;
		job = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		p->running++;
		pthread_mutex_unlock(&p->lock);
		job.fn(job.arg);
		pthread_mutex_lock(&p->lock);
		p->running--;
		if (job.done != NULL) {
			pthread_mutex_unlock(&p->lock);
			job.done(job.arg);
			pthread_mutex_lock(&p->lock);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *
pool_new(unsigned threads, unsigned queue)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->queue = queue;
	p->cap = queue + threads;
	p->ring = calloc(p->cap, sizeof(*p->ring));
	p->threads = calloc(threads, sizeof(*p->threads));
	if (p->ring == NULL || p->threads == NULL)
		goto fail;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	for (; p->nthreads < threads; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, pool_main, p) != 0)
			goto fail_threads;
	return p;
fail_threads:
	pool_free(p);
	return NULL;
fail:
	free(p->ring);
	free(p->threads);
	free(p);
	return NULL;
}

void
pool_stop(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_stop(p);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->ring);
	free(p->threads);
	free(p);
}

/* Jobs running plus jobs waiting against the capacity; called with the lock held. */
static int
pool_full_locked(const struct pool *p)
{
	return p->running + p->count >= p->nthreads + p->queue;
}

int
pool_submit(struct pool *p, pool_fn fn, void *arg)
{
	return pool_submit_then(p, fn, NULL, arg);
}

int
pool_submit_then(struct pool *p, pool_fn fn, pool_fn done, void *arg)
{
	pthread_mutex_lock(&p->lock);
	if (p->stopping || pool_full_locked(p)) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	p->ring[(p->head + p->count) % p->cap] = (struct pool_job){ fn, done, arg };
	p->count++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
pool_full(struct pool *p)
{
	int full;

	pthread_mutex_lock(&p->lock);
	full = p->stopping || pool_full_locked(p);
	pthread_mutex_unlock(&p->lock);
	return full;
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
