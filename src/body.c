/* body.c -- request bodies in memory up to a threshold, beyond it in an unlinked temporary file. */
#include "body.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct body {
	char *buf;
	size_t len, cap;
	size_t threshold;
	int fd;			/* -1 while in memory */
	uint64_t size;
	const char *tmpdir;
};

struct body *
body_new(size_t spill_threshold, const char *tmpdir)
{
	struct body *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->fd = -1;
	b->threshold = spill_threshold;
	b->tmpdir = tmpdir;
	return b;
}

void
body_free(struct body *b)
{
	if (b == NULL)
		return;
	if (b->fd != -1)
		close(b->fd);
	free(b->buf);
	free(b);
}

void
body_reset(struct body *b)
{
	if (b->fd != -1)
		close(b->fd);
	b->fd = -1;
	b->len = 0;
	b->size = 0;
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

static int
body_spill(struct body *b)
{
	int fd = body_open_tmp(b->tmpdir);

	if (fd == -1)
		return -1;
	if (body_write_all(fd, b->buf, b->len) != 0) {
		close(fd);
		return -1;
	}
	b->fd = fd;
	b->len = 0;
	return 0;
}

static int
body_grow(struct body *b, size_t need)
{
	size_t cap = b->cap ? b->cap : BODY_INITIAL;
	char *p;

	while (cap < need)
		cap *= 2;
	if (cap > b->threshold)
		cap = b->threshold;
	p = realloc(b->buf, cap);
	if (p == NULL)
		return -1;
	b->buf = p;
	b->cap = cap;
	return 0;
}

int
body_append(struct body *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (b->fd == -1 && b->len + len > b->threshold && body_spill(b) != 0)
		return -1;
	if (b->fd != -1) {
		if (body_write_all(b->fd, data, len) != 0)
			return -1;
	} else {
		if (b->len + len > b->cap && body_grow(b, b->len + len) != 0)
			return -1;
		memcpy(b->buf + b->len, data, len);
		b->len += len;
	}
	b->size += len;
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
