/* test_dnsver.c -- the DNS version module: its parsers on hand-built bytes, its thread against dnsmasq. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dnsver.h"
#include "util.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define RECORD		"0.103.1:59:26120:1616707740:0:63:49191:333"
#define DAILY		26120
#define PKT_MAX		512	/* bytes; every hand-built answer fits a plain UDP message */
#define READY_WAIT	5.0	/* seconds dnsmasq gets to start answering */

/* ---- dnsver_parse_txt ---- */

static int
parse_txt(const char *s, long *v)
{
	return dnsver_parse_txt(s, strlen(s), v);
}

static void
test_txt_good(void **state)
{
	long v = -1;

	(void)state;
	assert_int_equal(parse_txt(RECORD, &v), 0);
	assert_int_equal(v, DAILY);
	assert_int_equal(parse_txt("a:b:7", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse_txt("::0:", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_txt("x:y:9223372036854775807", &v), 0);
	assert_int_equal(v, LONG_MAX);
}

static void
test_txt_bad(void **state)
{
	static const char *const bad[] = {
		"", ":", "::", ":::", "0.103.1", "0.103.1:59", "0.103.1:59:", "0.103.1:59::1",
		"0.103.1:59:abc:1", "0.103.1:59:12a:1", "0.103.1:59: 12:1", "0.103.1:59:+12:1",
		"0.103.1:59:-12:1", "0.103.1:59:12 :1", "0.103.1:59:9223372036854775808",
		"0.103.1:59:99999999999999999999999999999:1", "0.103.1:59:0x10:1",
	};
	long v = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_txt(bad[i], &v) != -1)
			fail_msg("accepted \"%s\" as %ld", bad[i], v);
	}
	assert_int_equal(v, 42);
	assert_int_equal(dnsver_parse_txt(NULL, 0, &v), -1);
}

static void
test_txt_length_bounds(void **state)
{
	const char nul[] = "a:b:12\0" "34:c";
	long v = 0;

	(void)state;
	/* The length, not a NUL, ends the text: a cut record loses its field. */
	assert_int_equal(dnsver_parse_txt(RECORD, 11, &v), -1);
	assert_int_equal(dnsver_parse_txt(RECORD, 12, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(dnsver_parse_txt(nul, sizeof(nul) - 1, &v), -1);
}

/* ---- hand-built DNS answers for dnsver_parse_answer ---- */

struct pkt {
	unsigned char b[PKT_MAX];
	size_t len;
};

static void
put(struct pkt *p, const void *src, size_t n)
{
	assert_true(p->len + n <= sizeof(p->b));
	if (n == 0)	/* memcpy wants a valid pointer even for nothing */
		return;
	memcpy(p->b + p->len, src, n);
	p->len += n;
}

static void
put16(struct pkt *p, unsigned v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(p, b, 2);
}

static void
put32(struct pkt *p, uint32_t v)
{
	put16(p, (unsigned)(v >> 16));
	put16(p, (unsigned)(v & 0xffff));
}

/* Writes name as labels ("a.b" -> 1 a 1 b 0). */
static void
put_name(struct pkt *p, const char *name)
{
	const char *dot;
	size_t n;

	while (*name != '\0') {
		dot = strchr(name, '.');
		n = dot != NULL ? (size_t)(dot - name) : strlen(name);
		assert_true(n > 0 && n < 64);
		put(p, &(unsigned char){ (unsigned char)n }, 1);
		put(p, name, n);
		name += n + (dot != NULL);
	}
	put(p, &(unsigned char){ 0 }, 1);
}

/* Header and question; the question name starts at offset 12, for compression pointers. */
static void
put_head(struct pkt *p, unsigned rcode, unsigned ancount, const char *qname)
{
	p->len = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);	/* response, RD, RA */
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	put_name(p, qname);
	put16(p, 16);		/* TXT */
	put16(p, 1);		/* IN */
}

/* An RR owned by the question name (pointer 0xc00c). */
static void
put_rr(struct pkt *p, unsigned type, uint32_t ttl, const void *rdata, size_t rdlen)
{
	put16(p, 0xc00c);
	put16(p, type);
	put16(p, 1);
	put32(p, ttl);
	put16(p, (unsigned)rdlen);
	put(p, rdata, rdlen);
}

/* TXT rdata from NUL-separated strings, each prefixed by its length. */
static size_t
txt_rdata(unsigned char *out, size_t outlen, const char *const *strs, size_t n)
{
	size_t o = 0, l;

	for (size_t i = 0; i < n; i++) {
		l = strlen(strs[i]);
		assert_true(l < 256 && o + 1 + l <= outlen);
		out[o++] = (unsigned char)l;
		memcpy(out + o, strs[i], l);
		o += l;
	}
	return o;
}

static void
build_txt_answer(struct pkt *p, uint32_t ttl, const char *const *strs, size_t n)
{
	unsigned char rd[PKT_MAX];

	put_head(p, 0, 1, "current.cvd.example");
	put_rr(p, 16, ttl, rd, txt_rdata(rd, sizeof(rd), strs, n));
}

static void
test_answer_simple(void **state)
{
	const char *strs[] = { RECORD };
	struct pkt p;
	char txt[256];
	unsigned ttl = 0;

	(void)state;
	build_txt_answer(&p, 1800, strs, 1);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), 0);
	assert_string_equal(txt, RECORD);
	assert_int_equal(ttl, 1800);
}

