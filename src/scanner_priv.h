/* scanner_priv.h -- the scanner module's insides, shared by its own files (scanner*.c) and by no
 * other: the engine and scanner structs, one scan's state, and what the files call in each other.
 * Functions returning int return 0 on success, -1 on failure, unless said otherwise. */
#ifndef CLAMREST_SCANNER_PRIV_H
#define CLAMREST_SCANNER_PRIV_H

#include <clamav.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "scanner.h"

/* libclamav clamps maxfilesize to INT_MAX - 2 bytes (others.c, cl_engine_set_num). */
#define SCANNER_CLAMAV_FILE_MAX	(2147483647ULL - 2)
/* Bytes of slack around libclamav's size limits inside which a layer is taken as cut short: its
 * readers stop at the last block that fits (8 KiB in unzip's inflate loop). */
#define SCANNER_LIMIT_MARGIN	(64 * 1024)
/* Bytes every scan may unpack whatever MAX_EXPANSION says, so small office files and archives of
 * text, which expand 10-50 times, are never cut. */
#define SCANNER_EXPANSION_FLOOR	(64ULL * 1024 * 1024)
/* Free bytes below which libclamav's temporary folder counts as full: a member extracted there may
 * have been cut short by ENOSPC. */
#define SCANNER_TMP_LOW_WATER	(1024U * 1024)
#define SCANNER_NAME_KEEP	1024	/* bytes of an embedded file name kept in a match's path */

/* The clean caches (scanner_cache.c): a direct-mapped table of clean verdicts by SHA-256. */
struct scan_cache {
	pthread_mutex_t lock;		/* guards slots, generation, entries */
	struct cache_entry *slots;	/* n of them, NULL when off */
	unsigned n;
	unsigned long generation;	/* the newest engine generation put */
	unsigned long entries;		/* slots holding it */
	atomic_ulong hits, misses;	/* misses: the member cache's only */
};

/* What libclamav scanned below a member (the member cache): counted as scanned when a later scan
 * skips the member, so our limits meet the same totals. */
struct scan_sub {
	uint64_t bytes;			/* of the layers below it */
	unsigned files;			/* file layers below it */
};

/* A member layer one scan keyed and scanned clean: remembered only if the whole scan ends complete
 * and clean (scanner_members_commit). */
struct scan_member {
	unsigned char key[SCANNER_DIGEST_LEN];
	struct scan_sub sub;
};

#define SCANNER_LIMIT_FILES	"Heuristics.Limits.Exceeded.MaxFiles"


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

	struct scan_cache cache;
	struct scan_cache members;	/* MEMBER_CACHE (scanner_members.c) */

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
	int mstate;			/* the member cache's: SCANNER_MEMBER_* */
	unsigned char mkey[SCANNER_DIGEST_LEN];	/* its key, when keyed */
	uint64_t mtotal;		/* scan_state's total and files when it was keyed */
	unsigned mfiles;
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
	/* Per match in d: 1 while it is a place seen, not (yet) a reported match (scanner_place). */
	unsigned char provisional[SCANNER_MATCHES_MAX];
	double deadline;		/* the request's (scan_request), 0: none */
	const char *type0;		/* libclamav's type of the upload (a static string of its own) */
	struct reader *rd;		/* the second reader (reader.h); NULL: none */
	int reader_oom;			/* it ran out of memory: the verdict is an error */
	unsigned base;			/* depth of layer 0 of this libclamav scan: 0, or a member's */
	const char *prefix;		/* a member's path (reader_member), NUL-separated; NULL: none */
	size_t prefix_len;
	unsigned prefix_depth;
	struct scan_kinds *kinds;	/* the upload policy's kinds of layers (scan_request); NULL */
	/* The member cache (scanner_members.c): NULL when off for this scan. */
	struct scan_cache *members;
	unsigned long generation;	/* the engine's */
	int all_matches;
	unsigned files;			/* file layers below the upload, with those skipped hits held */
	unsigned member_hits;		/* members skipped as remembered clean */
	struct scan_member *keyed;	/* member layers scanned clean, nkeyed of them */
	unsigned nkeyed, capkeyed;
};

/* scanner.c: the engine. A scan holds a reference to the engine it started on. */
struct engine *engine_acquire(struct scanner *s);
void engine_release(struct scanner *s, struct engine *e);

/* scanner_policy.c: libclamav's scan options and database options from the policy. */
struct cl_scan_options scanner_scan_options(const struct scanner_policy *p);
void scanner_set_policy(struct scanner *s, const struct scanner_policy *p);

/* scanner_interpose.c: 1 while this thread loads a database (cl_load), 0 after. */
void scanner_loading_set(int on);

/* scanner_tmp.c: libclamav's temporary folder, clamrest.<pid> below the chosen parent. */
int scanner_make_tmpdir(struct scanner *s, const char *parent, char *err, size_t errlen);
const char *scanner_tmp_setting(const struct scanner *s);
void scanner_rmtree(const char *path);
/* 1 when the file system holding fd, or dir, has less than SCANNER_TMP_LOW_WATER bytes free. */
int scanner_fs_low(int fd);
int scanner_dir_low(const char *dir);
void scanner_heal(struct scanner *s, const struct scan_result *r);

