/* test_pool.c -- unit tests for pool: jobs run, a full pool refuses, counts, stop drains the queue,
 * waits past the timeout expire, a wait predicted from the measured rate is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

#define WAIT_MAX_MS	5000	/* how long a condition may take to become true */
#define PRODUCERS	4
#define PRODUCER_JOBS	2000
#define TEST_TIMEOUT	10	/* seconds; a hung pool kills the process */

/* Jobs that block until the test opens the gate, so the test decides when workers are busy. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int open;
	atomic_int started, finished;
};

static struct gate *
gate_new(void)
{
	struct gate *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	return g;
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void
gate_free(struct gate *g)
{
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static void
job_blocking(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->started, 1);
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	atomic_fetch_add(&g->finished, 1);
}

static void
job_count(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Polls v until it reaches want; fails after WAIT_MAX_MS, printing both. */
static void
wait_for(atomic_int *v, int want)
{
	for (int ms = 0; ms < WAIT_MAX_MS; ms++) {
		if (atomic_load(v) == want)
			return;
		sleep_ms(1);
	}
	fail_msg("waited %d ms for %d, still %d", WAIT_MAX_MS, want, atomic_load(v));
}

static void
wait_full(struct pool *p)
{
	for (int ms = 0; ms < WAIT_MAX_MS; ms++) {
		if (pool_full(p))
			return;
		sleep_ms(1);
	}
	fail_msg("pool never reported full");
}

static int
setup(void **state)
{
	(void)state;
	alarm(TEST_TIMEOUT);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

struct mark {
	atomic_int *done;
	int ran;
};

static void
job_mark(void *arg)
{
	struct mark *m = arg;

	m->ran++;
	atomic_fetch_add(m->done, 1);
}

static void
test_runs_jobs(void **state)
{
	struct pool *p = pool_new(2, 8);
	atomic_int done = 0;
	struct mark marks[10];

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < 10; i++) {
		marks[i] = (struct mark){ &done, 0 };
		assert_int_equal(pool_submit(p, job_mark, &marks[i]), 0);
	}
	wait_for(&done, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(marks[i].ran, 1);		/* each job once, with its own arg */
	assert_int_equal(pool_running(p), 0);
	assert_int_equal(pool_waiting(p), 0);
	assert_int_equal(pool_full(p), 0);
	pool_free(p);
}

static void
test_refuses_when_full(void **state)
{
	struct gate *g = gate_new();
	struct pool *p = pool_new(2, 1);
	atomic_int extra = 0;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 2);
	assert_int_equal(pool_running(p), 2);
	assert_int_equal(pool_waiting(p), 0);
	assert_int_equal(pool_full(p), 0);			/* the queue slot is free */
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	assert_int_equal(pool_waiting(p), 1);
	assert_int_equal(pool_running(p), 2);
	assert_int_equal(pool_full(p), 1);
	assert_int_equal(pool_submit(p, job_count, &extra), -1);
	assert_int_equal(pool_submit(p, job_count, &extra), -1);
	assert_int_equal(pool_waiting(p), 1);			/* a refusal takes no slot */
	gate_open(g);
	wait_for(&g->finished, 3);
	assert_int_equal(atomic_load(&g->started), 3);
	assert_int_equal(atomic_load(&extra), 0);		/* refused jobs never run */
	for (int ms = 0; ms < WAIT_MAX_MS && pool_running(p) != 0; ms++)
		sleep_ms(1);
	assert_int_equal(pool_running(p), 0);
	assert_int_equal(pool_waiting(p), 0);
	assert_int_equal(pool_full(p), 0);
	assert_int_equal(pool_submit(p, job_count, &extra), 0);	/* room again */
	wait_for(&extra, 1);
	pool_free(p);
	gate_free(g);
}

/* No queue: one busy worker is enough to refuse, even before it picked the job up. */
static void
test_queue_zero(void **state)
{
	struct gate *g = gate_new();
	struct pool *p = pool_new(1, 0);
	atomic_int extra = 0;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_full(p), 0);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	assert_int_equal(pool_full(p), 1);
	assert_int_equal(pool_submit(p, job_count, &extra), -1);
	wait_for(&g->started, 1);
	assert_int_equal(pool_running(p), 1);
	assert_int_equal(pool_waiting(p), 0);
	assert_int_equal(pool_submit(p, job_count, &extra), -1);
	gate_open(g);
	pool_free(p);
	assert_int_equal(atomic_load(&g->finished), 1);
	assert_int_equal(atomic_load(&extra), 0);
	gate_free(g);
}

struct stopper {
	struct pool *p;
	struct gate *g;
	atomic_int *counted;
	int finished_at_return, counted_at_return;
};