static void
test_answer_multi_strings(void **state)
{
	const char *strs[] = { "0.103.1:59:", "", "26120:1616707740", ":0" };
	struct pkt p;
	char txt[256];
	unsigned ttl = 0;
	long v = 0;

	(void)state;
	build_txt_answer(&p, 7, strs, 4);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), 0);
	assert_string_equal(txt, "0.103.1:59:26120:1616707740:0");
	assert_int_equal(ttl, 7);
	assert_int_equal(dnsver_parse_txt(txt, strlen(txt), &v), 0);
	assert_int_equal(v, DAILY);
}

static void
test_answer_cname_first(void **state)
{
	const char *strs[] = { RECORD };
	unsigned char rd[PKT_MAX];
	size_t rdlen;
	struct pkt p;
	char txt[256];
	unsigned ttl = 0;
	size_t target;

	(void)state;
	put_head(&p, 0, 2, "alias.example");
	/* CNAME alias.example -> current.cvd.example, whose name the TXT RR then points at. */
	put16(&p, 0xc00c);
	put16(&p, 5);
	put16(&p, 1);
	put32(&p, 99);
	put16(&p, 21);
	target = p.len;
	put_name(&p, "current.cvd.example");
	put16(&p, 0xc000 | (unsigned)target);
	put16(&p, 16);
	put16(&p, 1);
	put32(&p, 300);
	rdlen = txt_rdata(rd, sizeof(rd), strs, 1);
	put16(&p, (unsigned)rdlen);
	put(&p, rd, rdlen);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), 0);
	assert_string_equal(txt, RECORD);
	assert_int_equal(ttl, 300);
}

static void
test_answer_truncated(void **state)
{
	const char *strs[] = { "0.103.1:59:", "26120" };
	struct pkt p;
	char txt[256];
	unsigned ttl;

	(void)state;
	build_txt_answer(&p, 60, strs, 2);
	for (size_t n = 0; n < p.len; n++) {
		if (dnsver_parse_answer(p.b, n, txt, sizeof(txt), &ttl) != -1)
			fail_msg("accepted a %zu-byte prefix of a %zu-byte answer", n, p.len);
	}
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), 0);
}

static void
test_answer_bad_strings(void **state)
{
	unsigned char over[] = { 5, 'a', 'b' };		/* claims 5, has 2 */
	unsigned char nul[] = { 3, 'a', 0, 'b' };
	struct pkt p;
	char txt[256];
	unsigned ttl;

	(void)state;
	put_head(&p, 0, 1, "x.example");
	put_rr(&p, 16, 60, over, sizeof(over));
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), -1);
	put_head(&p, 0, 1, "x.example");
	put_rr(&p, 16, 60, nul, sizeof(nul));
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), -1);
	put_head(&p, 0, 1, "x.example");
	put_rr(&p, 16, 60, NULL, 0);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), -1);
}

