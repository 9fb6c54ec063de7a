/* scanner.c -- libclamav engines: load, share by reference, swap on database change, scan. */
#include "scanner.h"

#include <clamav.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <openssl/evp.h>
#include <sys/mman.h>
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
	unsigned long generation;	/* which load this is: clean-cache entries carry it */
	struct engine *next;		/* in the graveyard */
};

/* A clean verdict remembered by the SHA-256 of what was scanned, for one engine generation.
 * Direct-mapped: a collision evicts. Only complete scans are remembered (see scanner_verdict). */
struct cache_entry {
	unsigned char digest[SCANNER_DIGEST_LEN];
	unsigned long generation;	/* 0: empty */
};

struct scanner {
	pthread_mutex_t lock;		/* guards cur, graveyard, stop, poked */
	pthread_cond_t wake;
	struct engine *cur;		/* NULL: none loaded yet, or a low-memory reload is loading */
	struct engine *graveyard;
	atomic_int available;		/* cur != NULL, read without the lock (/check, every upload) */
	double ready_eta;		/* util_now() the unavailable reload should end; under lock */
	double last_load_s;		/* seconds the last engine took to build; under reload_lock */
	int stop, poked;
	pthread_t watcher;
	int watching;

	pthread_mutex_t reload_lock;	/* one reload at a time; guards dbstat and generation */
	struct cl_stat dbstat;
	unsigned long generation;
	atomic_ulong reloads, reload_failures;
	atomic_int folder_ok;		/* the last look found db_dir readable and not empty */
	atomic_ulong folder_unusable;	/* times it turned empty or unreadable */

	pthread_mutex_t cache_lock;	/* guards cache */
	struct cache_entry *cache;	/* cache_entries slots, NULL when off */
	atomic_ulong cache_hits;

	uint64_t file_limit;		/* libclamav's maxfilesize, as it clamps it */
	uint64_t scan_limit;		/* libclamav's maxscansize */

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
 * a scan whose temporary folder cannot be made is not scanned at all; an archive member it failed to
 * write is skipped with a warning). An error or a warning logged by the scanning thread during its
 * scan turns a clean verdict into an error. */
static _Thread_local int scanner_errors;
static _Thread_local int scanner_in_scan;
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
	if (severity == CL_MSG_ERROR)
		log_errorx("libclamav: %.*s", (int)len, msg);
	else if (severity == CL_MSG_WARN)
		log_warnx("libclamav: %.*s", (int)len, msg);
	else
		log_debug("libclamav: %.*s", (int)len, msg);
	if (scanner_in_scan && (severity == CL_MSG_ERROR || severity == CL_MSG_WARN) &&
	    scanner_errors++ == 0)
		snprintf(scanner_errmsg, sizeof(scanner_errmsg), "libclamav: %.*s", (int)len, msg);
}

static EVP_MD *scanner_sha256;	/* fetched once: a fetch per scan costs more than hashing EICAR */

