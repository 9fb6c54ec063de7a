/* raw-engine.c -- libclamav alone, with clamrest's engine options: load time, RSS, CPU per scan.
 *
 * The raw-engine column of the benchmark: what the engine itself costs, with no HTTP, no queue and
 * no callbacks, so every clamrest row can be read as a fraction of the engine's own limit.
 *
 * Options, as src/scanner.c sets them with clamrest's defaults (keep the two in step):
 *   engine: MAX_SCANSIZE 2 GiB - 1 (4 x MAX_CONTENT_LENGTH, capped), MAX_FILESIZE 1 GiB + 64 KiB
 *   (MAX_FILE_SIZE + SCANNER_LIMIT_MARGIN), MAX_RECURSION 17, MAX_FILES 10000, MAX_SCANTIME 120000,
 *   DISABLE_CACHE 1 (libclamav's clean-file cache is off in clamrest), TMPDIR /dev/shm (clamrest's
 *   default on a machine where it is a big enough tmpfs); cl_load with CL_DB_STDOPT;
 *   scan: general HEURISTICS, parse all, heuristic ENCRYPTED_ARCHIVE | EXCEEDS_MAX; bodies scanned
 *   from memory (cl_fmap_open_memory + cl_scanmap_callback), as clamrest scans bodies below
 *   SPILL_THRESHOLD. Not done here: clamrest's three callbacks and its SHA-256 of the body.
 *
 * Usage: raw-engine [-T] [-s SECONDS] [-N NONCE] [-t TMPDIR] DBDIR [ROW...]   (TMPDIR: /dev/shm)
 *   ROW is NAME=MODE:PATH. MODE: exact (the file as is), head (first 16 bytes replaced by a stamp
 *   per scan) or tail (a 16-byte stamp appended per scan); PATH a file, or @LIST, a file naming one
 *   payload per line, used in turn. Each row scans for SECONDS (default 3) and prints
 *   "RAW row=NAME scans=N cpu_us=X wall_us=Y found=F errors=E". -T creates an idle thread before
 *   the load (as clamrest did before it loaded first), to measure what that costs.
 * First line: "RAW load_s=X rss_kib=Y signatures=Z". */
#include <clamav.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define RAW_STAMP	16		/* bytes of a per-scan stamp */
#define RAW_MAX_FILES	4096		/* payloads in one @LIST */
#define RAW_MAX_LEN	(256UL << 20)	/* bytes of one payload */

struct payload {
	unsigned char *data;	/* len + RAW_STAMP bytes, so a tail stamp fits */
	size_t len;
};

