/* scanner.c -- libclamav engines: load, share by reference, swap on database change, scan. */
#include "scanner.h"

#include <clamav.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SCANNER_TMP_PREFIX "clamrest."	/* our folder below TMPDIR: clamrest.<pid> */

/* One compiled engine and the scans using it. The last release hands it to the watcher thread,
 * which frees it: freeing a real database takes long and must not delay an answer. */
struct engine {
	struct cl_engine *cl;
	atomic_uint refs;
	long version;
	time_t dbtime;
	unsigned signatures;
	struct engine *next;		/* in the graveyard */
};

struct scanner {
	pthread_mutex_t lock;		/* guards cur, graveyard, stop, poked */
	pthread_cond_t wake;
	struct engine *cur;
	struct engine *graveyard;
	int stop, poked;
	pthread_t watcher;
	int watching;

	pthread_mutex_t reload_lock;	/* one reload at a time; guards dbstat */
	struct cl_stat dbstat;
	atomic_ulong reloads, reload_failures;

	struct scanner_opts o;
	char *db_dir;
	char tmpdir[4096];
};

/* Scan options as clamd's defaults, plus alerts for encrypted archives and for files cut short at
 * a limit: without the latter libclamav answers CLEAN for what it did not finish. Fixed for the
 * life of the process, since libclamav's clean-file cache does not remember the options. */
static struct cl_scan_options scanner_options = {
	.general = CL_SCAN_GENERAL_HEURISTICS,
	.parse = ~0U,
	.heuristic = CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE | CL_SCAN_HEURISTIC_EXCEEDS_MAX,
};

/* libclamav reports some failures only through its message callback and then answers CLEAN (1.4.6:
 * a scan whose temporary folder cannot be made is not scanned at all). An error logged by the
 * scanning thread during its scan turns a clean verdict into an error. */
static _Thread_local int scanner_errors;
static _Thread_local char scanner_errmsg[160];

static pthread_once_t scanner_once = PTHREAD_ONCE_INIT;
static cl_error_t scanner_init_rc;

static void
scanner_clmsg(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx)
{
	size_t len = strlen(msg);

	(void)fullmsg;
	(void)ctx;
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		len--;
	if (severity == CL_MSG_ERROR) {
		log_errorx("libclamav: %.*s", (int)len, msg);
		if (scanner_errors++ == 0)
			snprintf(scanner_errmsg, sizeof(scanner_errmsg), "libclamav: %.*s", (int)len, msg);
	}
	else if (severity == CL_MSG_WARN)
		log_warnx("libclamav: %.*s", (int)len, msg);
	else
		log_debug("libclamav: %.*s", (int)len, msg);
}

static void
scanner_global_init(void)
{
	cl_set_clcb_msg(scanner_clmsg);
	scanner_init_rc = cl_init(CL_INIT_DEFAULT);
}

const char *
scanner_engine_version(void)
{
	return cl_retver();
}

static void
engine_destroy(struct engine *e)
{
	if (e == NULL)
		return;
	if (e->cl != NULL)
		cl_engine_free(e->cl);
	free(e);
}

static int
engine_limits(struct cl_engine *cl, const struct scanner *s)
{
	const struct scanner_opts *o = &s->o;
	/* A member over MAX_FILESIZE is cut short silently, one over MAX_SCANSIZE is reported: never let
	 * the silent limit be the lower one. */
	uint64_t file_size = o->max_file_size < o->max_scan_size ? o->max_scan_size : o->max_file_size;

	if (cl_engine_set_num(cl, CL_ENGINE_MAX_SCANSIZE, (long long)o->max_scan_size) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_FILESIZE, (long long)file_size) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_RECURSION, o->max_recursion) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_FILES, o->max_files) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_SCANTIME, o->max_scan_time) != CL_SUCCESS ||
	    cl_engine_set_str(cl, CL_ENGINE_TMPDIR, s->tmpdir) != CL_SUCCESS)
		return -1;
	return 0;
}

