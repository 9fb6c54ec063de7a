/* body.c -- request bodies in memory up to a threshold, beyond it in an unlinked temporary file,
 * within process-wide budgets of memory and of temporary-folder bytes. */
#include "body.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct body {
	char *buf;
	size_t len, cap;	/* cap bytes of buf are counted against the memory budget */
	size_t threshold;
	int fd;			/* -1 while in memory */
	uint64_t size;
	uint64_t disk;		/* bytes counted against the disk budget */
	const char *tmpdir;
	EVP_MD_CTX *sha;	/* SHA-256 of the bytes appended so far; NULL when it failed */
	int sha_done;		/* sha was finalised into digest */
	unsigned char digest[BODY_DIGEST_LEN];
};

static EVP_MD *body_sha256;	/* fetched once: an implicit fetch per body costs more than a small one's hash */
static pthread_once_t body_sha_once = PTHREAD_ONCE_INIT;

static void
body_sha_init(void)
{
	body_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Starts the digest afresh; on failure the body has none (body_digest answers -1). */
static void
body_sha_start(struct body *b)
{
	pthread_once(&body_sha_once, body_sha_init);
	b->sha_done = 0;
	if (b->sha == NULL && body_sha256 != NULL)
		b->sha = EVP_MD_CTX_new();
	if (b->sha != NULL && EVP_DigestInit_ex(b->sha, body_sha256, NULL) != 1) {
		EVP_MD_CTX_free(b->sha);
		b->sha = NULL;
	}
}

/* Bytes held by every body of the process, and the most they may hold. */
struct body_budget {
	_Atomic uint64_t used;
	_Atomic uint64_t limit;
};

static struct body_budget body_memory = { 0, UINT64_MAX };
static struct body_budget body_disk = { 0, UINT64_MAX };

/* Counts n more bytes; -1 (nothing counted) when that would pass the limit. */
static int
budget_take(struct body_budget *bg, uint64_t n)
{
	uint64_t limit = atomic_load_explicit(&bg->limit, memory_order_relaxed);
	uint64_t cur = atomic_load_explicit(&bg->used, memory_order_relaxed);

	do {
		if (n > limit || cur > limit - n)
			return -1;
	} while (!atomic_compare_exchange_weak_explicit(&bg->used, &cur, cur + n,
	    memory_order_relaxed, memory_order_relaxed));
	return 0;
}

static void
budget_give(struct body_budget *bg, uint64_t n)
{
	if (n > 0)
		atomic_fetch_sub_explicit(&bg->used, n, memory_order_relaxed);
}

void
body_set_budget(uint64_t memory, uint64_t disk)
{
	atomic_store(&body_memory.limit, memory);
	atomic_store(&body_disk.limit, disk);
}

uint64_t
body_memory_used(void)
{
	return atomic_load_explicit(&body_memory.used, memory_order_relaxed);
}

uint64_t
body_disk_used(void)
{
	return atomic_load_explicit(&body_disk.used, memory_order_relaxed);
}

struct body *
body_new(size_t spill_threshold, const char *tmpdir)
{
	struct body *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->fd = -1;
	b->threshold = spill_threshold;
	b->tmpdir = tmpdir;
	body_sha_start(b);
	return b;
}

/*
 * Body buffers of BODY_MAP_MIN bytes and more are mappings of their own, given back to the system
 * by munmap when the body goes, whatever glibc's malloc thresholds are (main.c raises them, so
 * that libclamav's per-scan arrays are reused instead of being mapped and unmapped on every scan).
 * Smaller ones come from malloc. A buffer only grows, so it moves to a mapping once.
 */
#define BODY_MAP_MIN (128 * 1024)

static void
buffer_free(char *buf, size_t cap)
{
	if (buf == NULL)
		return;
	if (cap >= BODY_MAP_MIN)
		munmap(buf, cap);
	else
		free(buf);
}

/* buf (cap bytes, len used) grown to newcap bytes, or NULL (buf is then untouched). */
static char *
buffer_grow(char *buf, size_t cap, size_t len, size_t newcap)
{
	char *p;

	if (newcap < BODY_MAP_MIN)
		return realloc(buf, newcap);
	if (cap >= BODY_MAP_MIN) {
		p = mremap(buf, cap, newcap, MREMAP_MAYMOVE);
		return p == MAP_FAILED ? NULL : p;
	}
	p = mmap(NULL, newcap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (len > 0)
		memcpy(p, buf, len);
	free(buf);
	return p;
}

/* Gives back the memory buffer and its share of the budget. */
static void
body_drop_buffer(struct body *b)
{
	buffer_free(b->buf, b->cap);
	b->buf = NULL;
	budget_give(&body_memory, b->cap);
	b->cap = 0;
	b->len = 0;
}

void
body_reset(struct body *b)
{
	if (b->fd != -1)
		close(b->fd);
	b->fd = -1;
	budget_give(&body_disk, b->disk);
	b->disk = 0;
	body_drop_buffer(b);
	b->size = 0;
	body_sha_start(b);
}

void
body_free(struct body *b)
{
	if (b == NULL)
		return;
	body_reset(b);
	EVP_MD_CTX_free(b->sha);
	free(b);
}

/* O_TMPFILE makes a file with no name at all: nothing to unlink, nothing left by a crash. */
static int
body_open_tmp(const char *dir)
{
	char path[4096];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd != -1 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT))
		return fd;
	/* File systems without O_TMPFILE: a named file, unlinked at once. */
	if ((size_t)snprintf(path, sizeof(path), "%s/clamrest-body.XXXXXX", dir) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd != -1)
		unlink(path);
	return fd;
}

