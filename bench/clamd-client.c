/* clamd-client.c -- a load client for clamd's INSTREAM command, one persistent IDSESSION per thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CC_CHUNK		65536		/* bytes per INSTREAM chunk, as a streaming client sends */
#define CC_REPLY_MAX		1024		/* bytes of one clamd reply */
#define CC_MAX_THREADS		1024
#define CC_MAX_SECONDS		3600
#define CC_MAX_PAYLOAD		(256UL << 20)	/* 256 MiB */
#define CC_VARY_BYTES		16		/* bytes of the per-request stamp of -v and -t */
#define CC_MAX_FILES		4096		/* payloads named by one -f @LIST */
#define CC_RECONNECT_US		10000		/* pause after a broken session */
#define CC_LAT_INITIAL		4096		/* latency slots a thread starts with */

struct cc_opts {
	const char *host;
	unsigned port, threads, seconds;
	const char *file;
	const char *expect;	/* "FOUND" or "OK": the reply must end with it */
	int vary;		/* rewrite the first bytes per request to defeat the clean-file cache */
	int tail;		/* append the stamp instead (formats that must keep their first bytes) */
	unsigned long nonce;	/* in every stamp: no body repeats across rows or runs */
};

/* The payloads, shared read-only by the threads: one file, or each file of -f @LIST in turn. */
static struct cc_file {
	unsigned char *data;
	size_t len;
} cc_files[CC_MAX_FILES];
static size_t cc_nfiles;

/* One session thread: its latencies and errors. */
struct cc_thread {
	pthread_t tid;
	unsigned id;
	const struct cc_opts *o;
	uint32_t *lat;		/* microseconds, one per completed request */
	size_t nlat, caplat;
	uint64_t errors;
	double end;
};

static pthread_barrier_t cc_ready, cc_go;	/* sessions open; clock started */
static double cc_t0, cc_deadline;

static double
cc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cc_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static void
cc_usage(void)
{
	fprintf(stderr, "usage: clamd-client -p PORT -c THREADS -d SECONDS -f FILE [-x FOUND|OK] [-v]"
	    " [-t] [-N HEX] [-H HOST]\n"
	    "  -f @LIST  send the files named in LIST (one a line) in turn\n"
	    "  -v  rewrite the first %d bytes with a stamp per request (no clean-file cache hits)\n"
	    "  -t  append the stamp instead\n"
	    "  -N  a nonce in every stamp (hex), so no body repeats across runs\n",
	    CC_VARY_BYTES);
	exit(2);
}

static void
cc_args(int argc, char **argv, struct cc_opts *o)
{
	int ch;

	*o = (struct cc_opts){ .host = "127.0.0.1", .threads = 1, .seconds = 5, .expect = NULL };
	while ((ch = getopt(argc, argv, "H:p:c:d:f:x:vtN:")) != -1) {
		switch (ch) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			if (cc_parse_uint(optarg, 1, 65535, &o->port) != 0)
				cc_usage();
			break;
		case 'c':
			if (cc_parse_uint(optarg, 1, CC_MAX_THREADS, &o->threads) != 0)
				cc_usage();
			break;
		case 'd':
			if (cc_parse_uint(optarg, 1, CC_MAX_SECONDS, &o->seconds) != 0)
				cc_usage();
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'x':
			o->expect = optarg;
			break;
		case 'v':
			o->vary = 1;
			break;
		case 't':
			o->tail = 1;
			break;
		case 'N':
			o->nonce = strtoul(optarg, NULL, 16);
			break;
		default:
			cc_usage();
		}
	}
	if (o->port == 0 || o->file == NULL)
		cc_usage();
}

/* The whole file in a new buffer. Caller has ownership. */
static unsigned char *
cc_read_file(const char *path, size_t *len)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) != 0 ||
	    st.st_size <= 0 || (unsigned long)st.st_size > CC_MAX_PAYLOAD)
		goto fail;
	if ((buf = malloc((size_t)st.st_size)) == NULL)
		goto fail;
	got = fread(buf, 1, (size_t)st.st_size, f);
	if (got != (size_t)st.st_size)
		goto fail;
	fclose(f);
	*len = got;
	return buf;
fail:
	fprintf(stderr, "clamd-client: cannot read %s (1 byte to 256 MiB)\n", path);
	free(buf);
	if (f != NULL)
		fclose(f);
	return NULL;
}

/* The payloads: FILE, or every file named in @LIST. */
static int
cc_load(const char *spec)
{
	char line[4096];
	FILE *f;

	if (spec[0] != '@') {
		cc_files[0].data = cc_read_file(spec, &cc_files[0].len);
		cc_nfiles = cc_files[0].data != NULL;
		return cc_nfiles ? 0 : -1;
	}
	if ((f = fopen(spec + 1, "r")) == NULL) {
		fprintf(stderr, "clamd-client: cannot read %s\n", spec + 1);
		return -1;
	}
	while (cc_nfiles < CC_MAX_FILES && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if ((cc_files[cc_nfiles].data = cc_read_file(line, &cc_files[cc_nfiles].len)) == NULL)
			break;
		cc_nfiles++;
	}
	fclose(f);
	return cc_nfiles > 0 ? 0 : -1;
}

