/* layers.c -- the layers libclamav tells an application about, through the callbacks clamrest uses
 * (file inspection, post-scan, meta), with clamrest's scan options and libclamav's cache off.
 * Used by test_fix_drops.py (patch 0113: every layer libclamav scans is announced and closed).
 *
 *   layers DBDIR FILE     one line per callback: "INSPECT <level> <type> <attributes>",
 *                         "POST <result>", "META <container type> <size>"; then "RESULT <code>" */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <clamav.h>

static cl_error_t
inspect(int fd, const char *type, const char **ancestors, size_t parent_size, const char *name,
    size_t size, const char *buf, uint32_t level, uint32_t attributes, void *context)
{
	(void)fd; (void)ancestors; (void)parent_size; (void)name; (void)size; (void)buf; (void)context;
	printf("INSPECT %u %s %u\n", level, type, attributes);
	return CL_CLEAN;
}

static cl_error_t
post(int fd, int result, const char *virname, void *context)
{
	(void)fd; (void)virname; (void)context;
	printf("POST %d\n", result);
	return CL_CLEAN;
}

static cl_error_t
meta(const char *container_type, unsigned long fsize_container, const char *filename,
    unsigned long fsize_real, int is_encrypted, unsigned int filepos, void *context)
{
	(void)fsize_container; (void)filename; (void)is_encrypted; (void)filepos; (void)context;
	printf("META %s %lu\n", container_type, fsize_real);
	return CL_CLEAN;
}

int
main(int argc, char **argv)
{
	struct cl_scan_options opts = {
		.general = CL_SCAN_GENERAL_HEURISTICS,
		.parse = ~0U,
		.heuristic = CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE | CL_SCAN_HEURISTIC_EXCEEDS_MAX,
	};
	struct cl_engine *cl;
	const char *virname = NULL;
	unsigned int sigs = 0;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: layers DBDIR FILE\n");
		return 2;
	}
	if (cl_init(CL_INIT_DEFAULT) != CL_SUCCESS || (cl = cl_engine_new()) == NULL)
		return 1;
	cl_engine_set_num(cl, CL_ENGINE_DISABLE_CACHE, 1);
	if (cl_load(argv[1], cl, &sigs, CL_DB_STDOPT) != CL_SUCCESS || cl_engine_compile(cl) != CL_SUCCESS)
		return 1;
	cl_engine_set_clcb_file_inspection(cl, inspect);
	cl_engine_set_clcb_post_scan(cl, post);
	cl_engine_set_clcb_meta(cl, meta);
	if ((fd = open(argv[2], O_RDONLY)) < 0)
		return 1;
	printf("RESULT %d\n", (int)cl_scandesc_callback(fd, argv[2], &virname, NULL, cl, &opts, NULL));
	close(fd);
	cl_engine_free(cl);
	return 0;
}
