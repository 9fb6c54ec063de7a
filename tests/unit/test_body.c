/* test_body.c -- unit tests for body: memory below the threshold, an unnamed file above it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "body.h"

#define CHUNK		4096		/* bytes per append in the streaming tests */
#define BIG		(3 << 20)	/* bytes: a body well past BODY_INITIAL and the threshold */
#define TEST_TIMEOUT	10		/* seconds */

struct fixture {
	char dir[64];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	alarm(TEST_TIMEOUT);
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_body.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int n = count_entries(f->dir);

	alarm(0);
	if (rmdir(f->dir) != 0)
		fprintf(stderr, "teardown: %s not empty (%d entries)\n", f->dir, n);
	free(f);
	return n == 0 ? 0 : -1;
}

/* A pattern that shows misplaced bytes: position-dependent, no period of a power of two. */
static void
fill(unsigned char *p, size_t len, size_t offset)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(((offset + i) * 131 + (offset + i) / 251) & 0xff);
}

static void
assert_file_content(int fd, const unsigned char *want, size_t len)
{
	unsigned char *got = malloc(len + 1);
	ssize_t n;
	struct stat st;

	assert_non_null(got);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, len);
	n = pread(fd, got, len + 1, 0);
	assert_int_equal(n, len);
	for (size_t i = 0; i < len; i++)
		if (got[i] != want[i])
			fail_msg("byte %zu of the spill file: 0x%02x, want 0x%02x", i, got[i], want[i]);
	free(got);
}

static void
assert_mem_content(const struct body *b, const void *want, size_t len)
{
	size_t got_len = 12345;
	const void *got = body_mem(b, &got_len);

	assert_non_null(got);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, want, len);
	assert_int_equal(body_fd(b), -1);
	assert_int_equal(body_size(b), len);
}

static void
test_memory_below_threshold(void **state)
{
	struct fixture *f = *state;
	struct body *b = body_new(100, f->dir);
	unsigned char data[100];

	assert_non_null(b);
	fill(data, sizeof(data), 0);
	assert_mem_content(b, "", 0);			/* empty, yet not NULL */
	assert_int_equal(body_append(b, data, 60), 0);
	assert_mem_content(b, data, 60);
	assert_int_equal(body_append(b, data + 60, 40), 0);	/* exactly the threshold */
	assert_mem_content(b, data, 100);
	assert_int_equal(count_entries(f->dir), 0);
	body_free(b);
}

/* Many appends past BODY_INITIAL: the buffer grows and keeps every byte in place. */
static void
test_memory_grows(void **state)
{
	struct fixture *f = *state;
	size_t total = 5 * BODY_INITIAL + 17;
	unsigned char *data = malloc(total);
	struct body *b = body_new(total, f->dir);

	assert_non_null(data);
	assert_non_null(b);
	fill(data, total, 0);
	for (size_t off = 0; off < total; off += 1000)
		assert_int_equal(body_append(b, data + off, off + 1000 > total ? total - off : 1000), 0);
	assert_mem_content(b, data, total);
	body_free(b);
	free(data);
}

static void
test_spills_above_threshold(void **state)
{
	struct fixture *f = *state;
	struct body *b = body_new(100, f->dir);
	unsigned char data[120];
	size_t len = 99;

	assert_non_null(b);
	fill(data, sizeof(data), 0);
	assert_int_equal(body_append(b, data, 60), 0);
	assert_int_equal(body_fd(b), -1);
	assert_int_equal(body_append(b, data + 60, 41), 0);	/* one byte past */
	assert_true(body_fd(b) >= 0);
	assert_null(body_mem(b, &len));
	assert_int_equal(len, 99);				/* untouched when NULL */
	assert_int_equal(body_size(b), 101);
	assert_int_equal(body_append(b, data + 101, 19), 0);
	assert_int_equal(body_size(b), 120);
	assert_file_content(body_fd(b), data, 120);
	body_free(b);
	assert_int_equal(count_entries(f->dir), 0);
}