static void
test_answer_small_buffer(void **state)
{
	const char *strs[] = { "abcd", "efgh" };
	struct pkt p;
	char txt[9];
	unsigned ttl;

	(void)state;
	build_txt_answer(&p, 60, strs, 2);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, 8, &ttl), -1);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, 0, &ttl), -1);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), 0);
	assert_string_equal(txt, "abcdefgh");
}

static void
test_answer_no_txt(void **state)
{
	unsigned char a[4] = { 127, 0, 0, 2 };
	const char *strs[] = { RECORD };
	struct pkt p;
	char txt[256];
	unsigned ttl;

	(void)state;
	put_head(&p, 0, 0, "x.example");
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), -1);
	put_head(&p, 0, 1, "x.example");
	put_rr(&p, 1, 60, a, sizeof(a));
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), -1);
	/* An error answer is no answer, whatever it carries. */
	build_txt_answer(&p, 60, strs, 1);
	p.b[3] |= 3;	/* NXDOMAIN */
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), -1);
	assert_int_equal(dnsver_parse_answer(NULL, 0, txt, sizeof(txt), &ttl), -1);
}

static void
test_answer_ttl_top_bit(void **state)
{
	const char *strs[] = { RECORD };
	struct pkt p;
	char txt[256];
	unsigned ttl = 1;

	(void)state;
	build_txt_answer(&p, 0x80000000u, strs, 1);
	assert_int_equal(dnsver_parse_answer(p.b, p.len, txt, sizeof(txt), &ttl), 0);
	assert_int_equal(ttl, 0);
}

/* ---- dnsmasq ---- */

struct dnsmasq {
	pid_t pid;
	int port;
};

/* A UDP port nobody holds right now (on 127.0.0.1). */
static int
free_udp_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd, port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Sends one TXT query for current.cvd.example; 0 when any answer came back. */
static int
probe(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { 0, 200000 };
	struct pkt q;
	unsigned char buf[PKT_MAX];
	int fd, rc = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	put_head(&q, 0, 0, "current.cvd.example");
	q.b[2] = 0x01;	/* a query with RD, not a response */
	q.b[3] = 0;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, q.b, q.len, 0, (struct sockaddr *)&sa, sizeof(sa)) == (ssize_t)q.len &&
	    recv(fd, buf, sizeof(buf), 0) > 0)
		rc = 0;
	close(fd);
	return rc;
}

static void
dnsmasq_exec(pid_t parent, int port, const char *ttl)
{
	char portarg[32], ttlarg[64];
	char *argv[] = {
		DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		portarg, "--listen-address=127.0.0.1", "--bind-interfaces", "--local=/example/",
		"--txt-record=current.cvd.example," RECORD,
		"--txt-record=multi.cvd.example,0.103.1:59:,26120:1616707740",
		"--txt-record=bad.cvd.example,garbage",
		"--cname=alias.cvd.example,current.cvd.example",
		"--host-record=aonly.cvd.example,127.0.0.2",
		ttl != NULL ? ttlarg : NULL, NULL,
	};
	int fd;

	/* A test that aborts (a failed assertion, a sanitizer) must not leave dnsmasq behind. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
		_exit(127);
	fd = open("/dev/null", O_RDWR);
	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	snprintf(ttlarg, sizeof(ttlarg), "--local-ttl=%s", ttl != NULL ? ttl : "");
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execv(DNSMASQ, argv);
	_exit(127);
}

static void
dnsmasq_stop(struct dnsmasq *m)
{
	if (m->pid <= 0)
		return;
	kill(m->pid, SIGTERM);
	waitpid(m->pid, NULL, 0);
	m->pid = 0;
}

/* Starts dnsmasq on port (0: a free one) and waits until it answers. ttl: --local-ttl or NULL. */
static int
dnsmasq_start(struct dnsmasq *m, int port, const char *ttl)
{
	pid_t self = getpid();
	double until;

	for (int attempt = 0; attempt < 5; attempt++) {
		m->port = port != 0 ? port : free_udp_port();
		m->pid = fork();
		assert_true(m->pid >= 0);
		if (m->pid == 0)
			dnsmasq_exec(self, m->port, ttl);
		until = util_now() + READY_WAIT;
		while (util_now() < until) {
			if (probe(m->port) == 0)
				return 0;
			/* It died, likely on a port taken meanwhile: try another. */
			if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
				m->pid = 0;
				break;
			}
		}
		dnsmasq_stop(m);
	}
	return -1;
}

