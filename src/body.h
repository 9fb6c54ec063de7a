/* body.h -- a request body as it streams in: kept in memory up to a threshold, then moved to an
 * unlinked temporary file, so a large upload costs disk, not memory, and leaves no file behind.
 * Functions returning int return 0 on success and -1 on failure (errno set). */
#ifndef CLAMREST_BODY_H
#define CLAMREST_BODY_H

#include <stddef.h>
#include <stdint.h>

#define BODY_INITIAL 16384	/* bytes of the first memory buffer */

struct body;

/* Caller owns the result; NULL when out of memory. tmpdir is borrowed: it must outlive the body
 * (the server passes its configuration's, which lives as long as the process). */
struct body *body_new(size_t spill_threshold, const char *tmpdir);
void body_free(struct body *b);
/* Forgets the content but keeps the memory buffer, for reuse. */
void body_reset(struct body *b);

int body_append(struct body *b, const void *data, size_t len);
uint64_t body_size(const struct body *b);
/* The content when it is in memory (len set), else NULL. */
const void *body_mem(const struct body *b, size_t *len);
/* The file holding the content when it spilled, else -1. */
int body_fd(const struct body *b);

#endif
