/* pool.h -- a pool of worker threads with admission: a job either gets a place or is refused, so
 * overload is answered (503) instead of queued without bound. A job waits while the pool can still
 * start it in time: at most queue jobs wait, and in a pool with a timeout a job is refused when the
 * measured drain rate predicts a longer wait, and taken back (expired) once it has waited that long.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_POOL_H
#define CLAMREST_POOL_H

typedef void (*pool_fn)(void *arg);

struct pool;

/* threads workers; at most queue jobs waiting beyond those running; no timeout. Caller owns the
 * result. */
struct pool *pool_new(unsigned threads, unsigned queue);
/* A job may wait at most timeout seconds (> 0) for a worker; starts the thread that takes back
 * jobs that waited longer. Call once, before the first submit. */
int pool_set_timeout(struct pool *p, double timeout);
/* Refuses new jobs, runs every job still waiting, then joins the threads. */
void pool_stop(struct pool *p);
/* pool_stop, then frees. */
void pool_free(struct pool *p);

/* -1 when the pool refuses the job (see pool_full). */
int pool_submit(struct pool *p, pool_fn fn, void *arg);
/* As pool_submit; done(arg) runs on the worker after fn, once the job's place is free again, so
 * whoever done wakes can submit at once. */
int pool_submit_then(struct pool *p, pool_fn fn, pool_fn done, void *arg);
/* As pool_submit_then; in a pool with a timeout, when no worker took the job within it, the job
 * leaves the queue and expired(arg) runs instead of fn and done, on the pool's own thread. A job
 * with expired NULL never expires. */
int pool_submit_timed(struct pool *p, pool_fn fn, pool_fn done, pool_fn expired, void *arg);
/* 1 when a submit now would be refused: stopping, queue jobs waiting, or (with a timeout) a
 * predicted wait beyond it. */
int pool_full(struct pool *p);
/* Seconds a job submitted now is predicted to wait for a worker: the jobs ahead of it times the
 * measured (exponentially weighted) seconds per job, over the workers. 0 before the first job ends. */
double pool_wait(struct pool *p);
/* The Retry-After for a refusal now: the predicted wait rounded up, at least 1. */
unsigned pool_retry_after(struct pool *p);
/* Jobs the pool finishes a second (workers / seconds per job); 0 before the first job ends. */
double pool_rate(struct pool *p);
unsigned pool_waiting(struct pool *p);
unsigned pool_running(struct pool *p);

#endif
