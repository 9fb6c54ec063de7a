/* keyset.h -- a set of 32-byte keys (SHA-256 digests), open addressing; zeroed is empty. */
#ifndef CLAMREST_KEYSET_H
#define CLAMREST_KEYSET_H

#include <stddef.h>

#define KEYSET_KEY_LEN 32

struct keyset {
	unsigned char (*keys)[KEYSET_KEY_LEN];
	size_t cap, n;			/* cap: a power of two, or 0 */
};

/* 1 when k is in the set. */
int keyset_has(const struct keyset *s, const unsigned char *k);
/* Adds k (the all-zero key stands for an empty slot and is never added): 0, or -1 out of memory. */
int keyset_add(struct keyset *s, const unsigned char *k);
void keyset_free(struct keyset *s);

#endif
