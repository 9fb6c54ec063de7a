/* test_scanner.c -- unit tests for scanner: loading, verdicts from memory and files, reloads, the
 * temporary folder, and libclamav's limits. Each test gets its own folder with a fresh database made by
 * scripts/make-testdb (found through CLAMREST_ROOT, the current folder, or the binary's location). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "body.h"
#include "log.h"
#include "scanner.h"
#include "util.h"

#define DB_VERSION	27001
#define WAIT_MAX_MS	5000	/* for the watcher thread to notice a change */
#define SCAN_THREADS	3
#define TEST_TIMEOUT	60	/* seconds; ASan builds load engines slowly */
#define ERR_MAX		512
#define MANY_MEMBERS	100	/* files in the archive that should outlast a 1 ms scan limit */
#define MEMBER_LEN	(32 << 10)	/* bytes of each of them */
#define PAD_LEN		4096	/* bytes of spaces after EICAR in archive members */
#define BIG_MEMBER	(1 << 20)	/* bytes; compresses to about 1 KiB */

static const char eicar[] =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
#define EICAR_LEN (sizeof(eicar) - 1)

static char repo_root[PATH_MAX];

/* LeakSanitizer: libclamav 1.4.6 leaks a hash context (EVP_MD_CTX) on every cl_load of a .cud; that
 * is theirs. Only that frame is excused, so an engine we forget to free still shows. libcrypto has no
 * frame pointers: the slow unwinder is needed to see cl_hash_init above it. (Sanitizer hooks; without
 * a sanitizer they are never called.) */
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);

const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

const char *
__lsan_default_suppressions(void)
{
	return "leak:cl_hash_init\n";
}

struct fixture {
	char dir[64];		/* everything of this test, removed at teardown */
	char db[128];		/* CLAMAV_DB_DIR */
	char tmp[128];		/* TMPDIR */
	struct scanner *s;
	struct scanner_opts o;
};

static int
has_make_testdb(const char *root)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/scripts/make-testdb", root);
	return access(path, R_OK) == 0;
}

static int
set_root(const char *root)
{
	if (!has_make_testdb(root) || strlen(root) >= sizeof(repo_root))
		return -1;
	memcpy(repo_root, root, strlen(root) + 1);
	return 0;
}

/* The repository: $CLAMREST_ROOT, else ".", else a few levels above this binary (build/, build/asan/). */
static int
find_root(void)
{
	const char *env = getenv("CLAMREST_ROOT");
	char exe[PATH_MAX];
	ssize_t n;

	if ((env != NULL && set_root(env) == 0) || set_root(".") == 0)
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(exe, '/');

		if (slash == NULL || slash == exe)
			return -1;
		*slash = '\0';
		if (set_root(exe) == 0)
			return 0;
	}
	return -1;
}

static int
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command; 0 when it exited 0. */
static int
run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		print_error("command failed (%d): %s\n", rc, cmd);
	return rc == 0 ? 0 : -1;
}

static int
make_db(const char *dir, long version)
{
	return run("sh '%s/scripts/make-testdb' '%s' %ld", repo_root, dir, version);
}

static int
group_setup(void **state)
{
	(void)state;
	if (find_root() != 0) {
		print_error("cannot find scripts/make-testdb: set CLAMREST_ROOT\n");
		return -1;
	}
	/* libclamav's and the scanner's info lines would bury the test output. */
	log_set_level("ERROR");
	return 0;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	alarm(TEST_TIMEOUT);
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_scanner.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/db", f->dir);
	snprintf(f->tmp, sizeof(f->tmp), "%s/tmp", f->dir);
	if (mkdir(f->tmp, 0700) != 0 || make_db(f->db, DB_VERSION) != 0)
		return -1;
	f->o = (struct scanner_opts){
		.db_dir = f->db, .tmpdir = f->tmp,
		.max_scan_size = 400 << 20, .max_file_size = 100 << 20,
		.max_recursion = 17, .max_files = 10000, .max_scan_time = 120000,
		.cache_entries = 64, .check_interval = 0, .policy = SCANNER_POLICY_DEFAULT,
	};
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	alarm(0);
	scanner_free(f->s);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct scanner *
must_new(struct fixture *f)
{
	char err[ERR_MAX] = "";

	f->s = scanner_new(&f->o, err, sizeof(err));
	if (f->s == NULL)
		fail_msg("scanner_new: %s", err);
	return f->s;
}

/* scanner_scan's four ways of calling: bytes in memory or a file, with the digest known or not. */
static void
scan_mem(struct scanner *s, const void *data, size_t len, struct scan_result *r)
{
	struct scan_request q = { .data = data, .len = len };

	scanner_scan(s, &q, r);
}

static void
scan_mem_hashed(struct scanner *s, const void *data, size_t len, const unsigned char *digest,
    struct scan_result *r)
{
	struct scan_request q = { .data = data, .len = len, .digest = digest };

	scanner_scan(s, &q, r);
}

static void
scan_fd(struct scanner *s, int fd, struct scan_result *r)
{
	struct scan_request q = { .fd = fd };

	scanner_scan(s, &q, r);
}

static void
scan_fd_hashed(struct scanner *s, int fd, const unsigned char *digest, struct scan_result *r)
{
	struct scan_request q = { .fd = fd, .digest = digest };

	scanner_scan(s, &q, r);
}

static const char *
verdict_name(enum scan_verdict v)
{
	return v == SCAN_CLEAN ? "CLEAN" : v == SCAN_MALWARE ? "MALWARE" : "ERROR";
}

static void
assert_verdict(const struct scan_result *r, enum scan_verdict want)
{
	if (r->verdict != want)
		fail_msg("verdict %s (%s), want %s", verdict_name(r->verdict), r->reason,
		    verdict_name(want));
}

static void
assert_malware(const struct scan_result *r)
{
	assert_verdict(r, SCAN_MALWARE);
	if (r->reason[0] == '\0')
		fail_msg("MALWARE with an empty reason");
}

static void
write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), len);
	close(fd);
}

