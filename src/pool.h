/* pool.h -- a bounded pool of worker threads: a job either gets a place at once or is refused, so
 * overload is answered (503) instead of queued without bound.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_POOL_H
#define CLAMREST_POOL_H

typedef void (*pool_fn)(void *arg);

struct pool;

/* threads workers; at most queue jobs waiting beyond those running. Caller owns the result. */
struct pool *pool_new(unsigned threads, unsigned queue);
/* Refuses new jobs, runs every job already accepted, then joins the workers. */
void pool_stop(struct pool *p);
/* pool_stop, then frees. */
void pool_free(struct pool *p);

/* -1 when every worker is busy and the queue is full. */
int pool_submit(struct pool *p, pool_fn fn, void *arg);
/* As pool_submit; done(arg) runs on the worker after fn, once the job's place is free again, so
 * whoever done wakes can submit at once. */
int pool_submit_then(struct pool *p, pool_fn fn, pool_fn done, void *arg);
/* 1 when a submit now would be refused. */
int pool_full(struct pool *p);
unsigned pool_waiting(struct pool *p);
unsigned pool_running(struct pool *p);

#endif
