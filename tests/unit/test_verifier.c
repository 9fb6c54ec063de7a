/* test_verifier.c -- unit tests for the password verifier: one check per credential, round-robin
 * by address, a full queue drops the check of the address served most, admit only for new checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "verifier.h"

#define WAIT_MAX_MS	5000
#define ORDER_MAX	32

/* A check that blocks until the gate opens and records the order of the passwords it checked;
 * a password starting with 'r' is right. */
struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int open;
	atomic_int started;
	int n;
	char order[ORDER_MAX][8];
};

static int
fake_check(void *ctx, const char *user, size_t ulen, const char *pass, size_t plen)
{
	struct fake *f = ctx;

	(void)user;
	(void)ulen;
	atomic_fetch_add(&f->started, 1);
	pthread_mutex_lock(&f->lock);
	while (!f->open)
		pthread_cond_wait(&f->cond, &f->lock);
	if (f->n < ORDER_MAX)
		snprintf(f->order[f->n++], sizeof(f->order[0]), "%.*s", (int)plen, pass);
	pthread_mutex_unlock(&f->lock);
	return pass[0] == 'r';
}

static void
fake_open(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->open = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void
wait_started(struct fake *f, int n)
{
	for (int i = 0; i < WAIT_MAX_MS && atomic_load(&f->started) < n; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&f->started), n);
}

/* A request: its verdict once done, and whether admit charged it. */
struct req {
	atomic_int verdict;	/* 99: not done yet */
	atomic_int calls;
	int charged;
	int refuse;
	long standing;		/* what admit answers */
};

static void
req_done(void *arg, int verdict)
{
	struct req *r = arg;

	atomic_store(&r->verdict, verdict);
	atomic_fetch_add(&r->calls, 1);
}

static long
req_admit(void *arg)
{
	struct req *r = arg;

	r->charged++;
	return r->refuse ? -1 : r->standing;
}

static void
req_init(struct req *r)
{
	memset(r, 0, sizeof(*r));
	atomic_init(&r->verdict, 99);
	atomic_init(&r->calls, 0);
}

static void
addr_of(unsigned char *a, int n)
{
	memset(a, 0, VERIFIER_ADDR_LEN);
	a[VERIFIER_ADDR_LEN - 1] = (unsigned char)n;
}

static enum verifier_submitted
submit(struct verifier *v, int from, const char *pass, struct req *r)
{
	unsigned char a[VERIFIER_ADDR_LEN];

	addr_of(a, from);
	return verifier_submit(v, a, "u", 1, pass, strlen(pass), req_admit, req_done, r);
}

static void
wait_done(struct req *r)
{
	for (int i = 0; i < WAIT_MAX_MS && atomic_load(&r->calls) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&r->calls), 1);
}

static int
setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fake *f = *state;

	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

/* The bug of issue 22: requests with the same right password, arriving before the first check has
 * cached it, each took a token. Now one check runs; the others wait for it and admit is not asked. */
static void
test_same_credentials_checked_once(void **state)
{
	struct fake *f = *state;
	struct verifier *v = verifier_new(1, 64, fake_check, f);
	struct req r[10];

	assert_non_null(v);
	for (int i = 0; i < 10; i++) {
		req_init(&r[i]);
		assert_int_equal(submit(v, 1, "right", &r[i]), i == 0 ? VERIFIER_QUEUED : VERIFIER_JOINED);
	}
	wait_started(f, 1);
	/* Joining a running check works as joining a waiting one. */
	struct req late;
	req_init(&late);
	assert_int_equal(submit(v, 2, "right", &late), VERIFIER_JOINED);
	fake_open(f);
	for (int i = 0; i < 10; i++) {
		wait_done(&r[i]);
		assert_int_equal(atomic_load(&r[i].verdict), 1);
		assert_int_equal(r[i].charged, i == 0);
	}
	wait_done(&late);
	assert_int_equal(late.charged, 0);
	verifier_free(v);
	assert_int_equal(f->n, 1);
}

