/* scanner.h -- the libclamav engine: loaded from CLAMAV_DB_DIR, shared by every scan thread,
 * swapped atomically when the database changes; scanner_scan scans from memory or from a file
 * descriptor. The module (scanner*.c over scanner_priv.h) is the only one that includes clamav.h.
 * Functions returning int return 0 on success, -1 on failure. */
#ifndef CLAMREST_SCANNER_H
#define CLAMREST_SCANNER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SCAN_REASON_MAX 256	/* bytes of a signature name we report */
#define SCANNER_DIGEST_LEN 32	/* bytes of a SHA-256 */

#define SCANNER_LIMIT_SCAN_SIZE	"Heuristics.Limits.Exceeded.MaxScanSize"
#define SCANNER_LIMIT_FILE_SIZE	"Heuristics.Limits.Exceeded.MaxFileSize"
#define SCANNER_LIMIT_TIME	"Heuristics.Limits.Exceeded.MaxScanTime"
/* An archive member that libclamav listed but did not scan (a method or format it cannot unpack). */
#define SCANNER_UNSCANNED_MEMBER "Heuristics.Unscanned.ArchiveMember"
#define SCANNER_UNSCANNED_RAR	"Heuristics.Unscanned.RAR"
/* An archive member unpacked to fewer bytes than its archive says it has. */
#define SCANNER_UNSCANNED_CUT	"Heuristics.Unscanned.TruncatedMember"

/* What to parse and what to alert on, with clamd.conf's meaning (clamd/server-th.c, clamd.c);
 * each field 0 or 1. Fixed for the life of the process. */
struct scanner_policy {
	int alert_encrypted, alert_encrypted_archive, alert_encrypted_doc, alert_exceeds_max;
	int detect_pua;
	const char *pua_include, *pua_exclude;	/* one category each (Packer, Win.Packer); "": none */
	int heuristic_alerts, alert_broken_executables, alert_ole2_macros;
	int alert_phishing_ssl_mismatch, alert_phishing_cloak;
	int scan_pe, scan_elf, scan_ole2, scan_pdf, scan_swf, scan_html, scan_xmldocs, scan_hwp3;
	int scan_onenote, scan_archive, scan_mail, scan_image, scan_image_fuzzy_hash;
};

/* The settings' defaults (config.c's table; a unit test holds them equal): clamd's, with encrypted
 * archives and documents alerting as upstream's ArchiveBlockEncrypted did, and cut scans
 * alerting. */
#define SCANNER_POLICY_DEFAULT { .alert_encrypted_archive = 1, .alert_encrypted_doc = 1, \
	.alert_exceeds_max = 1, .heuristic_alerts = 1, .scan_pe = 1, .scan_elf = 1, .scan_ole2 = 1, \
	.scan_pdf = 1, .scan_swf = 1, .scan_html = 1, .scan_xmldocs = 1, .scan_hwp3 = 1, \
	.scan_onenote = 1, .scan_archive = 1, .scan_mail = 1, .scan_image = 1, \
	.scan_image_fuzzy_hash = 1 }

struct scanner_opts {
	const char *db_dir;
	const char *tmpdir;		/* libclamav's own temporary files go in a folder of ours below it */
	const char *tmpdir_setting;	/* the setting that chose tmpdir, named in errors; NULL: SCAN_TMPDIR */
	uint64_t max_scan_size;		/* bytes */
	uint64_t max_file_size;		/* bytes */
	unsigned max_recursion;
	unsigned max_files;
	unsigned max_scan_time;		/* milliseconds */
	unsigned max_expansion;		/* bytes unpacked per byte scanned, at most; 0: no such limit */
	unsigned cache_entries;		/* clean verdicts remembered; 0: none */
	unsigned member_entries;	/* clean archive members remembered; 0: none */
	unsigned check_interval;	/* seconds between looks at db_dir; 0: only scanner_reload */
	int wait;			/* DB_WAIT: start without a database, load the first one to appear */
	struct scanner_policy policy;
	int low_memory_reload;		/* RELOAD_MODE=low-memory: free the old engine before loading */
};

enum scan_verdict { SCAN_CLEAN, SCAN_MALWARE, SCAN_ERROR };

