/* scanner_scan.c -- one scan: libclamav's over the upload with our callbacks, the second reader's
 * pass over the members libclamav did not scan, then the verdict rules and the clean cache. */
#include "scanner_priv.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "log.h"
#include "reader.h"
#include "util.h"

void
scanner_warm_up(struct scanner *s)
{
	static const char sample[] = "clamrest warm-up scan";
	struct scan_request q = { .data = sample, .len = sizeof(sample) - 1 };
	struct scan_result r;

	scanner_scan(s, &q, &r);
}

static void
scan_state_init(struct scan_state *st, const struct scanner *s, uint64_t size)
{
	uint64_t budget = s->scan_limit;

	if (s->o.max_expansion > 0 && size < budget / s->o.max_expansion) {
		budget = size * s->o.max_expansion;
		if (budget < SCANNER_EXPANSION_FLOOR)
			budget = SCANNER_EXPANSION_FLOOR;
	}
	*st = (struct scan_state){ .s = s, .budget = budget, .max_depth = s->o.max_recursion + 2 };
	st->layers = calloc(st->max_depth, sizeof(*st->layers));
}

static void
scan_state_free(struct scan_state *st)
{
	if (st->layers != NULL)
		for (unsigned i = 0; i < st->max_depth; i++)
			scanner_layer_names_free(&st->layers[i]);
	free(st->layers);
	free(st->keyed);
	reader_free(st->rd);
}

/* The second reader for one scan, with the scan's limits: its extractions have a budget of their
 * own as large as libclamav's (each reader may unpack what the scan may). None (st->rd NULL) when
 * archives are not to be parsed. */
static int
scanner_reader_start(struct scan_state *st, const struct scanner *s, double end)
{
	struct reader_limits lim = {
		.max_file_size = s->o.max_file_size,
		.budget = st->budget,
		.max_files = s->o.max_files,
		.max_recursion = s->o.max_recursion,
		.deadline = end,
		.encrypted_alert = (s->scan_opts.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE) != 0,
	};

	/* SCAN_ARCHIVE=no (clamd's ScanArchive no): archives are not opened, by either reader. */
	if (!s->o.policy.scan_archive)
		return 0;
	st->rd = reader_new(&lim);
	return st->rd != NULL ? 0 : -1;
}

/* libclamav's MAX_SCAN_TIME is per scan and engine-wide; the scans of one request (its parts, the
 * second reader's members) share what is left of the request's, bounded inside libclamav's loops
 * where the library can (patch 0132: cl_set_scan_time_left()); elsewhere between layers only.
 * end 0: no bound but MAX_SCAN_TIME. */
static void
scanner_time_left(double end)
{
#ifdef CL_HAS_SCAN_TIME_LEFT
	double left = end - util_now();

	cl_set_scan_time_left(end <= 0 ? 0 : left < 0.001 ? 1 : (uint32_t)(left * 1000));
#else
	(void)end;
#endif
}

/* After libclamav: each member the second reader extracted and libclamav did not scan is scanned
 * as a layer of its own, at its depth, with the same state and callbacks, so a member that is an
 * archive is read again by both readers; members found there join the queue (no recursion on our
 * stack). Stops at the first match, error or limit. */
static cl_error_t
scanner_second_pass(struct scan_state *st, struct engine *e, const struct cl_scan_options *opts,
    cl_error_t rc, const char **virname, double deadline)
{
	struct cl_scan_options o = *opts;
	struct reader_member *m;
	unsigned long scanned = 0;
	cl_fmap_t *map;

	while (rc == CL_CLEAN && st->limit == NULL && !st->tmp_full && !st->reader_oom &&
	    (m = reader_next(st->rd)) != NULL) {
		if (util_now() > deadline) {
			st->limit = SCANNER_LIMIT_TIME;
			reader_member_free(m);
			break;
		}
		log_debug("second reader: scanning a member libclamav did not scan (%zu bytes, depth %u)",
		    m->len, m->depth);
		st->base = m->depth;
		st->prefix = m->path;
		st->prefix_len = m->path_len;
		st->prefix_depth = m->path_depth;
		st->depth = 0;
		if ((map = cl_fmap_open_memory(m->len > 0 ? (const void *)m->data : "", m->len)) == NULL) {
			rc = CL_EMEM;
		} else {
			scanner_time_left(deadline);
			rc = cl_scanmap_callback(map, NULL, virname, &scanned, e->cl, &o, st);
			cl_fmap_close(map);
			if (rc == CL_VIRUS)
				log_info("second reader: %s in a member libclamav did not scan (%.200s)",
				    *virname != NULL ? *virname : "?", m->path);
		}
		st->prefix = NULL;
		st->prefix_len = 0;
		st->prefix_depth = 0;
		reader_member_free(m);
	}
	return rc;
}

