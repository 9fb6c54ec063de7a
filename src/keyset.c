/* keyset.c -- a set of 32-byte keys (SHA-256 digests) with open addressing, for the second reader. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyset.h"

static int keyset_grow(struct keyset *s);

static size_t
keyset_slot(const struct keyset *s, const unsigned char *k)
{
	uint64_t h;

	memcpy(&h, k, sizeof(h));
	return (size_t)h & (s->cap - 1);
}

int
keyset_has(const struct keyset *s, const unsigned char *k)
{
	static const unsigned char zero[KEYSET_KEY_LEN];

	if (s->cap == 0)
		return 0;
	for (size_t i = keyset_slot(s, k);; i = (i + 1) & (s->cap - 1)) {
		if (memcmp(s->keys[i], k, KEYSET_KEY_LEN) == 0)
			return 1;
		if (memcmp(s->keys[i], zero, KEYSET_KEY_LEN) == 0)
			return 0;
	}
}

static int
keyset_grow(struct keyset *s)
{
	struct keyset bigger = { .cap = s->cap == 0 ? 64 : s->cap * 2 };

	if ((bigger.keys = calloc(bigger.cap, KEYSET_KEY_LEN)) == NULL)
		return -1;
	for (size_t i = 0; i < s->cap; i++)
		if (keyset_add(&bigger, s->keys[i]) != 0)
			return -1;
	free(s->keys);
	*s = bigger;
	return 0;
}

int
keyset_add(struct keyset *s, const unsigned char *k)
{
	static const unsigned char zero[KEYSET_KEY_LEN];
	size_t i;

	if (memcmp(k, zero, KEYSET_KEY_LEN) == 0 || keyset_has(s, k))
		return 0;
	if ((s->n + 1) * 2 > s->cap && keyset_grow(s) != 0)
		return -1;
	for (i = keyset_slot(s, k); memcmp(s->keys[i], zero, KEYSET_KEY_LEN) != 0;
	    i = (i + 1) & (s->cap - 1))
		;
	memcpy(s->keys[i], k, KEYSET_KEY_LEN);
	s->n++;
	return 0;
}

void
keyset_free(struct keyset *s)
{
	free(s->keys);
	s->keys = NULL;
	s->cap = s->n = 0;
}