/* clamd's order: new, settings, load, compile. */
static struct engine *
engine_build(const struct scanner *s, char *err, size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));
	cl_error_t rc;
	int gerr;

	if (e == NULL || (e->cl = cl_engine_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (engine_limits(e->cl, s) != 0) {
		snprintf(err, errlen, "cannot set the engine's limits");
		goto fail;
	}
	rc = cl_load(s->db_dir, e->cl, &e->signatures, CL_DB_STDOPT);
	if (rc != CL_SUCCESS) {
		snprintf(err, errlen, "CLAMAV_DB_DIR: cannot load %s: %s", s->db_dir, cl_strerror(rc));
		goto fail;
	}
	if (e->signatures == 0) {
		snprintf(err, errlen, "CLAMAV_DB_DIR: no signatures in %s", s->db_dir);
		goto fail;
	}
	if ((rc = cl_engine_compile(e->cl)) != CL_SUCCESS) {
		snprintf(err, errlen, "CLAMAV_DB_DIR: cannot compile %s: %s", s->db_dir, cl_strerror(rc));
		goto fail;
	}
	e->version = (long)cl_engine_get_num(e->cl, CL_ENGINE_DB_VERSION, &gerr);
	if (gerr != CL_SUCCESS)
		e->version = 0;
	e->dbtime = (time_t)cl_engine_get_num(e->cl, CL_ENGINE_DB_TIME, &gerr);
	atomic_init(&e->refs, 1);	/* the scanner's own reference */
	return e;
fail:
	engine_destroy(e);
	return NULL;
}

static struct engine *
engine_acquire(struct scanner *s)
{
	struct engine *e;

	pthread_mutex_lock(&s->lock);
	e = s->cur;
	atomic_fetch_add(&e->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return e;
}

static void
engine_release(struct scanner *s, struct engine *e)
{
	if (atomic_fetch_sub(&e->refs, 1) != 1)
		return;
	pthread_mutex_lock(&s->lock);
	e->next = s->graveyard;
	s->graveyard = e;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static int
scanner_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void
scanner_rmtree(const char *path)
{
	nftw(path, scanner_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Folders of earlier clamrest processes that died without cleaning up. */
static void
scanner_wipe_stale(const char *tmpdir)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	size_t plen = strlen(SCANNER_TMP_PREFIX);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		long long pid;
		char path[4096];

		if (strncmp(de->d_name, SCANNER_TMP_PREFIX, plen) != 0 ||
		    util_parse_ll(de->d_name + plen, 1, 1LL << 30, &pid) != 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name) < sizeof(path)) {
			log_info("removing stale temporary folder %s", path);
			scanner_rmtree(path);
		}
	}
	closedir(d);
}

static int
scanner_make_tmpdir(struct scanner *s, const char *parent, char *err, size_t errlen)
{
	if ((size_t)snprintf(s->tmpdir, sizeof(s->tmpdir), "%s/%s%ld", parent, SCANNER_TMP_PREFIX,
	    (long)getpid()) >= sizeof(s->tmpdir)) {
		snprintf(err, errlen, "TMPDIR: path too long");
		return -1;
	}
	scanner_wipe_stale(parent);
	scanner_rmtree(s->tmpdir);
	if (mkdir(s->tmpdir, 0700) != 0) {
		snprintf(err, errlen, "TMPDIR: cannot create %s: %s", s->tmpdir, strerror(errno));
		return -1;
	}
	return 0;
}

static void
scanner_bury(struct scanner *s)
{
	struct engine *dead;

	while ((dead = s->graveyard) != NULL) {
		s->graveyard = dead->next;
		pthread_mutex_unlock(&s->lock);
		engine_destroy(dead);
		pthread_mutex_lock(&s->lock);
	}
}

/* Frees released engines, and looks at the folder every check_interval seconds or when poked. */
static void *
scanner_watch(void *arg)
{
	struct scanner *s = arg;
	double next = util_now() + s->o.check_interval;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct timespec ts;
		int due;

		scanner_bury(s);
		due = s->poked || (s->o.check_interval > 0 && util_now() >= next);
		if (due) {
			s->poked = 0;
			pthread_mutex_unlock(&s->lock);
			scanner_reload(s, 0);
			pthread_mutex_lock(&s->lock);
			next = util_now() + s->o.check_interval;
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += s->o.check_interval > 0 ? 1 : 60;
		if (s->graveyard == NULL && !s->poked && !s->stop)
			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	scanner_bury(s);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int
scanner_check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "CLAMAV_DB_DIR: %s is not a folder", dir);
		return -1;
	}
	return 0;
}

const char *
scanner_pick_tmpdir(const char *fallback, uint64_t need)
{
	struct statfs fs;

	if (statfs(SCANNER_TMPFS, &fs) != 0 || fs.f_type != TMPFS_MAGIC ||
	    access(SCANNER_TMPFS, W_OK | X_OK) != 0)
		return fallback;
	if ((uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize < need)
		return fallback;
	return SCANNER_TMPFS;
}

static void
scanner_warm_up(struct scanner *s)
{
	static const char sample[] = "clamrest warm-up scan";
	struct scan_result r;

	scanner_scan_mem(s, sample, sizeof(sample) - 1, &r);
}

struct scanner *
scanner_new(const struct scanner_opts *o, char *err, size_t errlen)
{
	struct scanner *s;

	pthread_once(&scanner_once, scanner_global_init);
	if (scanner_init_rc != CL_SUCCESS) {
		snprintf(err, errlen, "libclamav: cl_init: %s", cl_strerror(scanner_init_rc));
		return NULL;
	}
	if (scanner_check_dir(o->db_dir, err, errlen) != 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->db_dir = strdup(o->db_dir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail_alloc;
	}
	s->o = *o;
	s->o.db_dir = s->db_dir;
	s->o.tmpdir = s->tmpdir;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->reload_lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	if (scanner_make_tmpdir(s, o->tmpdir, err, errlen) != 0)
		goto fail;
	if (cl_statinidir(s->db_dir, &s->dbstat) != CL_SUCCESS) {
		snprintf(err, errlen, "CLAMAV_DB_DIR: cannot read %s", s->db_dir);
		goto fail;
	}
	if ((s->cur = engine_build(s, err, errlen)) == NULL)
		goto fail;
	scanner_warm_up(s);
	if (pthread_create(&s->watcher, NULL, scanner_watch, s) != 0) {
		snprintf(err, errlen, "cannot start the database watcher");
		goto fail;
	}
	s->watching = 1;
	log_info("loaded %u signatures from %s, database version %ld; temporary files in %s",
	    s->cur->signatures, s->db_dir, s->cur->version, s->tmpdir);
	return s;
fail:
	scanner_free(s);
	return NULL;
fail_alloc:
	free(s);
	return NULL;
}

void
scanner_free(struct scanner *s)
{
	if (s == NULL)
		return;
	if (s->watching) {
		pthread_mutex_lock(&s->lock);
		s->stop = 1;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->watcher, NULL);
	}
	if (s->cur != NULL && atomic_fetch_sub(&s->cur->refs, 1) == 1)
		engine_destroy(s->cur);
	cl_statfree(&s->dbstat);
	if (s->tmpdir[0] != '\0')
		scanner_rmtree(s->tmpdir);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->reload_lock);
	pthread_mutex_destroy(&s->lock);
	free(s->db_dir);
	free(s);
}

int
scanner_reload(struct scanner *s, int force)
{
	struct engine *e, *old;
	char err[512];
	double t0 = util_now();

	pthread_mutex_lock(&s->reload_lock);
	if (!force && cl_statchkdir(&s->dbstat) != 1) {
		pthread_mutex_unlock(&s->reload_lock);
		return 0;
	}
	/* Take the folder's state before loading: a change during the load shows up next time. */
	cl_statfree(&s->dbstat);
	cl_statinidir(s->db_dir, &s->dbstat);
	e = engine_build(s, err, sizeof(err));
	pthread_mutex_unlock(&s->reload_lock);
	if (e == NULL) {
		atomic_fetch_add(&s->reload_failures, 1);
		log_errorx("database reload failed, still serving the previous one: %s", err);
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	old = s->cur;
	s->cur = e;
	pthread_mutex_unlock(&s->lock);
	engine_release(s, old);
	atomic_fetch_add(&s->reloads, 1);
	log_info("database reloaded: %u signatures, version %ld, in %.2f s", e->signatures, e->version,
	    util_now() - t0);
	return 1;
}

void
scanner_poke(struct scanner *s)
{
	pthread_mutex_lock(&s->lock);
	s->poked = 1;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

void
scanner_stats(struct scanner *s, struct scanner_stats *st)
{
	struct engine *e = engine_acquire(s);

	st->db_version = e->version;
	st->db_time = e->dbtime;
	st->signatures = e->signatures;
	st->reloads = atomic_load(&s->reloads);
	st->reload_failures = atomic_load(&s->reload_failures);
	engine_release(s, e);
}

static const char *
scanner_limit_name(cl_error_t rc)
{
	switch (rc) {
	case CL_ETIMEOUT: return "Heuristics.Limits.Exceeded.MaxScanTime";
	case CL_EMAXSIZE: return "Heuristics.Limits.Exceeded.MaxScanSize";
	case CL_EMAXFILES: return "Heuristics.Limits.Exceeded.MaxFiles";
	case CL_EMAXREC: return "Heuristics.Limits.Exceeded.MaxRecursion";
	default: return NULL;
	}
}

/* A file is clean only when libclamav says so without logging an error; a limit hit is reported
 * as one, never as clean. */
static void
scanner_verdict(cl_error_t rc, const char *virname, struct scan_result *r)
{
	const char *limit = scanner_limit_name(rc);

	r->limit_exceeded = 0;
	if (rc == CL_CLEAN && scanner_errors > 0) {
		r->verdict = SCAN_ERROR;
		snprintf(r->reason, sizeof(r->reason), "%s", scanner_errmsg);
	} else if (rc == CL_CLEAN) {
		r->verdict = SCAN_CLEAN;
		r->reason[0] = '\0';
	} else if (rc == CL_VIRUS) {
		r->verdict = SCAN_MALWARE;
		snprintf(r->reason, sizeof(r->reason), "%s", virname ? virname : "Unknown");
		r->limit_exceeded = strncmp(r->reason, "Heuristics.Limits.Exceeded", 26) == 0;
	} else if (limit != NULL) {
		r->verdict = SCAN_MALWARE;
		r->limit_exceeded = 1;
		snprintf(r->reason, sizeof(r->reason), "%s", limit);
	} else {
		r->verdict = SCAN_ERROR;
		snprintf(r->reason, sizeof(r->reason), "%s", cl_strerror(rc));
	}
}

/* After a failed scan: our temporary folder may have been removed under us (a /tmp cleaner, an
 * operator); make it again so the next scan can run. */
static void
scanner_heal(struct scanner *s, const struct scan_result *r)
{
	if (r->verdict == SCAN_ERROR && mkdir(s->tmpdir, 0700) == 0)
		log_warnx("temporary folder %s was missing; made it again", s->tmpdir);
}

void
scanner_scan_mem(struct scanner *s, const void *data, size_t len, struct scan_result *r)
{
	struct engine *e = engine_acquire(s);
	struct cl_scan_options opts = scanner_options;
	const char *virname = NULL;
	unsigned long scanned = 0;
	double t0 = util_now();
	cl_fmap_t *map;
	cl_error_t rc;

	scanner_errors = 0;
	map = cl_fmap_open_memory(data, len);
	if (map == NULL) {
		rc = CL_EMEM;
	} else {
		rc = cl_scanmap_callback(map, NULL, &virname, &scanned, e->cl, &opts, NULL);
		cl_fmap_close(map);
	}
	scanner_verdict(rc, virname, r);
	r->seconds = util_now() - t0;
	r->bytes = len;
	engine_release(s, e);
	scanner_heal(s, r);
}

void
scanner_scan_fd(struct scanner *s, int fd, struct scan_result *r)
{
	struct engine *e = engine_acquire(s);
	struct cl_scan_options opts = scanner_options;
	const char *virname = NULL;
	unsigned long scanned = 0;
	double t0 = util_now();
	struct stat st;
	cl_error_t rc;

	scanner_errors = 0;
	rc = cl_scandesc(fd, NULL, &virname, &scanned, e->cl, &opts);
	scanner_verdict(rc, virname, r);
	r->seconds = util_now() - t0;
	r->bytes = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	engine_release(s, e);
	scanner_heal(s, r);
}
