/* scanner_cache.c -- the clean caches: clean verdicts remembered by the SHA-256 of what was scanned,
 * for one engine generation (uploads, and archive members: scanner_members.c), and the SHA-256
 * itself. */
#include "scanner_priv.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A clean verdict remembered by the SHA-256 of what was scanned, for one engine generation.
 * Direct-mapped: a collision evicts. Only complete scans are remembered (see scanner_verdict). */
struct cache_entry {
	unsigned char digest[SCANNER_DIGEST_LEN];
	unsigned long generation;	/* 0: empty */
	char type[SCANNER_TYPE_MAX];	/* libclamav's type of the file, for detailed scans */
	struct scan_kinds kinds;	/* its kinds of layers, for the upload policy */
	int has_kinds;			/* kinds were collected by the scan */
	struct scan_sub sub;		/* the member cache's: what was scanned below the member */
};

static EVP_MD *scanner_sha256;	/* fetched once: a fetch per scan costs more than hashing EICAR */

/* Once, from scanner_new's one-time initialisation. */
int
scanner_digest_init(void)
{
	scanner_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	return scanner_sha256 != NULL ? 0 : -1;
}

int
scanner_digest(const void *data, size_t len, unsigned char *out)
{
	return EVP_Digest(data, len, out, NULL, scanner_sha256, NULL) == 1 ? 0 : -1;
}

int
scanner_digest2(const void *head, size_t hlen, const void *data, size_t len, unsigned char *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestInit_ex(md, scanner_sha256, NULL) == 1 &&
	    EVP_DigestUpdate(md, head, hlen) == 1 && EVP_DigestUpdate(md, data, len) == 1 &&
	    EVP_DigestFinal_ex(md, out, NULL) == 1;

	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* entries slots (0: no cache). The lock is set up either way: scanner_cache_free may always run. */
int
scanner_cache_init(struct scan_cache *c, unsigned entries)
{
	pthread_mutex_init(&c->lock, NULL);
	c->n = entries;
	if (entries == 0)
		return 0;
	c->slots = calloc(entries, sizeof(*c->slots));
	return c->slots != NULL ? 0 : -1;
}

void
scanner_cache_free(struct scan_cache *c)
{
	pthread_mutex_destroy(&c->lock);
	for (unsigned i = 0; c->slots != NULL && i < c->n; i++)
		scanner_kinds_free(&c->slots[i].kinds);
	free(c->slots);
	c->slots = NULL;
}

static struct cache_entry *
scanner_cache_slot(struct scan_cache *c, const unsigned char *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof(h));
	return &c->slots[h % c->n];
}

/* The entry of digest remembered under generation, or NULL (under the lock). */
static struct cache_entry *
scanner_cache_find(struct scan_cache *c, unsigned long generation, const unsigned char *digest)
{
	struct cache_entry *e = scanner_cache_slot(c, digest);

	return e->generation == generation && memcmp(e->digest, digest, SCANNER_DIGEST_LEN) == 0 ?
	    e : NULL;
}

int
scanner_cache_get(struct scan_cache *c, unsigned long generation, const unsigned char *digest,
    char *type, struct scan_kinds *kinds)
{
	struct cache_entry *e;
	int hit;

	if (c->slots == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	e = scanner_cache_find(c, generation, digest);
	hit = e != NULL;
	/* A scan that wants the kinds of layers (an upload policy) cannot be answered without them:
	 * the policy would judge an upload it never saw. */
	if (hit && kinds != NULL && (!e->has_kinds ||
	    scanner_kinds_copy(kinds, &e->kinds, SCANNER_KINDS_MAX, (size_t)-1) != 0))
		hit = 0;
	if (hit && type != NULL)
		memcpy(type, e->type, SCANNER_TYPE_MAX);
	pthread_mutex_unlock(&c->lock);
	if (hit)
		atomic_fetch_add(&c->hits, 1);
	return hit;
}

/* The slot of digest, taken for generation (under the lock): the count of entries follows. */
static struct cache_entry *
scanner_cache_claim(struct scan_cache *c, unsigned long generation, const unsigned char *digest)
{
	struct cache_entry *e = scanner_cache_slot(c, digest);

	if (generation > c->generation) {	/* a reload: the older entries are misses now */
		c->generation = generation;
		c->entries = 0;
	}
	if (generation == c->generation && e->generation != generation)
		c->entries++;
	memcpy(e->digest, digest, SCANNER_DIGEST_LEN);
	e->generation = generation;
	return e;
}

unsigned long
scanner_cache_entries(struct scan_cache *c, unsigned long generation)
{
	unsigned long n;

	pthread_mutex_lock(&c->lock);
	n = c->generation == generation ? c->entries : 0;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void
scanner_cache_put(struct scan_cache *c, unsigned long generation, const unsigned char *digest,
    const char *type, const struct scan_kinds *kinds)
{
	struct cache_entry *e;

	if (c->slots == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	e = scanner_cache_claim(c, generation, digest);
	snprintf(e->type, sizeof(e->type), "%s", type != NULL ? type : "");
	e->has_kinds = kinds != NULL && scanner_kinds_copy(&e->kinds, kinds, SCANNER_CACHE_KINDS,
	    SCANNER_CACHE_NAMES) == 0;
	if (!e->has_kinds)
		scanner_kinds_free(&e->kinds);
	pthread_mutex_unlock(&c->lock);
}

/* The member cache's entries: no type, no kinds, what was scanned below each member. */
int
scanner_cache_get_sub(struct scan_cache *c, unsigned long generation, const unsigned char *digest,
    struct scan_sub *sub)
{
	struct cache_entry *e;
	int hit;

	if (c->slots == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	e = scanner_cache_find(c, generation, digest);
	hit = e != NULL;
	if (hit)
		*sub = e->sub;
	pthread_mutex_unlock(&c->lock);
	atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
	return hit;
}

void
scanner_cache_put_subs(struct scan_cache *c, unsigned long generation,
    const struct scan_member *m, unsigned n)
{
	struct cache_entry *e;

	if (c->slots == NULL || n == 0)
		return;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < n; i++) {
		e = scanner_cache_claim(c, generation, m[i].key);
		e->type[0] = '\0';
		e->has_kinds = 0;
		scanner_kinds_free(&e->kinds);
		e->sub = m[i].sub;
	}
	pthread_mutex_unlock(&c->lock);
}