struct scan_result {
	enum scan_verdict verdict;
	int limit_exceeded;		/* the scan was cut short by a limit: verdict is MALWARE */
	char reason[SCAN_REASON_MAX];	/* signature name, or the error text for SCAN_ERROR */
	double seconds;
	uint64_t bytes;
	int cached;			/* answered from the clean cache, without a scan */
	int hashed;			/* sha256 holds the digest of the scanned bytes */
	unsigned char sha256[SCANNER_DIGEST_LEN];
	int unavailable;		/* no engine (low-memory reload): not scanned, verdict ERROR */
	unsigned retry_after;		/* with unavailable: seconds the reload is expected to take yet */
};

#define SCANNER_TYPE_MAX	32	/* bytes of a libclamav type name ("CL_TYPE_ZIP") */
#define SCANNER_MATCHES_MAX	64	/* matches a detailed scan keeps; more are only counted */

/* One match of a detailed scan and where it was found: the names of the layers from the upload
 * down to the object that matched, NUL-separated in names (depth of them). The upload itself is
 * not named (the caller knows its name): names start at the first embedded layer. A layer without
 * a name is "#<n>", its position (from 0) among the objects libclamav scanned in its parent; a long
 * name is cut to its first 1024 bytes. */
struct scan_match {
	char signature[SCAN_REASON_MAX];
	char *names;
	size_t names_len;
	unsigned depth;
};

/* What a detailed scan reports besides a scan_result (zeroed by the caller before the scan). */
struct scan_detail {
	char type[SCANNER_TYPE_MAX];	/* libclamav's type of the upload; "" when it typed none */
	struct scan_match *matches;	/* nmatches of them; scanner_detail_free frees */
	unsigned nmatches, dropped;	/* dropped: matches past SCANNER_MATCHES_MAX */
	int cut;			/* a limit or an unscanned member is among the matches (or is
					 * the verdict): the file was not scanned completely */
};

/* One scan: of bytes in memory or of a file, with the SHA-256 the caller computed as the bytes
 * arrived or without, for the verdict alone or for every match and where it was found. */
/* One kind of layer a scan met, for the upload policy (filepolicy.h): libclamav's type of a layer
 * that is a file (the upload or a member; not a buffer libclamav normalised), the shallowest
 * depth it was met at (0: the upload) and the names of the layers down to it there, NUL-separated
 * (depth of them, as a scan_match's). macros: an OLE2 layer holding a VBA project; encrypted: a
 * container with an encrypted member no reader could look into. One per (type, macros, encrypted). */
struct scan_kind {
	char type[SCANNER_TYPE_MAX];
	unsigned depth;
	unsigned char macros, encrypted;
	char *names;
	size_t names_len;
};
#define SCANNER_KINDS_MAX 128	/* distinct kinds kept; past it the scan's kinds are "overflow" */

/* Every kind of layer of one scan (scanner_kinds_free frees). overflow: more kinds than kept (the
 * policy treats it as a type it cannot judge, so blocks when it has rules). */
struct scan_kinds {
	struct scan_kind *v;
	unsigned n;
	int overflow;
};
void scanner_kinds_free(struct scan_kinds *k);
/* 1 when a file name (len bytes) has a script's extension (.sh, .py, .js, .vbs, .ps1, .bat, ...):
 * a text layer so named counts as CL_TYPE_SCRIPT. */
int scanner_script_name(const char *name, size_t len);

struct scan_request {
	const void *data;		/* the bytes, len of them; NULL: the file open on fd */
	size_t len;
	int fd;				/* read only when data is NULL */
	const unsigned char *digest;	/* SHA-256 (SCANNER_DIGEST_LEN bytes) of the content, for the
					 * clean cache and r->sha256 instead of hashing again; NULL:
					 * not known (bytes in memory are hashed, a file is not) */
	struct scan_detail *detail;	/* every match, where, and the upload's type; NULL: none */
	int all_matches;		/* every signature (CL_SCAN_GENERAL_ALLMATCHES); verdicts are
					 * the same either way */
	double deadline;		/* util_now() time past which the scan stops at its next layer
					 * with SCANNER_LIMIT_TIME; 0: only MAX_SCAN_TIME */
	struct scan_kinds *kinds;	/* every kind of layer met (zeroed by the caller), from the
					 * clean cache too; NULL: not wanted */
};