static void *
stop_thread(void *arg)
{
	struct stopper *s = arg;

	pool_stop(s->p);
	s->finished_at_return = atomic_load(&s->g->finished);
	s->counted_at_return = atomic_load(s->counted);
	return NULL;
}

static void
test_stop_runs_accepted_jobs(void **state)
{
	struct gate *g = gate_new();
	struct pool *p = pool_new(1, 4);
	atomic_int counted = 0;
	struct stopper s = { p, g, &counted, -1, -1 };
	pthread_t t;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pool_submit(p, job_count, &counted), 0);
	assert_int_equal(pool_waiting(p), 3);
	assert_int_equal(pool_full(p), 0);			/* one slot left */
	assert_int_equal(pthread_create(&t, NULL, stop_thread, &s), 0);
	wait_full(p);						/* stopping: refuses */
	assert_int_equal(pool_submit(p, job_count, &counted), -1);
	sleep_ms(20);
	assert_int_equal(atomic_load(&counted), 0);		/* still behind the blocked job */
	gate_open(g);
	pthread_join(t, NULL);
	assert_int_equal(s.finished_at_return, 1);
	assert_int_equal(s.counted_at_return, 3);		/* every accepted job ran first */
	assert_int_equal(pool_submit(p, job_count, &counted), -1);	/* and later submits fail */
	assert_int_equal(pool_full(p), 1);
	assert_int_equal(pool_waiting(p), 0);
	assert_int_equal(pool_running(p), 0);
	pool_stop(p);						/* twice is harmless */
	pool_free(p);
	assert_int_equal(atomic_load(&counted), 3);
	gate_free(g);
}

static void
test_free_with_zero_jobs(void **state)
{
	(void)state;
	pool_free(pool_new(4, 16));
	pool_free(pool_new(1, 0));
	pool_free(NULL);
	pool_stop(NULL);
}

static void
test_submit_after_stop(void **state)
{
	struct pool *p = pool_new(2, 2);
	atomic_int n = 0;

	(void)state;
	assert_non_null(p);
	pool_stop(p);
	assert_int_equal(pool_submit(p, job_count, &n), -1);
	assert_int_equal(pool_full(p), 1);
	pool_free(p);
	assert_int_equal(atomic_load(&n), 0);
}

struct nested {
	struct pool *p;
	atomic_int done;
	int rc;
};

static void
job_child(void *arg)
{
	struct nested *n = arg;

	atomic_fetch_add(&n->done, 1);
}

/* A job may submit a follow-up: the pool's lock is not held while a job runs. */
static void
job_parent(void *arg)
{
	struct nested *n = arg;

	n->rc = pool_submit(n->p, job_child, n);
	atomic_fetch_add(&n->done, 1);
}

static void
test_job_submits_job(void **state)
{
	struct nested n = { .rc = 99 };

	(void)state;
	n.p = pool_new(1, 1);
	assert_non_null(n.p);
	assert_int_equal(pool_submit(n.p, job_parent, &n), 0);
	wait_for(&n.done, 2);
	assert_int_equal(n.rc, 0);
	pool_free(n.p);
}

/* done runs after the job's place is free: a full pool (1 thread, no queue) takes a new job
 * from it. This is what lets a client that just got its answer send the next scan. */
static void
job_touch(void *arg)
{
	struct nested *n = arg;

	atomic_fetch_add(&n->done, 1);
}

static void
done_resubmits(void *arg)
{
	struct nested *n = arg;

	n->rc = pool_submit(n->p, job_touch, n);
}

static void
test_done_runs_after_the_place_is_free(void **state)
{
	struct nested n = { .rc = 99 };

	(void)state;
	n.p = pool_new(1, 0);
	assert_non_null(n.p);
	assert_int_equal(pool_submit_then(n.p, job_touch, done_resubmits, &n), 0);
	wait_for(&n.done, 2);
	assert_int_equal(n.rc, 0);
	pool_free(n.p);
}

struct producer {
	struct pool *p;
	atomic_int *ran;
	int accepted, refused;
};

static void *
produce(void *arg)
{
	struct producer *pr = arg;

	while (pr->accepted < PRODUCER_JOBS) {
		if (pool_submit(pr->p, job_count, pr->ran) == 0) {
			pr->accepted++;
		} else {
			pr->refused++;
			sched_yield();
		}
	}
	return NULL;
}