static void
scanner_global_init(void)
{
	cl_set_clcb_msg(scanner_clmsg);
	scanner_init_rc = cl_init(CL_INIT_DEFAULT);
	if (scanner_init_rc == CL_SUCCESS && (scanner_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		scanner_init_rc = CL_EMEM;
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

/* The limits libclamav really applies: it clamps maxfilesize to INT_MAX - 2 (others.c), below our
 * 2 GiB - 1 cap. The file limit gets a margin over MAX_FILE_SIZE so that an upload of exactly
 * MAX_CONTENT_LENGTH bytes is never near it. */
static void
scanner_limits(struct scanner *s)
{
	uint64_t file_limit = s->o.max_file_size + SCANNER_LIMIT_MARGIN;

	s->file_limit = file_limit > SCANNER_CLAMAV_FILE_MAX ? SCANNER_CLAMAV_FILE_MAX : file_limit;
	s->scan_limit = s->o.max_scan_size;
}

static cl_error_t scanner_inspect(int fd, const char *type, const char **ancestors,
    size_t parent_size, const char *name, size_t size, const char *buf, uint32_t level,
    uint32_t attributes, void *context);
static cl_error_t scanner_layer_done(int fd, int result, const char *virname, void *context);
struct scan_state;
static void scanner_layer_open(struct scan_state *st, uint32_t level, const char *type,
    size_t size);
static cl_error_t scanner_meta(const char *container_type, unsigned long fsize_container,
    const char *filename, unsigned long fsize_real, int is_encrypted, unsigned int filepos,
    void *context);

/* libclamav's own clean-file cache is off: it remembers a file as clean even when a member of it was
 * skipped or cut short without an alert (a full temporary folder, a member trimmed to a limit), and
 * then answers that clean for ever. Ours remembers only complete scans (scanner_cache_put). */
static int
engine_limits(struct cl_engine *cl, const struct scanner *s)
{
	const struct scanner_opts *o = &s->o;

	if (cl_engine_set_num(cl, CL_ENGINE_MAX_SCANSIZE, (long long)s->scan_limit) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_FILESIZE, (long long)s->file_limit) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_RECURSION, o->max_recursion) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_FILES, o->max_files) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_MAX_SCANTIME, o->max_scan_time) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_DISABLE_CACHE, 1) != CL_SUCCESS ||
	    cl_engine_set_str(cl, CL_ENGINE_TMPDIR, s->tmpdir) != CL_SUCCESS)
		return -1;
	cl_engine_set_clcb_file_inspection(cl, scanner_inspect);
	cl_engine_set_clcb_post_scan(cl, scanner_layer_done);
	cl_engine_set_clcb_meta(cl, scanner_meta);
	return 0;
}

/* glibc quirk: stdio takes a stream's lock on every call once the process has a second thread, and
 * libclamav 1.4.6 reads text databases with fgetc and feof per character: with our threads up that
 * locking was 61% of a load (perf), which took twice as long as in a single-threaded process. A
 * stream libclamav opens inside cl_load belongs to the loading thread alone (opened, read and closed
 * there), so those are switched to FSETLOCKING_BYCALLER. fopen64 is the name libclamav calls (nm -D
 * on libclamav.so.12); the executable's definition interposes it, and every other caller, or this
 * thread outside cl_load, gets the real one unchanged. */
static _Thread_local int scanner_loading;

FILE *
fopen64(const char *path, const char *mode)
{
	static FILE *(*_Atomic real)(const char *, const char *);
	FILE *(*fn)(const char *, const char *) = atomic_load(&real);
	FILE *f;

	if (fn == NULL) {
		*(void **)&fn = dlsym(RTLD_NEXT, "fopen64");
		if (fn == NULL) {
			errno = ENOSYS;
			return NULL;
		}
		atomic_store(&real, fn);
	}
	f = fn(path, mode);
	if (f != NULL && scanner_loading)
		__fsetlocking(f, FSETLOCKING_BYCALLER);
	return f;
}

/* clamd's order: new, settings, load, compile. Called by one thread at a time (start, or under
 * reload_lock). */
static struct engine *
engine_build(struct scanner *s, char *err, size_t errlen)
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
	scanner_loading = 1;
	rc = cl_load(s->db_dir, e->cl, &e->signatures, CL_DB_STDOPT);
	scanner_loading = 0;
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
	e->generation = ++s->generation;
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
	if (e != NULL)
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

static int scanner_check_dir(const char *dir, char *err, size_t errlen);

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

/* DB_WAIT, no database yet: loads one when the folder changed since the last look, and also when
 * forced (every check_interval and when poked), since a file copied in place and read half-written
 * may get its last change within the same second, which cl_statchkdir cannot see. Quiet while the
 * folder is missing: libclamav's stat functions log an error at every call then. */
static void
scanner_await(struct scanner *s, int force)
{
	char err[512];
	int changed;

	if (scanner_check_dir(s->db_dir, err, sizeof(err)) != 0)
		return;
	pthread_mutex_lock(&s->reload_lock);
	if (s->dbstat.dir == NULL)	/* the folder was missing at the last look */
		changed = cl_statinidir(s->db_dir, &s->dbstat) == CL_SUCCESS && s->dbstat.entries > 0;
	else
		changed = cl_statchkdir(&s->dbstat) == 1;
	pthread_mutex_unlock(&s->reload_lock);
	if (changed || force)
		scanner_reload(s, 1);
}

/* Whether the folder can be read and holds a file; a warning when that stops being so and a line
 * when it is so again. A reload from such a folder fails and keeps the old engine, which ages. */
