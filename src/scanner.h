/* scanner.h -- the libclamav engine: loaded from CLAMAV_DB_DIR, shared by every scan thread, swapped
 * atomically when the database changes; scans from memory or from a file descriptor.
 * The only module that includes clamav.h. Functions returning int return 0 on success, -1 on failure. */
#ifndef CLAMREST_SCANNER_H
#define CLAMREST_SCANNER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SCAN_REASON_MAX 256	/* bytes of a signature name we report */
#define SCANNER_DIGEST_LEN 32	/* bytes of a SHA-256 */

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

#define SCANNER_LIMIT_SCAN_SIZE	"Heuristics.Limits.Exceeded.MaxScanSize"
#define SCANNER_LIMIT_FILE_SIZE	"Heuristics.Limits.Exceeded.MaxFileSize"
#define SCANNER_LIMIT_TIME	"Heuristics.Limits.Exceeded.MaxScanTime"
/* An archive member that libclamav listed but did not scan (a method or format it cannot unpack). */
#define SCANNER_UNSCANNED_MEMBER "Heuristics.Unscanned.ArchiveMember"
#define SCANNER_UNSCANNED_RAR	"Heuristics.Unscanned.RAR"
/* An archive member unpacked to fewer bytes than its archive says it has. */
#define SCANNER_UNSCANNED_CUT	"Heuristics.Unscanned.TruncatedMember"

struct scanner_opts {
	const char *db_dir;
	const char *tmpdir;		/* libclamav's own temporary files go in a folder of ours below it */
	uint64_t max_scan_size;		/* bytes */
	uint64_t max_file_size;		/* bytes */
	unsigned max_recursion;
	unsigned max_files;
	unsigned max_scan_time;		/* milliseconds */
	unsigned max_expansion;		/* bytes unpacked per byte scanned, at most; 0: no such limit */
	unsigned cache_entries;		/* clean verdicts remembered; 0: none */
	unsigned check_interval;	/* seconds between looks at db_dir; 0: only scanner_reload */
	int wait;			/* DB_WAIT: start without a database, load the first one to appear */
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

struct scanner_stats {
	long db_version;		/* daily version of the engine in use; -1 before the first load */
	time_t db_time;			/* build time of that database */
	unsigned signatures;
	unsigned long reloads, reload_failures;
	unsigned long cache_hits;
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
void scanner_free(struct scanner *s);

void scanner_scan_mem(struct scanner *s, const void *data, size_t len, struct scan_result *r);
void scanner_scan_fd(struct scanner *s, int fd, struct scan_result *r);

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

#endif