/* Many submitters against few slots: every accepted job runs exactly once. */
static void
test_concurrent_submitters(void **state)
{
	struct pool *p = pool_new(3, 5);
	struct producer pr[PRODUCERS];
	pthread_t t[PRODUCERS];
	atomic_int ran = 0;
	int refused = 0;

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < PRODUCERS; i++) {
		pr[i] = (struct producer){ p, &ran, 0, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, produce, &pr[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(t[i], NULL);
		refused += pr[i].refused;
	}
	pool_stop(p);
	print_message("pool: %d jobs ran, %d submits refused on the way\n", atomic_load(&ran), refused);
	assert_int_equal(atomic_load(&ran), PRODUCERS * PRODUCER_JOBS);
	pool_free(p);
}

static void
job_sleep(void *arg)
{
	sleep_ms(250);
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* Before any job ended nothing is measured: no predicted wait, Retry-After 1. */
static void
test_nothing_measured(void **state)
{
	struct pool *p = pool_new(2, 8);

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_set_timeout(p, 1.0), 0);
	assert_int_equal(pool_set_timeout(p, 1.0), -1);		/* once */
	assert_true(pool_rate(p) == 0);
	assert_true(pool_wait(p) == 0);
	assert_int_equal(pool_retry_after(p), 1);
	pool_free(p);
}

/* A timed job no worker takes within the timeout leaves the queue: expired runs, fn and done
 * never. A job without expired waits on. */
static void
test_wait_past_timeout_expires(void **state)
{
	struct gate *g = gate_new();
	struct pool *p = pool_new(1, 8);
	atomic_int ran = 0, patient = 0;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_set_timeout(p, 0.2), 0);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 1);
	assert_int_equal(pool_submit_then(p, job_count, NULL, &patient), 0);
	assert_int_equal(pool_submit_timed(p, job_count, job_count, job_count, &ran), 0);
	assert_int_equal(pool_waiting(p), 2);
	wait_for(&ran, 1);				/* expired counted into the same variable */
	assert_int_equal(pool_waiting(p), 1);		/* only the patient job */
	sleep_ms(400);
	assert_int_equal(pool_waiting(p), 1);
	assert_int_equal(atomic_load(&ran), 1);	/* fn and done did not run */
	gate_open(g);
	wait_for(&patient, 1);
	pool_free(p);
	assert_int_equal(atomic_load(&ran), 1);
	gate_free(g);
}

/* Once a job's time is measured, a job is refused exactly when the jobs ahead of it, times that
 * time, over the workers, exceed the timeout; Retry-After is that wait rounded up. */
static void
test_predicted_wait_refuses(void **state)
{
	struct gate *g = gate_new();
	struct pool *p = pool_new(1, 100);
	atomic_int slept = 0, counted = 0;
	int accepted = 0, refused = 0;
	double w = 0, service;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_set_timeout(p, 1.0), 0);
	assert_int_equal(pool_submit(p, job_sleep, &slept), 0);
	wait_for(&slept, 1);
	for (int ms = 0; ms < WAIT_MAX_MS && pool_running(p) != 0; ms++)
		sleep_ms(1);
	service = 1 / pool_rate(p);
	assert_true(service >= 0.25 && service < 1.0);
	assert_true(pool_wait(p) == 0);			/* an idle worker */
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 1);
	for (int i = 0; i < 10 && !refused; i++) {
		int full = pool_full(p), rc;

		w = pool_wait(p);
		assert_true(w > (i + 1) * service - 1e-9 && w < (i + 1) * service + 1e-9);
		rc = pool_submit_timed(p, job_count, NULL, job_count, &counted);
		assert_int_equal(rc == 0, w <= 1.0);
		assert_int_equal(full, rc != 0);
		if (rc == 0)
			accepted++;
		else
			refused++;
	}
	assert_true(accepted >= 1 && accepted <= 3);
	assert_int_equal(refused, 1);
	assert_int_equal(pool_retry_after(p), (unsigned)w + ((double)(unsigned)w < w));
	gate_open(g);
	for (int ms = 0; ms < WAIT_MAX_MS && atomic_load(&counted) != accepted; ms++)
		sleep_ms(1);
	assert_int_equal(atomic_load(&counted), accepted);	/* each ran or expired, once */
	pool_free(p);
	gate_free(g);
}

/* Stop runs timed jobs still waiting rather than expiring them. */
static void
test_stop_runs_waiting_timed_jobs(void **state)
{
	struct gate *g = gate_new();
	struct pool *p = pool_new(1, 8);
	atomic_int ran = 0;
	struct stopper s = { p, g, &ran, -1, -1 };
	pthread_t t;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_set_timeout(p, 30), 0);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pool_submit_timed(p, job_count, NULL, job_count, &ran), 0);
	assert_int_equal(pthread_create(&t, NULL, stop_thread, &s), 0);
	wait_full(p);
	gate_open(g);
	pthread_join(t, NULL);
	assert_int_equal(s.counted_at_return, 3);
	pool_free(p);
	gate_free(g);
}

