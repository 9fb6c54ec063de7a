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
#include "reader.h"
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
	char type[SCANNER_TYPE_MAX];	/* libclamav's type of the file, for detailed scans */
};

struct scanner {
	pthread_mutex_t lock;		/* guards cur, graveyard, stop, poked */
	pthread_cond_t wake;
	struct engine *cur;		/* NULL: none loaded yet, or a low-memory reload is loading */
	struct engine *graveyard;
	atomic_int available;		/* cur != NULL, read without the lock (/check, every upload) */
	atomic_int loaded;		/* an engine was loaded once: cur == NULL since then means a
					 * low-memory reload, not DB_WAIT's wait for a first database */
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
	struct cl_scan_options scan_opts;	/* from o.policy, fixed */
	unsigned db_options;		/* cl_load's: CL_DB_STDOPT and the PUA choice */
	char pua_cats[40];		/* CL_ENGINE_PUA_CATEGORIES, ".cat."; "": none */
	atomic_ulong cut_clean;		/* ALERT_EXCEEDS_MAX=no: cut scans answered by what was scanned */
	char *db_dir;
	char tmpdir[4096];
};

/* The scan options, built from the policy as clamd builds them (clamd/server-th.c). Fixed for the
 * life of the process: that is what keeps our clean cache (and libclamav's, were it on) valid,
 * since neither remembers the options a verdict was reached with. */
static struct cl_scan_options
scanner_scan_options(const struct scanner_policy *p)
{
	struct cl_scan_options o = { 0 };

	o.general = p->heuristic_alerts ? CL_SCAN_GENERAL_HEURISTICS : 0;
	o.parse = (p->scan_archive ? CL_SCAN_PARSE_ARCHIVE : 0) | (p->scan_elf ? CL_SCAN_PARSE_ELF : 0) |
	    (p->scan_pdf ? CL_SCAN_PARSE_PDF : 0) | (p->scan_swf ? CL_SCAN_PARSE_SWF : 0) |
	    (p->scan_hwp3 ? CL_SCAN_PARSE_HWP3 : 0) | (p->scan_xmldocs ? CL_SCAN_PARSE_XMLDOCS : 0) |
	    (p->scan_mail ? CL_SCAN_PARSE_MAIL : 0) | (p->scan_ole2 ? CL_SCAN_PARSE_OLE2 : 0) |
	    (p->scan_html ? CL_SCAN_PARSE_HTML : 0) | (p->scan_pe ? CL_SCAN_PARSE_PE : 0) |
	    (p->scan_onenote ? CL_SCAN_PARSE_ONENOTE : 0) | (p->scan_image ? CL_SCAN_PARSE_IMAGE : 0) |
	    (p->scan_image_fuzzy_hash ? CL_SCAN_PARSE_IMAGE_FUZZY_HASH : 0);
	/* clamd: encrypted-archive alerts need archive parsing; AlertEncrypted adds to the other two. */
	if ((p->alert_encrypted || p->alert_encrypted_archive) && p->scan_archive)
		o.heuristic |= CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE;
	if (p->alert_encrypted || p->alert_encrypted_doc)
		o.heuristic |= CL_SCAN_HEURISTIC_ENCRYPTED_DOC;
	/* Without it libclamav answers CLEAN for what it did not finish (see scanner_verdict). */
	if (p->alert_exceeds_max)
		o.heuristic |= CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	if (p->alert_broken_executables && (p->scan_pe || p->scan_elf))
		o.heuristic |= CL_SCAN_HEURISTIC_BROKEN;
	if (p->alert_ole2_macros && p->scan_ole2)
		o.heuristic |= CL_SCAN_HEURISTIC_MACROS;
	/* clamd ties both to PhishingScanURLs, which CL_DB_STDOPT's CL_DB_PHISHING_URLS stands for. */
	if (p->alert_phishing_cloak)
		o.heuristic |= CL_SCAN_HEURISTIC_PHISHING_CLOAK;
	if (p->alert_phishing_ssl_mismatch)
		o.heuristic |= CL_SCAN_HEURISTIC_PHISHING_SSL_MISMATCH;
	return o;
}