static int
cc_connect(const struct cc_opts *o)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	int fd, one = 1;

	if (inet_pton(AF_INET, o->host, &sin.sin_addr) != 1)
		return -1;
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends every byte of the iovecs, resuming after short writes. */
static int
cc_sendv(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		size_t left;

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static int
cc_send(int fd, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };

	return cc_sendv(fd, &iov, 1);
}

/* zINSTREAM, then 4-byte big-endian length + data per chunk, then a zero length. */
static int
cc_instream(int fd, const unsigned char *data, size_t len)
{
	static const char cmd[] = "zINSTREAM";	/* sent with its NUL */
	static const uint32_t end = 0;

	if (cc_send(fd, cmd, sizeof(cmd)) != 0)
		return -1;
	for (size_t off = 0; off < len; off += CC_CHUNK) {
		size_t n = len - off < CC_CHUNK ? len - off : CC_CHUNK;
		uint32_t be = htonl((uint32_t)n);
		struct iovec iov[2] = {
			{ .iov_base = &be, .iov_len = sizeof(be) },
			{ .iov_base = (void *)(uintptr_t)(data + off), .iov_len = n },
		};

		if (cc_sendv(fd, iov, 2) != 0)
			return -1;
	}
	return cc_send(fd, &end, sizeof(end));
}

/* INSTREAM of a stamped payload: the stamp in place of the first bytes (head) or after them (tail),
 * sent as its own chunk so the shared payload is never written. */
static int
cc_instream_stamped(int fd, const struct cc_file *f, const char *stamp, int tail)
{
	static const char cmd[] = "zINSTREAM";
	static const uint32_t end = 0;
	size_t skip = tail ? 0 : (f->len < CC_VARY_BYTES ? f->len : CC_VARY_BYTES);
	size_t slen = tail ? CC_VARY_BYTES : skip;
	uint32_t sbe = htonl((uint32_t)slen);
	struct iovec siov[2] = {
		{ .iov_base = &sbe, .iov_len = sizeof(sbe) },
		{ .iov_base = (void *)(uintptr_t)stamp, .iov_len = slen },
	};

	if (cc_send(fd, cmd, sizeof(cmd)) != 0 || (!tail && cc_sendv(fd, siov, 2) != 0))
		return -1;
	for (size_t off = skip; off < f->len; off += CC_CHUNK) {
		size_t n = f->len - off < CC_CHUNK ? f->len - off : CC_CHUNK;
		uint32_t be = htonl((uint32_t)n);
		struct iovec iov[2] = {
			{ .iov_base = &be, .iov_len = sizeof(be) },
			{ .iov_base = (void *)(uintptr_t)(f->data + off), .iov_len = n },
		};

		if (cc_sendv(fd, iov, 2) != 0)
			return -1;
	}
	if (tail && cc_sendv(fd, siov, 2) != 0)
		return -1;
	return cc_send(fd, &end, sizeof(end));
}

/* Reads one NUL-terminated reply into buf. */
static int
cc_reply(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	while (len < cap - 1) {
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		len += (size_t)r;
		if (memchr(buf, '\0', len) != NULL)
			return 0;
	}
	return -1;
}

/* "N: stream: <name> FOUND" or "N: stream: OK"; with -x the verdict must be the expected one. */
static int
cc_reply_ok(const char *reply, const char *expect)
{
	size_t len = strlen(reply), elen;

	if (strstr(reply, "stream: ") == NULL)
		return 0;
	if (expect == NULL)		/* any verdict, but not an error */
		return len < 5 || strcmp(reply + len - 5, "ERROR") != 0;
	elen = strlen(expect);
	return len >= elen && strcmp(reply + len - elen, expect) == 0 &&
	    (len == elen || reply[len - elen - 1] == ' ');
}

static int
cc_record(struct cc_thread *t, double seconds)
{
	if (t->nlat == t->caplat) {
		size_t cap = t->caplat ? t->caplat * 2 : CC_LAT_INITIAL;
		uint32_t *lat = realloc(t->lat, cap * sizeof(*lat));

		if (lat == NULL)
			return -1;
		t->lat = lat;
		t->caplat = cap;
	}
	t->lat[t->nlat++] = (uint32_t)(seconds * 1e6);
	return 0;
}

/* The stamp: run nonce, thread id and request number, so no two requests are alike. */
static void
cc_stamp(const struct cc_thread *t, uint64_t n, char *stamp, size_t cap)
{
	snprintf(stamp, cap, "%08lx%02x%06llx", t->o->nonce & 0xffffffffUL, t->id & 0xffu,
	    (unsigned long long)(n & 0xffffffULL));
}