/* Whether TMPDIR holds clamrest.<pid> of this process. */
static int
own_tmp_exists(const struct fixture *f, mode_t *mode)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/clamrest.%ld", f->tmp, (long)getpid());
	if (stat(path, &st) != 0)
		return 0;
	if (mode != NULL)
		*mode = st.st_mode;
	return 1;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void
test_new_and_stats(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scanner_stats st;
	const char *v = scanner_engine_version();

	scanner_stats(s, &st);
	print_message("scanner: libclamav %s, %u signatures, database version %ld built %ld\n", v,
	    st.signatures, st.db_version, (long)st.db_time);
	assert_int_equal(st.db_version, DB_VERSION);
	assert_true(st.signatures >= 3);	/* make-testdb writes three */
	assert_true(st.db_time > 0);
	assert_int_equal(st.reloads, 0);
	assert_int_equal(st.reload_failures, 0);
	assert_non_null(v);
	assert_true(v[0] >= '0' && v[0] <= '9');
}

static void
test_eicar_in_memory(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scan_result r;

	memset(&r, 0x55, sizeof(r));
	scan_mem(s, eicar, EICAR_LEN, &r);
	print_message("scanner: EICAR from memory: %s %s\n", verdict_name(r.verdict), r.reason);
	assert_malware(&r);
	assert_int_equal(r.limit_exceeded, 0);
	assert_int_equal(r.bytes, EICAR_LEN);
	assert_true(r.seconds >= 0 && r.seconds < 10);
	assert_non_null(memchr(r.reason, '\0', sizeof(r.reason)));
}

/* The body signature finds EICAR inside a larger file, where the whole-file hash cannot. */
static void
test_eicar_inside_larger_buffer(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	char buf[4096];
	struct scan_result r;

	memset(buf, 'A', sizeof(buf));
	memcpy(buf + 1000, eicar, EICAR_LEN);
	scan_mem(s, buf, sizeof(buf), &r);
	assert_malware(&r);
	assert_int_equal(r.bytes, sizeof(buf));
}

static void
test_clean_in_memory(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	static const char text[] = "just some harmless text, nothing to see here\n";
	struct scan_result r;

	memset(&r, 0x55, sizeof(r));
	scan_mem(s, text, sizeof(text) - 1, &r);
	assert_verdict(&r, SCAN_CLEAN);
	assert_string_equal(r.reason, "");
	assert_int_equal(r.limit_exceeded, 0);
	assert_int_equal(r.bytes, sizeof(text) - 1);
	/* EICAR with one byte changed is clean. */
	{
		char near[EICAR_LEN];

		memcpy(near, eicar, EICAR_LEN);
		near[10] ^= 1;
		scan_mem(s, near, EICAR_LEN, &r);
		assert_verdict(&r, SCAN_CLEAN);
	}
}

/* CPU seconds this thread has used: what a measurement on a loaded machine can trust. */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A digest the caller computed as the body arrived is taken as it is (the scanner does not hash
 * again: a made-up digest shows through, and keys the clean cache), from memory and from a file.
 * Prints what hashing 5 MiB while it streams costs against scanning it. */
static void
test_scan_with_known_digest(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	size_t len = 5U << 20;
	unsigned char fake[SCANNER_DIGEST_LEN], d[BODY_DIGEST_LEN], *buf = malloc(len);
	double t0, hash_s, scan_s;
	struct scan_result r;
	struct body *b;
	uint64_t x = 88172645463325252ULL;
	char path[PATH_MAX];
	int fd;

	assert_non_null(buf);
	memset(fake, 0xab, sizeof(fake));
	scan_mem_hashed(s, "harmless", 8, fake, &r);
	assert_verdict(&r, SCAN_CLEAN);
	assert_true(r.hashed && !r.cached);
	assert_memory_equal(r.sha256, fake, sizeof(fake));
	scan_mem_hashed(s, "harmless", 8, fake, &r);
	assert_true(r.cached);
	snprintf(path, sizeof(path), "%s/eicar", f->tmp);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && write(fd, eicar, EICAR_LEN) == (ssize_t)EICAR_LEN);
	fake[0] = 1;
	scan_fd_hashed(s, fd, fake, &r);
	assert_malware(&r);
	assert_int_equal(r.bytes, EICAR_LEN);
	assert_memory_equal(r.sha256, fake, sizeof(fake));
	close(fd);
	unlink(path);

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	/* What body_append adds per chunk: one EVP_DigestUpdate. Best of 5 of each, in CPU time of
	 * this thread (the scan runs on it too), so a loaded machine does not blur the ratio. */
	hash_s = 1e9;
	for (int k = 0; k < 5; k++) {
		EVP_MD_CTX *c = EVP_MD_CTX_new();

		assert_non_null(c);
		t0 = cpu_now();
		assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
		for (size_t o = 0; o < len; o += 16384)
			assert_int_equal(EVP_DigestUpdate(c, buf + o, 16384), 1);
		assert_int_equal(EVP_DigestFinal_ex(c, d, NULL), 1);
		if (cpu_now() - t0 < hash_s)
			hash_s = cpu_now() - t0;
		EVP_MD_CTX_free(c);
	}
	b = body_new(len, f->tmp);
	assert_non_null(b);
	for (size_t o = 0; o < len; o += 16384)
		assert_int_equal(body_append(b, buf + o, 16384), 0);
	assert_int_equal(body_digest(b, fake), 0);
	assert_memory_equal(fake, d, sizeof(d));
	scan_s = 1e9;
	for (int k = 0; k < 5; k++) {
		d[0] = (unsigned char)(d[0] + 1);	/* never one the cache holds */
		t0 = cpu_now();
		scan_mem_hashed(s, buf, len, d, &r);
		if (cpu_now() - t0 < scan_s)
			scan_s = cpu_now() - t0;
		assert_verdict(&r, SCAN_CLEAN);
		assert_false(r.cached);
	}
	print_message("scanner: SHA-256 of 5 MiB in 16 KiB pieces (as body_append does) %.2f ms CPU; "
	    "the scan of it %.2f ms CPU (test database): %.1f%%\n", hash_s * 1e3, scan_s * 1e3,
	    100 * hash_s / scan_s);
	assert_true(hash_s < 0.2 * scan_s);	/* a gross regression only: docs/DESIGN.md has the numbers */
	body_free(b);
	free(buf);
}