static double
raw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
raw_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long
raw_rss_kib(void)
{
	char line[256];
	long kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int
raw_read(const char *path, struct payload *p)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    (size_t)n > RAW_MAX_LEN || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "raw-engine: cannot read %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	p->len = (size_t)n;
	if ((p->data = malloc(p->len + RAW_STAMP)) == NULL ||
	    fread(p->data, 1, p->len, f) != p->len) {
		fprintf(stderr, "raw-engine: cannot read %s\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* The payloads of a row: one file, or each file named in @LIST. */
static size_t
raw_payloads(const char *path, struct payload *p, size_t max)
{
	char line[4096];
	size_t n = 0;
	FILE *f;

	if (path[0] != '@')
		return raw_read(path, &p[0]) == 0 ? 1 : 0;
	if ((f = fopen(path + 1, "r")) == NULL) {
		fprintf(stderr, "raw-engine: cannot read %s\n", path + 1);
		return 0;
	}
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '\0' && raw_read(line, &p[n]) == 0)
			n++;
	}
	fclose(f);
	return n;
}

static void *
raw_idle(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/* libclamav makes a folder per scan in its temporary folder: on tmpfs, as clamrest's default
 * (SCAN_TMPDIR: /dev/shm when it is a tmpfs), or the disk's cost would be counted as the engine's. */
static const char *raw_tmpdir = "/dev/shm";

static int
raw_engine(struct cl_engine *e)
{
	if (cl_engine_set_num(e, CL_ENGINE_MAX_SCANSIZE, 2147483647LL) != CL_SUCCESS ||
	    cl_engine_set_num(e, CL_ENGINE_MAX_FILESIZE, (1LL << 30) + 65536) != CL_SUCCESS ||
	    cl_engine_set_num(e, CL_ENGINE_MAX_RECURSION, 17) != CL_SUCCESS ||
	    cl_engine_set_num(e, CL_ENGINE_MAX_FILES, 10000) != CL_SUCCESS ||
	    cl_engine_set_num(e, CL_ENGINE_MAX_SCANTIME, 120000) != CL_SUCCESS ||
	    cl_engine_set_num(e, CL_ENGINE_DISABLE_CACHE, 1) != CL_SUCCESS ||
	    cl_engine_set_str(e, CL_ENGINE_TMPDIR, raw_tmpdir) != CL_SUCCESS)
		return -1;
	return 0;
}

static void
raw_row(struct cl_engine *e, const char *spec, double seconds, uint32_t nonce)
{
	static struct payload p[RAW_MAX_FILES];
	struct cl_scan_options opts = {
		.general = CL_SCAN_GENERAL_HEURISTICS,
		.parse = ~0U,
		.heuristic = CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE | CL_SCAN_HEURISTIC_EXCEEDS_MAX,
	};
	char name[64], mode[16], stamp[RAW_STAMP + 1];
	const char *path, *eq = strchr(spec, '='), *colon;
	unsigned long scans = 0, found = 0, errors = 0;
	double t0, c0, end;
	size_t n, i;

	if (eq == NULL || (colon = strchr(eq, ':')) == NULL || eq - spec >= (long)sizeof(name) ||
	    colon - eq - 1 >= (long)sizeof(mode)) {
		fprintf(stderr, "raw-engine: '%s' is not NAME=MODE:PATH\n", spec);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
	snprintf(mode, sizeof(mode), "%.*s", (int)(colon - eq - 1), eq + 1);
	path = colon + 1;
	if ((n = raw_payloads(path, p, RAW_MAX_FILES)) == 0)
		return;
	t0 = raw_now();
	c0 = raw_cpu();
	end = t0 + seconds;
	do {
		struct payload *q = &p[scans % n];
		size_t len = q->len;
		const char *virname = NULL;
		unsigned long scanned = 0;
		cl_fmap_t *map;
		cl_error_t rc;

		/* Never the same bytes twice within a run, nor across runs (the nonce). */
		snprintf(stamp, sizeof(stamp), "%08x%08lx", nonce, scans);
		if (strcmp(mode, "head") == 0)
			memcpy(q->data, stamp, len < RAW_STAMP ? len : RAW_STAMP);
		else if (strcmp(mode, "tail") == 0)
			memcpy(q->data + len, stamp, RAW_STAMP);
		if (strcmp(mode, "tail") == 0)
			len += RAW_STAMP;
		if ((map = cl_fmap_open_memory(q->data, len)) == NULL) {
			errors++;
		} else {
			rc = cl_scanmap_callback(map, NULL, &virname, &scanned, e, &opts, NULL);
			cl_fmap_close(map);
			found += rc == CL_VIRUS;
			errors += rc != CL_VIRUS && rc != CL_CLEAN;
		}
		scans++;
	} while (raw_now() < end);
	printf("RAW row=%s scans=%lu cpu_us=%.1f wall_us=%.1f found=%lu errors=%lu\n", name, scans,
	    (raw_cpu() - c0) * 1e6 / (double)scans, (raw_now() - t0) * 1e6 / (double)scans, found,
	    errors);
	fflush(stdout);
	for (i = 0; i < n; i++)
		free(p[i].data);
}

int
main(int argc, char **argv)
{
	struct cl_engine *e;
	unsigned sigs = 0;
	double seconds = 3, t0;
	uint32_t nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
	pthread_t idle;
	int c, thread = 0;
	cl_error_t rc;

	while ((c = getopt(argc, argv, "Ts:N:t:")) != -1) {
		if (c == 't')
			raw_tmpdir = optarg;
		else if (c == 'T')
			thread = 1;
		else if (c == 's')
			seconds = atof(optarg);
		else if (c == 'N')
			nonce = (uint32_t)strtoul(optarg, NULL, 16);
		else
			return 2;
	}
	if (optind >= argc || seconds <= 0) {
		fprintf(stderr, "usage: raw-engine [-T] [-s SECONDS] [-N NONCE] DBDIR [NAME=MODE:PATH...]\n");
		return 2;
	}
	if (thread && pthread_create(&idle, NULL, raw_idle, NULL) != 0)
		return 1;
	t0 = raw_now();
	if ((rc = cl_init(CL_INIT_DEFAULT)) != CL_SUCCESS || (e = cl_engine_new()) == NULL ||
	    raw_engine(e) != 0 || (rc = cl_load(argv[optind], e, &sigs, CL_DB_STDOPT)) != CL_SUCCESS ||
	    (rc = cl_engine_compile(e)) != CL_SUCCESS) {
		fprintf(stderr, "raw-engine: %s\n", cl_strerror(rc));
		return 1;
	}
	printf("RAW load_s=%.2f rss_kib=%ld signatures=%u\n", raw_now() - t0, raw_rss_kib(), sigs);
	fflush(stdout);
	for (c = optind + 1; c < argc; c++)
		raw_row(e, argv[c], seconds, nonce);
	cl_engine_free(e);
	return 0;
}