static void
scanner_check_folder(struct scanner *s)
{
	char why[256] = "";
	struct dirent *e;
	DIR *d;
	int ok = 0;

	if ((d = opendir(s->db_dir)) == NULL) {
		snprintf(why, sizeof(why), "cannot be read: %s", strerror(errno));
	} else {
		while (!ok && (e = readdir(d)) != NULL)
			ok = e->d_name[0] != '.';
		closedir(d);
		if (!ok)
			snprintf(why, sizeof(why), "is empty");
	}
	if (atomic_exchange(&s->folder_ok, ok) == ok)
		return;
	if (ok) {
		log_info("CLAMAV_DB_DIR %s can be read again", s->db_dir);
		return;
	}
	atomic_fetch_add(&s->folder_unusable, 1);
	log_warnx("CLAMAV_DB_DIR %s %s: still serving the database loaded before, which ages",
	    s->db_dir, why);
}

/* Frees released engines, and looks at the folder every check_interval seconds or when poked
 * (every SCANNER_WAIT_INTERVAL while DB_WAIT waits for a first database). */
static void *
scanner_watch(void *arg)
{
	struct scanner *s = arg;
	double next = util_now() + s->o.check_interval;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct timespec ts;
		int due, waiting;

		scanner_bury(s);
		waiting = s->cur == NULL;
		due = s->poked || (s->o.check_interval > 0 && util_now() >= next);
		if (due || waiting) {
			s->poked = 0;
			pthread_mutex_unlock(&s->lock);
			if (waiting) {
				scanner_await(s, due);
			} else {
				scanner_check_folder(s);
				scanner_reload(s, 0);
			}
			pthread_mutex_lock(&s->lock);
			if (due) {
				next = util_now() + s->o.check_interval;
				continue;
			}
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += waiting ? SCANNER_WAIT_INTERVAL : s->o.check_interval > 0 ? 1 : 60;
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

/* The database at start: the folder's state (for scanner_reload's change check), then an engine. */
static int
scanner_load_first(struct scanner *s, char *err, size_t errlen)
{
	double t0;

	if (scanner_check_dir(s->db_dir, err, errlen) != 0)
		return -1;
	if (cl_statinidir(s->db_dir, &s->dbstat) != CL_SUCCESS) {
		snprintf(err, errlen, "CLAMAV_DB_DIR: cannot read %s", s->db_dir);
		return -1;
	}
	t0 = util_now();
	if ((s->cur = engine_build(s, err, errlen)) == NULL)
		return -1;
	s->last_load_s = util_now() - t0;
	atomic_store(&s->available, 1);
	scanner_warm_up(s);
	return 0;
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
	if (!o->wait && scanner_check_dir(o->db_dir, err, errlen) != 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->db_dir = strdup(o->db_dir)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail_alloc;
	}
	s->o = *o;
	atomic_init(&s->folder_ok, 1);	/* a database loads from it, or scanner_ready waits */
	s->o.db_dir = s->db_dir;
	s->o.tmpdir = s->tmpdir;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->reload_lock, NULL);
	pthread_mutex_init(&s->cache_lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	scanner_limits(s);
	if (o->cache_entries > 0 &&
	    (s->cache = calloc(o->cache_entries, sizeof(*s->cache))) == NULL) {
		snprintf(err, errlen, "SCAN_CACHE: out of memory");
		goto fail;
	}
	if (scanner_make_tmpdir(s, o->tmpdir, err, errlen) != 0)
		goto fail;
	if (scanner_load_first(s, err, errlen) != 0 && !o->wait)
		goto fail;
	if (pthread_create(&s->watcher, NULL, scanner_watch, s) != 0) {
		snprintf(err, errlen, "cannot start the database watcher");
		goto fail;
	}
	s->watching = 1;
	if (s->cur == NULL)
		log_warnx("no signature database yet (%s); DB_WAIT is set: looking at %s every %d s and "
		    "loading the first database to appear", err, s->db_dir, SCANNER_WAIT_INTERVAL);
	else
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
	pthread_mutex_destroy(&s->cache_lock);
	pthread_mutex_destroy(&s->lock);
	free(s->cache);
	free(s->db_dir);
	free(s);
}

/* RELOAD_MODE=low-memory: takes the engine away (scans answer unavailable from here on), waits for
 * the scans still using it (each bounded by MAX_SCAN_TIME) and frees it, so the new engine is built
 * without the old one in memory. Returns 1 when an engine was freed. Under reload_lock. */
static int
scanner_drop_engine(struct scanner *s)
{
	const struct timespec pause = { .tv_nsec = 10 * 1000 * 1000 };
	struct engine *old;

	pthread_mutex_lock(&s->lock);
	old = s->cur;
	s->cur = NULL;
	atomic_store(&s->available, 0);
	s->ready_eta = util_now() + s->last_load_s;
	pthread_mutex_unlock(&s->lock);
	if (old == NULL)
		return 0;
	log_warnx("RELOAD_MODE=low-memory: freeing the loaded database before loading the new one; "
	    "scans answer 503 until it is in (the last load took %.1f s)", s->last_load_s);
	/* No new scan can take it (cur is NULL); ours is the last reference once these end. */
	while (atomic_load(&old->refs) > 1)
		nanosleep(&pause, NULL);
	engine_destroy(old);
	/* glibc keeps freed heap in its arenas; give it back so the new engine's peak is the only one. */
	malloc_trim(0);
	return 1;
}

int
scanner_reload(struct scanner *s, int force)
{
	struct engine *e, *old;
	char err[512];
	double t0 = util_now();
	int first = !atomic_load(&s->available), dropped = 0;

	pthread_mutex_lock(&s->reload_lock);
	if (!force && cl_statchkdir(&s->dbstat) != 1) {
		pthread_mutex_unlock(&s->reload_lock);
		return 0;
	}
	/* Take the folder's state before loading: a change during the load shows up next time. */
	cl_statfree(&s->dbstat);
	cl_statinidir(s->db_dir, &s->dbstat);
	if (s->o.low_memory_reload && !first)
		dropped = scanner_drop_engine(s);
	e = engine_build(s, err, sizeof(err));
	if (e != NULL)
		s->last_load_s = util_now() - t0;
	pthread_mutex_unlock(&s->reload_lock);
	if (e == NULL) {
		atomic_fetch_add(&s->reload_failures, 1);
		if (dropped)
			log_errorx("database reload failed after the old database was freed "
			    "(RELOAD_MODE=low-memory): no database; scans answer 503 until a load "
			    "succeeds (every DB_CHECK_INTERVAL and on SIGUSR2): %s", err);
		else if (!first)
			log_errorx("database reload failed, still serving the previous one: %s", err);
		else
			log_warnx("no signature database loaded yet, still waiting (DB_WAIT): %s", err);
		return -1;
	}
	if (first)	/* DB_WAIT: the first database */
		log_info("loaded %u signatures from %s, database version %ld, in %.2f s; temporary "
		    "files in %s", e->signatures, s->db_dir, e->version, util_now() - t0, s->tmpdir);
	pthread_mutex_lock(&s->lock);
	old = s->cur;
	s->cur = e;
	atomic_store(&s->available, 1);
	pthread_mutex_unlock(&s->lock);
	if (first) {
		scanner_warm_up(s);
		return 1;
	}
	if (old != NULL)
		engine_release(s, old);
	atomic_fetch_add(&s->reloads, 1);
	log_info("database reloaded: %u signatures, version %ld, in %.2f s%s", e->signatures,
	    e->version, util_now() - t0, dropped ? " (low-memory: scans were refused meanwhile)" : "");
	return 1;
}

unsigned
scanner_retry_after(struct scanner *s)
{
	double left;

	pthread_mutex_lock(&s->lock);
	left = s->ready_eta - util_now();
	pthread_mutex_unlock(&s->lock);
	return left < 1 ? 1 : left > 3600 ? 3600 : (unsigned)left + 1;
}

/* 1 while an engine is loaded: 0 before the first load, and during a low-memory reload. */
int
scanner_ready(struct scanner *s)
{
	return atomic_load(&s->available);
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

	st->db_version = e != NULL ? e->version : -1;
	st->db_time = e != NULL ? e->dbtime : 0;
	st->signatures = e != NULL ? e->signatures : 0;
	st->reloads = atomic_load(&s->reloads);
	st->reload_failures = atomic_load(&s->reload_failures);
	st->cache_hits = atomic_load(&s->cache_hits);
	st->db_folder_ok = atomic_load(&s->folder_ok);
	st->db_folder_unusable = atomic_load(&s->folder_unusable);
	if (e != NULL)
		engine_release(s, e);
}

static const char *
scanner_limit_name(cl_error_t rc)
{
	switch (rc) {
	case CL_ETIMEOUT: return SCANNER_LIMIT_TIME;
	case CL_EMAXSIZE: return SCANNER_LIMIT_SCAN_SIZE;
	case CL_EMAXFILES: return "Heuristics.Limits.Exceeded.MaxFiles";
	case CL_EMAXREC: return "Heuristics.Limits.Exceeded.MaxRecursion";
	default: return NULL;
	}
}

/* One layer of a scan still open: what its container format announced (libclamav's metadata
 * callback, once per member) and how many members were then really scanned as layers below it. */
struct scan_layer {
	unsigned announced, children;
	unsigned long pending;		/* size the format announced for the member it unpacks next */
	size_t size;
	const char *type;		/* libclamav's name of the layer's type */
	int zip;			/* libclamav announces each zip member twice (central, local header) */
	int rar;			/* Debian's libclamav has no unrar: a RAR is never unpacked */
	int mspack;			/* CAB or CHM: announces each member right before unpacking it */
};

/* What one scan has seen, for scanner_inspect: libclamav calls it for every layer (the upload, every
 * member it unpacked, every buffer it normalised) before scanning that layer, and scanner_layer_done
 * after. */
struct scan_state {
	const struct scanner *s;
	struct scan_layer *layers;	/* open layers, outermost first; NULL: not tracked */
	unsigned depth, max_depth;
	const char *unscanned;		/* a member announced but never scanned: the verdict */
	uint64_t total;			/* bytes of every layer so far, as libclamav's scansize counts */
	uint64_t budget;		/* bytes this scan may unpack, from its size and MAX_EXPANSION */
	const char *limit;		/* a limit this scan met: the verdict is that limit */
	int tmp_full;			/* the temporary folder was (nearly) full: the verdict is an error */
};

/* 1 when the file system holding fd has less than SCANNER_TMP_LOW_WATER bytes free. */
static int
scanner_fs_low(int fd)
{
	struct statfs fs;

	if (fstatfs(fd, &fs) != 0)
		return 0;
	return (uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize < SCANNER_TMP_LOW_WATER;
}

static int
scanner_dir_low(const char *dir)
{
	struct statfs fs;

	if (statfs(dir, &fs) != 0)
		return 1;
	return (uint64_t)fs.f_bavail * (uint64_t)fs.f_bsize < SCANNER_TMP_LOW_WATER;
}

/* The guard against libclamav's silent truncations, seen from the one place every layer passes:
 * - a member within a margin of maxfilesize may have been cut to it: unzip, xar and the InstallShield
 *   reader stop writing at the last block that fits and raise nothing;
 * - a scan whose layers add up to within a margin of maxscansize may have had a member shrunk to what
 *   was left, or skipped: the CAB/CHM reader (libmspack glue) does both and answers CLEAN;
 * - more unpacked than MAX_EXPANSION times the upload: a decompression bomb, stopped here rather than
 *   after it has filled the temporary folder;
 * - a member extracted onto a file system that is now full was most likely cut short by ENOSPC, which
 *   most readers log at debug level only (invisible to us) before scanning what they got.
 * Answering CL_VIRUS stops the scan at once; scanner_verdict turns it into the limit or the error. */
static cl_error_t
scanner_inspect(int fd, const char *type, const char **ancestors, size_t parent_size,
    const char *name, size_t size, const char *buf, uint32_t level, uint32_t attributes,
    void *context)
{
	struct scan_state *st = context;
	const struct scanner *s;

	(void)type;
	(void)ancestors;
	(void)parent_size;
	(void)name;
	(void)buf;
	(void)attributes;
	if (st == NULL)
		return CL_CLEAN;
	s = st->s;
	scanner_layer_open(st, level, type, size);
	st->total += size;
	if (level == 0)
		return CL_CLEAN;
	if ((uint64_t)size + SCANNER_LIMIT_MARGIN >= s->file_limit)
		st->limit = SCANNER_LIMIT_FILE_SIZE;
	else if (st->total + SCANNER_LIMIT_MARGIN >= s->scan_limit || st->total > st->budget)
		st->limit = SCANNER_LIMIT_SCAN_SIZE;
	if (fd >= 0 && scanner_fs_low(fd))
		st->tmp_full = 1;
	return st->limit != NULL || st->tmp_full ? CL_VIRUS : CL_CLEAN;
}

/* The bytes a member must have to be scanned: libclamav skips files of 5 bytes or less. */
#define SCANNER_MEMBER_MIN 5
#define SCANNER_NAME_MAX 255	/* bytes of a plausible member name */

static const char *
scanner_unscanned_name(const struct scan_layer *l)
{
	return l->rar ? SCANNER_UNSCANNED_RAR : SCANNER_UNSCANNED_MEMBER;
}

/* A layer is complete when every member its format announced was scanned as a layer below it. The
 * cases this catches, all answered CLEAN by libclamav 1.4.6: zip members with a compression method it
 * lacks (LZMA, zstd, xz, PPMd) or Zip64 sizes ("stream out of file"), members whose data lies
 * beyond the end of the file, and RAR archives, which Debian's build cannot unpack at all. */
static int
scanner_layer_complete(const struct scan_layer *l)
{
	unsigned want = l->zip ? (l->announced + 1) / 2 : l->announced;

	/* A RAR, CAB or CHM whose reader announced nothing was not opened at all (no unrar; a CHM
	 * layout libmspack rejects, as chmcmd's): nothing in it was scanned. */
	if ((l->rar || l->mspack) && l->announced == 0 && l->children == 0)
		return 0;
	return l->children >= want;
}

static void
scanner_layer_open(struct scan_state *st, uint32_t level, const char *type, size_t size)
{
	struct scan_layer *l;

	if (st->layers == NULL || level >= st->max_depth)
		return;
	st->depth = level + 1;
	if (level > 0) {
		struct scan_layer *parent = &st->layers[level - 1];

		parent->children++;
		/* A CAB or CHM member of fewer bytes than announced was cut short on the way (libmspack's
		 * glue shrinks it to what is left of the scan budget, or a write hit ENOSPC) and scanned
		 * in part. Only these readers announce each member right before unpacking it; zip's
		 * announcements come in another order (its zip-bomb pass reads ahead). */
		if (parent->pending > size && st->unscanned == NULL) {
			log_debug("scan: a %s member of %zu bytes was announced with %lu", type ? type : "?",
			    size, parent->pending);
			st->unscanned = SCANNER_UNSCANNED_CUT;
		}
		parent->pending = 0;
	}
	l = &st->layers[level];
	*l = (struct scan_layer){
		.size = size,
		.type = type,
		.zip = type != NULL && (strncmp(type, "CL_TYPE_ZIP", 11) == 0 ||
		    strncmp(type, "CL_TYPE_OOXML", 13) == 0),
		.rar = type != NULL && strncmp(type, "CL_TYPE_RAR", 11) == 0,	/* RARSFX too */
		.mspack = type != NULL && (strcmp(type, "CL_TYPE_MSCAB") == 0 ||
		    strcmp(type, "CL_TYPE_MSCHM") == 0),
	};
}

static cl_error_t
scanner_layer_done(int fd, int result, const char *virname, void *context)
{
	struct scan_state *st = context;
	struct scan_layer *l;

	(void)fd;
	(void)virname;
	if (st == NULL || st->layers == NULL || st->depth == 0)
		return CL_CLEAN;
	l = &st->layers[--st->depth];
	if (result != CL_VIRUS && st->unscanned == NULL && !scanner_layer_complete(l))
		st->unscanned = scanner_unscanned_name(l);
	return CL_CLEAN;
}

/* libclamav also looks for zip headers inside files of any type (a zip appended to an executable, or
 * just the bytes "PK\3\4" in a binary) and announces what it finds there. Such an embedded entry
 * counts only when it looks like a member someone made: a compressed size that fits in the layer and
 * a printable name. Entries of the layer's own format always count. */
static int
scanner_member_plausible(const struct scan_layer *l, const char *container_type,
    unsigned long csize, const char *name)
{
	size_t n;

	if (l->type != NULL && container_type != NULL && strcmp(l->type, container_type) == 0)
		return 1;
	if (csize > l->size || name == NULL || (n = strlen(name)) == 0 || n > SCANNER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x20 || name[i] > 0x7e)
			return 0;
	return 1;
}

static cl_error_t
scanner_meta(const char *container_type, unsigned long fsize_container, const char *filename,
    unsigned long fsize_real, int is_encrypted, unsigned int filepos, void *context)
{
	struct scan_state *st = context;

	(void)container_type;
	(void)filename;
	(void)is_encrypted;
	(void)filepos;
	struct scan_layer *l;

	if (st == NULL || st->layers == NULL || st->depth == 0 || fsize_real <= SCANNER_MEMBER_MIN)
		return CL_CLEAN;
	l = &st->layers[st->depth - 1];
	if (scanner_member_plausible(l, container_type, fsize_container, filename))
		l->announced++;
	if (l->mspack)
		l->pending = fsize_real;
	return CL_CLEAN;
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

/* The one place that decides a verdict. A file is clean only when libclamav says so, logged no error
 * or warning meanwhile, met no limit (its own or scanner_inspect's) and never ran short of temporary
 * space; a limit is malware, never clean. Returns 1 when the verdict is complete enough to cache. */
static int
scanner_verdict(cl_error_t rc, const char *virname, const struct scan_state *st,
    const struct scanner *s, struct scan_result *r)
{
	const char *limit = scanner_limit_name(rc);

	r->limit_exceeded = 0;
	r->verdict = SCAN_ERROR;
	if (st->tmp_full || (rc == CL_CLEAN && st->limit == NULL && scanner_dir_low(s->tmpdir))) {
		snprintf(r->reason, sizeof(r->reason), "the temporary folder %.200s is full", s->tmpdir);
		log_errorx("scan not trusted: %s (less than %u bytes free)", r->reason,
		    SCANNER_TMP_LOW_WATER);
	} else if (st->limit != NULL && (rc == CL_CLEAN || rc == CL_VIRUS)) {
		r->verdict = SCAN_MALWARE;
		r->limit_exceeded = 1;
		snprintf(r->reason, sizeof(r->reason), "%s", st->limit);
	} else if (st->layers == NULL && rc == CL_CLEAN) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
	} else if (st->unscanned != NULL && rc == CL_CLEAN) {
		r->verdict = SCAN_MALWARE;
		r->limit_exceeded = 1;
		snprintf(r->reason, sizeof(r->reason), "%s", st->unscanned);
	} else if (rc == CL_CLEAN && scanner_errors > 0) {
		snprintf(r->reason, sizeof(r->reason), "%s", scanner_errmsg);
	} else if (rc == CL_CLEAN) {
		r->verdict = SCAN_CLEAN;
		r->reason[0] = '\0';
		return 1;
	} else if (rc == CL_VIRUS) {
		r->verdict = SCAN_MALWARE;
		snprintf(r->reason, sizeof(r->reason), "%s", virname ? virname : "Unknown");
		r->limit_exceeded = strncmp(r->reason, "Heuristics.Limits.Exceeded", 26) == 0;
	} else if (limit != NULL) {
		r->verdict = SCAN_MALWARE;
		r->limit_exceeded = 1;
		snprintf(r->reason, sizeof(r->reason), "%s", limit);
	} else {
		snprintf(r->reason, sizeof(r->reason), "%s", cl_strerror(rc));
	}
	return 0;
}

/* After a failed scan: our temporary folder may have been removed under us (a /tmp cleaner, an
 * operator); make it again so the next scan can run. */
static void
scanner_heal(struct scanner *s, const struct scan_result *r)
{
	if (r->verdict == SCAN_ERROR && mkdir(s->tmpdir, 0700) == 0)
		log_warnx("temporary folder %s was missing; made it again", s->tmpdir);
}

static int
scanner_digest(const void *data, size_t len, unsigned char *out)
{
	return EVP_Digest(data, len, out, NULL, scanner_sha256, NULL) == 1 ? 0 : -1;
}

static struct cache_entry *
scanner_cache_slot(struct scanner *s, const unsigned char *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof(h));
	return &s->cache[h % s->o.cache_entries];
}

static int
scanner_cache_get(struct scanner *s, const struct engine *e, const unsigned char *digest)
{
	struct cache_entry *c;
	int hit;

	if (s->cache == NULL)
		return 0;
	pthread_mutex_lock(&s->cache_lock);
	c = scanner_cache_slot(s, digest);
	hit = c->generation == e->generation && memcmp(c->digest, digest, SCANNER_DIGEST_LEN) == 0;
	pthread_mutex_unlock(&s->cache_lock);
	return hit;
}

static void
scanner_cache_put(struct scanner *s, const struct engine *e, const unsigned char *digest)
{
	struct cache_entry *c;

	if (s->cache == NULL)
		return;
	pthread_mutex_lock(&s->cache_lock);
	c = scanner_cache_slot(s, digest);
	memcpy(c->digest, digest, SCANNER_DIGEST_LEN);
	c->generation = e->generation;
	pthread_mutex_unlock(&s->cache_lock);
}

/* One scan, with our verdict rules and cache around libclamav: of fd when it is not -1, else of
 * data. data (NULL: unknown) is what is hashed for the cache. */
static void
scanner_run(struct scanner *s, const void *data, size_t len, int fd, struct scan_result *r)
{
	struct engine *e = engine_acquire(s);
	struct cl_scan_options opts = scanner_options;
	unsigned char digest[SCANNER_DIGEST_LEN];
	const char *virname = NULL;
	unsigned long scanned = 0;
	double t0 = util_now();
	struct scan_state st;
	int hashed, complete;
	cl_fmap_t *map;
	cl_error_t rc;

	r->unavailable = e == NULL;
	if (e == NULL) {	/* a low-memory reload is loading: never a verdict without an engine */
		r->verdict = SCAN_ERROR;
		r->limit_exceeded = 0;
		r->cached = 0;
		r->hashed = 0;
		r->bytes = len;
		r->seconds = 0;
		r->retry_after = scanner_retry_after(s);
		snprintf(r->reason, sizeof(r->reason), "the signature database is reloading "
		    "(RELOAD_MODE=low-memory)");
		return;
	}
	hashed = data != NULL && scanner_digest(data, len, digest) == 0;
	memcpy(r->sha256, digest, hashed ? SCANNER_DIGEST_LEN : 0);
	r->hashed = hashed;
	r->cached = hashed && scanner_cache_get(s, e, digest);
	r->bytes = len;
	if (r->cached) {
		r->verdict = SCAN_CLEAN;
		r->limit_exceeded = 0;
		r->reason[0] = '\0';
		atomic_fetch_add(&s->cache_hits, 1);
		goto done;
	}
	scan_state_init(&st, s, len);
	scanner_errors = 0;
	scanner_in_scan = 1;
	/* A body in a file is scanned through our mapping of it when there is one: libclamav's own
	 * fmap of a descriptor copies every page it reads with pread, a mapping costs no copy. */
	if (fd >= 0 && data == NULL) {
		rc = cl_scandesc_callback(fd, NULL, &virname, &scanned, e->cl, &opts, &st);
	} else if ((map = cl_fmap_open_memory(data, len)) == NULL) {
		rc = CL_EMEM;
	} else {
		rc = cl_scanmap_callback(map, NULL, &virname, &scanned, e->cl, &opts, &st);
		cl_fmap_close(map);
	}
	scanner_in_scan = 0;
	complete = scanner_verdict(rc, virname, &st, s, r);
	free(st.layers);
	if (complete && hashed)
		scanner_cache_put(s, e, digest);
done:
	r->seconds = util_now() - t0;
	engine_release(s, e);
	scanner_heal(s, r);
}

void
scanner_scan_mem(struct scanner *s, const void *data, size_t len, struct scan_result *r)
{
	scanner_run(s, len > 0 ? data : "", len, -1, r);
}

/* The file is mapped to hash it (the page cache holds it: the scan reads the same pages). */
void
scanner_scan_fd(struct scanner *s, int fd, struct scan_result *r)
{
	struct stat st;
	void *map = MAP_FAILED;
	size_t len = 0;

	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		len = (size_t)st.st_size;
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	}
	if (map == MAP_FAILED) {
		scanner_run(s, NULL, len, fd, r);
		return;
	}
	madvise(map, len, MADV_SEQUENTIAL);
	scanner_run(s, map, len, fd, r);
	munmap(map, len);
}