static void scanner_reader_finish(struct scan_state *st, cl_error_t rc);

/* The second pass with the upload's bytes at hand (members of the upload are extracted again from
 * them): data, or the file mapped again for the pass. */
static cl_error_t
scanner_second_run(struct scan_state *st, struct engine *e, const struct cl_scan_options *opts,
    cl_error_t rc, const char **virname, const void *data, size_t len, int fd, double deadline)
{
	void *map = MAP_FAILED;

	if (data == NULL && fd >= 0 && len > 0 && rc == CL_CLEAN &&
	    (map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)) != MAP_FAILED)
		data = map;
	reader_set_upload(st->rd, data, len);
	rc = scanner_second_pass(st, e, opts, rc, virname, deadline);
	reader_set_upload(st->rd, NULL, 0);
	if (map != MAP_FAILED)
		munmap(map, len);
	scanner_reader_finish(st, rc);
	return rc;
}

/* What the second reader met becomes the scan's: a limit, an encrypted member, a member no reader
 * could extract. */
static void
scanner_reader_finish(struct scan_state *st, cl_error_t rc)
{
	const char *found;
	int is_limit;

	if (st->rd == NULL || rc != CL_CLEAN || (found = reader_finding(st->rd, &is_limit)) == NULL)
		return;
	log_warnx("second reader: %s (libarchive listed a member libclamav did not scan, or met a "
	    "limit extracting it)", found);
	if (is_limit && st->limit == NULL)
		st->limit = found;
	else if (!is_limit && st->unscanned == NULL)
		st->unscanned = found;
	scanner_place(st, found, 0, 1);
}

/* libclamav's scan of the upload: of data when there is, else of fd. */
static cl_error_t
scanner_clamav(struct engine *e, const void *data, size_t len, int fd,
    struct cl_scan_options *opts, const char **virname, struct scan_state *st)
{
	unsigned long scanned = 0;
	cl_fmap_t *map;
	cl_error_t rc;

	/* A body in a file is scanned through our mapping of it when there is one: libclamav's own
	 * fmap of a descriptor copies every page it reads with pread, a mapping costs no copy. */
	if (fd >= 0 && data == NULL)
		return cl_scandesc_callback(fd, NULL, virname, &scanned, e->cl, opts, st);
	if ((map = cl_fmap_open_memory(data, len)) == NULL)
		return CL_EMEM;
	rc = cl_scanmap_callback(map, NULL, virname, &scanned, e->cl, opts, st);
	cl_fmap_close(map);
	return rc;
}

/* A scan the cache did not answer, of data (len bytes) or else fd: libclamav's, then the second
 * reader's, then the verdict rules; a complete clean scan is remembered under digest (NULL: not
 * hashed). */