/* An empty upload is a clean file, not an error. */
static void
test_empty_buffer_is_clean(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scan_result r;

	scan_mem(s, "", 0, &r);
	print_message("scanner: empty buffer: %s %s\n", verdict_name(r.verdict), r.reason);
	assert_verdict(&r, SCAN_CLEAN);
	assert_int_equal(r.bytes, 0);
}

static void
test_scan_fd(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	char path[256];
	struct scan_result r;
	int fd;

	snprintf(path, sizeof(path), "%s/eicar.txt", f->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, eicar, EICAR_LEN), EICAR_LEN);
	/* The offset is left at the end, as a spilled body leaves it. */
	scan_fd(s, fd, &r);
	print_message("scanner: EICAR from a file: %s %s\n", verdict_name(r.verdict), r.reason);
	assert_malware(&r);
	assert_int_equal(r.bytes, EICAR_LEN);
	close(fd);

	snprintf(path, sizeof(path), "%s/clean.txt", f->dir);
	write_file(path, "clean file\n", 11);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	scan_fd(s, fd, &r);
	assert_verdict(&r, SCAN_CLEAN);
	assert_int_equal(r.bytes, 11);
	close(fd);
}

/* What the server does with a large upload: a body spilled to an unnamed file, scanned by fd. */
static void
test_scan_spilled_body(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct body *b = body_new(16, f->dir);
	struct scan_result r;
	size_t len;

	assert_non_null(b);
	assert_int_equal(body_append(b, eicar, 20), 0);
	assert_int_equal(body_append(b, eicar + 20, EICAR_LEN - 20), 0);
	assert_null(body_mem(b, &len));
	scan_fd(s, body_fd(b), &r);
	assert_malware(&r);
	assert_int_equal(r.bytes, EICAR_LEN);
	body_free(b);
}

static void
assert_new_fails(struct fixture *f, const char *db, const char *why)
{
	struct scanner_opts o = f->o;
	char err[ERR_MAX] = "";
	struct scanner *s;

	o.db_dir = db;
	s = scanner_new(&o, err, sizeof(err));
	if (s != NULL) {
		scanner_free(s);
		fail_msg("scanner_new with %s (%s) succeeded", why, db);
	}
	print_message("scanner: %s: %s\n", why, err);
	if (strstr(err, "CLAMAV_DB_DIR") == NULL)
		fail_msg("err \"%s\" does not name CLAMAV_DB_DIR", err);
	if (own_tmp_exists(f, NULL))
		fail_msg("a failed scanner_new left clamrest.%ld in %s", (long)getpid(), f->tmp);
}

