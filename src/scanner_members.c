/* scanner_members.c -- the member cache (MEMBER_CACHE): archive members that complete clean scans
 * found clean, remembered by the SHA-256 of their bytes and of where they were found, so that a
 * later upload holding the same member in the same place skips it (docs/PERFORMANCE.md). */
#include "scanner_priv.h"

#include <stdlib.h>
#include <string.h>

#include "reader.h"

_Static_assert(READER_DIGEST_LEN == SCANNER_DIGEST_LEN, "one SHA-256 for the cache and the reader");

/* Ancestors a remembered member may have at most; a deeper one is always scanned. */
#define SCANNER_MEMBER_DEPTH	64
/* Members one scan may remember: the rest of a larger archive is scanned again next time. */
#define SCANNER_MEMBERS_PER_SCAN 16384
/* The key's head: a version, the scan mode, the member's place (the types of the layers above it in
 * libclamav's scan, which logical signatures may name: Container:, Intermediates:; the depth that
 * scan started at: 0, or a member's the second reader handed back), its own type and attributes. */
#define SCANNER_MEMBER_HEAD	(16 + 12 + SCANNER_MEMBER_DEPTH * (SCANNER_TYPE_MAX + 2) + \
    SCANNER_TYPE_MAX + 8)

static size_t
scanner_member_put(unsigned char *h, size_t at, const char *s)
{
	size_t n = s != NULL ? strnlen(s, SCANNER_TYPE_MAX - 1) : 0;

	memcpy(h + at, s != NULL ? s : "", n);
	h[at + n] = '\0';
	return at + n + 1;
}

/* A member's key: SHA-256 of its context, then of the SHA-256 of its bytes (ld: taken once, the
 * second reader reuses it). Never a weaker hash: two members sharing a key, one clean and one not,
 * would make the second clean. */
static int
scanner_member_key(const struct scan_state *st, const char *type, const char *buf, size_t size,
    uint32_t level, uint32_t attributes, struct reader_digest *ld, unsigned char *key)
{
	unsigned char h[SCANNER_MEMBER_HEAD];
	size_t at;

	if (!ld->have) {
		if (scanner_digest2("", 0, size > 0 ? buf : "", size, ld->d) != 0)
			return -1;
		ld->have = 1;
	}
	memcpy(h, "clamrest-member2", 16);
	h[16] = (unsigned char)st->all_matches;
	for (int i = 0; i < 4; i++) {
		h[17 + i] = (unsigned char)(level >> (8 * i));
		h[21 + i] = (unsigned char)(attributes >> (8 * i));
		h[25 + i] = (unsigned char)(st->base >> (8 * i));
	}
	at = 29;
	for (uint32_t i = 0; i < level; i++) {
		at = scanner_member_put(h, at, st->layers[i].type);
		h[at++] = (unsigned char)st->layers[i].embedded;
	}
	at = scanner_member_put(h, at, type);
	return scanner_digest2(h, at, ld->d, SCANNER_DIGEST_LEN, key);
}

/* Whether skipping what was scanned below a member (sub) keeps this scan within the limits its
 * scan would meet anyway: else the member is scanned, and meets them as a cold scan does. */
static int
scanner_member_fits(const struct scan_state *st, const struct scan_sub *sub)
{
	const struct scanner *s = st->s;
	uint64_t total = st->total + sub->bytes;

	return total + SCANNER_LIMIT_MARGIN < s->scan_limit && total <= st->budget &&
	    (uint64_t)st->files + sub->files < s->o.max_files;
}

int
scanner_members_inspect(struct scan_state *st, const char *type, const char *buf, size_t size,
    uint32_t level, uint32_t attributes, struct reader_digest *ld)
{
	struct scan_layer *l;
	struct scan_sub sub;

	if ((level > 0 || st->base > 0) && !(attributes & LAYER_ATTRIBUTES_NORMALIZED))
		st->files++;
	/* Members: below the upload in libclamav's pass, and those the second reader handed back
	 * (each a scan of its own from level 0, in which libclamav sees no container). Normalised
	 * buffers are views of their layer. */
	if (st->members == NULL || (level == 0 && st->base == 0) || st->layers == NULL ||
	    level >= st->max_depth || level > SCANNER_MEMBER_DEPTH || st->depth != level + 1 ||
	    buf == NULL || (attributes & LAYER_ATTRIBUTES_NORMALIZED))
		return 0;
	l = &st->layers[level];
	if (scanner_member_key(st, type, buf, size, level, attributes, ld, l->mkey) != 0)
		return 0;
	if (scanner_cache_get_sub(st->members, st->generation, l->mkey, &sub) &&
	    scanner_member_fits(st, &sub)) {
		st->total += sub.bytes;
		st->files += sub.files;
		st->member_hits++;
		l->mstate = SCANNER_MEMBER_HIT;
		return 1;
	}
	l->mstate = SCANNER_MEMBER_KEYED;
	l->mtotal = st->total;
	l->mfiles = st->files;
	return 0;
}

int
scanner_members_done(struct scan_state *st, struct scan_layer *l, int result)
{
	struct scan_member *m;

	if (l->mstate == SCANNER_MEMBER_HIT)
		return 1;
	if (l->mstate != SCANNER_MEMBER_KEYED || result == CL_VIRUS ||
	    st->nkeyed >= SCANNER_MEMBERS_PER_SCAN)
		return 0;
	if (st->nkeyed == st->capkeyed) {
		unsigned cap = st->capkeyed == 0 ? 16 : st->capkeyed * 2;

		if ((m = realloc(st->keyed, cap * sizeof(*m))) == NULL)
			return 0;	/* not remembered: scanned again next time */
		st->keyed = m;
		st->capkeyed = cap;
	}
	m = &st->keyed[st->nkeyed++];
	memcpy(m->key, l->mkey, SCANNER_DIGEST_LEN);
	m->sub = (struct scan_sub){ .bytes = st->total - l->mtotal, .files = st->files - l->mfiles };
	return 0;
}

void
scanner_members_commit(struct scan_state *st)
{
	if (st->members != NULL)
		scanner_cache_put_subs(st->members, st->generation, st->keyed, st->nkeyed);
}