int
scanner_policy_json(const struct scanner_policy *p, char *out, size_t outlen)
{
	struct cl_scan_options o = scanner_scan_options(p);
	int n;

#define B(x) ((x) ? "true" : "false")
	n = snprintf(out, outlen, "\"alert_encrypted_archive\":%s,\"alert_encrypted_doc\":%s,"
	    "\"alert_exceeds_max\":%s,\"detect_pua\":%s,\"pua_include\":\"%s\",\"pua_exclude\":\"%s\","
	    "\"heuristic_alerts\":%s,\"alert_broken_executables\":%s,\"alert_ole2_macros\":%s,"
	    "\"alert_phishing_ssl_mismatch\":%s,\"alert_phishing_cloak\":%s,\"scan_pe\":%s,"
	    "\"scan_elf\":%s,\"scan_ole2\":%s,\"scan_pdf\":%s,\"scan_swf\":%s,\"scan_html\":%s,"
	    "\"scan_xmldocs\":%s,\"scan_hwp3\":%s,\"scan_onenote\":%s,\"scan_archive\":%s,"
	    "\"scan_mail\":%s,\"scan_image\":%s,\"scan_image_fuzzy_hash\":%s",
	    B(o.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE),
	    B(o.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_DOC), B(p->alert_exceeds_max),
	    B(p->detect_pua), p->detect_pua && p->pua_include ? p->pua_include : "",
	    p->detect_pua && p->pua_exclude ? p->pua_exclude : "", B(p->heuristic_alerts),
	    B(o.heuristic & CL_SCAN_HEURISTIC_BROKEN), B(o.heuristic & CL_SCAN_HEURISTIC_MACROS),
	    B(p->alert_phishing_ssl_mismatch), B(p->alert_phishing_cloak), B(p->scan_pe),
	    B(p->scan_elf), B(p->scan_ole2), B(p->scan_pdf), B(p->scan_swf), B(p->scan_html),
	    B(p->scan_xmldocs), B(p->scan_hwp3), B(p->scan_onenote), B(p->scan_archive),
	    B(p->scan_mail), B(p->scan_image), B(p->scan_image_fuzzy_hash));
#undef B
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

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

/* cl_retver() says 1.4.6 for Debian's library and for ours with third_party/libclamav's patches:
 * only the file tells them apart, and the rpath, LD_LIBRARY_PATH or an image decide which is used. */
const char *
scanner_engine_file(void)
{
	Dl_info info;

	if (dladdr((void *)cl_retver, &info) == 0 || info.dli_fname == NULL || info.dli_fname[0] == '\0')
		return "unknown";
	return info.dli_fname;
}

#if defined(__has_include)
#if __has_include("libclamav_note.h")
#include "libclamav_note.h"	/* generated by the Makefile: why this build is not the patched one */
#endif
#endif
#ifndef LIBCLAMAV_NOTE
#define LIBCLAMAV_NOTE ""
#endif

static pthread_once_t scanner_patched_once = PTHREAD_ONCE_INIT;
static int scanner_patched;

/* scripts/build-libclamav leaves clamrest-libclamav.txt next to the library it builds (in the tree,
 * in lib/clamrest once installed, in the image), one "patch: NAME" line a patch applied. */
static void
scanner_patched_read(void)
{
	const char *file = scanner_engine_file();
	const char *slash = strrchr(file, '/');
	char path[4096], line[512];
	FILE *f;

	if (slash == NULL || snprintf(path, sizeof(path), "%.*s/clamrest-libclamav.txt",
	    (int)(slash - file), file) >= (int)sizeof(path) || (f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "patch: ", 7) == 0)
			scanner_patched = 1;
	fclose(f);
}

int
scanner_engine_patched(void)
{
	pthread_once(&scanner_patched_once, scanner_patched_read);
	return scanner_patched;
}

const char *
scanner_engine_note(void)
{
	return LIBCLAMAV_NOTE;
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
static void scanner_found(int fd, const char *virname, void *context);
struct scan_state;
static void scanner_layer_open(struct scan_state *st, uint32_t level, const char *type,
    const char *name, size_t size, int embedded);
static cl_error_t scanner_meta(const char *container_type, unsigned long fsize_container,
    const char *filename, unsigned long fsize_real, int is_encrypted, unsigned int filepos,
    void *context);

#ifdef CL_ENGINE_HAS_MAX_EXPANSION
#define SCANNER_EXPANSION_WHERE "inside libclamav's decompression loops, as they unpack"
#else
#define SCANNER_EXPANSION_WHERE "as each unpacked layer starts (this libclamav has no " \
	"CL_ENGINE_MAX_EXPANSION: a layer being unpacked is bounded by MAX_FILE_SIZE and MAX_SCAN_TIME)"
#endif

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
	    cl_engine_set_num(cl, CL_ENGINE_MAX_HTMLNORMALIZE, (long long)s->scan_limit) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_DISABLE_CACHE, 1) != CL_SUCCESS ||
	    cl_engine_set_str(cl, CL_ENGINE_TMPDIR, s->tmpdir) != CL_SUCCESS)
		return -1;
	if (s->pua_cats[0] != '\0' &&
	    cl_engine_set_str(cl, CL_ENGINE_PUA_CATEGORIES, s->pua_cats) != CL_SUCCESS)
		return -1;
#ifdef CL_ENGINE_HAS_MAX_EXPANSION
	/* Our patch 0131: MAX_EXPANSION checked inside libclamav's decompression loops, as they
	 * unpack (scanner_inspect checks it again, and alone on Debian's library, as layers start).
	 * libclamav tells of that cut only by the EXCEEDS_MAX alert: with ALERT_EXCEEDS_MAX=no we
	 * could not tell the cut scan from a clean one, so the check stays ours alone. */
	if (cl_engine_set_num(cl, CL_ENGINE_MAX_EXPANSION,
	    o->policy.alert_exceeds_max ? o->max_expansion : 0) != CL_SUCCESS ||
	    cl_engine_set_num(cl, CL_ENGINE_EXPANSION_FLOOR, (long long)SCANNER_EXPANSION_FLOOR) !=
	    CL_SUCCESS)
		return -1;
#endif
	cl_engine_set_clcb_file_inspection(cl, scanner_inspect);
	cl_engine_set_clcb_post_scan(cl, scanner_layer_done);
	cl_engine_set_clcb_meta(cl, scanner_meta);
	cl_engine_set_clcb_virus_found(cl, scanner_found);
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

/* When dir holds no file at all (or does not exist), says so in err with the two ways out, instead
 * of libclamav's "Can't open file or directory"; 0 when it holds something (libclamav's reason
 * stands). */
