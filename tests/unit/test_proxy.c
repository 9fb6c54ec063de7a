/* test_proxy.c -- unit tests for TRUSTED_PROXIES parsing and the X-Forwarded-For walk. */
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
#include "proxy.h"

static const char *
str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr *sa = SA(*ss);

	if (sa->sa_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
		    (socklen_t)len);
	if (sa->sa_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    buf, (socklen_t)len);
	return "none";
}

static struct proxy_list *
list(const char *spec)
{
	char err[256] = "";
	struct proxy_list *p = proxy_list_new(spec, err, sizeof(err));

	if (p == NULL)
		fail_msg("'%s' refused: %s", spec, err);
	return p;
}

static int
trusted(const char *spec, const char *ip)
{
	struct proxy_list *p = list(spec);
	struct sockaddr_storage ss = addr(ip);
	int t = proxy_trusted(p, SA(ss));

	proxy_list_free(p);
	return t;
}

/* The client address for a request from peer with these X-Forwarded-For lines, as text. */
static void
assert_client(const char *spec, const char *peer, const char *const *xff, size_t n,
    const char *want, int from_header)
{
	struct proxy_list *p = list(spec);
	struct sockaddr_storage ps = addr(peer), out;
	char buf[INET6_ADDRSTRLEN];
	int got;

	got = proxy_client(p, SA(ps), xff, n, &out);
	if (strcmp(str(&out, buf, sizeof(buf)), want) != 0 || got != from_header)
		fail_msg("TRUSTED_PROXIES=%s peer %s X-Forwarded-For %s: got %s (%d), want %s (%d)", spec,
		    peer, n > 0 ? xff[n - 1] : "(none)", buf, got, want, from_header);
	proxy_list_free(p);
}

static void
test_parse_good(void **state)
{
	const char *good[] = { "", " ", "10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8",
	    "10.0.0.0/8, 192.168.1.0/24 ,::1,2001:db8::/32", "0.0.0.0/0", "::/0", "1.2.3.4/32",
	    "::ffff:10.0.0.0/104" };
	struct proxy_list *p;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p = list(good[i]);
		proxy_list_free(p);
	}
	p = list("10.0.0.0/8, ::1,fd00::/8");
	assert_int_equal(proxy_list_count(p), 3);
	proxy_list_free(p);
	p = list("");
	assert_int_equal(proxy_list_count(p), 0);
	proxy_list_free(p);
}

static void
test_parse_bad(void **state)
{
	const char *bad[] = { "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
	    "10.0.0.256", "proxy.example", ",", "10.0.0.1,", ",10.0.0.1", "10.0.0.1,,::1",
	    "10.0.0.0/ 8", "1.2.3.4:80", "[::1]", "10.0.0.0/08x", "10.0.0.0/+8" };
	char err[256], many[64 * 12];
	size_t pos = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (proxy_list_new(bad[i], err, sizeof(err)) != NULL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_non_null(strstr(err, "TRUSTED_PROXIES"));
	}
	for (int i = 0; i <= PROXY_MAX_NETS; i++)
		pos += (size_t)snprintf(many + pos, sizeof(many) - pos, "%s10.0.%d.1", i ? "," : "", i);
	assert_null(proxy_list_new(many, err, sizeof(err)));
}

static void
test_trusted_cidr(void **state)
{
	(void)state;
	assert_true(trusted("10.0.0.0/8", "10.255.1.2"));
	assert_false(trusted("10.0.0.0/8", "11.0.0.1"));
	assert_true(trusted("192.168.1.128/25", "192.168.1.200"));
	assert_false(trusted("192.168.1.128/25", "192.168.1.127"));
	assert_true(trusted("127.0.0.1", "127.0.0.1"));
	assert_false(trusted("127.0.0.1", "127.0.0.2"));
	assert_true(trusted("fd00::/8", "fd12:3456::1"));
	assert_false(trusted("fd00::/8", "fe80::1"));
	assert_true(trusted("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(trusted("2001:db8::/33", "2001:db8:8000::1"));
	assert_true(trusted("0.0.0.0/0", "203.0.113.9"));
	assert_false(trusted("0.0.0.0/0", "2001:db8::1"));
	assert_true(trusted("::/0", "2001:db8::1"));
	/* An IPv4 peer seen on a dual-stack socket matches the IPv4 block. */
	assert_true(trusted("10.0.0.0/8", "::ffff:10.1.2.3"));
	assert_false(trusted("", "10.1.2.3"));
}

static void
test_xff_walk(void **state)
{
	const char *one[] = { "203.0.113.7" };
	const char *chain[] = { "198.51.100.1, 203.0.113.7, 10.0.0.2" };
	const char *spoof[] = { "6.6.6.6, 203.0.113.7" };
	const char *all_trusted[] = { "10.0.0.5, 10.0.0.2" };
	const char *garbage_left[] = { "not an ip, <script>, 203.0.113.7" };
	const char *garbage_right[] = { "203.0.113.7, unknown" };
	const char *empty_elem[] = { "203.0.113.7,,10.0.0.2" };
	const char *empty[] = { "" };
	const char *port[] = { "203.0.113.7:4711" };
	const char *v6[] = { "2001:db8::1, fd00::2" };
	const char *lines[] = { "198.51.100.1", "203.0.113.7, 10.0.0.3" };
	const char *lines_trusted[] = { "10.0.0.9", "10.0.0.8" };
	const char *spaces[] = { "\t203.0.113.7 ,  10.0.0.2 " };

	(void)state;
	/* Without a trusted peer the header is never read. */
	assert_client("", "192.0.2.1", one, 1, "192.0.2.1", 0);
	assert_client("10.0.0.0/8", "192.0.2.1", one, 1, "192.0.2.1", 0);
	/* A trusted peer: the right-most untrusted hop. */
	assert_client("10.0.0.0/8", "10.0.0.1", one, 1, "203.0.113.7", 1);
	assert_client("10.0.0.0/8", "10.0.0.1", chain, 1, "203.0.113.7", 1);
	assert_client("10.0.0.0/8", "10.0.0.1", spoof, 1, "203.0.113.7", 1);
	assert_client("10.0.0.0/8", "10.0.0.1", all_trusted, 1, "10.0.0.5", 1);
	/* What a client wrote left of its own address is never read. */
	assert_client("10.0.0.0/8", "10.0.0.1", garbage_left, 1, "203.0.113.7", 1);
	/* Malformed where it is read: the peer. */
	assert_client("10.0.0.0/8", "10.0.0.1", garbage_right, 1, "10.0.0.1", 0);
	assert_client("10.0.0.0/8", "10.0.0.1", empty_elem, 1, "10.0.0.1", 0);
	assert_client("10.0.0.0/8", "10.0.0.1", empty, 1, "10.0.0.1", 0);
	assert_client("10.0.0.0/8", "10.0.0.1", port, 1, "10.0.0.1", 0);
	assert_client("10.0.0.0/8", "10.0.0.1", NULL, 0, "10.0.0.1", 0);
	assert_client("fd00::/8", "fd00::1", v6, 1, "2001:db8::1", 1);
	assert_client("10.0.0.0/8", "::ffff:10.0.0.1", one, 1, "203.0.113.7", 1);
	/* Several header lines are one list, in their order. */
	assert_client("10.0.0.0/8", "10.0.0.1", lines, 2, "203.0.113.7", 1);
	assert_client("10.0.0.0/8", "10.0.0.1", lines_trusted, 2, "10.0.0.9", 1);
	assert_client("10.0.0.0/8", "10.0.0.1", spaces, 1, "203.0.113.7", 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_trusted_cidr),
		cmocka_unit_test(test_xff_walk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
