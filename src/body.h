/* body.h -- a request body as it streams in: kept in memory up to a threshold, then moved to an
 * unlinked temporary file, so a large upload costs disk, not memory, and leaves no file behind.
 * Two process-wide budgets bound what all bodies together hold: bytes in memory (a body that would
 * pass it goes to its file early) and bytes in temporary files (past it, appends are refused).
 * Functions returning int return 0 on success and -1 on failure (errno set); body_append may also
 * return BODY_FULL. */
#ifndef CLAMREST_BODY_H
#define CLAMREST_BODY_H

#include <stddef.h>
#include <stdint.h>

#define BODY_INITIAL 16384	/* bytes of the first memory buffer */
#define BODY_DIGEST_LEN 32	/* bytes of a SHA-256 */
#define BODY_FULL    (-2)	/* body_append: the disk budget is spent; nothing was appended */

struct body;

/* Sets the budgets of every body of the process, in bytes (both unlimited until set). Call it
 * before bodies exist. */
void body_set_budget(uint64_t memory, uint64_t disk);
/* Bytes all bodies hold now: memory buffers, and temporary-file content. */
uint64_t body_memory_used(void);
uint64_t body_disk_used(void);

/* Caller owns the result; NULL when out of memory. tmpdir is borrowed: it must outlive the body
 * (the server passes its configuration's, which lives as long as the process). */
struct body *body_new(size_t spill_threshold, const char *tmpdir);
void body_free(struct body *b);
/* Forgets the content and gives back its memory and file (and their share of the budgets). */
void body_reset(struct body *b);

/* 0; -1 when the temporary file cannot be made or written (errno set: ENOSPC, EIO...); BODY_FULL
 * when the disk budget is spent. On failure the refused bytes are not counted; after -1 the file
 * may hold part of them, so the body is only good for body_reset or body_free. */
int body_append(struct body *b, const void *data, size_t len);
uint64_t body_size(const struct body *b);
/* The content when it is in memory (len set), else NULL. */
const void *body_mem(const struct body *b, size_t *len);
/* The file holding the content when it spilled, else -1. */
int body_fd(const struct body *b);
/* The SHA-256 of the content, computed as it was appended; -1 when the digest failed (OpenSSL out
 * of memory). Once asked, the body takes no more appends until body_reset (they would be left out
 * of the digest, which is then dropped). */
int body_digest(struct body *b, unsigned char out[BODY_DIGEST_LEN]);

#endif