/* Address 1 queued three checks before addresses 2 and 3 came: they are served between them. */
static void
test_round_robin_by_address(void **state)
{
	struct fake *f = *state;
	struct verifier *v = verifier_new(1, 64, fake_check, f);
	static const struct { int from; const char *pass; } in[] = {
		{ 1, "a0" }, { 1, "a1" }, { 1, "a2" }, { 1, "a3" }, { 2, "b1" }, { 2, "b2" }, { 3, "c1" },
	};
	static const char *const want[] = { "a0", "b1", "c1", "a1", "b2", "a2", "a3" };
	struct req r[7];

	assert_non_null(v);
	req_init(&r[0]);
	assert_int_equal(submit(v, in[0].from, in[0].pass, &r[0]), VERIFIER_QUEUED);
	wait_started(f, 1);
	for (size_t i = 1; i < 7; i++) {
		req_init(&r[i]);
		assert_int_equal(submit(v, in[i].from, in[i].pass, &r[i]), VERIFIER_QUEUED);
	}
	assert_int_equal(verifier_waiting(v), 6);
	fake_open(f);
	verifier_free(v);
	assert_int_equal(f->n, 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(f->order[i], want[i]);
}

/* A full queue: a newcomer's check takes the place of the last check of the address with the
 * most waiting, which is dropped (its waiter told); that address's own next check is refused. */
static void
test_full_queue_drops_the_busiest(void **state)
{
	struct fake *f = *state;
	struct verifier *v = verifier_new(1, 2, fake_check, f);
	struct req x0, x1, x2, x3, y1, z1;

	assert_non_null(v);
	req_init(&x0);
	req_init(&x1);
	req_init(&x2);
	req_init(&x3);
	req_init(&y1);
	req_init(&z1);
	assert_int_equal(submit(v, 1, "x0", &x0), VERIFIER_QUEUED);
	wait_started(f, 1);
	assert_int_equal(submit(v, 1, "x1", &x1), VERIFIER_QUEUED);
	assert_int_equal(submit(v, 1, "x2", &x2), VERIFIER_QUEUED);
	assert_int_equal(submit(v, 2, "ry1", &y1), VERIFIER_QUEUED);
	wait_done(&x2);
	assert_int_equal(atomic_load(&x2.verdict), VERIFIER_DROPPED);
	assert_int_equal(submit(v, 1, "x3", &x3), VERIFIER_FULL);
	assert_int_equal(x3.charged, 1);
	/* Address 3 against 1 and 2 with one check each: 1 was served last, so x1 goes. */
	assert_int_equal(submit(v, 3, "rz1", &z1), VERIFIER_QUEUED);
	wait_done(&x1);
	assert_int_equal(atomic_load(&x1.verdict), VERIFIER_DROPPED);
	fake_open(f);
	verifier_free(v);
	assert_int_equal(atomic_load(&y1.verdict), 1);
	assert_int_equal(atomic_load(&z1.verdict), 1);
	assert_int_equal(atomic_load(&x0.verdict), 0);
	assert_int_equal(f->n, 3);
}

/* An address that spent its checks (a lower standing) waits behind one that did not, whatever
 * their order of arrival; a full queue drops the lower standing's check for a higher one. */
static void
test_higher_standing_first(void **state)
{
	struct fake *f = *state;
	struct verifier *v = verifier_new(1, 2, fake_check, f);
	static const char *const want[] = { "x0", "rn", "p1" };
	struct req x0, p1, p2, n;

	assert_non_null(v);
	req_init(&x0);
	req_init(&p1);
	req_init(&p2);
	req_init(&n);
	assert_int_equal(submit(v, 9, "x0", &x0), VERIFIER_QUEUED);
	wait_started(f, 1);
	assert_int_equal(submit(v, 1, "p1", &p1), VERIFIER_QUEUED);
	assert_int_equal(submit(v, 2, "p2", &p2), VERIFIER_QUEUED);
	n.standing = 19;
	assert_int_equal(submit(v, 3, "rn", &n), VERIFIER_QUEUED);
	wait_done(&p2);		/* the address that came last of the two with standing 0 */
	assert_int_equal(atomic_load(&p2.verdict), VERIFIER_DROPPED);
	assert_int_equal(atomic_load(&p1.calls), 0);
	fake_open(f);
	verifier_free(v);
	assert_int_equal(atomic_load(&n.verdict), 1);
	assert_int_equal(f->n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(f->order[i], want[i]);
}

/* admit says no: nothing queued, done never runs; a stopped verifier queues nothing. */
static void
test_refused_and_stopped(void **state)
{
	struct fake *f = *state;
	struct verifier *v = verifier_new(2, 0, fake_check, f);
	struct req r, s;

	assert_non_null(v);
	fake_open(f);
	req_init(&r);
	r.refuse = 1;
	assert_int_equal(submit(v, 1, "x", &r), VERIFIER_REFUSED);
	assert_int_equal(r.charged, 1);
	req_init(&s);
	assert_int_equal(submit(v, 1, "rs", &s), VERIFIER_QUEUED);	/* queue 0: a free thread */
	wait_done(&s);
	verifier_stop(v);
	req_init(&r);
	assert_int_equal(submit(v, 1, "y", &r), VERIFIER_ERROR);
	assert_int_equal(r.charged, 0);
	verifier_free(v);
	assert_int_equal(atomic_load(&r.calls), 0);
}

/* Stop runs the checks still waiting. */
static void
test_stop_runs_waiting(void **state)
{
	struct fake *f = *state;
	struct verifier *v = verifier_new(1, 8, fake_check, f);
	struct req r[4];

	assert_non_null(v);
	for (int i = 0; i < 4; i++) {
		char pw[16];

		snprintf(pw, sizeof(pw), "p%d", i);
		req_init(&r[i]);
		assert_int_equal(submit(v, i, pw, &r[i]), VERIFIER_QUEUED);
	}
	fake_open(f);
	verifier_free(v);
	for (int i = 0; i < 4; i++)
		assert_int_equal(atomic_load(&r[i].calls), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_credentials_checked_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_robin_by_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_queue_drops_the_busiest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_higher_standing_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_and_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_runs_waiting, setup, teardown),
	};

	alarm(20);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