static void
test_spill_big_stream(void **state)
{
	struct fixture *f = *state;
	unsigned char *data = malloc(BIG);
	struct body *b = body_new(1 << 20, f->dir);

	assert_non_null(data);
	assert_non_null(b);
	fill(data, BIG, 0);
	for (size_t off = 0; off < BIG; off += CHUNK)
		assert_int_equal(body_append(b, data + off, CHUNK), 0);
	assert_int_equal(body_size(b), BIG);
	assert_true(body_fd(b) >= 0);
	assert_file_content(body_fd(b), data, BIG);
	assert_int_equal(count_entries(f->dir), 0);
	body_free(b);
	free(data);
}

/* One append far larger than the threshold goes straight to the file. */
static void
test_spill_one_big_append(void **state)
{
	struct fixture *f = *state;
	unsigned char *data = malloc(BIG);
	struct body *b = body_new(BODY_INITIAL, f->dir);

	assert_non_null(data);
	assert_non_null(b);
	fill(data, BIG, 0);
	assert_int_equal(body_append(b, data, 10), 0);
	assert_int_equal(body_append(b, data + 10, BIG - 10), 0);
	assert_int_equal(body_size(b), BIG);
	assert_file_content(body_fd(b), data, BIG);
	body_free(b);
	free(data);
}

