/* test_throttle.c -- unit tests for the per-address buckets of failed password checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "test_addr.h"
#include "throttle.h"

/* A check from ip at now; 1 (right) gives its token back. */
static enum throttle_verdict
check(struct throttle *t, const char *ip, double now, int right)
{
	struct sockaddr_storage ss = addr(ip);
	enum throttle_verdict v = throttle_take(t, SA(ss), now);

	if (v == THROTTLE_ALLOW && right)
		throttle_refund(t, SA(ss), now);
	return v;
}

/* n failed checks, each allowed. */
static void
failures(struct throttle *t, const char *ip, double now, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(check(t, ip, now, 0), THROTTLE_ALLOW);
}

static void
test_burst_then_refused(void **state)
{
	struct throttle *t = throttle_new(60, 5);

	(void)state;
	assert_non_null(t);
	failures(t, "192.0.2.1", 100, 5);
	assert_int_equal(check(t, "192.0.2.1", 100, 0), THROTTLE_REFUSE_FIRST);
	assert_int_equal(check(t, "192.0.2.1", 100.5, 0), THROTTLE_REFUSE);
	/* A right password is refused too while the bucket is empty: nothing is checked. */
	assert_int_equal(check(t, "192.0.2.1", 100.9, 1), THROTTLE_REFUSE);
	/* Other addresses are not touched. */
	assert_int_equal(check(t, "192.0.2.2", 100.9, 0), THROTTLE_ALLOW);
	assert_int_equal(check(t, "2001:db8::1", 100.9, 0), THROTTLE_ALLOW);
	throttle_free(t);
}

/* Checks in flight hold their tokens: a crowd of connections cannot outrun the bucket. */
static void
test_in_flight_checks_hold_tokens(void **state)
{
	struct throttle *t = throttle_new(60, 3);
	struct sockaddr_storage ss = addr("192.0.2.9");

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(throttle_take(t, SA(ss), 1), THROTTLE_ALLOW);
	assert_int_equal(throttle_take(t, SA(ss), 1), THROTTLE_REFUSE_FIRST);
	/* Two succeed and give their tokens back; no more than the burst comes back. */
	throttle_refund(t, SA(ss), 1);
	throttle_refund(t, SA(ss), 1);
	assert_int_equal(throttle_take(t, SA(ss), 1), THROTTLE_ALLOW);
	assert_int_equal(throttle_take(t, SA(ss), 1), THROTTLE_ALLOW);
	assert_int_equal(throttle_take(t, SA(ss), 1), THROTTLE_REFUSE_FIRST);
	for (int i = 0; i < 10; i++)
		throttle_refund(t, SA(ss), 1);
	failures(t, "192.0.2.9", 1, 3);
	assert_int_equal(check(t, "192.0.2.9", 1, 0), THROTTLE_REFUSE_FIRST);
	/* Refunding an address never seen changes nothing. */
	ss = addr("192.0.2.10");
	throttle_refund(t, SA(ss), 1);
	failures(t, "192.0.2.10", 1, 3);
	assert_int_equal(check(t, "192.0.2.10", 1, 0), THROTTLE_REFUSE_FIRST);
	throttle_free(t);
}

static void
test_refill(void **state)
{
	struct throttle *t = throttle_new(60, 3);	/* one token a second */

	(void)state;
	failures(t, "192.0.2.1", 10, 3);
	assert_int_equal(check(t, "192.0.2.1", 10, 0), THROTTLE_REFUSE_FIRST);
	assert_int_equal(check(t, "192.0.2.1", 10.9, 0), THROTTLE_REFUSE);
	assert_int_equal(check(t, "192.0.2.1", 11.01, 0), THROTTLE_ALLOW);
	assert_int_equal(check(t, "192.0.2.1", 11.5, 0), THROTTLE_REFUSE_FIRST);
	/* A long pause refills the bucket to the burst, no further. */
	failures(t, "192.0.2.1", 1000, 3);
	assert_int_equal(check(t, "192.0.2.1", 1000, 0), THROTTLE_REFUSE_FIRST);
	/* A clock that goes backwards takes nothing away and adds nothing. */
	assert_int_equal(check(t, "192.0.2.1", 900, 0), THROTTLE_REFUSE);
	assert_int_equal(check(t, "192.0.2.1", 1001.01, 0), THROTTLE_ALLOW);
	throttle_free(t);
}