static void
test_missing_or_empty_db_dir(void **state)
{
	struct fixture *f = *state;
	char path[256];

	snprintf(path, sizeof(path), "%s/nowhere", f->dir);
	assert_new_fails(f, path, "missing folder");
	snprintf(path, sizeof(path), "%s/empty", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_new_fails(f, path, "empty folder");
	snprintf(path, sizeof(path), "%s/db/daily.cud", f->dir);
	assert_new_fails(f, path, "a file, not a folder");
	snprintf(path, sizeof(path), "%s/junk", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/junk/daily.cud", f->dir);
	write_file(path, "this is not a database", 22);
	snprintf(path, sizeof(path), "%s/junk", f->dir);
	assert_new_fails(f, path, "a corrupt database");
}

static void
test_reload_without_change(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scanner_stats st;

	assert_int_equal(scanner_reload(s, 0), 0);
	assert_int_equal(scanner_reload(s, 0), 0);
	scanner_stats(s, &st);
	assert_int_equal(st.reloads, 0);
	assert_int_equal(st.reload_failures, 0);
	assert_int_equal(st.db_version, DB_VERSION);
	/* force loads even so */
	assert_int_equal(scanner_reload(s, 1), 1);
	scanner_stats(s, &st);
	assert_int_equal(st.reloads, 1);
	assert_int_equal(st.db_version, DB_VERSION);
}

static void
test_reload_new_version(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scanner_stats st;
	struct scan_result r;

	assert_int_equal(make_db(f->db, DB_VERSION + 1), 0);
	assert_int_equal(scanner_reload(s, 0), 1);
	scanner_stats(s, &st);
	assert_int_equal(st.db_version, DB_VERSION + 1);
	assert_int_equal(st.reloads, 1);
	assert_int_equal(st.reload_failures, 0);
	assert_int_equal(scanner_reload(s, 0), 0);		/* and then nothing new */
	scan_mem(s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
}

static void
write_garbage_db(const struct fixture *f)
{
	unsigned char junk[4096];
	char tmp[256], path[256];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 7 + 3);
	snprintf(tmp, sizeof(tmp), "%s/.junk", f->db);
	snprintf(path, sizeof(path), "%s/daily.cud", f->db);
	write_file(tmp, junk, sizeof(junk));
	assert_int_equal(rename(tmp, path), 0);
}

static void
test_reload_corrupt_keeps_old_engine(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scanner_stats st;
	struct scan_result r;

	write_garbage_db(f);
	assert_int_equal(scanner_reload(s, 0), -1);
	scanner_stats(s, &st);
	assert_int_equal(st.db_version, DB_VERSION);		/* still the old one */
	assert_int_equal(st.reloads, 0);
	assert_int_equal(st.reload_failures, 1);
	scan_mem(s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
	assert_int_equal(scanner_reload(s, 1), -1);
	scanner_stats(s, &st);
	assert_int_equal(st.reload_failures, 2);
	/* A good database again: picked up. */
	assert_int_equal(make_db(f->db, DB_VERSION + 2), 0);
	assert_int_equal(scanner_reload(s, 0), 1);
	scanner_stats(s, &st);
	assert_int_equal(st.db_version, DB_VERSION + 2);
	assert_int_equal(st.reloads, 1);
	scan_mem(s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
}

/* An emptied folder never swaps in an engine with no signatures: libclamav's change check does not
 * notice a removed file (0), a forced reload fails (-1), and the old engine keeps scanning. */
static void
test_reload_emptied_folder(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scanner_stats st;
	struct scan_result r;
	char path[256];
	int rc;

	snprintf(path, sizeof(path), "%s/daily.cud", f->db);
	assert_int_equal(unlink(path), 0);
	rc = scanner_reload(s, 0);
	print_message("scanner: reload after the database file was removed: %d\n", rc);
	assert_true(rc == 0 || rc == -1);
	assert_int_equal(scanner_reload(s, 1), -1);
	scanner_stats(s, &st);
	assert_int_equal(st.db_version, DB_VERSION);
	assert_int_equal(st.reloads, 0);
	scan_mem(s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
}

static void
test_poke_reloads(void **state)
{
	struct fixture *f = *state;
	struct scanner *s = must_new(f);
	struct scanner_stats st;
	int ms;

	assert_int_equal(make_db(f->db, DB_VERSION + 5), 0);
	scanner_poke(s);
	for (ms = 0; ms < WAIT_MAX_MS; ms += 10) {
		scanner_stats(s, &st);
		if (st.db_version == DB_VERSION + 5)
			break;
		sleep_ms(10);
	}
	assert_int_equal(st.db_version, DB_VERSION + 5);
	print_message("scanner: poke picked up the new database in ~%d ms\n", ms);
}

static void
test_watcher_interval(void **state)
{
	struct fixture *f = *state;
	struct scanner *s;
	struct scanner_stats st;
	int ms;

	f->o.check_interval = 1;
	s = must_new(f);
	assert_int_equal(make_db(f->db, DB_VERSION + 6), 0);
	for (ms = 0; ms < WAIT_MAX_MS; ms += 10) {
		scanner_stats(s, &st);
		if (st.db_version == DB_VERSION + 6)
			break;
		sleep_ms(10);
	}
	assert_int_equal(st.db_version, DB_VERSION + 6);
	print_message("scanner: a 1 s watcher picked up the new database in ~%d ms\n", ms);
}

/* Waits up to WAIT_MAX_MS for the watcher to report the folder as ok (1) or not (0). */
static int
wait_folder(struct scanner *s, int ok, struct scanner_stats *st)
{
	for (int ms = 0; ms < WAIT_MAX_MS; ms += 10) {
		scanner_stats(s, st);
		if (st->db_folder_ok == ok)
			return ms;
		sleep_ms(10);
	}
	return -1;
}

/* The watcher notices an emptied folder once (db_folder_unusable counts turns, not looks) and its
 * return; the engine loaded before keeps scanning. */
static void
test_watcher_sees_folder_emptied(void **state)
{
	struct fixture *f = *state;
	struct scanner *s;
	struct scanner_stats st;
	struct scan_result r;
	char path[256];

	f->o.check_interval = 1;
	s = must_new(f);
	scanner_stats(s, &st);
	assert_int_equal(st.db_folder_ok, 1);
	assert_int_equal(st.db_folder_unusable, 0);
	snprintf(path, sizeof(path), "%s/daily.cud", f->db);
	assert_int_equal(unlink(path), 0);
	assert_true(wait_folder(s, 0, &st) >= 0);
	assert_int_equal(st.db_folder_unusable, 1);
	sleep_ms(1200);		/* one more look: still one turn */
	scanner_stats(s, &st);
	assert_int_equal(st.db_folder_ok, 0);
	assert_int_equal(st.db_folder_unusable, 1);
	scan_mem(s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
	assert_int_equal(make_db(f->db, DB_VERSION + 9), 0);
	assert_true(wait_folder(s, 1, &st) >= 0);
	assert_int_equal(st.db_folder_unusable, 1);
}

/* Polls scanner_ready for up to WAIT_MAX_MS; returns the milliseconds it took, -1 if never. */
static int
wait_ready(struct scanner *s)
{
	for (int ms = 0; ms < WAIT_MAX_MS; ms += 10) {
		if (scanner_ready(s))
			return ms;
		sleep_ms(10);
	}
	return -1;
}

/* DB_WAIT: a missing folder is no error; the first database to appear in it is loaded by the
 * watcher (which looks every SCANNER_WAIT_INTERVAL, whatever check_interval says) and scans. */
static void
test_wait_missing_folder(void **state)
{
	struct fixture *f = *state;
	struct scanner_stats st;
	struct scan_result r;
	struct scanner *s;
	char db[256];
	int ms;

	snprintf(db, sizeof(db), "%s/later", f->dir);
	f->o.db_dir = db;
	f->o.wait = 1;
	s = must_new(f);
	assert_int_equal(scanner_ready(s), 0);
	sleep_ms(1500);		/* the watcher looks at the missing folder at least once */
	assert_int_equal(scanner_ready(s), 0);
	assert_int_equal(make_db(db, DB_VERSION + 7), 0);
	ms = wait_ready(s);
	print_message("scanner: DB_WAIT loaded the database ~%d ms after it appeared\n", ms);
	assert_true(ms >= 0);
	scanner_stats(s, &st);
	assert_int_equal(st.db_version, DB_VERSION + 7);
	assert_int_equal(st.reloads, 0);	/* the first load is no reload */
	scan_mem(s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
}

/* DB_WAIT with an empty folder: a poke (SIGUSR2) tries and fails without harm; a database that
 * appears later is seen as a change of the folder (check_interval 0: no timed retries). */
static void
test_wait_empty_folder(void **state)
{
	struct fixture *f = *state;
	struct scanner_stats st;
	struct scan_result r;
	struct scanner *s;
	char db[256];

	snprintf(db, sizeof(db), "%s/empty", f->dir);
	assert_int_equal(mkdir(db, 0700), 0);
	f->o.db_dir = db;
	f->o.wait = 1;
	s = must_new(f);
	assert_int_equal(scanner_ready(s), 0);
	assert_int_equal(scanner_reload(s, 1), -1);
	assert_int_equal(scanner_ready(s), 0);
	scanner_poke(s);
	sleep_ms(200);
	assert_int_equal(scanner_ready(s), 0);
	assert_int_equal(make_db(db, DB_VERSION + 8), 0);
	assert_true(wait_ready(s) >= 0);
	scanner_stats(s, &st);
	assert_int_equal(st.db_version, DB_VERSION + 8);
	assert_true(st.reload_failures >= 1);
	scan_mem(s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
	/* From now on an ordinary scanner: a new version is a reload. */
	assert_int_equal(make_db(db, DB_VERSION + 9), 0);
	assert_int_equal(scanner_reload(s, 0), 1);
	scanner_stats(s, &st);
	assert_int_equal(st.db_version, DB_VERSION + 9);
	assert_int_equal(st.reloads, 1);
}

/* DB_WAIT with a database there: ready when scanner_new returns, as without it. */
static void
test_wait_database_present(void **state)
{
	struct fixture *f = *state;
	struct scanner *s;

	f->o.wait = 1;
	s = must_new(f);
	assert_int_equal(scanner_ready(s), 1);
}

static void
test_tmp_folder_lifecycle(void **state)
{
	struct fixture *f = *state;
	mode_t mode = 0;

	assert_false(own_tmp_exists(f, NULL));
	must_new(f);
	assert_true(own_tmp_exists(f, &mode));
	assert_true(S_ISDIR(mode));
	assert_int_equal(mode & 0777, 0700);
	scanner_free(f->s);
	f->s = NULL;
	assert_false(own_tmp_exists(f, NULL));
}

static int
exists(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void
test_stale_tmp_folders_wiped(void **state)
{
	struct fixture *f = *state;
	char path[256];

	/* A dead process's folder, with content, goes; anything else stays. */
	snprintf(path, sizeof(path), "%s/clamrest.999999", f->tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/clamrest.999999/sub", f->tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/clamrest.999999/sub/clamav-1234.tmp", f->tmp);
	write_file(path, "x", 1);
	snprintf(path, sizeof(path), "%s/clamrest.1", f->tmp);	/* pid 1 is alive */
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/clamrest.abc", f->tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/clamrest.999998x", f->tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/other.999999", f->tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	must_new(f);
	assert_false(exists(f->tmp, "clamrest.999999"));
	assert_true(exists(f->tmp, "clamrest.1"));
	assert_true(exists(f->tmp, "clamrest.abc"));
	assert_true(exists(f->tmp, "clamrest.999998x"));
	assert_true(exists(f->tmp, "other.999999"));
}

/* zip via the shell in folder dir; 0 on success. */
static int
zip(const char *dir, const char *archive, const char *members)
{
	return run("cd '%s' && zip -q -X '%s' %s", dir, archive, members);
}

static void
scan_path(struct scanner *s, const char *path, struct scan_result *r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	scan_fd(s, fd, r);
	close(fd);
}

/* EICAR followed by padding: deflate compresses it, so the archive's own bytes do not contain
 * EICAR and only a scan of the member can find it. */
static void
write_padded_eicar(const char *path)
{
	char buf[EICAR_LEN + PAD_LEN];

	memcpy(buf, eicar, EICAR_LEN);
	memset(buf + EICAR_LEN, ' ', PAD_LEN);
	write_file(path, buf, sizeof(buf));
}

static void
make_dir(const struct fixture *f, char *dir, size_t len)
{
	snprintf(dir, len, "%s/z", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
}

/* Scans path with the fixture's options; the verdict must be MALWARE, never clean. */
static void
scan_with_limits(struct fixture *f, const char *path, const char *what, struct scan_result *r)
{
	scanner_free(f->s);
	f->s = NULL;
	must_new(f);
	scan_path(f->s, path, r);
	print_message("scanner: %s: %s %s (limit_exceeded %d)\n", what, verdict_name(r->verdict),
	    r->reason, r->limit_exceeded);
	assert_malware(r);
	/* Limit names and the flag go together. */
	assert_int_equal(r->limit_exceeded,
	    strncmp(r->reason, "Heuristics.Limits.Exceeded", 26) == 0);
}

static void
test_limit_max_files(void **state)
{
	struct fixture *f = *state;
	char dir[256], path[512];
	struct scan_result r;

	make_dir(f, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/a.txt", dir);
	write_file(path, "first member\n", 13);
	snprintf(path, sizeof(path), "%s/b.txt", dir);
	write_file(path, "second member\n", 14);
	snprintf(path, sizeof(path), "%s/c.txt", dir);
	write_padded_eicar(path);
	assert_int_equal(zip(dir, "three.zip", "a.txt b.txt c.txt"), 0);
	snprintf(path, sizeof(path), "%s/three.zip", dir);
	scan_with_limits(f, path, "zip of 3, EICAR last, default limits", &r);
	assert_int_equal(r.limit_exceeded, 0);		/* EICAR itself was found */
	f->o.max_files = 1;
	scan_with_limits(f, path, "zip of 3, EICAR last, MAX_FILES=1", &r);
	f->o.max_files = 2;
	scan_with_limits(f, path, "zip of 3, EICAR last, MAX_FILES=2", &r);
}

/* The member cache: a member of a complete clean scan is a hit in another archive; a scan that
 * found something remembers nothing; a reload forgets. */
static void
test_member_cache(void **state)
{
	struct fixture *f = *state;
	char dir[256], path[512];
	struct scan_result r;
	struct scanner_stats st;

	f->o.member_entries = 64;
	must_new(f);
	make_dir(f, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/a.txt", dir);
	write_file(path, "a member both archives hold\n", 28);
	snprintf(path, sizeof(path), "%s/b.txt", dir);
	write_file(path, "only in the first archive\n", 26);
	snprintf(path, sizeof(path), "%s/c.txt", dir);
	write_padded_eicar(path);
	assert_int_equal(zip(dir, "bad.zip", "a.txt c.txt"), 0);
	assert_int_equal(zip(dir, "one.zip", "a.txt b.txt"), 0);
	assert_int_equal(zip(dir, "two.zip", "b.txt a.txt"), 0);
	snprintf(path, sizeof(path), "%s/bad.zip", dir);
	scan_path(f->s, path, &r);
	assert_malware(&r);
	scanner_stats(f->s, &st);
	assert_int_equal(st.member_entries, 0);
	snprintf(path, sizeof(path), "%s/one.zip", dir);
	scan_path(f->s, path, &r);
	assert_verdict(&r, SCAN_CLEAN);
	scanner_stats(f->s, &st);
	assert_int_equal(st.member_hits, 0);
	assert_int_equal(st.member_entries, 2);
	snprintf(path, sizeof(path), "%s/two.zip", dir);
	scan_path(f->s, path, &r);
	assert_verdict(&r, SCAN_CLEAN);
	scanner_stats(f->s, &st);
	assert_int_equal(st.member_hits, 2);
	snprintf(path, sizeof(path), "%s/bad.zip", dir);
	scan_path(f->s, path, &r);		/* a.txt is a hit, EICAR beside it still found */
	assert_malware(&r);
	assert_int_equal(scanner_reload(f->s, 1), 1);
	scanner_stats(f->s, &st);
	assert_int_equal(st.member_entries, 0);
}

static void
test_limit_max_recursion(void **state)
{
	struct fixture *f = *state;
	char dir[256], path[512];
	struct scan_result r;

	make_dir(f, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/eicar.txt", dir);
	write_padded_eicar(path);
	assert_int_equal(zip(dir, "inner.zip", "eicar.txt"), 0);
	assert_int_equal(zip(dir, "middle.zip", "inner.zip"), 0);
	assert_int_equal(zip(dir, "outer.zip", "middle.zip"), 0);
	snprintf(path, sizeof(path), "%s/outer.zip", dir);
	scan_with_limits(f, path, "zip in zip in zip, default limits", &r);
	assert_int_equal(r.limit_exceeded, 0);
	f->o.max_recursion = 1;
	scan_with_limits(f, path, "zip in zip in zip, MAX_RECURSION=1", &r);
	f->o.max_recursion = 2;
	scan_with_limits(f, path, "zip in zip in zip, MAX_RECURSION=2", &r);
}

/* An archive member larger than MAX_FILE_SIZE (a small zip of a big file) with EICAR past that size:
 * the part not scanned must not make the archive clean. */
static void
test_limit_max_file_size_member(void **state)
{
	struct fixture *f = *state;
	char dir[256], path[512], *big = malloc(BIG_MEMBER);
	struct scan_result r;

	assert_non_null(big);
	make_dir(f, dir, sizeof(dir));
	memset(big, 'A', BIG_MEMBER);
	memcpy(big + BIG_MEMBER / 2, eicar, EICAR_LEN);
	snprintf(path, sizeof(path), "%s/big.txt", dir);
	write_file(path, big, BIG_MEMBER);
	free(big);
	assert_int_equal(zip(dir, "big.zip", "big.txt"), 0);
	snprintf(path, sizeof(path), "%s/big.zip", dir);
	scan_with_limits(f, path, "zip with EICAR at 512 KiB of a 1 MiB member, default limits", &r);
	assert_int_equal(r.limit_exceeded, 0);
	f->o.max_scan_size = 65536;
	scan_with_limits(f, path, "zip with EICAR at 512 KiB of a 1 MiB member, MAX_SCAN_SIZE=64 KiB",
	    &r);
	f->o.max_file_size = 65536;
	scan_with_limits(f, path, "zip with EICAR at 512 KiB of a 1 MiB member, both 64 KiB", &r);
	f->o.max_scan_size = 400 << 20;
	scan_with_limits(f, path, "zip with EICAR at 512 KiB of a 1 MiB member, MAX_FILE_SIZE=64 KiB",
	    &r);
}

/* The scanned file itself larger than MAX_FILE_SIZE: config keeps this from happening (the size
 * covers MAX_CONTENT_LENGTH), but if it does, the answer is still not clean. */
static void
test_limit_max_file_size_top(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(BIG_MEMBER);
	struct scan_result r;

	assert_non_null(big);
	memset(big, 'A', BIG_MEMBER);
	/* A buffer of exactly MAX_FILE_SIZE bytes is scanned whole, and clean. */
	f->o.max_file_size = BIG_MEMBER;
	must_new(f);
	scan_mem(f->s, big, BIG_MEMBER, &r);
	assert_int_equal(r.verdict, SCAN_CLEAN);
	scanner_free(f->s);
	f->s = NULL;
	/* Both limits below the buffer: never clean. */
	f->o.max_scan_size = 4096;
	must_new(f);
	scan_mem(f->s, big, BIG_MEMBER, &r);
	free(big);
	print_message("scanner: 1 MiB buffer, MAX_FILE_SIZE=MAX_SCAN_SIZE=4096: %s %s (limit_exceeded %d)\n",
	    verdict_name(r.verdict), r.reason, r.limit_exceeded);
	assert_malware(&r);
}

/* Issue 9, case 1: libclamav's unzip stops writing a member at the last block that fits in maxfilesize
 * and raises nothing. 4 MB of zeros then EICAR, bzip2 in a tiny zip, with a decimal MAX_FILE_SIZE
 * far below the member and MAX_SCAN_SIZE far above it: before the fix this was CLEAN. */
static void
test_member_cut_at_file_size(void **state)
{
	struct fixture *f = *state;
	char dir[256], path[512];
	struct scan_result r;
	size_t len = 4000000 + EICAR_LEN;
	char *big = calloc(1, len);

	assert_non_null(big);
	make_dir(f, dir, sizeof(dir));
	memcpy(big + 4000000, eicar, EICAR_LEN);
	snprintf(path, sizeof(path), "%s/big.bin", dir);
	write_file(path, big, len);
	free(big);
	assert_int_equal(run("cd '%s' && zip -q -X -Z bzip2 big.zip big.bin", dir), 0);
	snprintf(path, sizeof(path), "%s/big.zip", dir);
	f->o.max_file_size = 1000000;
	f->o.max_scan_size = 400000000;
	scan_with_limits(f, path, "bzip2 member of 4 MB zeros + EICAR, MAX_FILE_SIZE=1000000", &r);
	assert_string_equal(r.reason, SCANNER_LIMIT_FILE_SIZE);
	/* The same again: the cut verdict was not remembered as clean. */
	scan_path(f->s, path, &r);
	assert_string_equal(r.reason, SCANNER_LIMIT_FILE_SIZE);
	assert_int_equal(r.cached, 0);
	/* Scan budget within SCANNER_LIMIT_MARGIN of what was unpacked: reported as MAX_SCAN_SIZE. */
	f->o.max_file_size = 100000000;
	f->o.max_scan_size = 4010000;
	scan_with_limits(f, path, "the same, MAX_SCAN_SIZE=4010000", &r);
	assert_string_equal(r.reason, SCANNER_LIMIT_SCAN_SIZE);
	/* Well within both limits: found by name. */
	f->o.max_scan_size = 4500000;
	scan_with_limits(f, path, "the same, MAX_SCAN_SIZE=4500000", &r);
	assert_int_equal(r.limit_exceeded, 0);
}

/* Archive members libclamav 1.4.6 lists but does not unpack, answered CLEAN by it: a zip member
 * compressed with LZMA (method 14), a Zip64 member (zip writes Zip64 local headers for stdin), and
 * the LZMA zip behind a byte of junk (found as an embedded zip, as unzip(1) still extracts it).
 * The second reader (reader.c, libarchive) extracts them, and they are scanned: EICAR by name. */
static void
test_unscanned_members(void **state)
{
	struct fixture *f = *state;
	static const char *const cases[][2] = {
		{ "lzma.zip", "/usr/bin/python3 -c \"import zipfile; z = zipfile.ZipFile('lzma.zip', 'w', "
		  "zipfile.ZIP_LZMA); z.writestr('e.txt', open('eicar.txt', 'rb').read()); z.close()\"" },
		{ "zip64.zip", "zip -q - - < eicar.txt > zip64.zip" },
		{ "junk-lzma.bin", "printf x > junk-lzma.bin && cat lzma.zip >> junk-lzma.bin" },
	};
	char dir[256], path[512];
	struct scan_result r;

	make_dir(f, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/eicar.txt", dir);
	write_padded_eicar(path);
	must_new(f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(run("cd '%s' && %s", dir, cases[i][1]), 0);
		snprintf(path, sizeof(path), "%s/%s", dir, cases[i][0]);
		scan_path(f->s, path, &r);
		print_message("scanner: %s: %s %s\n", cases[i][0], verdict_name(r.verdict), r.reason);
		assert_malware(&r);
		assert_non_null(strcasestr(r.reason, "eicar"));
		assert_int_equal(r.limit_exceeded, 0);
	}
	/* A RAR: Debian's libclamav has no unrar, so its content is never scanned. A RAR 4 signature
	 * and one header are enough for libclamav to type it (no rar tool exists here to make more). */
	{
		static const char rar[] = "Rar!\x1a\x07\x00\xcf\x90\x73\x00\x00\x0d\x00\x00\x00"
		    "\x00\x00\x00\x00 and some member data that nobody will ever scan";

		scan_mem(f->s, rar, sizeof(rar) - 1, &r);
		print_message("scanner: RAR: %s %s\n", verdict_name(r.verdict), r.reason);
		assert_string_equal(r.reason, SCANNER_UNSCANNED_RAR);
	}
	/* The same EICAR in a plain zip is found by name: the check does not hide real detections. */
	assert_int_equal(zip(dir, "plain.zip", "eicar.txt"), 0);
	snprintf(path, sizeof(path), "%s/plain.zip", dir);
	scan_path(f->s, path, &r);
	assert_malware(&r);
	assert_int_equal(r.limit_exceeded, 0);
}

/* MAX_EXPANSION: 80 MiB of zeros in a zip of ~80 KiB unpacks to more than 100 x the upload and more
 * than the 64 MiB floor: stopped as a scan-size limit. With MAX_EXPANSION=0 it is scanned whole. */
static void
test_expansion_budget(void **state)
{
	struct fixture *f = *state;
	char dir[256], path[512];
	struct scan_result r;
	size_t len = 80 << 20;
	char *big = calloc(1, len);

	assert_non_null(big);
	make_dir(f, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/zeros.bin", dir);
	write_file(path, big, len);
	free(big);
	assert_int_equal(zip(dir, "zeros.zip", "zeros.bin"), 0);
	snprintf(path, sizeof(path), "%s/zeros.zip", dir);
	f->o.max_expansion = 100;
	scan_with_limits(f, path, "80 MiB of zeros zipped, MAX_EXPANSION=100", &r);
	assert_string_equal(r.reason, SCANNER_LIMIT_SCAN_SIZE);
	f->o.max_expansion = 0;
	scanner_free(f->s);
	f->s = NULL;
	must_new(f);
	scan_path(f->s, path, &r);
	assert_verdict(&r, SCAN_CLEAN);
}

/* Our clean cache: a second scan of the same bytes is answered from it, a reload forgets it, and
 * malware is never cached. */
static void
test_clean_cache(void **state)
{
	struct fixture *f = *state;
	static const char text[] = "a clean text, scanned twice";
	struct scan_result r;
	struct scanner_stats st;

	f->o.cache_entries = 16;
	must_new(f);
	scan_mem(f->s, text, sizeof(text) - 1, &r);
	assert_verdict(&r, SCAN_CLEAN);
	assert_int_equal(r.cached, 0);
	assert_int_equal(r.hashed, 1);
	scan_mem(f->s, text, sizeof(text) - 1, &r);
	assert_verdict(&r, SCAN_CLEAN);
	assert_int_equal(r.cached, 1);
	scanner_stats(f->s, &st);
	assert_int_equal(st.cache_hits, 1);
	scan_mem(f->s, eicar, EICAR_LEN, &r);
	scan_mem(f->s, eicar, EICAR_LEN, &r);
	assert_malware(&r);
	assert_int_equal(r.cached, 0);
	assert_int_equal(scanner_reload(f->s, 1), 1);
	scan_mem(f->s, text, sizeof(text) - 1, &r);
	assert_verdict(&r, SCAN_CLEAN);
	assert_int_equal(r.cached, 0);
	/* The digest is SHA-256 of the bytes. */
	{
		unsigned char want[SCANNER_DIGEST_LEN];

		assert_int_equal(EVP_Digest(text, sizeof(text) - 1, want, NULL, EVP_sha256(), NULL), 1);
		assert_memory_equal(r.sha256, want, SCANNER_DIGEST_LEN);
	}
}

/* 1 ms for an archive of many members: libclamav stops and says so; never clean. */
static void
test_limit_max_scan_time(void **state)
{
	struct fixture *f = *state;
	char dir[256], path[512], *text = malloc(MEMBER_LEN);
	struct scan_result r;

	assert_non_null(text);
	make_dir(f, dir, sizeof(dir));
	for (size_t i = 0; i < MEMBER_LEN; i++)
		text[i] = (char)('a' + (i * 7 + i / 13) % 26);
	for (int i = 0; i < MANY_MEMBERS; i++) {
		snprintf(path, sizeof(path), "%s/m%03d.txt", dir, i);
		text[0] = (char)('A' + i % 26);		/* no two members alike */
		write_file(path, text, MEMBER_LEN);
	}
	free(text);
	assert_int_equal(zip(dir, "many.zip", "m*.txt"), 0);
	snprintf(path, sizeof(path), "%s/many.zip", dir);
	/* Without the limit the archive is clean, and takes well over 1 ms. */
	must_new(f);
	scan_path(f->s, path, &r);
	print_message("scanner: zip of %d members, default limits: %s in %.1f ms\n", MANY_MEMBERS,
	    verdict_name(r.verdict), r.seconds * 1e3);
	assert_verdict(&r, SCAN_CLEAN);
	assert_true(r.seconds > 0.005);
	f->o.max_scan_time = 1;
	scan_with_limits(f, path, "zip of many members, MAX_SCAN_TIME=1 ms", &r);
	print_message("scanner: (that scan took %.1f ms)\n", r.seconds * 1e3);
	assert_int_equal(r.limit_exceeded, 1);
	assert_string_equal(r.reason, "Heuristics.Limits.Exceeded.MaxScanTime");
}

struct scan_loop {
	struct scanner *s;
	atomic_int *stop;
	int scans, wrong;
	char last_wrong[SCAN_REASON_MAX + 16];
};

static void *
scan_loop(void *arg)
{
	struct scan_loop *l = arg;

	while (!atomic_load(l->stop)) {
		struct scan_result r;

		scan_mem(l->s, eicar, EICAR_LEN, &r);
		l->scans++;
		if (r.verdict != SCAN_MALWARE) {
			l->wrong++;
			snprintf(l->last_wrong, sizeof(l->last_wrong), "%s %s", verdict_name(r.verdict),
			    r.reason);
		}
	}
	return NULL;
}

/* Scans in flight keep their engine through swaps; each swapped-out engine is freed (ASan). */
static void
test_scans_during_reloads(void **state)
{
	struct fixture *f = *state;
	struct scan_loop loops[SCAN_THREADS];
	pthread_t t[SCAN_THREADS];
	atomic_int stop = 0;
	struct scanner_stats st;
	int scans = 0;

	must_new(f);
	for (int i = 0; i < SCAN_THREADS; i++) {
		loops[i] = (struct scan_loop){ .s = f->s, .stop = &stop };
		assert_int_equal(pthread_create(&t[i], NULL, scan_loop, &loops[i]), 0);
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(scanner_reload(f->s, 1), 1);
	atomic_store(&stop, 1);
	for (int i = 0; i < SCAN_THREADS; i++) {
		pthread_join(t[i], NULL);
		scans += loops[i].scans;
		if (loops[i].wrong != 0)
			fail_msg("thread %d: %d of %d scans not MALWARE, last: %s", i, loops[i].wrong,
			    loops[i].scans, loops[i].last_wrong);
	}
	scanner_stats(f->s, &st);
	assert_int_equal(st.reloads, 5);
	print_message("scanner: %d scans across 5 reloads\n", scans);
	assert_true(scans > 0);
}

static void
test_free_null(void **state)
{
	(void)state;
	scanner_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_and_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eicar_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eicar_inside_larger_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_buffer_is_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_with_known_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_spilled_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_or_empty_db_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_without_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_new_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_corrupt_keeps_old_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_emptied_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poke_reloads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watcher_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watcher_sees_folder_emptied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_folder_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_tmp_folders_wiped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_max_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_max_recursion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_max_file_size_member, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_max_file_size_top, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_max_scan_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_member_cut_at_file_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unscanned_members, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_member_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scans_during_reloads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_missing_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_empty_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_database_present, setup, teardown),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