static int
dnsmasq_missing(void)
{
	return access(DNSMASQ, X_OK) != 0;
}

static struct dnsver *
dnsver_at(const char *name, int port)
{
	char server[64], err[256] = "";
	struct dnsver *d;

	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	d = dnsver_new(name, server, err, sizeof(err));
	if (d == NULL)
		fail_msg("dnsver_new(%s, %s): %s", name, server, err);
	return d;
}

/* Frees d and checks it did not take long, whatever the thread was doing. */
static void
free_quickly(struct dnsver *d)
{
	double t0 = util_now(), took;

	dnsver_free(d);
	took = util_now() - t0;
	if (took > 1.0)
		fail_msg("dnsver_free took %.2f s", took);
}

static void
test_lookup_dnsmasq(void **state)
{
	const char *names[] = { "current.cvd.example", "multi.cvd.example", "alias.cvd.example" };
	struct dnsmasq m;
	struct dnsver *d;
	char err[256] = "";
	long v = 0;
	unsigned secs = 0;

	(void)state;
	if (dnsmasq_missing())
		skip();
	assert_int_equal(dnsmasq_start(&m, 0, NULL), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		d = dnsver_at(names[i], m.port);
		if (dnsver_get(d, &v, err, sizeof(err)) != 0)
			fail_msg("%s: %s", names[i], err);
		assert_int_equal(v, DAILY);
		/* dnsmasq serves its own records with TTL 0 unless --local-ttl: clamped up. */
		assert_int_equal(dnsver_cache_ttl(d, &secs), 0);
		assert_int_equal(secs, DNSVER_MIN_TTL);
		free_quickly(d);
	}
	dnsmasq_stop(&m);
}