static void
test_success_costs_nothing(void **state)
{
	struct throttle *t = throttle_new(60, 2);

	(void)state;
	for (int i = 0; i < 10000; i++)
		assert_int_equal(check(t, "192.0.2.1", 5, 1), THROTTLE_ALLOW);
	failures(t, "192.0.2.1", 5, 2);
	throttle_free(t);
}

static void
test_off(void **state)
{
	struct throttle *t = throttle_new(0, 1);

	(void)state;
	failures(t, "192.0.2.1", 1, 100);
	assert_int_equal(throttle_retry_after(t), 1);
	throttle_free(t);
	/* NULL is a throttle that never refuses. */
	failures(NULL, "192.0.2.1", 1, 100);
	throttle_free(NULL);
}

static void
test_address_keys(void **state)
{
	struct throttle *t = throttle_new(60, 1);

	(void)state;
	/* An IPv6 host is counted by its /64. */
	failures(t, "2001:db8:1:2::1", 1, 1);
	assert_int_equal(check(t, "2001:db8:1:2:ffff:ffff:ffff:ffff", 1, 0), THROTTLE_REFUSE_FIRST);
	failures(t, "2001:db8:1:3::1", 1, 1);
	/* An IPv4-mapped IPv6 address (a dual-stack listener) is its IPv4 address. */
	failures(t, "198.51.100.7", 1, 1);
	assert_int_equal(check(t, "::ffff:198.51.100.7", 1, 0), THROTTLE_REFUSE_FIRST);
	failures(t, "198.51.100.8", 1, 1);
	/* ::/64 holds no IPv4 address. */
	failures(t, "::1", 1, 1);
	failures(t, "0.0.0.1", 1, 1);
	throttle_free(t);
}

/* The table has a fixed size: a crowd of addresses failing once each replaces fuller buckets
 * first, so an address that used up its failures stays refused. */
static void
test_crowd_keeps_the_empty_bucket(void **state)
{
	struct throttle *t = throttle_new(1, 3);
	char ip[INET_ADDRSTRLEN];

	(void)state;
	failures(t, "192.0.2.1", 1, 3);
	for (unsigned i = 0; i < 20 * THROTTLE_SETS * THROTTLE_WAYS; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
		failures(t, ip, 2, 1);
	}
	assert_int_equal(check(t, "192.0.2.1", 2, 0), THROTTLE_REFUSE_FIRST);
	/* Whether remembered or replaced, one failure leaves an address room for more. */
	failures(t, "10.0.0.0", 2, 2);
	throttle_free(t);
}

static void
test_retry_after(void **state)
{
	static const struct { unsigned per_minute, want; } cases[] = {
		{ 60, 1 }, { 600, 1 }, { 30, 2 }, { 7, 9 }, { 6, 10 }, { 1, 60 }, { 59, 2 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct throttle *t = throttle_new(cases[i].per_minute, 1);

		if (throttle_retry_after(t) != cases[i].want)
			fail_msg("%u a minute: Retry-After %u, want %u", cases[i].per_minute,
			    throttle_retry_after(t), cases[i].want);
		throttle_free(t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refused),
		cmocka_unit_test(test_in_flight_checks_hold_tokens),
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_success_costs_nothing),
		cmocka_unit_test(test_off),
		cmocka_unit_test(test_address_keys),
		cmocka_unit_test(test_crowd_keeps_the_empty_bucket),
		cmocka_unit_test(test_retry_after),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