static int
db_dir_empty(const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (d == NULL && errno != ENOENT)
		return 0;
	while (d != NULL && empty && (de = readdir(d)) != NULL)
		empty = de->d_name[0] == '.';
	if (d != NULL)
		closedir(d);
	if (!empty)
		return 0;
	snprintf(err, errlen, "CLAMAV_DB_DIR %s %s: run freshclam to download the signatures, or "
	    "set DB_WAIT=1 to start anyway and answer 503 until a database appears there", dir,
	    d == NULL ? "does not exist" : "holds no signature database");
	return -1;
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
	rc = cl_load(s->db_dir, e->cl, &e->signatures, s->db_options);
	scanner_loading = 0;
	if (rc != CL_SUCCESS) {
		if (db_dir_empty(s->db_dir, err, errlen) == 0)
			snprintf(err, errlen, "CLAMAV_DB_DIR: cannot load %s: %s", s->db_dir,
			    cl_strerror(rc));
		goto fail;
	}
	if (e->signatures == 0) {
		if (db_dir_empty(s->db_dir, err, errlen) == 0)
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

/* The setting that chose libclamav's folder, for messages. */
static const char *
scanner_tmp_setting(const struct scanner *s)
{
	return s->o.tmpdir_setting != NULL ? s->o.tmpdir_setting : "SCAN_TMPDIR";
}

static int
scanner_make_tmpdir(struct scanner *s, const char *parent, char *err, size_t errlen)
{
	if ((size_t)snprintf(s->tmpdir, sizeof(s->tmpdir), "%s/%s%ld", parent, SCANNER_TMP_PREFIX,
	    (long)getpid()) >= sizeof(s->tmpdir)) {
		snprintf(err, errlen, "%s: path too long", scanner_tmp_setting(s));
		return -1;
	}
	scanner_wipe_stale(parent);
	scanner_rmtree(s->tmpdir);
	if (mkdir(s->tmpdir, 0700) != 0) {
		snprintf(err, errlen, "%s: cannot create %s: %s", scanner_tmp_setting(s), s->tmpdir,
		    strerror(errno));
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
		/* Only DB_WAIT's wait for a first database; a low-memory reload's gap is not one. */
		waiting = !atomic_load(&s->loaded);
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
	atomic_store(&s->loaded, 1);
	scanner_warm_up(s);
	return 0;
}

/* clamd's way (clamd.c): DetectPUA loads the PUA signature files (.ndu, .ldu, ...), and one
 * category, as ".cat.", keeps or drops those whose name has it. */
static void
scanner_set_policy(struct scanner *s, const struct scanner_policy *p)
{
	const char *cat = NULL;

	s->scan_opts = scanner_scan_options(p);
	s->db_options = CL_DB_STDOPT;
	if (!p->detect_pua)
		return;
	s->db_options |= CL_DB_PUA;
	if (p->pua_include != NULL && p->pua_include[0] != '\0') {
		s->db_options |= CL_DB_PUA_INCLUDE;
		cat = p->pua_include;
	} else if (p->pua_exclude != NULL && p->pua_exclude[0] != '\0') {
		s->db_options |= CL_DB_PUA_EXCLUDE;
		cat = p->pua_exclude;
	}
	if (cat != NULL)
		snprintf(s->pua_cats, sizeof(s->pua_cats), ".%s.", cat);
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
	scanner_set_policy(s, &o->policy);
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
	log_info("MAX_EXPANSION (%u) is checked %s", o->max_expansion,
	    o->policy.alert_exceeds_max ? SCANNER_EXPANSION_WHERE : "as each unpacked layer starts "
	    "(ALERT_EXCEEDS_MAX=no: libclamav's own check would cut scans without telling)");
	if (s->cur == NULL)
		log_warnx("no signature database yet (%s); DB_WAIT is set: looking at %s every %d s and "
		    "loading the first database to appear", err, s->db_dir, SCANNER_WAIT_INTERVAL);
	else
		log_info("loaded %u signatures from %s, database version %ld; temporary files in %s (%s)",
		    s->cur->signatures, s->db_dir, s->cur->version, s->tmpdir, scanner_tmp_setting(s));
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
	int first, dropped = 0;

	pthread_mutex_lock(&s->reload_lock);
	/* Read under reload_lock: a reload that waited here for a low-memory one (which had cur NULL
	 * meanwhile) is not a first load. */
	first = !atomic_load(&s->loaded);
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
	atomic_store(&s->loaded, 1);
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

int
scanner_reloading(struct scanner *s)
{
	return atomic_load(&s->loaded) && !atomic_load(&s->available);
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
	st->cut_clean = atomic_load(&s->cut_clean);
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
	int embedded;			/* found at an offset of its parent (patch 0113), not unpacked */
	const char *name;		/* libclamav's (its fmap's, alive while the layer is open); NULL */
	unsigned index;			/* its place among the layers scanned in its parent */
	struct scan_announce *names;	/* zip: the distinct members announced (scanner_announce) */
	unsigned nnames, capnames;
	struct scan_announce *others;	/* other formats: the members counted in announced, named */
	unsigned nothers, capothers;
	int unnamed;			/* a member was counted without a name (or out of memory) */
	unsigned read;			/* the second reader's id of it (reader_covered); 0: none */
};

/* A zip member libclamav announced, by a hash of its name: announced twice (central directory,
 * local header), and with a data descriptor the local header says 0 bytes, so the members are
 * counted by name, each with the largest size announced for it. */
struct scan_announce {
	uint64_t hash;
	unsigned long size;
	char *name;			/* for the second reader's holes (scanner_defer_holes) */
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
	struct scan_detail *d;		/* a detailed scan's matches; NULL: none wanted */
	const char *type0;		/* libclamav's type of the upload (a static string of its own) */
	struct reader *rd;		/* the second reader (reader.h); NULL: none */
	int reader_oom;			/* it ran out of memory: the verdict is an error */
	unsigned base;			/* depth of layer 0 of this libclamav scan: 0, or a member's */
	const char *prefix;		/* a member's path (reader_member), NUL-separated; NULL: none */
	size_t prefix_len;
	unsigned prefix_depth;
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

/* LAYER_ATTRIBUTES_EMBEDDED of ClamAV 1.5 and of our patch 0113 (Debian's 1.4.6 lacks it). */
#define SCANNER_LAYER_EMBEDDED 0x8

/* The name libclamav gives a scan that a callback of ours stopped by answering CL_VIRUS. */
#define SCANNER_CALLBACK_VIRNAME "Detected.By.Callback"

static char *scanner_path(const struct scan_state *st, unsigned depth, size_t *len);

/* The second reader's hook: the layer's bytes go to libarchive (reader.c), which remembers them as
 * scanned and extracts what they hold. A detailed scan names the layer for the members' paths. */
static void
scanner_read_layer(struct scan_state *st, const char *buf, size_t size, const char *type,
    const char *name, uint32_t level)
{
	char *path = NULL;
	size_t path_len = 0;
	unsigned id;
	int rc;

	if (st->rd == NULL)
		return;
	if (st->d != NULL && st->layers != NULL && level < st->max_depth &&
	    (path = scanner_path(st, level + 1, &path_len)) == NULL) {
		st->reader_oom = 1;
		return;
	}
	rc = reader_layer(st->rd, buf, size, type, name, st->base + level, path, path_len,
	    st->prefix_depth + level, &id);
	free(path);
	if (rc < 0)
		st->reader_oom = 1;
	if (st->layers != NULL && level < st->max_depth && st->depth == level + 1)
		st->layers[level].read = id;
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

	(void)ancestors;
	(void)parent_size;
	if (st == NULL)
		return CL_CLEAN;
	s = st->s;
	/* A file found at an offset of its parent (patch 0113) is a view of bytes already counted,
	 * and not one of the members the parent announced. */
	scanner_layer_open(st, level, type, name, size, (attributes & SCANNER_LAYER_EMBEDDED) != 0);
	if (attributes & SCANNER_LAYER_EMBEDDED)
		return CL_CLEAN;	/* its parent passed the limits and the second reader */
	st->total += size;
	scanner_read_layer(st, buf, size, type, name, level);
	/* HTML larger than CL_ENGINE_MAX_HTMLNORMALIZE (engine_limits: MAX_SCAN_SIZE) is not normalised:
	 * Debian's libclamav skips it whole, ours raw-scans it (docs/libclamav-quirks.md). A cut scan,
	 * marked but not stopped at the top level, so what the raw scan finds is still the answer. */
	if (type != NULL && strcmp(type, "CL_TYPE_HTML") == 0 && size > s->scan_limit)
		st->limit = SCANNER_LIMIT_SCAN_SIZE;
	if (level == 0 && st->base == 0) {
		st->type0 = type;
		return CL_CLEAN;
	}
	/* A member the second reader handed back starts a scan of its own at level 0: the depth of
	 * its archive counts. */
	if (st->base + level > s->o.max_recursion)
		st->limit = "Heuristics.Limits.Exceeded.MaxRecursion";
	else if ((uint64_t)size + SCANNER_LIMIT_MARGIN >= s->file_limit)
		st->limit = SCANNER_LIMIT_FILE_SIZE;
	else if (st->total + SCANNER_LIMIT_MARGIN >= s->scan_limit || st->total > st->budget)
		st->limit = SCANNER_LIMIT_SCAN_SIZE;
	else if (st->d != NULL && st->d->deadline > 0 && util_now() > st->d->deadline)
		st->limit = SCANNER_LIMIT_TIME;	/* the request's share of MAX_SCAN_TIME is spent */
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
static void
scanner_layer_names_free(struct scan_layer *l)
{
	for (unsigned i = 0; i < l->nnames; i++)
		free(l->names[i].name);
	for (unsigned i = 0; i < l->nothers; i++)
		free(l->others[i].name);
	free(l->names);
	free(l->others);
	l->names = l->others = NULL;
	l->nnames = l->capnames = l->nothers = l->capothers = 0;
}

static unsigned
scanner_layer_want(const struct scan_layer *l)
{
	unsigned want = l->zip ? (l->announced + 1) / 2 : l->announced;

	for (unsigned i = 0; i < l->nnames; i++)
		want += l->names[i].size > SCANNER_MEMBER_MIN;
	return want;
}

static int
scanner_layer_complete(const struct scan_layer *l)
{
	unsigned want = scanner_layer_want(l);

	/* A RAR, CAB or CHM whose reader announced nothing was not opened at all (no unrar; a CHM
	 * layout libmspack rejects, as chmcmd's): nothing in it was scanned. Not an embedded one
	 * (patch 0113): its announcements are not counted (scanner_meta), the second reader reads
	 * it with its parent. */
	if (!l->embedded && (l->rar || l->mspack) && l->announced == 0 && l->children == 0)
		return 0;
	return l->children >= want;
}

static void scanner_place(struct scan_state *st, const char *sig, unsigned depth, int provisional);

static void
scanner_layer_open(struct scan_state *st, uint32_t level, const char *type, const char *name,
    size_t size, int embedded)
{
	struct scan_layer *l;
	unsigned index = 0;
	int cut = 0;

	if (st->layers == NULL || level >= st->max_depth)
		return;
	/* A level libclamav skipped (none known in 1.4.6) must not lend a match path the name of a
	 * layer closed before: its fmap, which owns the name, is gone. */
	for (unsigned i = st->depth; i < level; i++)
		st->layers[i].name = NULL;
	st->depth = level + 1;
	if (level > 0 && embedded) {
		index = st->layers[level - 1].children;
	} else if (level > 0) {
		struct scan_layer *parent = &st->layers[level - 1];

		index = parent->children++;
		/* A CAB or CHM member of fewer bytes than announced was cut short on the way (libmspack's
		 * glue shrinks it to what is left of the scan budget, or a write hit ENOSPC) and scanned
		 * in part. Only these readers announce each member right before unpacking it; zip's
		 * announcements come in another order (its zip-bomb pass reads ahead). */
		if (parent->pending > size && st->unscanned == NULL) {
			log_debug("scan: a %s member of %zu bytes was announced with %lu", type ? type : "?",
			    size, parent->pending);
			st->unscanned = SCANNER_UNSCANNED_CUT;
			cut = 1;
		}
		parent->pending = 0;
	}
	l = &st->layers[level];
	scanner_layer_names_free(l);
	*l = (struct scan_layer){
		.size = size,
		.type = type,
		.name = name,
		.index = index,
		.zip = type != NULL && (strncmp(type, "CL_TYPE_ZIP", 11) == 0 ||
		    strncmp(type, "CL_TYPE_OOXML", 13) == 0),
		.rar = type != NULL && strncmp(type, "CL_TYPE_RAR", 11) == 0,	/* RARSFX too */
		.mspack = type != NULL && (strcmp(type, "CL_TYPE_MSCAB") == 0 ||
		    strcmp(type, "CL_TYPE_MSCHM") == 0),
		.embedded = embedded,
	};
	if (cut)
		scanner_place(st, SCANNER_UNSCANNED_CUT, st->depth, 1);
}

/* A layer libclamav announced more members in than it scanned below it, all of them from an
 * archive it found at an offset of the layer: a member it scanned elsewhere in the scan under the
 * same name and size is no hole (an archive found again at a raw offset of its container, where its bytes are cut or out of order: InstallShield's MSI holds its
 * cab as an OLE2 stream, scanned, and libclamav's CAB-SFX search finds the same cab in the MSI's
 * raw sectors and fails to unpack it). Which of them is which is known only when the scan ends:
 * every named member goes to the second reader as a hole, resolved there (reader_finding). 0:
 * deferred; -1: decided now (a member without a name, a RAR, no reader, out of memory). */
static int
scanner_defer_holes(struct scan_state *st, const struct scan_layer *l)
{
	if (st->rd == NULL || l->unnamed || l->rar || (l->zip && l->announced > 0) ||
	    l->nnames + l->nothers == 0)
		return -1;
	for (unsigned i = 0; i < l->nnames; i++)
		if (l->names[i].size > SCANNER_MEMBER_MIN &&
		    reader_add_hole(st->rd, l->names[i].name, l->names[i].size) != 0)
			return -1;
	for (unsigned i = 0; i < l->nothers; i++)
		if (reader_add_hole(st->rd, l->others[i].name, l->others[i].size) != 0)
			return -1;
	log_debug("scan: a %s layer announced %u members and %u were scanned below it: checked by "
	    "name and size when the scan ends", l->type ? l->type : "?", scanner_layer_want(l),
	    l->children);
	return 0;
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
	/* A match libclamav reports only at the end of the scan (a "potentially unwanted" one: every
	 * Heuristics.* alert) is placed at the innermost layer that closes with it as its last match. */
	if (st->d != NULL && result == CL_VIRUS && virname != NULL)
		scanner_place(st, virname, st->depth, 1);
	l = &st->layers[st->depth - 1];
	/* libclamav's count is the second line of defence: a layer the second reader read to its
	 * end, extracting as many members, is complete (its members are scanned after, as layers
	 * of their own, when libclamav did not scan them). */
	if (result != CL_VIRUS && st->unscanned == NULL && !scanner_layer_complete(l) &&
	    !reader_covered(st->rd, l->read, scanner_layer_want(l)) && scanner_defer_holes(st, l) != 0) {
		st->unscanned = scanner_unscanned_name(l);
		scanner_place(st, st->unscanned, st->depth, 1);
	}
	if (l->read && st->rd != NULL)
		reader_prune(st->rd);
	scanner_layer_names_free(l);
	st->depth--;
	return CL_CLEAN;
}

/* The index of a match of sig in d (provisional or not, as asked; -1: any), or -1. */
static int
scanner_match_find(const struct scan_detail *d, const char *sig, int provisional)
{
	for (unsigned i = 0; i < d->nmatches; i++)
		if ((provisional == -1 || d->matches[i].provisional == provisional) &&
		    strcmp(d->matches[i].signature, sig) == 0)
			return (int)i;
	return -1;
}

/* The names of the open layers 1..depth-1 (the upload, layer 0, is the caller's to name). */
static char *
scanner_path(const struct scan_state *st, unsigned depth, size_t *len)
{
	char num[16], *names, *o;
	const char *n;
	size_t total = 0, k;

	for (unsigned i = 1; i < depth; i++)
		total += SCANNER_NAME_KEEP + 1;
	if ((names = malloc(st->prefix_len + total + 1)) == NULL)
		return NULL;
	o = names;
	/* A member the second reader handed back: its path first. */
	if (st->prefix_len > 0) {
		memcpy(o, st->prefix, st->prefix_len);
		o += st->prefix_len;
	}
	for (unsigned i = 1; i < depth; i++) {
		n = st->layers[i].name;
		if (n == NULL) {
			snprintf(num, sizeof(num), "#%u", st->layers[i].index);
			n = num;
		}
		k = strnlen(n, SCANNER_NAME_KEEP);
		memcpy(o, n, k);
		o[k] = '\0';
		o += k + 1;
	}
	*len = (size_t)(o - names);
	return names;
}

/* Room for one more match: the array grows by doubling (most scans report one). */
static int
scanner_matches_grow(struct scan_detail *d)
{
	unsigned cap = d->nmatches == 0 ? 2 : d->nmatches * 2;
	struct scan_match *m;

	if (d->nmatches != 0 && (d->nmatches & (d->nmatches - 1)) != 0)
		return 0;	/* not a power of two: there is room */
	if (d->nmatches == 1)
		return 0;
	if (cap > SCANNER_MATCHES_MAX)
		cap = SCANNER_MATCHES_MAX;
	if ((m = realloc(d->matches, cap * sizeof(*m))) == NULL)
		return -1;
	d->matches = m;
	return 0;
}

/* Records sig as found in the layer open at depth (0: the upload), unless the same match is
 * already there. A provisional place is kept only if libclamav reports sig later, or it is the
 * verdict (scanner_detail_finish). */
static void
scanner_place(struct scan_state *st, const char *sig, unsigned depth, int provisional)
{
	struct scan_detail *d = st->d;
	struct scan_match *m;
	size_t len = 0;
	char *names;

	if (d == NULL || st->layers == NULL || (provisional && scanner_match_find(d, sig, -1) >= 0))
		return;
	if ((names = scanner_path(st, depth, &len)) == NULL) {
		d->dropped++;
		return;
	}
	for (unsigned i = 0; i < d->nmatches; i++) {
		m = &d->matches[i];
		if (!m->provisional && m->depth + 1 == depth && m->names_len == len &&
		    memcmp(m->names, names, len) == 0 && strcmp(m->signature, sig) == 0) {
			free(names);
			return;
		}
	}
	if (d->nmatches == SCANNER_MATCHES_MAX || scanner_matches_grow(d) != 0) {
		free(names);
		d->dropped++;
		return;
	}
	m = &d->matches[d->nmatches++];
	snprintf(m->signature, sizeof(m->signature), "%s", sig);
	m->names = names;
	m->names_len = len;
	m->depth = st->prefix_depth + (depth > 0 ? depth - 1 : 0);
	m->provisional = provisional;
}

/* libclamav's virus-found callback, on the scanning thread: once per match in all-match mode, once a
 * scan otherwise. A strong match comes while the layer it was found in is open; "potentially
 * unwanted" ones (Heuristics.*) come after the whole scan (libclamav 1.4: evidence.c keeps them to
 * the end, with fd -1), so they take the place scanner_layer_done saw them at. Our own inspection
 * block comes as "Detected.By.Callback.Inspection": it is the limit scanner_inspect met. */
static void
scanner_found(int fd, const char *virname, void *context)
{
	struct scan_state *st = context;
	int i;

	(void)fd;
	if (st == NULL || st->d == NULL || virname == NULL)
		return;
	if (strcmp(virname, "Detected.By.Callback.Inspection") == 0) {
		/* Every later layer is blocked too: the limit is placed where it was first met. */
		if (st->limit == NULL || scanner_match_find(st->d, st->limit, 0) >= 0)
			return;
		virname = st->limit;
	}
	if (st->depth > 0) {
		scanner_place(st, virname, st->depth, 0);
		return;
	}
	if ((i = scanner_match_find(st->d, virname, 1)) >= 0)
		st->d->matches[i].provisional = 0;
	else if (scanner_match_find(st->d, virname, 0) < 0)
		scanner_place(st, virname, 0, 0);
}

/* 1 when a match says the file was not scanned completely: a limit (libclamav's or ours) or a
 * member that could not be unpacked. In all-match mode such a match may come with a signature
 * match, which is then the verdict's reason. */
static int
scanner_cut_name(const char *sig)
{
	return strncmp(sig, "Heuristics.Limits.Exceeded.", 27) == 0 ||
	    strncmp(sig, "Heuristics.Unscanned.", 21) == 0;
}

/* After the verdict: a clean or failed scan reports no match; a malware verdict always has its
 * signature among the matches (our limits and unscanned members are verdicts libclamav never
 * reported); places never confirmed are dropped. */
static void
scanner_detail_finish(struct scan_state *st, const struct scan_result *r)
{
	struct scan_detail *d = st->d;
	unsigned o = 0;
	int i;

	if (d == NULL)
		return;
	snprintf(d->type, sizeof(d->type), "%s", st->type0 != NULL ? st->type0 : "");
	if (r->verdict == SCAN_MALWARE && scanner_match_find(d, r->reason, 0) < 0) {
		if ((i = scanner_match_find(d, r->reason, 1)) >= 0)
			d->matches[i].provisional = 0;
		else
			scanner_place(st, r->reason, 0, 0);
	}
	d->cut = r->limit_exceeded;
	for (unsigned i2 = 0; i2 < d->nmatches; i2++) {
		if (r->verdict == SCAN_MALWARE && !d->matches[i2].provisional) {
			d->cut |= scanner_cut_name(d->matches[i2].signature);
			d->matches[o++] = d->matches[i2];
		} else
			free(d->matches[i2].names);
	}
	d->nmatches = o;
}

void
scanner_detail_free(struct scan_detail *d)
{
	if (d == NULL)
		return;
	for (unsigned i = 0; i < d->nmatches; i++)
		free(d->matches[i].names);
	free(d->matches);
	d->matches = NULL;
	d->nmatches = 0;
}

/* libclamav also looks for zip headers inside files of any type (a zip appended to an executable, or
 * just the bytes "PK\3\4" in a binary) and announces what it finds there. Such an embedded entry
 * counts only when it looks like a member someone made: a compressed size that fits in the layer and
 * a printable name; so does an entry of an archive found at an offset (an embedded layer, patch 0113).
 * Entries of the layer's own format always count. */
static int
scanner_member_plausible(const struct scan_layer *l, const char *container_type,
    unsigned long csize, const char *name)
{
	size_t n;

	if (!l->embedded && l->type != NULL && container_type != NULL &&
	    strcmp(l->type, container_type) == 0)
		return 1;
	if (csize > l->size || name == NULL || (n = strlen(name)) == 0 || n > SCANNER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x20 || name[i] > 0x7e)
			return 0;
	return 1;
}

/* FNV-1a: which zip member an announcement is about. */
static uint64_t
scanner_name_hash(const char *name)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return h;
}

/* A zip member announced: counted once by name, with the largest size any header gave it. */
static int
scanner_announce(struct scan_layer *l, const char *name, unsigned long size)
{
	uint64_t h = scanner_name_hash(name);
	struct scan_announce *a;

	for (unsigned i = 0; i < l->nnames; i++)
		if (l->names[i].hash == h) {
			if (size > l->names[i].size)
				l->names[i].size = size;
			return 0;
		}
	if (l->nnames == l->capnames) {
		unsigned cap = l->capnames == 0 ? 8 : l->capnames * 2;

		if ((a = realloc(l->names, cap * sizeof(*a))) == NULL)
			return -1;
		l->names = a;
		l->capnames = cap;
	}
	l->names[l->nnames] = (struct scan_announce){ .hash = h, .size = size,
	    .name = strndup(name, SCANNER_NAME_MAX) };
	if (l->names[l->nnames++].name == NULL)
		l->unnamed = 1;
	return 0;
}

/* A member of another format counted in announced, remembered by name when it has one. */
static void
scanner_announce_other(struct scan_layer *l, const char *name, unsigned long size)
{
	struct scan_announce *a;

	if (l->unnamed || name == NULL || name[0] == '\0') {
		l->unnamed = 1;
		return;
	}
	if (l->nothers == l->capothers) {
		unsigned cap = l->capothers == 0 ? 8 : l->capothers * 2;

		if ((a = realloc(l->others, cap * sizeof(*a))) == NULL) {
			l->unnamed = 1;
			return;
		}
		l->others = a;
		l->capothers = cap;
	}
	l->others[l->nothers] = (struct scan_announce){ .size = size,
	    .name = strndup(name, SCANNER_NAME_MAX) };
	if (l->others[l->nothers++].name == NULL)
		l->unnamed = 1;
}

static cl_error_t
scanner_meta(const char *container_type, unsigned long fsize_container, const char *filename,
    unsigned long fsize_real, int is_encrypted, unsigned int filepos, void *context)
{
	struct scan_state *st = context;
	struct scan_layer *l;

	(void)filepos;
	if (st == NULL || st->layers == NULL || st->depth == 0)
		return CL_CLEAN;
	/* ALERT_ENCRYPTED_ARCHIVE=no accepts encrypted members unscanned, as clamd does: they are not
	 * counted as announced, so they do not make the layer incomplete (Unscanned.ArchiveMember). */
	if (is_encrypted && !(st->s->scan_opts.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE))
		return CL_CLEAN;
	l = &st->layers[st->depth - 1];
	/* An archive found at an offset (patch 0113) is read by the second reader with its parent;
	 * libclamav's single-entry view of it is not counted (InstallShield, zip headers in binaries). */
	if (l->embedded)
		return CL_CLEAN;
	if (!scanner_member_plausible(l, container_type, fsize_container, filename))
		return CL_CLEAN;
	/* Only an archive libclamav found at an offset of the layer (its SFX search: another type
	 * than the layer's) may be a second sighting of a member scanned elsewhere
	 * (scanner_defer_holes); the layer's own members are decided here, as before. */
	if (l->type == NULL || container_type == NULL || strcmp(l->type, container_type) == 0)
		l->unnamed = 1;
	/* Distinct zip members, not announcements: a data descriptor's local header says 0 bytes. */
	if (l->zip && filename != NULL && filename[0] != '\0') {
		if (scanner_announce(l, filename, fsize_real) != 0)
			l->announced += 2;	/* out of memory: counted as before, roughly */
		return CL_CLEAN;
	}
	if (fsize_real <= SCANNER_MEMBER_MIN)
		return CL_CLEAN;
	l->announced++;
	scanner_announce_other(l, filename, fsize_real);
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

static void
scan_state_free(struct scan_state *st)
{
	if (st->layers != NULL)
		for (unsigned i = 0; i < st->max_depth; i++)
			scanner_layer_names_free(&st->layers[i]);
	free(st->layers);
	reader_free(st->rd);
}

/* The second reader for one scan, with the scan's limits: its extractions have a budget of their
 * own as large as libclamav's (each reader may unpack what the scan may). None (st->rd NULL) when
 * archives are not to be parsed. */
static int
scanner_reader_start(struct scan_state *st, const struct scanner *s, double t0)
{
	struct reader_limits lim = {
		.max_file_size = s->o.max_file_size,
		.budget = st->budget,
		.max_files = s->o.max_files,
		.max_recursion = s->o.max_recursion,
		.deadline = t0 + s->o.max_scan_time / 1000.0,
		.encrypted_alert = (s->scan_opts.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE) != 0,
	};

	/* SCAN_ARCHIVE=no (clamd's ScanArchive no): archives are not opened, by either reader. */
	if (!s->o.policy.scan_archive)
		return 0;
	st->rd = reader_new(&lim);
	return st->rd != NULL ? 0 : -1;
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

/* ALERT_EXCEEDS_MAX=no: a scan cut short at a limit gets the verdict of what was scanned before the
 * cut, as clamd gives it with AlertExceedsMax off: clean when nothing was found. It is never
 * cached, and logged and counted, so an operator sees what the setting lets through. */
static int
scanner_cut_clean(struct scanner *s, const char *limit, struct scan_result *r)
{
	r->verdict = SCAN_CLEAN;
	r->reason[0] = '\0';
	atomic_fetch_add(&s->cut_clean, 1);
	log_warnx("scan cut short at %s answered clean: ALERT_EXCEEDS_MAX is off", limit);
	return 0;
}

void
scanner_skipped(struct scanner *s, const char *limit, struct scan_detail *d, struct scan_result *r)
{
	struct scan_match *m;

	*r = (struct scan_result){ .verdict = SCAN_MALWARE, .limit_exceeded = 1 };
	snprintf(r->reason, sizeof(r->reason), "%s", limit);
	if (!s->o.policy.alert_exceeds_max) {
		r->limit_exceeded = 0;
		scanner_cut_clean(s, limit, r);
	} else if (d != NULL && d->nmatches < SCANNER_MATCHES_MAX && scanner_matches_grow(d) == 0 &&
	    (d->matches[d->nmatches].names = calloc(1, 1)) != NULL) {
		/* The limit, found at the upload itself, as a scan cut there would list it. */
		m = &d->matches[d->nmatches++];
		*m = (struct scan_match){ .names = m->names };
		snprintf(m->signature, sizeof(m->signature), "%s", limit);
	}
	if (d != NULL)
		d->cut = 1;
}

/* The one place that decides a verdict. A file is clean only when libclamav says so, logged no error
 * or warning meanwhile, met no limit (its own or scanner_inspect's) and never ran short of temporary
 * space; a limit is malware, never clean (unless ALERT_EXCEEDS_MAX is off: scanner_cut_clean).
 * Members listed but not scanned (Heuristics.Unscanned.*) are malware whatever ALERT_EXCEEDS_MAX
 * says: they are holes in libclamav's readers, not limits an operator chose. Returns 1 when the
 * verdict is complete enough to cache. */
static int
scanner_verdict(cl_error_t rc, const char *virname, const struct scan_state *st,
    struct scanner *s, struct scan_result *r)
{
	const char *limit = scanner_limit_name(rc);
	int alert_limits = s->o.policy.alert_exceeds_max;
	/* A signature matched, as opposed to scanner_inspect stopping the scan (libclamav names that
	 * "Detected.By.Callback.Inspection"). With all-matches on, the scan goes on after a match and
	 * may then meet a limit: rc is CL_VIRUS with the first match's name. */
	int found = rc == CL_VIRUS && virname != NULL &&
	    strncmp(virname, SCANNER_CALLBACK_VIRNAME, strlen(SCANNER_CALLBACK_VIRNAME)) != 0;

	r->limit_exceeded = 0;
	r->verdict = SCAN_ERROR;
	/* Only a scan that found nothing and failed at nothing may be answered clean past a limit. */
	if (!alert_limits && !found && !st->tmp_full && (st->limit != NULL || limit != NULL) &&
	    scanner_errors == 0)
		return scanner_cut_clean(s, st->limit != NULL ? st->limit : limit, r);
	if (st->tmp_full || (rc == CL_CLEAN && st->limit == NULL && scanner_dir_low(s->tmpdir))) {
		snprintf(r->reason, sizeof(r->reason), "the temporary folder %.200s is full", s->tmpdir);
		log_errorx("scan not trusted: %s (less than %u bytes free)", r->reason,
		    SCANNER_TMP_LOW_WATER);
	} else if (st->limit != NULL && (rc == CL_CLEAN || (rc == CL_VIRUS && (alert_limits || !found)))) {
		r->verdict = SCAN_MALWARE;
		r->limit_exceeded = 1;
		snprintf(r->reason, sizeof(r->reason), "%s", st->limit);
	} else if (st->layers == NULL && rc == CL_CLEAN) {
		snprintf(r->reason, sizeof(r->reason), "out of memory");
	} else if (st->unscanned != NULL && rc == CL_CLEAN) {
		r->verdict = SCAN_MALWARE;
		/* An encrypted member (the second reader's) is a verdict as libclamav's own, not a cut. */
		r->limit_exceeded = strncmp(st->unscanned, "Heuristics.Encrypted.", 21) != 0;
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
scanner_cache_get(struct scanner *s, const struct engine *e, const unsigned char *digest,
    char *type)
{
	struct cache_entry *c;
	int hit;

	if (s->cache == NULL)
		return 0;
	pthread_mutex_lock(&s->cache_lock);
	c = scanner_cache_slot(s, digest);
	hit = c->generation == e->generation && memcmp(c->digest, digest, SCANNER_DIGEST_LEN) == 0;
	if (hit && type != NULL)
		memcpy(type, c->type, SCANNER_TYPE_MAX);
	pthread_mutex_unlock(&s->cache_lock);
	return hit;
}

static void
scanner_cache_put(struct scanner *s, const struct engine *e, const unsigned char *digest,
    const char *type)
{
	struct cache_entry *c;

	if (s->cache == NULL)
		return;
	pthread_mutex_lock(&s->cache_lock);
	c = scanner_cache_slot(s, digest);
	memcpy(c->digest, digest, SCANNER_DIGEST_LEN);
	snprintf(c->type, sizeof(c->type), "%s", type != NULL ? type : "");
	c->generation = e->generation;
	pthread_mutex_unlock(&s->cache_lock);
}

/* One scan, with our verdict rules and cache around libclamav: of fd when it is not -1, else of
 * data. known is the SHA-256 of those bytes when the caller has it; else data (NULL: unknown) is
 * what is hashed for the cache. */
static void
scanner_run(struct scanner *s, const void *data, size_t len, int fd, const unsigned char *known,
    struct scan_detail *d,
    struct scan_result *r)
{
	struct engine *e = engine_acquire(s);
	struct cl_scan_options opts = s->scan_opts;
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
	if (known != NULL)
		memcpy(digest, known, SCANNER_DIGEST_LEN);
	hashed = known != NULL || (data != NULL && scanner_digest(data, len, digest) == 0);
	memcpy(r->sha256, digest, hashed ? SCANNER_DIGEST_LEN : 0);
	r->hashed = hashed;
	r->cached = hashed && scanner_cache_get(s, e, digest, d != NULL ? d->type : NULL);
	r->bytes = len;
	if (r->cached) {
		r->verdict = SCAN_CLEAN;
		r->limit_exceeded = 0;
		r->reason[0] = '\0';
		atomic_fetch_add(&s->cache_hits, 1);
		goto done;
	}
	scan_state_init(&st, s, len);
	if (st.layers != NULL && scanner_reader_start(&st, s, t0) != 0) {
		free(st.layers);
		st.layers = NULL;	/* answered "out of memory" */
	}
	st.d = d;
	/* The one option a scan may add: all-match mode reports more matches and leaves every
	 * verdict as it is, so our clean cache stays valid (libclamav's is off: engine_limits). */
	if (d != NULL && d->all_matches)
		opts.general |= CL_SCAN_GENERAL_ALLMATCHES;
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
	if (st.rd != NULL)
		rc = scanner_second_run(&st, e, &opts, rc, &virname, data, len, fd,
		    t0 + s->o.max_scan_time / 1000.0);
	if (st.reader_oom && rc == CL_CLEAN)
		rc = CL_EMEM;
	scanner_in_scan = 0;
	complete = scanner_verdict(rc, virname, &st, s, r);
	scanner_detail_finish(&st, r);
	scan_state_free(&st);
	if (complete && hashed)
		scanner_cache_put(s, e, digest, st.type0);
done:
	r->seconds = util_now() - t0;
	engine_release(s, e);
	scanner_heal(s, r);
}

void
scanner_scan_mem(struct scanner *s, const void *data, size_t len, struct scan_result *r)
{
	scanner_run(s, len > 0 ? data : "", len, -1, NULL, NULL, r);
}

void
scanner_scan_mem_hashed(struct scanner *s, const void *data, size_t len,
    const unsigned char *digest, struct scan_result *r)
{
	scanner_run(s, len > 0 ? data : "", len, -1, digest, NULL, r);
}

/* A body in a file is scanned through our own read-only mapping of it, known digest or not: its pages
 * are the page cache's, which the kernel can drop and share, where libclamav's fmap of a descriptor
 * would copy every page it reads into anonymous memory (a 256 MiB upload: 256 MiB more RssAnon per
 * scan thread). The mapping also serves to hash the file when the digest is not known. Without a
 * mapping (mmap refused) libclamav reads the descriptor itself. */
static void
scanner_fd(struct scanner *s, int fd, const unsigned char *known, struct scan_detail *d,
    struct scan_result *r)
{
	struct stat st;
	void *map = MAP_FAILED;
	size_t len = 0;

	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		len = (size_t)st.st_size;
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	}
	if (map == MAP_FAILED) {
		scanner_run(s, NULL, len, fd, known, d, r);
		return;
	}
	madvise(map, len, MADV_SEQUENTIAL);
	scanner_run(s, map, len, fd, known, d, r);
	munmap(map, len);
}

void
scanner_scan_fd_hashed(struct scanner *s, int fd, const unsigned char *digest,
    struct scan_result *r)
{
	scanner_fd(s, fd, digest, NULL, r);
}

void
scanner_scan_mem_detail(struct scanner *s, const void *data, size_t len,
    const unsigned char *digest, struct scan_detail *d, struct scan_result *r)
{
	scanner_run(s, len > 0 ? data : "", len, -1, digest, d, r);
}

void
scanner_scan_fd(struct scanner *s, int fd, struct scan_result *r)
{
	scanner_fd(s, fd, NULL, NULL, r);
}

void
scanner_scan_fd_detail(struct scanner *s, int fd, const unsigned char *digest,
    struct scan_detail *d, struct scan_result *r)
{
	scanner_fd(s, fd, digest, d, r);
}
