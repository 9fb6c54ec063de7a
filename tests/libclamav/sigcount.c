/* sigcount.c -- what libclamav's load-progress callback is told of a database folder: the total
 * it counted before loading (engine->num_total_signatures) and the signatures loaded.
 *
 * Usage: sigcount DBDIR...   prints "total=T loaded=L rc=R" per folder (T: the total of the first
 * progress call, made once the first file is loaded). The differential test
 * (test_libclamav_diff.py) compares the speed-patched library with the fixes-only one on text
 * databases written to stress the count (patch 0503 reads them by blocks, not by characters). */
#include <clamav.h>
#include <stdio.h>

static size_t total;

static cl_error_t
progress(size_t total_items, size_t now_completed, void *context)
{
	(void)now_completed;
	(void)context;
	if (total == 0)
		total = total_items;	/* the count; cl_load's last call says (loaded, loaded) */
	return CL_SUCCESS;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || cl_init(CL_INIT_DEFAULT) != CL_SUCCESS)
		return 2;
	for (int i = 1; i < argc; i++) {
		struct cl_engine *e = cl_engine_new();
		unsigned int sigs = 0;

		if (e == NULL)
			return 2;
		total = 0;
		cl_engine_set_clcb_sigload_progress(e, progress, NULL);
		cl_error_t rc = cl_load(argv[i], e, &sigs, CL_DB_STDOPT);

		printf("%s: total=%zu loaded=%u rc=%d\n", argv[i], total, sigs, (int)rc);
		cl_engine_free(e);
	}
	return 0;
}
