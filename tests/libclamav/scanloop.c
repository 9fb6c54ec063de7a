/* scanloop.c -- the engine alone, with clamrest's scan options: verdicts of files, or the CPU time
 * of scanning one file again and again. Used by tests/libclamav (patched vs Debian's libclamav).
 *
 *   scanloop DBDIR FILE...        one line per file: "FILE<TAB>VIRUS<TAB>NAME", "CLEAN", "ERROR <code>",
 *                                 then "<TAB>msg E/W": the libclamav errors and warnings (cl_msg,
 *                                 counted through cl_set_clcb_msg) logged during that scan, as
 *                                 clamrest turns a scan with a libclamav error into 500
 *   scanloop -a DBDIR FILE...     the same with every match reported (CL_SCAN_GENERAL_ALLMATCHES):
 *                                 "VIRUS<TAB>NAME,NAME,..." in the order of the virus-found callbacks
 *   scanloop -n N DBDIR FILE      scans FILE N times; prints "cpu_us_per_scan <x>" (user+system)
 *
 * Options as src/scanner.c: general heuristics, all parsers, encrypted-archive and exceeds-max
 * heuristics, libclamav's clean cache off. */
#define _GNU_SOURCE	/* dladdr */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/resource.h>
#include <clamav.h>

static unsigned long n_errors, n_warnings;
static int allmatch;
/* -a: every name reported, comma-separated, all of them (a scan of an archive of executables
 * reports tens of thousands: a fixed buffer would hide a difference in its last layers) */
static char *names;
static size_t names_len, names_cap;

static void
virus_found(int fd, const char *name, void *context)
{
	size_t n = strlen(name) + 1;

	(void)fd;
	(void)context;
	if (names_len + n + 1 > names_cap) {
		size_t cap = names_cap ? names_cap : 65536;
		char *p;

		while (names_len + n + 1 > cap)
			cap *= 2;
		if ((p = realloc(names, cap)) == NULL) {
			fputs("scanloop: out of memory\n", stderr);
			exit(1);
		}
		names = p;
		names_cap = cap;
	}
	if (names_len)
		names[names_len++] = ',';
	memcpy(names + names_len, name, n);	/* with its NUL */
	names_len += n - 1;
}

/* Counts libclamav's errors and warnings; prints them to stderr like libclamav's default. */
static void
count_msg(enum cl_msg severity, const char *fullmsg, const char *msg, void *context)
{
	(void)msg;
	(void)context;
	if (severity == CL_MSG_ERROR)
		n_errors++;
	else if (severity == CL_MSG_WARN)
		n_warnings++;
	else
		return;
	fputs(fullmsg, stderr);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
scan_one(struct cl_engine *cl, const char *path, int quiet)
{
	struct cl_scan_options opts = {
		.general = CL_SCAN_GENERAL_HEURISTICS,
		.parse = ~0U,
		.heuristic = CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE | CL_SCAN_HEURISTIC_EXCEEDS_MAX,
	};
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_error_t rc;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		printf("%s\tERROR open\n", path);
		return -1;
	}
	if (allmatch)
		opts.general |= CL_SCAN_GENERAL_ALLMATCHES;
	n_errors = n_warnings = 0;
	names_len = 0;
	if (names)
		names[0] = '\0';
	rc = cl_scandesc(fd, path, &virname, &scanned, cl, &opts);
	close(fd);
	if (quiet)
		return 0;
	if (rc == CL_VIRUS)
		printf("%s\tVIRUS\t%s", path, allmatch && names ? names : virname);
	else if (rc == CL_CLEAN)
		printf("%s\tCLEAN", path);
	else
		printf("%s\tERROR %d", path, (int)rc);
	printf("\tmsg %lu/%lu\n", n_errors, n_warnings);
	fflush(stdout);	/* a crash later keeps the answers so far */
	return 0;
}

int
main(int argc, char **argv)
{
	struct cl_engine *cl;
	unsigned int sigs = 0;
	long n = 0;
	int i = 1;

	if (argc > 3 && strcmp(argv[1], "-n") == 0) {
		n = strtol(argv[2], NULL, 10);
		i = 3;
	} else if (argc > 2 && strcmp(argv[1], "-a") == 0) {
		allmatch = 1;
		i = 2;
	}
	if (argc - i < 2 || n < 0) {
		fprintf(stderr, "usage: scanloop [-a | -n N] DBDIR FILE...\n");
		return 2;
	}
	cl_set_clcb_msg(count_msg);
	if (cl_init(CL_INIT_DEFAULT) != CL_SUCCESS || (cl = cl_engine_new()) == NULL)
		return 1;
	cl_engine_set_num(cl, CL_ENGINE_DISABLE_CACHE, 1);
	cl_engine_set_clcb_virus_found(cl, virus_found);
	if (cl_load(argv[i], cl, &sigs, CL_DB_STDOPT) != CL_SUCCESS || cl_engine_compile(cl) != CL_SUCCESS) {
		fprintf(stderr, "scanloop: cannot load %s\n", argv[i]);
		return 1;
	}
	{
		Dl_info dl;	/* which file: both libraries say 1.4.6 */

		if (dladdr((void *)cl_retver, &dl) == 0 || dl.dli_fname == NULL)
			dl.dli_fname = "?";
		fprintf(stderr, "scanloop: libclamav %s (%s), %u signatures\n", cl_retver(), dl.dli_fname, sigs);
	}
	if (n > 0) {
		double t0;
		long k;

		scan_one(cl, argv[i + 1], 1);	/* warm up */
		t0 = cpu_seconds();
		for (k = 0; k < n; k++)
			scan_one(cl, argv[i + 1], 1);
		printf("cpu_us_per_scan %.1f\n", (cpu_seconds() - t0) * 1e6 / (double)n);
	} else {
		for (i++; i < argc; i++)
			scan_one(cl, argv[i], 0);
	}
	cl_engine_free(cl);
	return 0;
}