static void
scanner_full(struct scanner *s, struct engine *e, const struct scan_request *q, const void *data,
    size_t len, int fd, const unsigned char *digest, double t0, struct scan_result *r)
{
	struct cl_scan_options opts = s->scan_opts;
	const char *virname = NULL;
	struct scan_state st;
	cl_error_t rc;
	int complete;
	/* The scan's end: MAX_SCAN_TIME from its start, or the request's end when that is sooner. */
	double end = t0 + s->o.max_scan_time / 1000.0;

	if (q->deadline > 0 && q->deadline < end)
		end = q->deadline;
	scan_state_init(&st, s, len);
	if (st.layers != NULL && scanner_reader_start(&st, s, end) != 0) {
		free(st.layers);
		st.layers = NULL;	/* answered "out of memory" */
	}
	st.d = q->detail;
	st.kinds = q->kinds;
	st.deadline = q->deadline;
	/* The member cache skips members: an upload policy needs every layer's type. */
	if (q->kinds == NULL && s->members.slots != NULL) {
		st.members = &s->members;
		st.generation = e->generation;
		st.all_matches = q->all_matches != 0;
	}
	/* The one option a scan may add: all-match mode reports more matches and leaves every
	 * verdict as it is, so our clean cache stays valid (libclamav's is off: engine_limits). */
	if (q->all_matches)
		opts.general |= CL_SCAN_GENERAL_ALLMATCHES;
	scanner_errors_begin();
	scanner_time_left(end);
	rc = scanner_clamav(e, data, len, fd, &opts, &virname, &st);
	if (st.rd != NULL)
		rc = scanner_second_run(&st, e, &opts, rc, &virname, data, len, fd, end);
	scanner_time_left(0);
	if (st.reader_oom && rc == CL_CLEAN)
		rc = CL_EMEM;
	scanner_errors_end();
	complete = scanner_verdict(rc, virname, &st, s, r);
	scanner_detail_finish(&st, r);
	if (complete)	/* never a member of a scan cut short, in error, or that found anything */
		scanner_members_commit(&st);
	scan_state_free(&st);
	if (complete && digest != NULL)
		scanner_cache_put(&s->cache, e->generation, digest, st.type0, q->kinds);
}

/* One scan, with our verdict rules and cache around libclamav: of data (len bytes) when it is not
 * NULL, else of fd. q->digest is the SHA-256 of those bytes when the caller has it; else data is
 * what is hashed for the cache (NULL: not hashed). */
static void
scanner_run(struct scanner *s, const struct scan_request *q, const void *data, size_t len, int fd,
    struct scan_result *r)
{
	struct engine *e = engine_acquire(s);
	unsigned char digest[SCANNER_DIGEST_LEN];
	double t0 = util_now();

	if (e == NULL) {	/* a low-memory reload is loading */
		scanner_verdict_unavailable(s, len, r);
		return;
	}
	r->unavailable = 0;
	if (q->digest != NULL)
		memcpy(digest, q->digest, SCANNER_DIGEST_LEN);
	r->hashed = q->digest != NULL || (data != NULL && scanner_digest(data, len, digest) == 0);
	memcpy(r->sha256, digest, r->hashed ? SCANNER_DIGEST_LEN : 0);
	r->bytes = len;
	r->cached = r->hashed && scanner_cache_get(&s->cache, e->generation, digest,
	    q->detail != NULL ? q->detail->type : NULL, q->kinds);
	if (r->cached)
		scanner_verdict_cached(r);
	else
		scanner_full(s, e, q, data, len, fd, r->hashed ? digest : NULL, t0, r);
	r->seconds = util_now() - t0;
	engine_release(s, e);
	scanner_heal(s, r);
}

/* A body in a file is scanned through our own read-only mapping of it, known digest or not: its pages
 * are the page cache's, which the kernel can drop and share, where libclamav's fmap of a descriptor
 * would copy every page it reads into anonymous memory (a 256 MiB upload: 256 MiB more RssAnon per
 * scan thread). The mapping also serves to hash the file when the digest is not known. Without a
 * mapping (mmap refused) libclamav reads the descriptor itself. */
static void
scanner_fd(struct scanner *s, const struct scan_request *q, struct scan_result *r)
{
	struct stat st;
	void *map = MAP_FAILED;
	size_t len = 0;

	if (fstat(q->fd, &st) == 0 && st.st_size > 0) {
		len = (size_t)st.st_size;
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, q->fd, 0);
	}
	if (map == MAP_FAILED) {
		scanner_run(s, q, NULL, len, q->fd, r);
		return;
	}
	madvise(map, len, MADV_SEQUENTIAL);
	scanner_run(s, q, map, len, q->fd, r);
	munmap(map, len);
}

void
scanner_scan(struct scanner *s, const struct scan_request *q, struct scan_result *r)
{
	if (q->data == NULL)
		scanner_fd(s, q, r);
	else
		scanner_run(s, q, q->len > 0 ? q->data : "", q->len, -1, r);
}