/* scanner_cache.c: the clean cache and the SHA-256 it is keyed by. */
int scanner_digest_init(void);
int scanner_digest(const void *data, size_t len, unsigned char *out);
int scanner_cache_init(struct scan_cache *c, unsigned entries);
void scanner_cache_free(struct scan_cache *c);
/* 1 when digest was scanned clean by that engine generation; its type copied to type (not NULL),
 * its kinds of layers to kinds (not NULL: an entry without them, or out of memory, is a miss). */
int scanner_cache_get(struct scan_cache *c, unsigned long generation, const unsigned char *digest,
    char *type, struct scan_kinds *kinds);
/* kinds: the scan's kinds of layers, copied with the entry; NULL: not known. */
void scanner_cache_put(struct scan_cache *c, unsigned long generation, const unsigned char *digest,
    const char *type, const struct scan_kinds *kinds);
/* Entries of that generation. */
unsigned long scanner_cache_entries(struct scan_cache *c, unsigned long generation);
/* The member cache's: 1 and *sub when digest was remembered for generation; hits, misses counted. */
int scanner_cache_get_sub(struct scan_cache *c, unsigned long generation, const unsigned char *digest,
    struct scan_sub *sub);
void scanner_cache_put_subs(struct scan_cache *c, unsigned long generation,
    const struct scan_member *m, unsigned n);
/* SHA-256 of head then data. */
int scanner_digest2(const void *head, size_t hlen, const void *data, size_t len, unsigned char *out);

/* scanner_members.c: the member cache's part in one scan. */
#define SCANNER_MEMBER_KEYED	1	/* a miss: scanned, remembered if the whole scan is clean */
#define SCANNER_MEMBER_HIT	2	/* remembered clean: skipped with all it holds */
/* At scanner_inspect, the layer open and its size counted: 1 when it is a hit (then skip it). */
struct reader_digest;
/* ld: the layer's SHA-256, taken here when the member is keyed (the key is the digest of its place
 * and of that digest), for the second reader to reuse (reader.h). */
int scanner_members_inspect(struct scan_state *st, const char *type, const char *buf, size_t size,
    uint32_t level, uint32_t attributes, struct reader_digest *ld);
/* At scanner_layer_done: 1 when the layer was a hit (nothing below it was scanned). */
int scanner_members_done(struct scan_state *st, struct scan_layer *l, int result);
/* After a complete clean scan: every member it keyed is remembered. */
void scanner_members_commit(struct scan_state *st);

/* scanner_kinds.c: the kinds of layers one scan met (st->kinds), for the upload policy. */
void scanner_kinds_layer(struct scan_state *st, const char *type, const char *name, const char *buf,
    size_t size, uint32_t level, uint32_t attributes);
/* The open layer announced an encrypted member. */
void scanner_kinds_encrypted(struct scan_state *st);
int scanner_kinds_copy(struct scan_kinds *to, const struct scan_kinds *from, unsigned max,
    size_t max_names);
/* What a clean-cache entry keeps of a scan's kinds at most: more kinds are not cached (the next
 * upload of those bytes is scanned again); paths past the bytes are not kept. A bound on the
 * cache's memory whatever uploads make it remember (SCAN_CACHE entries of about 1.5 KiB more). */
#define SCANNER_CACHE_KINDS	16
#define SCANNER_CACHE_NAMES	512

/* scanner_layers.c: libclamav's callbacks that follow one scan's layers (context: scan_state). */
cl_error_t scanner_inspect(int fd, const char *type, const char **ancestors, size_t parent_size,
    const char *name, size_t size, const char *buf, uint32_t level, uint32_t attributes,
    void *context);
cl_error_t scanner_layer_done(int fd, int result, const char *virname, void *context);
cl_error_t scanner_meta(const char *container_type, unsigned long fsize_container,
    const char *filename, unsigned long fsize_real, int is_encrypted, unsigned int filepos,
    void *context);
void scanner_layer_names_free(struct scan_layer *l);

/* scanner_match.c: where each match of a detailed scan was found. */
void scanner_found(int fd, const char *virname, void *context);
void scanner_place(struct scan_state *st, const char *sig, unsigned depth, int provisional);
/* The names of the open layers 1..depth-1, NUL-separated, *len bytes; caller frees; NULL: OOM. */
char *scanner_path(const struct scan_state *st, unsigned depth, size_t *len);
void scanner_detail_finish(struct scan_state *st, const struct scan_result *r);
/* A detail's one match: limit, found at the upload itself (a file skipped before its first
 * byte). */
void scanner_detail_skipped(struct scan_detail *d, const char *limit);

/* scanner_verdict.c: the verdict rules, the one place that says when a result may be clean. */
void scanner_clmsg(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx);
/* Around one scan on this thread: libclamav's errors and warnings meanwhile count against it. */
void scanner_errors_begin(void);
void scanner_errors_end(void);
/* Returns 1 when the verdict is complete enough to cache. */
int scanner_verdict(cl_error_t rc, const char *virname, const struct scan_state *st,
    struct scanner *s, struct scan_result *r);
void scanner_verdict_cached(struct scan_result *r);
void scanner_verdict_unavailable(struct scanner *s, size_t len, struct scan_result *r);

/* scanner_scan.c */
void scanner_warm_up(struct scanner *s);

#endif