/* The order jobs ran in: each job appends its key. */
struct order {
	pthread_mutex_t lock;
	unsigned long keys[32];
	unsigned n;
};

struct keyed {
	struct order *o;
	unsigned long key;
};

static void
job_record(void *arg)
{
	struct keyed *k = arg;

	pthread_mutex_lock(&k->o->lock);
	k->o->keys[k->o->n++] = k->key;
	pthread_mutex_unlock(&k->o->lock);
}

/* Key 1 queues six jobs, then keys 2 and 3 one each: they run second and third, not after key 1's
 * six (round-robin, issue 20); one key's jobs keep their order. */
static void
test_keys_round_robin(void **state)
{
	struct pool *p = pool_new(1, 16);
	struct gate *g = gate_new();
	struct order o = { .n = 0 };
	struct keyed jobs[8];
	static const unsigned long want[] = { 1, 2, 3, 1, 1, 1, 1, 1 };

	(void)state;
	pthread_mutex_init(&o.lock, NULL);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 1);
	for (int i = 0; i < 8; i++) {
		jobs[i] = (struct keyed){ &o, i < 6 ? 1UL : (unsigned long)i - 4 };
		assert_int_equal(pool_submit_keyed(p, job_record, NULL, NULL, &jobs[i], jobs[i].key), 0);
	}
	gate_open(g);
	pool_stop(p);
	assert_int_equal(o.n, 8);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(o.keys[i], want[i]);
	pool_free(p);
	gate_free(g);
	pthread_mutex_destroy(&o.lock);
}

/* A requeued job is never refused for a full queue, and waits behind the other keys. */
static void
test_requeue_ignores_full_queue(void **state)
{
	struct pool *p = pool_new(1, 1);
	struct gate *g = gate_new();
	atomic_int ran = 0;

	(void)state;
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 1);
	assert_int_equal(pool_submit_keyed(p, job_count, NULL, NULL, &ran, 7), 0);
	assert_int_equal(pool_submit_keyed(p, job_count, NULL, NULL, &ran, 8), -1);	/* full */
	assert_int_equal(pool_requeue(p, job_count, NULL, &ran, 8), 0);
	gate_open(g);
	wait_for(&ran, 2);
	pool_stop(p);
	assert_int_equal(pool_requeue(p, job_count, NULL, &ran, 8), -1);	/* stopped */
	pool_free(p);
	gate_free(g);
}

/* pool_stop_by: waiting jobs with expired expire at once; a job still running at the deadline
 * makes it answer -1 without waiting longer; once it ends, the pool stops and frees. */
static void
test_stop_by_does_not_wait_past_deadline(void **state)
{
	struct pool *p = pool_new(1, 4);
	struct gate *g = gate_new();
	atomic_int ran = 0, expired = 0;
	struct timespec t0, t1;
	double took;

	(void)state;
	assert_int_equal(pool_set_timeout(p, 60), 0);
	assert_int_equal(pool_submit(p, job_blocking, g), 0);
	wait_for(&g->started, 1);
	assert_int_equal(pool_submit_timed(p, job_count, NULL, job_count, &expired), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pool_stop_by(p, (double)t0.tv_sec + (double)t0.tv_nsec / 1e9 + 0.2), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(took >= 0.15 && took < 2);
	assert_int_equal(atomic_load(&expired), 1);	/* ran as expired, not as the job */
	assert_int_equal(pool_submit(p, job_count, &ran), -1);
	gate_open(g);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pool_stop_by(p, (double)t0.tv_sec + 5), 0);
	pool_free(p);
	gate_free(g);
}

/* Threads get the stack asked for. */
static void
job_stack(void *arg)
{
	pthread_attr_t a;
	size_t sz = 0;

	pthread_getattr_np(pthread_self(), &a);
	pthread_attr_getstacksize(&a, &sz);
	pthread_attr_destroy(&a);
	*(size_t *)arg = sz;
}

static void
test_stack_size(void **state)
{
	struct pool *p = pool_new_stack(1, 1, 40UL << 20);
	size_t sz = 0;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_submit(p, job_stack, &sz), 0);
	pool_stop(p);
	assert_true(sz >= 40UL << 20);
	pool_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runs_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_when_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_runs_accepted_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_zero_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_after_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_submits_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_runs_after_the_place_is_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_submitters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_measured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_past_timeout_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_predicted_wait_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_runs_waiting_timed_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_round_robin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requeue_ignores_full_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_by_does_not_wait_past_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_size, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
