/* limitscan -- scans each file with clamrest's limits and prints "<rc> <name|-> <seconds>": the
 * harness of test_fix_limits.py, built against Debian's libclamav and against ours.
 * Usage: limitscan DBDIR MAX_SCAN_TIME_MS MAX_EXPANSION FILE... (MAX_EXPANSION is set only when
 * the library has CL_ENGINE_MAX_EXPANSION, with the 64 MiB floor clamrest uses). */
#include <clamav.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int
main(int argc, char **argv)
{
	struct cl_scan_options o = { 0 };
	struct cl_engine *e;
	unsigned sigs = 0;

	if (argc < 5 || cl_init(CL_INIT_DEFAULT) != CL_SUCCESS || (e = cl_engine_new()) == NULL)
		return 2;
	if (cl_load(argv[1], e, &sigs, CL_DB_STDOPT) != CL_SUCCESS)
		return 2;
	cl_engine_set_num(e, CL_ENGINE_MAX_SCANSIZE, 2147483647LL);
	cl_engine_set_num(e, CL_ENGINE_MAX_FILESIZE, 1LL << 30);
	cl_engine_set_num(e, CL_ENGINE_MAX_SCANTIME, atoll(argv[2]));
	cl_engine_set_num(e, CL_ENGINE_DISABLE_CACHE, 1);
#ifdef CL_ENGINE_HAS_MAX_EXPANSION
	cl_engine_set_num(e, CL_ENGINE_MAX_EXPANSION, atoll(argv[3]));
	cl_engine_set_num(e, CL_ENGINE_EXPANSION_FLOOR, 64LL << 20);
#endif
	if (cl_engine_compile(e) != CL_SUCCESS)
		return 2;
	o.parse = ~0u;
	o.general = CL_SCAN_GENERAL_HEURISTICS;
	o.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	for (int i = 4; i < argc; i++) {
		const char *name = NULL;
		struct timespec t0, t1;
		cl_error_t rc;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = cl_scanfile(argv[i], &name, NULL, e, &o);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("%d %s %.3f\n", (int)rc, name != NULL ? name : "-",
		    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		fflush(stdout);
	}
	cl_engine_free(e);
	return 0;
}