static void
check_ttl(const char *local_ttl, unsigned want)
{
	struct dnsmasq m;
	struct dnsver *d;
	char err[256] = "";
	long v = 0;
	unsigned secs = 0;

	assert_int_equal(dnsmasq_start(&m, 0, local_ttl), 0);
	d = dnsver_at("current.cvd.example", m.port);
	if (dnsver_get(d, &v, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(dnsver_cache_ttl(d, &secs), 0);
	assert_int_equal(secs, want);
	/* Within the TTL the value is served from memory: the server may go away. */
	dnsmasq_stop(&m);
	assert_int_equal(dnsver_get(d, &v, err, sizeof(err)), 0);
	assert_int_equal(v, DAILY);
	free_quickly(d);
}

static void
test_ttl_honoured(void **state)
{
	(void)state;
	if (dnsmasq_missing())
		skip();
	check_ttl("300", 300);
	check_ttl("59", DNSVER_MIN_TTL);
	check_ttl("100000", DNSVER_MAX_TTL);
}

static void
expect_failure(int port, const char *name, const char *why)
{
	struct dnsver *d = dnsver_at(name, port);
	char err[256] = "";
	long v = 42;
	double t0 = util_now();

	assert_int_equal(dnsver_get(d, &v, err, sizeof(err)), -1);
	if (util_now() - t0 > DNSVER_FIRST_WAIT + 0.5)
		fail_msg("%s: dnsver_get took %.2f s", name, util_now() - t0);
	assert_int_equal(v, 42);
	if (strstr(err, why) == NULL)
		fail_msg("%s: reason \"%s\" lacks \"%s\"", name, err, why);
	free_quickly(d);
}

static void
test_lookup_failures(void **state)
{
	struct dnsmasq m;

	(void)state;
	if (dnsmasq_missing())
		skip();
	assert_int_equal(dnsmasq_start(&m, 0, NULL), 0);
	expect_failure(m.port, "nothere.cvd.example", "not found");
	expect_failure(m.port, "aonly.cvd.example", "no data");
	expect_failure(m.port, "bad.cvd.example", "has no daily version");
	dnsmasq_stop(&m);
}

static void
test_closed_port(void **state)
{
	(void)state;
	/* Nothing listens: the kernel refuses at once, and so must we, well within a few seconds. */
	expect_failure(free_udp_port(), "current.cvd.example", "failed");
}

static void
test_silent_server(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct dnsver *d;
	char err[256] = "";
	long v;
	int fd;

	(void)state;
	/* A bound socket nobody reads swallows queries: the first lookup is still running when
	 * dnsver_get gives up, and dnsver_free must cut it short. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	d = dnsver_at("current.cvd.example", ntohs(sa.sin_port));
	assert_int_equal(dnsver_get(d, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "in progress"));
	free_quickly(d);

	/* Left alone, the lookup gives up at its deadline rather than at c-ares' 2 s + 4 s. */
	d = dnsver_at("current.cvd.example", ntohs(sa.sin_port));
	assert_int_equal(dnsver_get(d, &v, err, sizeof(err)), -1);
	assert_int_equal(dnsver_get(d, &v, err, sizeof(err)), -1);
	if (strstr(err, "no answer within") == NULL)
		fail_msg("reason \"%s\"", err);
	free_quickly(d);	/* now asleep until the retry */
	close(fd);
}

static void
test_retry_after_failure(void **state)
{
	struct dnsmasq m;
	struct dnsver *d;
	char err[256] = "";
	long v = 0;
	int port = free_udp_port();
	double until;

	(void)state;
	if (dnsmasq_missing())
		skip();
	d = dnsver_at("current.cvd.example", port);
	assert_int_equal(dnsver_get(d, &v, err, sizeof(err)), -1);
	/* The server comes up later; the next attempt, DNSVER_RETRY seconds on, must find it. */
	if (dnsmasq_start(&m, port, NULL) != 0) {
		dnsver_free(d);
		skip();	/* someone else took the port meanwhile */
	}
	until = util_now() + DNSVER_RETRY + DNSVER_LOOKUP_DEADLINE;
	while (dnsver_get(d, &v, err, sizeof(err)) != 0 && util_now() < until)
		usleep(200000);
	assert_int_equal(dnsver_get(d, &v, err, sizeof(err)), 0);
	assert_int_equal(v, DAILY);
	free_quickly(d);
	dnsmasq_stop(&m);
}

static void
test_bad_arguments(void **state)
{
	static const char *const bad[] = {
		"localhost", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:53x", "1.2.3",
		"256.1.1.1", "[::1", "[::1]x", "[::1]:", "[]:53", "[1.2.3.4]:53", ":53", "::g",
		"1.2.3.4:-53",
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (dnsver_new("current.cvd.example", bad[i], err, sizeof(err)) != NULL)
			fail_msg("accepted server \"%s\"", bad[i]);
		assert_non_null(strstr(err, "bad DNS server"));
	}
	assert_null(dnsver_new("", "127.0.0.1", err, sizeof(err)));
	assert_null(dnsver_new(NULL, "127.0.0.1", err, sizeof(err)));
	dnsver_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_good),
		cmocka_unit_test(test_txt_bad),
		cmocka_unit_test(test_txt_length_bounds),
		cmocka_unit_test(test_answer_simple),
		cmocka_unit_test(test_answer_multi_strings),
		cmocka_unit_test(test_answer_cname_first),
		cmocka_unit_test(test_answer_truncated),
		cmocka_unit_test(test_answer_bad_strings),
		cmocka_unit_test(test_answer_small_buffer),
		cmocka_unit_test(test_answer_no_txt),
		cmocka_unit_test(test_answer_ttl_top_bit),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_lookup_dnsmasq),
		cmocka_unit_test(test_ttl_honoured),
		cmocka_unit_test(test_lookup_failures),
		cmocka_unit_test(test_closed_port),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_retry_after_failure),
	};

	/* A dnsmasq that dies early must not kill us when we write to it. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
