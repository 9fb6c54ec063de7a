/* test_guard.c -- unit tests for guard: eviction order, refusal, clients that closed, body rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guard.h"
#include "util.h"

#define TEST_TIMEOUT 10		/* seconds; a hung watchdog kills the process */
#define WAIT_MAX     2.0	/* seconds a cut may take */
#define PAIRS        4

/* A loopback TCP connection: [0] the client, [1] the server side the guard watches. */
static void
tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
	fds[1] = accept(l, NULL, NULL);
	assert_true(fds[1] >= 0);
	close(l);
}

/* 1 when the guard has shut the server side down (both ways: POLLHUP). */
static int
was_cut(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
}

static int
cut_within(int fd, double seconds)
{
	double end = util_now() + seconds;

	while (util_now() < end) {
		if (was_cut(fd))
			return 1;
		usleep(10000);
	}
	return was_cut(fd);
}

struct fixture {
	struct guard *g;
	struct guard_conn *c[PAIRS];
	int fds[PAIRS][2];
};

static int
setup_with(void **state, double timeout, unsigned rate)
{
	struct guard_limits l = { .max_connections = PAIRS, .timeout = timeout, .min_rate = rate };
	struct fixture *f = calloc(1, sizeof(*f));

	alarm(TEST_TIMEOUT);
	assert_non_null(f);
	assert_non_null(f->g = guard_new(&l));
	for (int i = 0; i < PAIRS; i++) {
		tcp_pair(f->fds[i]);
		assert_int_equal(guard_admit(f->g), 0);
		assert_non_null(f->c[i] = guard_open(f->g, f->fds[i][1]));
		usleep(2000);	/* distinct ages */
	}
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_with(state, 30, 1024);
}

static int
setup_short(void **state)
{
	return setup_with(state, 0.2, 1000);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < PAIRS; i++) {
		guard_close(f->g, f->c[i]);
		close(f->fds[i][0]);
		close(f->fds[i][1]);
	}
	guard_free(f->g);
	free(f);
	alarm(0);
	return 0;
}

static void
test_table_size_has_room_for_cuts(void **state)
{
	(void)state;
	assert_true(guard_table_size(4) >= 4 + 16);
	assert_int_equal(guard_table_size(1000), 1250);
}

static void
test_full_table_evicts_the_longest_idle(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(guard_count(f->g), PAIRS);
	guard_request(f->c[0]);		/* busy: never evicted */
	guard_idle(f->c[2]);		/* idle again just now: the youngest */
	assert_int_equal(guard_admit(f->g), 0);
	assert_false(was_cut(f->fds[0][1]));
	assert_true(was_cut(f->fds[1][1]));
	assert_false(was_cut(f->fds[2][1]));
	assert_false(was_cut(f->fds[3][1]));
	/* The newcomer takes the evicted one's place; the next admission evicts the next longest
	 * idle one, though the evicted one is not closed yet. */
	{
		struct guard_conn *c;
		int fds[2];

		tcp_pair(fds);
		assert_non_null(c = guard_open(f->g, fds[1]));
		assert_int_equal(guard_admit(f->g), 0);
		assert_true(was_cut(f->fds[3][1]));
		assert_false(was_cut(f->fds[2][1]));
		assert_false(was_cut(fds[1]));
		guard_close(f->g, c);
		close(fds[0]);
		close(fds[1]);
	}
}

static void
test_table_of_requests_refuses(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < PAIRS; i++)
		guard_request(f->c[i]);
	assert_int_equal(guard_admit(f->g), -1);
	for (int i = 0; i < PAIRS; i++)
		assert_false(was_cut(f->fds[i][1]));
	assert_int_equal(guard_busy(f->g), PAIRS);
}

static void
test_client_closed_is_freed_at_once(void **state)
{
	struct fixture *f = *state;
	double t0 = util_now();

	assert_int_equal(send(f->fds[0][0], "GET / HT", 8, 0), 8);
	close(f->fds[0][0]);
	f->fds[0][0] = -1;
	usleep(20000);
	/* The server side read the bytes, as libmicrohttpd does, and missed the FIN. */
	{
		char buf[16];

		assert_int_equal(recv(f->fds[0][1], buf, sizeof(buf), MSG_DONTWAIT), 8);
	}
	assert_true(cut_within(f->fds[0][1], WAIT_MAX));
	print_message("guard: freed a closed connection in %.3f s\n", util_now() - t0);
	assert_false(was_cut(f->fds[1][1]));
}