struct scanner_stats {
	long db_version;		/* daily version of the engine in use; -1 before the first load */
	time_t db_time;			/* build time of that database */
	unsigned signatures;
	unsigned long reloads, reload_failures;
	unsigned long cache_hits;
	unsigned long member_hits, member_misses, member_entries;	/* the member cache's */
	unsigned long cut_clean;	/* scans cut short at a limit answered by what was scanned */
	int db_folder_ok;		/* 1: the watcher's last look found CLAMAV_DB_DIR readable, with files */
	unsigned long db_folder_unusable;	/* times it found it empty or unreadable since */
};

struct scanner;

/* Initialises libclamav and loads the database; NULL with one line in err when it cannot
 * (missing or empty folder, no signature loaded). Starts the folder watcher. Caller owns it.
 * With o->wait, a missing or empty folder is not an error: the scanner starts without a database
 * (err says why), and the watcher looks at the folder every SCANNER_WAIT_INTERVAL seconds until
 * one loads. Until scanner_ready answers 1, only scanner_ready, scanner_poke, scanner_reload and
 * scanner_free may be called. */
struct scanner *scanner_new(const struct scanner_opts *o, char *err, size_t errlen);

/* During a low-memory reload: seconds until the new engine should be in (the last load's duration
 * minus the time spent), at least 1. */
unsigned scanner_retry_after(struct scanner *s);
#define SCANNER_WAIT_INTERVAL 1	/* seconds between looks at an empty CLAMAV_DB_DIR (DB_WAIT) */
/* 1 once a database is loaded (it stays loaded: a failed reload keeps the previous one). */
int scanner_ready(struct scanner *s);
/* 1 during a RELOAD_MODE=low-memory reload: an engine was loaded before and is not now. */
int scanner_reloading(struct scanner *s);
void scanner_free(struct scanner *s);

/* Scans q into r. The verdict rules (scanner_verdict.c): clean only when libclamav found nothing
 * and nothing cut the scan short or failed; a cut file is malware with its limit among the
 * matches (unless ALERT_EXCEEDS_MAX is off), never clean. */
void scanner_scan(struct scanner *s, const struct scan_request *q, struct scan_result *r);
void scanner_detail_free(struct scan_detail *d);
/* The result of a file not scanned at all because limit (SCANNER_LIMIT_*) was already spent:
 * malware named by the limit (listed in d, when not NULL, as found at the upload itself), or with
 * ALERT_EXCEEDS_MAX off clean (counted and logged as a cut). */
void scanner_skipped(struct scanner *s, const char *limit, struct scan_detail *d, struct scan_result *r);

/* Loads the folder again when it changed (or always, with force) into a new engine and swaps it in;
 * scans in flight finish on the old one. 1 swapped, 0 nothing to do, -1 failed (old engine kept). */
int scanner_reload(struct scanner *s, int force);
/* Asks the watcher thread to check the folder now (async-signal-safe is not needed: call from a
 * normal thread). */
void scanner_poke(struct scanner *s);

void scanner_stats(struct scanner *s, struct scanner_stats *st);

#define SCANNER_TMPFS "/dev/shm"
/* Where libclamav's temporary files should go: every scan makes and removes a folder there (about
 * 19 us on tmpfs against 100 us on disk), and archives are extracted there. SCANNER_TMPFS when it
 * is a writable tmpfs with room for need bytes, else fallback. */
const char *scanner_pick_tmpdir(const char *fallback, uint64_t need);
const char *scanner_engine_version(void);
/* The file libclamav was loaded from (the patched build under build/ or lib/clamrest, or Debian's),
 * as the dynamic loader resolved it; "unknown" when it cannot tell. */
const char *scanner_engine_file(void);
/* 1 when that file is clamrest's patched build (a clamrest-libclamav.txt naming patches beside it),
 * 0 for Debian's or any other. */
int scanner_engine_patched(void);
/* Why the build links Debian's libclamav instead of the patched one ("" when not said). */
const char *scanner_engine_note(void);
/* Writes the effective policy as the members of a JSON object, without braces
 * ("alert_encrypted_archive":true,...), to out; -1 when it does not fit. */
int scanner_policy_json(const struct scanner_policy *p, char *out, size_t outlen);

#endif