/* The spill file has no name: a crash leaves nothing behind, and no one else can open it. */
static void
test_spill_file_has_no_name(void **state)
{
	struct fixture *f = *state;
	struct body *b = body_new(10, f->dir);
	char link[64], target[PATH_MAX];
	ssize_t n;
	struct stat st;
	int flags;

	assert_non_null(b);
	assert_int_equal(body_append(b, "0123456789abcdef", 16), 0);
	assert_true(body_fd(b) >= 0);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", body_fd(b));
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	print_message("body: spill file is %s\n", target);
	if (strstr(target, "(deleted)") == NULL)
		fail_msg("spill file %s has a name", target);
	if (strncmp(target, f->dir, strlen(f->dir)) != 0)
		fail_msg("spill file %s is not in TMPDIR %s", target, f->dir);
	assert_int_equal(count_entries(f->dir), 0);
	assert_int_equal(fstat(body_fd(b), &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	flags = fcntl(body_fd(b), F_GETFD);
	assert_true(flags != -1 && (flags & FD_CLOEXEC) != 0);	/* not inherited by children */
	body_free(b);
}

static void
test_threshold_zero_spills_at_once(void **state)
{
	struct fixture *f = *state;
	struct body *b = body_new(0, f->dir);

	assert_non_null(b);
	assert_mem_content(b, "", 0);
	assert_int_equal(body_append(b, "x", 1), 0);
	assert_true(body_fd(b) >= 0);
	assert_int_equal(body_size(b), 1);
	assert_file_content(body_fd(b), (const unsigned char *)"x", 1);
	assert_int_equal(body_append(b, "", 0), 0);
	assert_int_equal(body_size(b), 1);
	body_free(b);
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void
test_reset_reuse(void **state)
{
	struct fixture *f = *state;
	struct body *b = body_new(64, f->dir);
	unsigned char data[200];
	int fd;

	assert_non_null(b);
	fill(data, sizeof(data), 0);
	assert_int_equal(body_append(b, data, 50), 0);
	body_reset(b);
	assert_mem_content(b, "", 0);
	assert_int_equal(body_append(b, data + 100, 30), 0);
	assert_mem_content(b, data + 100, 30);			/* no leftovers from before */
	assert_int_equal(body_append(b, data + 130, 70), 0);	/* spills */
	fd = body_fd(b);
	assert_true(fd >= 0);
	assert_file_content(fd, data + 100, 100);
	body_reset(b);
	assert_false(fd_is_open(fd));				/* the old file is closed */
	assert_mem_content(b, "", 0);
	assert_int_equal(body_append(b, data, 64), 0);
	assert_mem_content(b, data, 64);
	assert_int_equal(body_append(b, data + 64, 10), 0);	/* and spills again, fresh */
	assert_true(body_fd(b) >= 0);
	assert_file_content(body_fd(b), data, 74);
	body_reset(b);
	body_reset(b);						/* twice is harmless */
	assert_mem_content(b, "", 0);
	assert_int_equal(count_entries(f->dir), 0);
	body_free(b);
}

static void
test_missing_tmpdir_fails_at_spill(void **state)
{
	struct fixture *f = *state;
	char missing[128];
	struct body *b;

	snprintf(missing, sizeof(missing), "%s/does-not-exist", f->dir);
	b = body_new(10, missing);
	assert_non_null(b);
	assert_int_equal(body_append(b, "01234", 5), 0);	/* memory needs no folder */
	errno = 0;
	assert_int_equal(body_append(b, "0123456789", 10), -1);
	assert_int_not_equal(errno, 0);
	assert_int_equal(body_fd(b), -1);
	assert_int_equal(body_size(b), 5);			/* the refused bytes are not counted */
	assert_mem_content(b, "01234", 5);
	assert_int_equal(count_entries(f->dir), 0);
	body_free(b);
}

/* A tmpdir that is a file, not a folder, fails the same way. */
static void
test_tmpdir_is_a_file(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct body *b;
	int fd;

	snprintf(path, sizeof(path), "%s/file", f->dir);
	fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	b = body_new(0, path);
	assert_non_null(b);
	assert_int_equal(body_append(b, "x", 1), -1);
	body_free(b);
	unlink(path);
}

/* An empty append is a no-op, also before the first byte (no buffer yet: memcpy to NULL is UB).
 * Last in the file: under UBSan with -fno-sanitize-recover a failure here ends the process. */
static void
test_empty_append_on_fresh_body(void **state)
{
	struct body *b = body_new(0, "/nonexistent");	/* nothing here may need a file */
	struct body *b2 = body_new(100, "/nonexistent");

	(void)state;
	alarm(TEST_TIMEOUT);
	assert_non_null(b);
	assert_non_null(b2);
	assert_int_equal(body_append(b, "", 0), 0);
	assert_mem_content(b, "", 0);
	assert_int_equal(body_append(b2, "", 0), 0);
	assert_int_equal(body_append(b2, "ab", 2), 0);
	assert_mem_content(b2, "ab", 2);
	body_free(b);
	body_free(b2);
}

/* Past BODY_MEMORY a body goes to its file early; memory comes back when bodies go. Every test of
 * the budgets ends with them unlimited again, as the others expect. */
static void
test_memory_budget_spills_early(void **state)
{
	struct fixture *f = *state;
	struct body *a = body_new(1 << 20, f->dir), *b = body_new(1 << 20, f->dir);
	unsigned char data[40000];

	assert_non_null(a);
	assert_non_null(b);
	fill(data, sizeof(data), 0);
	body_set_budget(4 * BODY_INITIAL, UINT64_MAX);
	assert_int_equal(body_append(a, data, sizeof(data)), 0);	/* a buffer of 4 x 16 KiB */
	assert_int_equal(body_fd(a), -1);
	assert_int_equal(body_memory_used(), 4 * BODY_INITIAL);
	assert_int_equal(body_append(b, data, 100), 0);			/* no room: to a file */
	assert_true(body_fd(b) >= 0);
	assert_file_content(body_fd(b), data, 100);
	assert_int_equal(body_disk_used(), 100);
	body_reset(a);							/* memory given back */
	assert_int_equal(body_memory_used(), 0);
	assert_int_equal(body_append(a, data, 100), 0);
	assert_mem_content(a, data, 100);
	assert_int_equal(body_memory_used(), BODY_INITIAL);
	/* A body in memory that cannot grow moves what it has to the file and goes on there. */
	body_set_budget(BODY_INITIAL, UINT64_MAX);
	assert_int_equal(body_append(a, data + 100, 39900), 0);
	assert_true(body_fd(a) >= 0);
	assert_file_content(body_fd(a), data, sizeof(data));
	assert_int_equal(body_memory_used(), 0);
	assert_int_equal(body_disk_used(), 100 + sizeof(data));
	body_free(a);
	body_free(b);
	assert_int_equal(body_disk_used(), 0);
	body_set_budget(UINT64_MAX, UINT64_MAX);
}

/* Past BODY_DISK an append is refused with BODY_FULL and nothing of it is kept or counted. */
static void
test_disk_budget_refuses(void **state)
{
	struct fixture *f = *state;
	struct body *a = body_new(0, f->dir), *b = body_new(0, f->dir);
	unsigned char data[1000];

	assert_non_null(a);
	assert_non_null(b);
	fill(data, sizeof(data), 0);
	body_set_budget(UINT64_MAX, 1000);
	assert_int_equal(body_append(a, data, 600), 0);
	assert_int_equal(body_append(b, data, 500), BODY_FULL);
	assert_int_equal(body_size(b), 0);
	assert_int_equal(body_append(b, data, 400), 0);			/* exactly the budget */
	assert_int_equal(body_disk_used(), 1000);
	assert_int_equal(body_append(a, data, 1), BODY_FULL);
	assert_int_equal(body_size(a), 600);
	assert_file_content(body_fd(a), data, 600);
	body_free(a);
	assert_int_equal(body_disk_used(), 400);
	body_reset(b);
	assert_int_equal(body_disk_used(), 0);
	body_free(b);
	body_set_budget(UINT64_MAX, UINT64_MAX);
}

/* A write the file system refuses (here EFBIG from RLIMIT_FSIZE, as ENOSPC from a full disk) fails
 * with errno and gives its bytes back to the budget. */
static void
test_write_error_gives_budget_back(void **state)
{
	struct fixture *f = *state;
	struct body *b = body_new(0, f->dir);
	unsigned char data[3000];
	struct rlimit old, small = { 2000, 2000 };
	int rc, e;

	assert_non_null(b);
	fill(data, sizeof(data), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	errno = 0;
	rc = body_append(b, data, sizeof(data));
	e = errno;
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, -1);
	assert_int_equal(e, EFBIG);
	assert_int_equal(body_size(b), 0);
	assert_int_equal(body_disk_used(), 0);
	body_free(b);
}

static void
test_free_null(void **state)
{
	(void)state;
	body_free(NULL);
}

/* The digest computed as the body streams in is the SHA-256 of the whole content, in memory and
 * after a spill, and starts afresh after a reset. */
static void
test_digest_while_streaming(void **state)
{
	struct fixture *f = *state;
	size_t len = 300000, sizes[] = { 0, 100, 50000, 1, 8191 };
	unsigned char *data = malloc(len), got[BODY_DIGEST_LEN], want[BODY_DIGEST_LEN];
	struct body *b;
	size_t i;

	assert_non_null(data);
	fill(data, len, 0);
	for (size_t t = 0; t < 2; t++) {
		b = body_new(t == 0 ? len : 4096, f->dir);	/* in memory, then spilled */
		assert_non_null(b);
		for (i = 0; i < len;) {
			size_t n = sizes[i % 5] ? sizes[i % 5] : 7;

			n = n < len - i ? n : len - i;
			assert_int_equal(body_append(b, data + i, n), 0);
			i += n;
		}
		assert_int_equal(body_fd(b) == -1, t == 0);
		assert_int_equal(body_digest(b, got), 0);
		assert_non_null(SHA256(data, len, want));
		assert_memory_equal(got, want, BODY_DIGEST_LEN);
		assert_int_equal(body_digest(b, got), 0);	/* asked twice: the same */
		assert_memory_equal(got, want, BODY_DIGEST_LEN);
		body_reset(b);
		assert_int_equal(body_append(b, "abc", 3), 0);
		assert_int_equal(body_digest(b, got), 0);
		assert_non_null(SHA256((const unsigned char *)"abc", 3, want));
		assert_memory_equal(got, want, BODY_DIGEST_LEN);
		/* An append after the digest was taken: no digest rather than a wrong one. */
		assert_int_equal(body_append(b, "d", 1), 0);
		assert_int_equal(body_digest(b, got), -1);
		body_free(b);
	}
	free(data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory_below_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_grows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spills_above_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spill_big_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spill_one_big_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spill_file_has_no_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threshold_zero_spills_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_tmpdir_fails_at_spill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmpdir_is_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_budget_spills_early, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_budget_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error_gives_budget_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_while_streaming, setup, teardown),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_empty_append_on_fresh_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
