/* reader.h -- the second archive reader: libarchive lists and extracts what each layer of a scan
 * holds, so that what an archive holds is not decided by libclamav alone (docs/second-reader.md).
 * One struct reader per scan, used by the scanning thread only. Functions returning int return 0 on
 * success, -1 on failure (out of memory). */
#ifndef CLAMREST_READER_H
#define CLAMREST_READER_H

#include <stddef.h>
#include <stdint.h>

#define READER_DIGEST_LEN 32	/* bytes of a SHA-256 */

/* Names of what the reader found, as scanner.h's (the verdict's reason). */
#define READER_LIMIT_FILE_SIZE	"Heuristics.Limits.Exceeded.MaxFileSize"
#define READER_LIMIT_SCAN_SIZE	"Heuristics.Limits.Exceeded.MaxScanSize"
#define READER_LIMIT_FILES	"Heuristics.Limits.Exceeded.MaxFiles"
#define READER_LIMIT_TIME	"Heuristics.Limits.Exceeded.MaxScanTime"
#define READER_LIMIT_RECURSION	"Heuristics.Limits.Exceeded.MaxRecursion"
/* A member the reader listed, could not extract, and libclamav did not scan either. */
#define READER_UNSCANNED	"Heuristics.Unscanned.ArchiveMember"

#define READER_BLOCK (64 * 1024)	/* bytes read from libarchive at a time; limits checked per block */

struct reader_limits {
	uint64_t max_file_size;		/* bytes of one member */
	uint64_t budget;		/* bytes the reader may extract in one scan, all members */
	unsigned max_files;		/* members the reader may list in one scan */
	unsigned max_recursion;		/* deepest layer a member may be at (the upload is 0) */
	double deadline;		/* util_now() after which the scan is out of time; 0: none */
	int encrypted_alert;		/* ALERT_ENCRYPTED_ARCHIVE: an encrypted member is a finding */
};

/* A member the reader extracted and nobody has scanned yet (reader_next). Members are hashed as
 * they are listed and their bytes dropped; the few libclamav did not scan are extracted again from
 * a copy of their layer when handed out, so memory holds archives, not what they expand to. */
struct reader_member {
	unsigned char digest[READER_DIGEST_LEN];
	unsigned char *data;
	size_t len;
	unsigned depth;			/* the layer depth it would have: its archive's + 1 */
	char *path;			/* names from the upload down, NUL-separated, path_len bytes */
	size_t path_len;
	unsigned path_depth;		/* names in path */
};

struct reader;

struct reader *reader_new(const struct reader_limits *lim);
void reader_free(struct reader *r);

/* A layer libclamav is about to scan: buf holds all of it (NULL: not available). It is remembered
 * as scanned (its digest when a pending member has its size, and its name with its size); then
 * libarchive lists what it holds and hashes each member within the limits. type is libclamav's
 * ("CL_TYPE_ZIP"), depth the layer's from the upload; path/path_len/path_depth name the layer (as
 * scan_match does) for the members' paths. *id_out: the layer's id for reader_covered (0: none).
 * 1: it listed members (or met a limit), 0: none, -1: out of memory. */
int reader_layer(struct reader *r, const void *buf, size_t size, const char *type, const char *name,
    unsigned depth, const char *path, size_t path_len, unsigned path_depth, unsigned *id_out);
/* A layer's SHA-256, taken at most once: by whoever needs it first (the member cache's key, the
 * reader's "scanned" set, its cabinet memo), the others reuse it. have 0: not taken yet. */
struct reader_digest {
	int have;
	unsigned char d[READER_DIGEST_LEN];
};
/* reader_layer with the layer's digest: ld->d is used when ld->have (it must be buf's), else the
 * reader fills it if it hashes the layer. ld NULL: as reader_layer. */
int reader_layer_hashed(struct reader *r, const void *buf, size_t size, const char *type,
    const char *name, unsigned depth, const char *path, size_t path_len, unsigned path_depth,
    unsigned *id_out, struct reader_digest *ld);
/* A layer libclamav skips as one scanned clean before (the member cache): remembered as scanned as
 * reader_layer does, what it holds not listed. ld: as reader_layer_hashed's. 0, or -1 (out of
 * memory). */
int reader_skip(struct reader *r, const void *buf, size_t size, const char *name,
    struct reader_digest *ld);
/* Digests the reader took of layers and of cabinets in them (not of members it extracted): what
 * reader_digest lets it skip shows here. */
unsigned long reader_layer_digests(const struct reader *r);
/* 1 when the reader read layer id to its end and hashed every one of at least want members:
 * libclamav's own count may then be short without a hole. */
int reader_covered(const struct reader *r, unsigned id, unsigned want);
/* Drops the held members whose content libclamav has scanned since (call when a layer closes). */
void reader_prune(struct reader *r);
/* The upload's bytes, alive until the second pass ends (the reader keeps no copy of them; members
 * of the upload are extracted again from here). NULL: not available. */
void reader_set_upload(struct reader *r, const void *data, size_t len);
/* The next member to scan ourselves (content libclamav did not scan), or NULL; the caller frees it
 * with reader_member_free. */
struct reader_member *reader_next(struct reader *r);
void reader_member_free(struct reader_member *m);
/* What the reader met, worst first: a limit (READER_LIMIT_*), else an encrypted member
 * (Heuristics.Encrypted.*, with encrypted_alert) or a member nobody could extract (READER_UNSCANNED);
 * NULL: none. *is_limit says which kind. */
const char *reader_finding(const struct reader *r, int *is_limit);
/* A member libclamav announced and did not scan where it announced it: a finding at the end
 * (READER_UNSCANNED) unless a layer of that name and size was scanned in the scan. 0, or -1. */
int reader_add_hole(struct reader *r, const char *name, uint64_t size);
/* Counts for logs and metrics. */
void reader_counts(const struct reader *r, unsigned *layers_read, unsigned *members,
    unsigned *rescanned);
/* The reader's own limit for a scan cut at depth (MaxRecursion) found by the caller. */
void reader_set_limit(struct reader *r, const char *limit);

#endif