static int
body_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes to the file within the disk budget: BODY_FULL when it is spent, -1 when writing fails. */
static int
body_write(struct body *b, const char *p, size_t len)
{
	int saved;

	if (budget_take(&body_disk, len) != 0)
		return BODY_FULL;
	b->disk += len;
	if (body_write_all(b->fd, p, len) == 0)
		return 0;
	saved = errno;
	budget_give(&body_disk, len);
	b->disk -= len;
	errno = saved;
	return -1;
}

/* Moves the content to a new file and gives its memory back. */
static int
body_spill(struct body *b)
{
	int rc;

	if ((b->fd = body_open_tmp(b->tmpdir)) == -1)
		return -1;
	if ((rc = body_write(b, b->buf, b->len)) != 0) {
		int saved = errno;

		close(b->fd);
		b->fd = -1;
		errno = saved;
		return rc;
	}
	body_drop_buffer(b);
	return 0;
}

/* 1 when need bytes fit in memory: below the threshold, and within the memory budget. A buffer that
 * cannot grow (budget spent, or no memory) makes the body spill instead. */
static int
body_fits_memory(struct body *b, size_t need)
{
	size_t cap = b->cap ? b->cap : BODY_INITIAL;
	char *p;

	if (need > b->threshold)
		return 0;
	if (need <= b->cap)
		return 1;
	while (cap < need)
		cap *= 2;
	if (cap > b->threshold)
		cap = b->threshold;
	if (budget_take(&body_memory, cap - b->cap) != 0)
		return 0;
	if ((p = buffer_grow(b->buf, b->cap, b->len, cap)) == NULL) {
		budget_give(&body_memory, cap - b->cap);
		return 0;
	}
	b->buf = p;
	b->cap = cap;
	return 1;
}

int
body_append(struct body *b, const void *data, size_t len)
{
	int rc;

	if (len == 0)
		return 0;
	if (b->fd == -1 && !body_fits_memory(b, b->len + len) && (rc = body_spill(b)) != 0)
		return rc;
	if (b->fd != -1) {
		if ((rc = body_write(b, data, len)) != 0)
			return rc;
	} else {
		memcpy(b->buf + b->len, data, len);
		b->len += len;
	}
	b->size += len;
	/* Hashed as it streams in, while the bytes are hot in the cache: the scanner's clean cache
	 * and the log take this digest instead of reading the body again. */
	if (b->sha != NULL && (b->sha_done || EVP_DigestUpdate(b->sha, data, len) != 1)) {
		EVP_MD_CTX_free(b->sha);
		b->sha = NULL;
	}
	return 0;
}

int
body_digest(struct body *b, unsigned char out[BODY_DIGEST_LEN])
{
	if (b->sha == NULL)
		return -1;
	if (!b->sha_done) {
		if (EVP_DigestFinal_ex(b->sha, b->digest, NULL) != 1) {
			EVP_MD_CTX_free(b->sha);
			b->sha = NULL;
			return -1;
		}
		b->sha_done = 1;
	}
	memcpy(out, b->digest, BODY_DIGEST_LEN);
	return 0;
}

uint64_t
body_size(const struct body *b)
{
	return b->size;
}

const void *
body_mem(const struct body *b, size_t *len)
{
	if (b->fd != -1)
		return NULL;
	*len = b->len;
	return b->buf != NULL ? b->buf : "";
}

int
body_fd(const struct body *b)
{
	return b->fd;
}
