/* fuzz_scan.c -- libFuzzer target for the scan path: the input is scanned in process by the same
 * scanner module the server uses, with small limits, and must never be a false clean. */
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "scanner.h"

/*
 * The property. An input that holds the 68 EICAR bytes verbatim is malware whatever else it is:
 * libclamav scans the raw bytes of the top-level file with the body signature (offset *) before or
 * besides any parsing, and the input is within every limit (FUZZ_MAX_LEN is below FUZZ_FILE_SIZE and
 * FUZZ_SCAN_SIZE). So SCAN_CLEAN for such an input is a false clean, and the target traps. An error
 * or a limit verdict is not clean and is fine. An input that holds EICAR only compressed or encoded
 * may answer clean legitimately (a mutated archive is usually corrupt, and libclamav may not reach
 * the member): no cheap oracle tells those apart, so the property checks the verbatim case only; the
 * encoded cases are the e2e suite's job (tests/e2e/test_verdict_integrity.py), where the generator
 * knows what it built. The limits are small and decimal (not multiples of libclamav's 8 KiB blocks),
 * so the seeds from tests/e2e/adversarial.py cross them near their boundaries.
 */
#define FUZZ_SCAN_SIZE	300000		/* bytes: MAX_SCAN_SIZE; the limits are the e2e "dec" group's */
#define FUZZ_FILE_SIZE	300000		/* bytes: MAX_FILE_SIZE (the server refuses it below MAX_SCAN_SIZE) */
#define FUZZ_RECURSION	4
#define FUZZ_FILES	8
#define FUZZ_SCAN_TIME	10000		/* milliseconds */
#define FUZZ_MAX_LEN	(128 << 10)	/* bytes; longer inputs are not scanned (run with -max_len below) */
#define FUZZ_DB_VERSION	27000

static const char eicar[] =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
#define EICAR_LEN (sizeof(eicar) - 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LeakSanitizer: libclamav 1.4.6 leaks a hash context on every cl_load of a .cud (as in
 * tests/unit/test_scanner.c); libcrypto has no frame pointers, so the slow unwinder is needed. */
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
	return "leak:cl_hash_init\nleak:libcrypto.so\n";
}

/* libclamav is a system library without coverage instrumentation, so libFuzzer sees only our code and
 * would keep almost no inputs. These extra counters (libFuzzer's __libfuzzer_extra_counters section;
 * plain bytes in the replay build) make each (verdict, signature or error, input's magic, size class)
 * seen a feature of its own, so inputs that reach new answers are kept and mutated further. */
#define FUZZ_FEATURES	4096
#if defined(__clang__)
__attribute__((section("__libfuzzer_extra_counters")))
#endif
static uint8_t fuzz_features[FUZZ_FEATURES];

static struct scanner *fuzz_scanner;
static int fuzz_verbose;	/* FUZZ_SCAN_VERBOSE set: one line per input with its verdict */
static char fuzz_dir[64];

