/* pool.h -- a pool of worker threads with admission: a job either gets a place or is refused, so
 * overload is answered (503) instead of queued without bound. A job waits while the pool can still
 * start it in time: at most queue jobs wait, and in a pool with a timeout a job is refused when the
 * measured drain rate predicts a longer wait, and taken back (expired) once it has waited that long.
 * Waiting jobs are served round-robin over their keys (a client, say): a job waits behind at most one
 * job of each other key submitted before it, however many one key queued.
 * Functions returning int return 0 on success and -1 on failure. */
#ifndef CLAMREST_POOL_H
#define CLAMREST_POOL_H

#include <stddef.h>

typedef void (*pool_fn)(void *arg);

struct pool;

/* threads workers; at most queue jobs waiting beyond those running; no timeout. Caller owns the
 * result. */
struct pool *pool_new(unsigned threads, unsigned queue);
/* As pool_new, with threads of stack bytes of stack (0: the system's default). */
struct pool *pool_new_stack(unsigned threads, unsigned queue, size_t stack);
/* A job may wait at most timeout seconds (> 0) for a worker; starts the thread that takes back
 * jobs that waited longer. Call once, before the first submit. */
int pool_set_timeout(struct pool *p, double timeout);
/* Refuses new jobs, runs every job still waiting, then joins the threads. */
void pool_stop(struct pool *p);
/* Refuses new jobs; jobs still waiting expire (those without expired run, as in pool_stop); waits
 * until every worker is idle, at most until the monotonic time deadline (util_now's clock). 0 when
 * the pool stopped (pool_free may follow), -1 when jobs still run: the pool must then be left alone
 * (not freed) and the process end without it. */
int pool_stop_by(struct pool *p, double deadline);
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
/* As pool_submit_timed, the job served round-robin among the keys of the jobs waiting. */
int pool_submit_keyed(struct pool *p, pool_fn fn, pool_fn done, pool_fn expired, void *arg,
    unsigned long key);
/* A job that already had its place (a job's done handing its work on): queued as one submitted
 * now with key, never refused for a full queue or a wait and never expired; -1 only when the pool
 * stops (or out of memory). */
int pool_requeue(struct pool *p, pool_fn fn, pool_fn done, void *arg, unsigned long key);
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