static int
cc_session(struct cc_thread *t)
{
	static const char cmd[] = "zIDSESSION";
	int fd = cc_connect(t->o);

	if (fd == -1)
		return -1;
	if (cc_send(fd, cmd, sizeof(cmd)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
cc_end_session(int fd)
{
	static const char cmd[] = "zEND";

	if (fd == -1)
		return;
	cc_send(fd, cmd, sizeof(cmd));
	close(fd);
}

static void *
cc_thread_main(void *arg)
{
	struct cc_thread *t = arg;
	char reply[CC_REPLY_MAX], stamp[CC_VARY_BYTES + 1];
	const struct cc_file *f;
	uint64_t n = 0;
	int fd = cc_session(t);

	pthread_barrier_wait(&cc_ready);
	pthread_barrier_wait(&cc_go);
	while (cc_now() < cc_deadline) {
		double t0;

		if (fd == -1 && (fd = cc_session(t)) == -1) {
			t->errors++;
			usleep(CC_RECONNECT_US);
			continue;
		}
		f = &cc_files[(n * t->o->threads + t->id) % cc_nfiles];
		cc_stamp(t, n++, stamp, sizeof(stamp));
		t0 = cc_now();
		if ((t->o->vary || t->o->tail ? cc_instream_stamped(fd, f, stamp, t->o->tail) :
		    cc_instream(fd, f->data, f->len)) != 0 || cc_reply(fd, reply, sizeof(reply)) != 0) {
			t->errors++;
			close(fd);
			fd = -1;
			continue;
		}
		if (!cc_reply_ok(reply, t->o->expect)) {
			if (t->errors++ == 0)
				fprintf(stderr, "clamd-client: unexpected reply '%.200s'\n", reply);
			continue;
		}
		if (cc_record(t, cc_now() - t0) != 0)
			break;
	}
	t->end = cc_now();
	cc_end_session(fd);
	return NULL;
}

static int
cc_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static uint32_t
cc_percentile(const uint32_t *sorted, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n);
	return sorted[i < n ? i : n - 1];
}

/* One line, key=value, for the driver: requests/s and latency percentiles in microseconds. */
static int
cc_report(struct cc_thread *th, unsigned n)
{
	size_t total = 0, pos = 0;
	uint64_t errors = 0;
	double end = cc_t0;
	uint32_t *all;

	for (unsigned i = 0; i < n; i++) {
		total += th[i].nlat;
		errors += th[i].errors;
		if (th[i].end > end)
			end = th[i].end;
	}
	if ((all = malloc((total ? total : 1) * sizeof(*all))) == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		if (th[i].nlat == 0)
			continue;
		memcpy(all + pos, th[i].lat, th[i].nlat * sizeof(*all));
		pos += th[i].nlat;
	}
	qsort(all, total, sizeof(*all), cc_cmp_u32);
	printf("BENCH requests=%zu seconds=%.3f rps=%.4f p50_us=%u p99_us=%u errors=%llu\n", total,
	    end - cc_t0, end > cc_t0 ? (double)total / (end - cc_t0) : 0.0,
	    cc_percentile(all, total, 50), cc_percentile(all, total, 99),
	    (unsigned long long)errors);
	free(all);
	return 0;
}

static void
cc_start_thread(struct cc_thread *t, unsigned id, const struct cc_opts *o)
{
	*t = (struct cc_thread){ .id = id, .o = o };
	if (pthread_create(&t->tid, NULL, cc_thread_main, t) != 0) {
		fprintf(stderr, "clamd-client: cannot start thread %u\n", id);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	struct cc_opts o;
	struct cc_thread *th;
	int rc;

	cc_args(argc, argv, &o);
	if (cc_load(o.file) != 0)
		return 1;
	if ((th = calloc(o.threads, sizeof(*th))) == NULL ||
	    pthread_barrier_init(&cc_ready, NULL, o.threads + 1) != 0 ||
	    pthread_barrier_init(&cc_go, NULL, o.threads + 1) != 0) {
		fprintf(stderr, "clamd-client: out of memory\n");
		return 1;
	}
	for (unsigned i = 0; i < o.threads; i++)
		cc_start_thread(&th[i], i, &o);
	/* Every session is open before the clock starts. */
	pthread_barrier_wait(&cc_ready);
	cc_t0 = cc_now();
	cc_deadline = cc_t0 + o.seconds;
	pthread_barrier_wait(&cc_go);
	for (unsigned i = 0; i < o.threads; i++)
		pthread_join(th[i].tid, NULL);
	rc = cc_report(th, o.threads) == 0 ? 0 : 1;
	for (unsigned i = 0; i < o.threads; i++)
		free(th[i].lat);
	pthread_barrier_destroy(&cc_go);
	pthread_barrier_destroy(&cc_ready);
	free(th);
	for (size_t i = 0; i < cc_nfiles; i++)
		free(cc_files[i].data);
	return rc;
}