static int
fuzz_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void
fuzz_cleanup(void)
{
	scanner_free(fuzz_scanner);
	fuzz_scanner = NULL;
	if (fuzz_dir[0] != '\0')
		nftw(fuzz_dir, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The repository (for scripts/make-testdb): $CLAMREST_ROOT, ".", or up to 3 levels above the binary. */
static int
fuzz_find_root(char *root, size_t len)
{
	const char *env = getenv("CLAMREST_ROOT");
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n;

	if (env != NULL && (size_t)snprintf(root, len, "%s", env) < len) {
		snprintf(probe, sizeof(probe), "%s/scripts/make-testdb", root);
		if (access(probe, R_OK) == 0)
			return 0;
	}
	if (access("scripts/make-testdb", R_OK) == 0) {
		snprintf(root, len, ".");
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int up = 0; up < 4; up++) {
		char *slash = strrchr(exe, '/');

		if (slash == NULL || slash == exe)
			return -1;
		*slash = '\0';
		snprintf(probe, sizeof(probe), "%s/scripts/make-testdb", exe);
		if (access(probe, R_OK) == 0 && (size_t)snprintf(root, len, "%s", exe) < len)
			return 0;
	}
	return -1;
}

/* The e2e database: scripts/make-testdb plus a body signature matching EICAR at any offset. */
static int
fuzz_make_db(const char *root, const char *db)
{
	char cmd[PATH_MAX * 2 + 64], path[192];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "sh '%s/scripts/make-testdb' '%s' %d", root, db, FUZZ_DB_VERSION);
	if (system(cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/anywhere.ndb", db);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "Clamrest.Test.EICAR-Anywhere:0:*:");
	for (size_t i = 0; i < EICAR_LEN; i++)
		fprintf(f, "%02x", (unsigned char)eicar[i]);
	fprintf(f, "\n");
	return fclose(f);
}

static void
fuzz_init(void)
{
	char root[PATH_MAX], db[128], tmp[128], err[512] = "";
	struct scanner_opts o;

	log_set_level("ERROR");
	fuzz_verbose = getenv("FUZZ_SCAN_VERBOSE") != NULL;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/fuzz_scan.XXXXXX");
	if (mkdtemp(fuzz_dir) == NULL || fuzz_find_root(root, sizeof(root)) != 0) {
		fprintf(stderr, "fuzz_scan: no temporary folder or no scripts/make-testdb (set CLAMREST_ROOT)\n");
		exit(2);
	}
	atexit(fuzz_cleanup);
	snprintf(db, sizeof(db), "%s/db", fuzz_dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", fuzz_dir);
	if (mkdir(tmp, 0700) != 0 || fuzz_make_db(root, db) != 0) {
		fprintf(stderr, "fuzz_scan: cannot make the test database in %s\n", db);
		exit(2);
	}
	o = (struct scanner_opts){
		.db_dir = db, .tmpdir = tmp,
		.max_scan_size = FUZZ_SCAN_SIZE, .max_file_size = FUZZ_FILE_SIZE,
		.max_recursion = FUZZ_RECURSION, .max_files = FUZZ_FILES,
		.max_scan_time = FUZZ_SCAN_TIME, .check_interval = 0,
	};
	if ((fuzz_scanner = scanner_new(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_scan: %s\n", err);
		exit(2);
	}
}

static uint32_t
fuzz_hash(uint32_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;	/* FNV-1a */
	return h;
}

static void
fuzz_note(const uint8_t *data, size_t size, const struct scan_result *r)
{
	/* An error's text may hold a temporary file's random name: only its start counts. */
	size_t rlen = strnlen(r->reason, r->verdict == SCAN_ERROR ? 24 : sizeof(r->reason));
	uint32_t v = (uint32_t)r->verdict, h = fuzz_hash(2166136261u, r->reason, rlen);
	uint32_t magic = fuzz_hash(2166136261u, data, size < 4 ? size : 4);
	uint32_t bits = 0;

	while (bits < 31 && ((size_t)1 << bits) < size)
		bits++;
	fuzz_features[fuzz_hash(h, &v, sizeof(v)) % FUZZ_FEATURES]++;
	fuzz_features[fuzz_hash(magic, &v, sizeof(v)) % FUZZ_FEATURES]++;
	fuzz_features[fuzz_hash(fuzz_hash(h, &magic, sizeof(magic)), &bits, sizeof(bits)) % FUZZ_FEATURES]++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_request q = { .data = data != NULL ? (const void *)data : "", .len = size };
	struct scan_result r;

	if (fuzz_scanner == NULL)
		fuzz_init();
	if (size > FUZZ_MAX_LEN)
		return 0;
	scanner_scan(fuzz_scanner, &q, &r);
	fuzz_note(data, size, &r);
	if (fuzz_verbose)
		fprintf(stderr, "fuzz_scan: %zu bytes: %s %s\n", size,
		    r.verdict == SCAN_CLEAN ? "clean" : r.verdict == SCAN_MALWARE ? "malware" : "error", r.reason);
	if (r.verdict == SCAN_CLEAN && memmem(data, size, eicar, EICAR_LEN) != NULL) {
		fprintf(stderr, "fuzz_scan: FALSE CLEAN: %zu bytes hold EICAR verbatim, verdict clean\n", size);
		__builtin_trap();
	}
	return 0;
}