static void
test_unread_bytes_are_left_to_the_reader(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(send(f->fds[0][0], "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
	close(f->fds[0][0]);
	f->fds[0][0] = -1;
	usleep(300000);
	assert_false(was_cut(f->fds[0][1]));
}

static void
test_half_close_after_a_request_keeps_it(void **state)
{
	struct fixture *f = *state;

	guard_request(f->c[0]);		/* a whole head, no body: the answer is owed */
	shutdown(f->fds[0][0], SHUT_WR);
	usleep(300000);
	assert_false(was_cut(f->fds[0][1]));
	/* Mid-body, the body can never be whole: cut. */
	guard_request(f->c[1]);
	guard_body_begin(f->c[1]);
	shutdown(f->fds[1][0], SHUT_WR);
	assert_true(cut_within(f->fds[1][1], WAIT_MAX));
}

static void
test_slow_body_is_cut(void **state)
{
	struct fixture *f = *state;

	guard_request(f->c[0]);
	guard_body_begin(f->c[0]);
	assert_int_equal(guard_body(f->c[0], 100), 0);		/* within the grace */
	usleep(300000);
	assert_int_equal(guard_body(f->c[0], 10), -1);		/* 110 bytes in 0.3 s < 1000/s */
	assert_int_equal(guard_body(f->c[0], 1000000), -1);	/* cut stays cut */
	/* The watchdog cuts a body that stops coming as well. */
	guard_request(f->c[1]);
	guard_body_begin(f->c[1]);
	assert_true(cut_within(f->fds[1][1], WAIT_MAX));
}

static void
test_fast_body_is_not_cut(void **state)
{
	struct fixture *f = *state;

	guard_request(f->c[0]);
	guard_body_begin(f->c[0]);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(guard_body(f->c[0], 1000), 0);
		usleep(50000);
	}
	guard_body_end(f->c[0]);		/* whole: waiting for a scan is no breach */
	usleep(300000);
	assert_false(was_cut(f->fds[0][1]));
	guard_idle(f->c[0]);
}

static void
test_discarded_body_has_a_cap_and_a_deadline(void **state)
{
	struct fixture *f = *state;

	guard_request(f->c[0]);
	guard_body_begin(f->c[0]);
	guard_discard(f->c[0], 5000);
	assert_int_equal(guard_body(f->c[0], 5000), 0);
	assert_int_equal(guard_body(f->c[0], 1), -1);
	guard_request(f->c[1]);
	guard_body_begin(f->c[1]);
	guard_discard(f->c[1], UINT64_MAX);
	for (int i = 0; i < 20 && guard_body(f->c[1], 100000) == 0; i++)
		usleep(50000);
	assert_int_equal(guard_body(f->c[1], 100000), -1);	/* fast, but past the deadline */
}

static void
test_idle_connection_times_out(void **state)
{
	struct fixture *f = *state;

	assert_true(cut_within(f->fds[0][1], WAIT_MAX));
}

static void
test_null_is_accepted(void **state)
{
	(void)state;
	guard_request(NULL);
	guard_body_begin(NULL);
	assert_int_equal(guard_body(NULL, 10), 0);
	guard_discard(NULL, 1);
	guard_body_end(NULL);
	guard_idle(NULL);
	guard_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_size_has_room_for_cuts),
		cmocka_unit_test_setup_teardown(test_full_table_evicts_the_longest_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_of_requests_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_closed_is_freed_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread_bytes_are_left_to_the_reader, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_half_close_after_a_request_keeps_it, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_slow_body_is_cut, setup_short, teardown),
		cmocka_unit_test_setup_teardown(test_fast_body_is_not_cut, setup_short, teardown),
		cmocka_unit_test_setup_teardown(test_discarded_body_has_a_cap_and_a_deadline,
		    setup_short, teardown),
		cmocka_unit_test_setup_teardown(test_idle_connection_times_out, setup_short, teardown),
		cmocka_unit_test(test_null_is_accepted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
