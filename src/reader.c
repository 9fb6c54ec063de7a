/* reader.c -- the second archive reader: libarchive over every layer libclamav meets; members it
 * extracts that libclamav did not scan are handed back to be scanned as layers of their own. */
#include "reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyset.h"
#include "log.h"
#include "reader_open.h"
#include "reader_sig.h"
#include "util.h"

_Static_assert(READER_DIGEST_LEN == KEYSET_KEY_LEN, "the reader's keys are SHA-256 digests");

#define READER_NAME_MAX 1024	/* bytes of a member name kept in its path */

/* A layer the reader listed members in: whether it holds nothing the reader could not account
 * for. Its id is its place in reader.seen, from 1. */
struct layer_seen {
	unsigned members;		/* regular members listed (largest view) */
	int complete;			/* every view read to its end, every member extracted */
};

/* A member listed and not extracted (a method libarchive lacks): a hole unless libclamav scanned a
 * member of that name and size. */
struct hole {
	unsigned char key[READER_DIGEST_LEN];
	struct hole *next;
};

/* A layer holding members not known to be scanned: its bytes, to extract them again later. */
struct source {
	unsigned char *bytes;		/* a copy; NULL: the upload (reader_set_upload) */
	size_t size;
	int raw;			/* view 0 offers the raw format: the stream's filter */
	int fmt;			/* view 2: the format searched for (enum reader_fmt) */
	size_t offset;			/* view 2 over the upload: where the hit is in it */
	unsigned depth;
	char *path;			/* the layer's names, NUL-separated */
	size_t path_len;
	unsigned path_depth;
	unsigned refs;			/* pending members pointing here */
};

/* A member extracted once (its digest taken on the way) and not known to be scanned. */
struct pending {
	unsigned char digest[READER_DIGEST_LEN];
	struct source *src;
	int view;
	unsigned ordinal;		/* its place among the view's regular members */
	char *name;
	struct pending *next;
};

/* A cabinet the reader read whole in this scan, by the digest of its bytes: an InstallShield setup
 * holds its cab in the setup (an SFX read), libclamav hands it over again as a layer of its own and
 * in a rebuilt PE, and the same bytes give the same members (docs/second-reader.md). */
#define READER_CABS 8
struct cab_seen {
	unsigned char key[READER_DIGEST_LEN];
	unsigned members;		/* regular members listed and extracted */
	uint64_t bytes;			/* bytes extracted */
};

struct reader {
	struct reader_limits lim;
	struct cab_seen cabs[READER_CABS];
	unsigned ncabs;
	struct keyset scanned;		/* digests of the layers libclamav scanned */
	struct keyset scanned_names;	/* keys of (name, size) of those layers */
	struct keyset queued;		/* digests of members pending or handed out */
	struct keyset sizes;		/* sizes of the members pending (reader_size_key) */
	struct layer_seen *seen;
	size_t nseen, capseen;
	struct pending *head, *tail;
	struct hole *holes;
	const unsigned char *upload;	/* the upload's bytes for the second pass */
	size_t upload_len;
	uint64_t extracted;		/* bytes extracted (and layers copied) so far */
	unsigned listed, layers_read, rescanned;
	unsigned long layer_digests;	/* reader_layer_digests */
	const char *limit;		/* the first limit met */
	const char *encrypted;		/* Heuristics.Encrypted.* of the first encrypted member */
	int unscanned;			/* a member no reader could extract */
};

static EVP_MD *reader_sha256;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;

static void
reader_global_init(void)
{
	reader_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int
reader_digest(const void *data, size_t len, unsigned char *out)
{
	if (reader_sha256 == NULL)
		return -1;
	return EVP_Digest(len > 0 ? data : "", len, out, NULL, reader_sha256, NULL) == 1 ? 0 : -1;
}

/* SHA-256 of a layer's bytes (or of a cabinet in them) into out, counted; kept in ld (the layer's
 * own, when not NULL) for whoever needs it next. */
static int
reader_layer_digest(struct reader *r, const void *data, size_t len, struct reader_digest *ld,
    unsigned char *out)
{
	if (reader_digest(data, len, out) != 0)
		return -1;
	r->layer_digests++;
	if (ld != NULL) {
		memcpy(ld->d, out, READER_DIGEST_LEN);
		ld->have = 1;
	}
	return 0;
}

/* The key of a (name, size) pair: its digest, so one set type serves both. */
static int
reader_name_key(const char *name, uint64_t size, unsigned char *out)
{
	size_t n = strnlen(name, 4096);
	unsigned char buf[4096 + 8];

	memcpy(buf, name, n);
	for (int i = 0; i < 8; i++)
		buf[n + (size_t)i] = (unsigned char)(size >> (8 * i));
	return reader_digest(buf, n + 8, out);
}

/* A member's size as a key: a layer of another size cannot hold its content, and is not hashed. */
static void
reader_size_key(uint64_t size, unsigned char *key)
{
	memset(key, 0, READER_DIGEST_LEN);
	memcpy(key, &size, sizeof(size));
	key[READER_DIGEST_LEN - 1] = 1;		/* never the empty key */
}

struct reader *
reader_new(const struct reader_limits *lim)
{
	struct reader *r;

	pthread_once(&reader_once, reader_global_init);
	if (reader_sha256 == NULL || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->lim = *lim;
	return r;
}

void
reader_member_free(struct reader_member *m)
{
	if (m == NULL)
		return;
	free(m->data);
	free(m->path);
	free(m);
}

static void
reader_source_release(struct source *src)
{
	if (src == NULL || --src->refs > 0)
		return;
	free(src->bytes);
	free(src->path);
	free(src);
}

static void
reader_pending_free(struct pending *p)
{
	reader_source_release(p->src);
	free(p->name);
	free(p);
}

void
reader_free(struct reader *r)
{
	struct pending *p;
	struct hole *h;

	if (r == NULL)
		return;
	while ((p = r->head) != NULL) {
		r->head = p->next;
		reader_pending_free(p);
	}
	while ((h = r->holes) != NULL) {
		r->holes = h->next;
		free(h);
	}
	keyset_free(&r->scanned);
	keyset_free(&r->scanned_names);
	keyset_free(&r->queued);
	keyset_free(&r->sizes);
	free(r->seen);
	free(r);
}

void
reader_set_upload(struct reader *r, const void *data, size_t len)
{
	r->upload = data;
	r->upload_len = data != NULL ? len : 0;
}

void
reader_set_limit(struct reader *r, const char *limit)
{
	if (r->limit == NULL)
		r->limit = limit;
}

/* What one read of one layer is doing: the layer, and the member being extracted. */
struct view {
	const unsigned char *buf;	/* the layer's bytes (alive during reader_layer) */
	size_t size;
	int view, raw;
	int fmt;			/* view 2: the format of the hit (enum reader_fmt) */
	size_t offset;			/* view 2: buf is the layer's from here */
	uint64_t consumed;		/* bytes of buf the read used (view 2: hits inside are skipped) */
	const char *path;		/* the layer's names */
	size_t path_len;
	unsigned path_depth, depth;	/* of the layer */
	struct source *src;		/* made at the first member to keep */
	unsigned members;		/* regular members listed */
	int complete;			/* read to the end, every member extracted */
	EVP_MD_CTX *md;			/* the member being extracted */
	struct reader_digest *ld;	/* the layer's digest, when taken (views 0 and 1) */
	uint64_t len;
	unsigned char *out;		/* reader_fetch: where its bytes go; NULL: digest only */
	size_t cap;
};

static const char *
reader_encrypted_name(struct archive *a)
{
	switch (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) {
	case ARCHIVE_FORMAT_ZIP: return "Heuristics.Encrypted.Zip";
	case ARCHIVE_FORMAT_RAR: return "Heuristics.Encrypted.RAR";
	case ARCHIVE_FORMAT_RAR_V5: return "Heuristics.Encrypted.RAR";
	case ARCHIVE_FORMAT_7ZIP: return "Heuristics.Encrypted.7Zip";
	default: return "Heuristics.Encrypted.Archive";
	}
}

/* Room for n more bytes of the member being fetched. */
static int
reader_grow(struct view *v, size_t n)
{
	size_t cap = v->cap == 0 ? READER_BLOCK : v->cap;
	unsigned char *p;

	if (v->len + n <= v->cap)
		return 0;
	while (cap < v->len + n)
		cap *= 2;
	if ((p = realloc(v->out, cap)) == NULL)
		return -1;
	v->out = p;
	v->cap = cap;
	return 0;
}

/* One more block of a member: the limits are checked before it counts. 0, or -1 with r->limit
 * (or out of memory). */
static int
reader_block(struct reader *r, struct view *v, const void *blk, size_t n, int keep)
{
	if (v->len + n > r->lim.max_file_size) {
		reader_set_limit(r, READER_LIMIT_FILE_SIZE);
		return -1;
	}
	if (r->extracted + n > r->lim.budget) {
		reader_set_limit(r, READER_LIMIT_SCAN_SIZE);
		return -1;
	}
	if (r->lim.deadline > 0 && util_now() > r->lim.deadline) {
		reader_set_limit(r, READER_LIMIT_TIME);
		return -1;
	}
	if (keep) {
		if (reader_grow(v, n) != 0)
			return -1;
		memcpy(v->out + v->len, blk, n);
	} else if (EVP_DigestUpdate(v->md, blk, n) != 1) {
		return -1;
	}
	v->len += n;
	r->extracted += n;
	return 0;
}

static int
reader_hole(struct reader *r, const char *name, int64_t size)
{
	struct hole *h = calloc(1, sizeof(*h));

	if (h == NULL || reader_name_key(name, size < 0 ? 0 : (uint64_t)size, h->key) != 0) {
		free(h);
		return -1;
	}
	h->next = r->holes;
	r->holes = h;
	return 0;
}

int
reader_add_hole(struct reader *r, const char *name, uint64_t size)
{
	return reader_hole(r, name, size > INT64_MAX ? INT64_MAX : (int64_t)size);
}

/* Reads the member's data (into v->out with keep, else only its digest). 0 extracted; 1 not
 * extracted (a hole, or a bad checksum: r->unscanned); -1 stopped at a limit or out of memory. */
static int
reader_extract(struct reader *r, struct archive *a, struct view *v, const char *name, int64_t size,
    int keep)
{
	unsigned char blk[READER_BLOCK];
	la_ssize_t n;

	v->len = 0;
	if (!keep && v->md == NULL && (v->md = EVP_MD_CTX_new()) == NULL)
		return -1;	/* made at the view's first member: most layers have none */
	if (!keep && EVP_DigestInit_ex(v->md, reader_sha256, NULL) != 1)
		return -1;
	while ((n = archive_read_data(a, blk, sizeof(blk))) > 0)
		if (reader_block(r, v, blk, (size_t)n, keep) != 0)
			return -1;
	if (n == 0)
		return 0;
	log_debug("second reader: member %.200s not extracted: %s", name, archive_error_string(a));
	if (v->view == READER_VIEW_SEARCH)
		return 1;	/* a hit nobody extracts is no hole (docs/second-reader.md) */
	if (n == ARCHIVE_WARN) {	/* read to the end, and the checksum does not match */
		r->unscanned = 1;
		return 1;
	}
	return reader_hole(r, name, size) == 0 ? 1 : -1;
}

/* The layer's bytes kept for reader_fetch: a copy, or (the upload) none. */
static int
reader_source(struct view *v)
{
	struct source *src;

	if (v->src != NULL)
		return 0;
	if ((src = calloc(1, sizeof(*src))) == NULL)
		return -1;
	*src = (struct source){ .size = v->size, .raw = v->raw, .fmt = v->fmt, .depth = v->depth,
	    .path_len = v->path_len, .path_depth = v->path_depth, .refs = 1 };
	if (v->depth == 0)
		src->offset = v->offset;	/* the upload is not copied: the hit's place in it */
	/* Not counted in the budget: a layer libclamav holds too, copied, while its members are
	 * pending (dropped when it closes, once libclamav has scanned them). */
	if (v->depth > 0) {
		if ((src->bytes = malloc(v->size > 0 ? v->size : 1)) == NULL)
			goto fail;
		memcpy(src->bytes, v->buf, v->size);
	}
	if (v->path_len > 0 && (src->path = malloc(v->path_len)) == NULL)
		goto fail;
	if (v->path_len > 0)
		memcpy(src->path, v->path, v->path_len);
	v->src = src;		/* the view's own reference, released when it ends */
	return 0;
fail:
	free(src->bytes);
	free(src);
	return -1;
}

/* Remembers the member just hashed, to be scanned unless libclamav scans that content. */
static int
reader_pend(struct reader *r, struct view *v, const char *name, unsigned ordinal)
{
	unsigned char digest[READER_DIGEST_LEN], key[READER_DIGEST_LEN];
	struct pending *p;

	if (EVP_DigestFinal_ex(v->md, digest, NULL) != 1)
		return -1;
	if (keyset_has(&r->queued, digest) || keyset_has(&r->scanned, digest))
		return 0;
	if (reader_source(v) != 0)
		return -1;
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->name = strndup(name, READER_NAME_MAX)) == NULL ||
	    keyset_add(&r->queued, digest) != 0) {
		if (p != NULL)
			free(p->name);
		free(p);
		return -1;
	}
	reader_size_key(v->len, key);
	if (keyset_add(&r->sizes, key) != 0) {
		free(p->name);
		free(p);
		return -1;
	}
	memcpy(p->digest, digest, READER_DIGEST_LEN);
	p->src = v->src;
	v->src->refs++;
	p->view = v->view;
	p->ordinal = ordinal;
	if (r->tail != NULL)
		r->tail->next = p;
	else
		r->head = p;
	r->tail = p;
	return 0;
}

/* One member listed by a view: limits, encryption, then its content. -1 stops the view. */
static int
reader_entry(struct reader *r, struct archive *a, struct archive_entry *e, struct view *v)
{
	const char *name = archive_entry_pathname(e);
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
	unsigned ordinal;
	int rc;

	if (archive_entry_filetype(e) != AE_IFREG)
		return 0;
	if (name == NULL)
		name = "";
	ordinal = v->members++;
	/* Both views list a zip's members: the scan's count is view 0's (and the search's, which
	 * reads what they did not), view 1 is held to it. */
	if ((v->view != 1 ? ++r->listed : v->members) > r->lim.max_files) {
		reader_set_limit(r, READER_LIMIT_FILES);
		return -1;
	}
	/* A hit of the search is held to the depth once a member came out of it (below). */
	if (v->view != READER_VIEW_SEARCH && v->depth + 1 > r->lim.max_recursion) {
		reader_set_limit(r, READER_LIMIT_RECURSION);
		return -1;
	}
	/* A hit of the search counts what it really extracts, not what a header says. */
	if (v->view != READER_VIEW_SEARCH && size > 0 && (uint64_t)size > r->lim.max_file_size) {
		reader_set_limit(r, READER_LIMIT_FILE_SIZE);
		return -1;
	}
	if (archive_entry_is_encrypted(e)) {
		if (v->view == READER_VIEW_SEARCH)
			return 0;	/* nobody extracts it: no finding (docs/second-reader.md) */
		/* ALERT_ENCRYPTED_ARCHIVE=no accepts it unscanned, as libclamav and clamd do. */
		if (r->lim.encrypted_alert && r->encrypted == NULL)
			r->encrypted = reader_encrypted_name(a);
		return 0;
	}
	if ((rc = reader_extract(r, a, v, name, size, 0)) < 0)
		return -1;
	if (rc > 0) {
		v->complete = 0;
		return 0;
	}
	if (v->depth + 1 > r->lim.max_recursion) {
		reader_set_limit(r, READER_LIMIT_RECURSION);
		return -1;
	}
	return reader_pend(r, v, name, ordinal);
}

/* Where the cabinet libarchive chose in view 0 is in the layer: at its start, or (an executable)
 * at the first "MSCF" and four zero bytes, where libarchive's SFX search stops; its cbCabinet
 * bytes, digested into c->key. 0, or -1: not a cabinet wholly in the layer. */
struct cab_region {
	size_t start, len;
	unsigned char key[READER_DIGEST_LEN];
};

static int
reader_cab_region(struct reader *r, const struct view *v, struct archive *a, struct cab_region *c)
{
	const unsigned char *hit = v->buf;

	if (v->view != 0 || v->raw || v->size < 36 || archive_filter_count(a) != 1 ||
	    (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_CAB)
		return -1;
	if (memcmp(v->buf, "MZ", 2) == 0 &&
	    (hit = memmem(v->buf, v->size, "MSCF\0\0\0\0", 8)) == NULL)
		return -1;
	c->start = (size_t)(hit - v->buf);
	if (v->size - c->start < 36 || memcmp(hit, "MSCF", 4) != 0)
		return -1;
	c->len = (size_t)hit[8] | (size_t)hit[9] << 8 | (size_t)hit[10] << 16 | (size_t)hit[11] << 24;
	if (c->len < 36 || c->len > v->size - c->start)
		return -1;
	if (c->start == 0 && c->len == v->size && v->ld != NULL && v->ld->have) {
		memcpy(c->key, v->ld->d, READER_DIGEST_LEN);	/* the cabinet is the layer */
		return 0;
	}
	return reader_layer_digest(r, hit, c->len, c->start == 0 && c->len == v->size ? v->ld : NULL,
	    c->key);
}

/* A cabinet read whole before: its members are known (pending or scanned), so it is not extracted
 * again; what that read counted (members, bytes) counts again: the limits answer as they would. */
static int
reader_cab_reuse(struct reader *r, struct view *v, const struct cab_seen *c)
{
	if (r->listed + 1 > r->lim.max_files) {
		reader_set_limit(r, READER_LIMIT_FILES);
		return -1;
	}
	if (v->depth + 1 > r->lim.max_recursion) {
		reader_set_limit(r, READER_LIMIT_RECURSION);
		return -1;
	}
	if (r->listed + c->members > r->lim.max_files) {
		reader_set_limit(r, READER_LIMIT_FILES);
		return -1;
	}
	if (r->extracted + c->bytes > r->lim.budget) {
		reader_set_limit(r, READER_LIMIT_SCAN_SIZE);
		return -1;
	}
	r->listed += c->members;
	r->extracted += c->bytes;
	v->members = c->members;
	return 0;
}

/* At a view's first member: a cabinet read whole before is reused (1), else its region is kept in
 * *c (cab set) for reader_cab_remember. -1: a limit. */
static int
reader_cab_check(struct reader *r, struct view *v, struct archive *a, struct cab_region *c,
    int *cab)
{
	*cab = reader_cab_region(r, v, a, c) == 0;
	for (unsigned i = 0; *cab && i < r->ncabs; i++)
		if (memcmp(r->cabs[i].key, c->key, READER_DIGEST_LEN) == 0)
			return reader_cab_reuse(r, v, &r->cabs[i]) != 0 ? -1 : 1;
	return 0;
}

/* A cabinet read to its end, every member extracted, no byte read past its cbCabinet. */
static void
reader_cab_remember(struct reader *r, const struct view *v, struct archive *a,
    const struct cab_region *c, uint64_t bytes)
{
	struct cab_seen *s;

	if (!v->complete || v->members == 0 || r->ncabs == READER_CABS ||
	    (uint64_t)archive_filter_bytes(a, -1) > c->start + c->len)
		return;
	s = &r->cabs[r->ncabs++];
	memcpy(s->key, c->key, READER_DIGEST_LEN);
	s->members = v->members;
	s->bytes = bytes;
}

/* Reads one view of a layer. -1: stopped at a limit (r->limit) or out of memory. */
static int
reader_view(struct reader *r, struct view *v)
{
	struct archive *a = reader_open(v->buf, v->size, v->view, v->raw, v->fmt);
	struct archive_entry *e;
	struct cab_region cab;
	uint64_t extracted = r->extracted;
	int rc, ret = 0, any = 0, is_cab = 0;

	if (a == NULL)
		return 0;	/* no format of ours: nothing to list */
	while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
		/* A stream hit no decompressor took: raw would hand out the bytes themselves. */
		if (v->view == READER_VIEW_SEARCH && v->fmt <= FMT_XZ && archive_filter_count(a) < 2)
			break;
		if (!any && (rc = reader_cab_check(r, v, a, &cab, &is_cab)) != 0) {
			any = 1;	/* a cabinet read before: what it held is known */
			ret = rc < 0 ? -1 : 0;
			rc = ARCHIVE_EOF;
			is_cab = 0;
			break;
		}
		any = 1;
		if (reader_entry(r, a, e, v) != 0) {
			ret = -1;
			break;
		}
	}
	if (ret == 0 && rc != ARCHIVE_EOF) {
		/* An error after the members listed: they count, the rest is unknown. */
		v->complete = 0;
		if (any)
			log_debug("second reader: %s: %s", archive_format_name(a), archive_error_string(a));
	}
	/* Some formats know only at the archive level (7z's encrypted header; a central directory
	 * flag the local header leaves out). */
	if (v->view != READER_VIEW_SEARCH && archive_read_has_encrypted_entries(a) > 0 &&
	    r->lim.encrypted_alert && r->encrypted == NULL)
		r->encrypted = reader_encrypted_name(a);
	if (any && v->view == 0)
		r->layers_read++;
	if (is_cab && ret == 0 && rc == ARCHIVE_EOF)
		reader_cab_remember(r, v, a, &cab, r->extracted - extracted);
	v->consumed = any ? (uint64_t)archive_filter_bytes(a, -1) : 0;
	EVP_MD_CTX_free(v->md);
	v->md = NULL;
	reader_source_release(v->src);
	v->src = NULL;
	archive_read_free(a);
	return ret;
}

/* libclamav's types of a compressed stream: the raw format reads what it decompresses to. Its
 * libarchive filter (reader_open), else 0. */
static int
reader_raw_type(const char *type)
{
	if (type == NULL)
		return 0;
	if (strcmp(type, "CL_TYPE_GZ") == 0)
		return ARCHIVE_FILTER_GZIP;
	if (strcmp(type, "CL_TYPE_BZ") == 0)
		return ARCHIVE_FILTER_BZIP2;
	return strcmp(type, "CL_TYPE_XZ") == 0 ? ARCHIVE_FILTER_XZ : 0;
}

static int
reader_remember(struct reader *r, unsigned members, int complete)
{
	struct layer_seen *l;

	if (r->nseen == r->capseen) {
		size_t cap = r->capseen == 0 ? 16 : r->capseen * 2;

		if ((l = realloc(r->seen, cap * sizeof(*l))) == NULL)
			return -1;
		r->seen = l;
		r->capseen = cap;
	}
	l = &r->seen[r->nseen++];
	l->members = members;
	l->complete = complete;
	return 0;
}

/* Remembers the layer as scanned by libclamav: its content's digest when a pending member has its
 * size (only then can a member be these bytes: the other layers are not hashed), and its name with
 * its size (for members no reader extracts). */
static int
reader_note_scanned(struct reader *r, const void *buf, size_t size, const char *name,
    struct reader_digest *ld)
{
	unsigned char key[READER_DIGEST_LEN], digest[READER_DIGEST_LEN];
	const char *base;

	reader_size_key(size, key);
	if (keyset_has(&r->sizes, key)) {
		if (ld != NULL && ld->have)
			memcpy(digest, ld->d, READER_DIGEST_LEN);
		else if (reader_layer_digest(r, buf, size, ld, digest) != 0)
			return -1;
		if (keyset_add(&r->scanned, digest) != 0)
			return -1;
	}
	if (name == NULL || name[0] == '\0')
		return 0;
	if (reader_name_key(name, size, key) != 0 || keyset_add(&r->scanned_names, key) != 0)
		return -1;
	base = strrchr(name, '/');
	if (base != NULL && base[1] != '\0' &&
	    (reader_name_key(base + 1, size, key) != 0 || keyset_add(&r->scanned_names, key) != 0))
		return -1;
	return 0;
}

/* The signature search (view 2): 7-Zip opens an archive wherever its signature is in a file (a
 * gzip behind junk, a cab behind HTML), libclamav and libarchive's bidders do not. */
#define READER_SEARCH_OPENS 256	/* hits one layer may have opened; past it: MaxFiles */

/* Reads the archive at one hit; *next: the first offset worth searching after it. */
static int
reader_search_hit(struct reader *r, const struct view *layer, size_t at, int fmt, size_t *next,
    unsigned *members)
{
	struct view v = *layer;

	v.view = READER_VIEW_SEARCH;
	v.ld = NULL;			/* the digest is the whole layer's, not the hit's */
	v.fmt = fmt;
	v.raw = 0;
	v.offset = at;
	v.buf = layer->buf + at;
	v.size = layer->size - at;
	v.members = 0;
	v.complete = 1;
	if (reader_view(r, &v) != 0)
		return -1;
	*members += v.members;
	/* What an archive read holds is not searched again (a zip's later local headers). */
	if (v.members > 0 && v.consumed > 0 && v.consumed <= v.size)
		*next = at + (size_t)v.consumed;
	return 0;
}

/* Each validated signature past the layer's start, read by libarchive as that format alone. A hit
 * that does not parse and a member that fails to extract are ignored: nobody extracts them, so
 * the search never adds a finding but a limit (docs/second-reader.md). One pass over the layer
 * (reader_sig_next): bytes that start no signature cost a fraction of a cycle. -1: a limit, or no
 * memory. */
static int
reader_search(struct reader *r, const struct view *layer, unsigned *members)
{
	size_t next[READER_NSIGS] = { 0 };
	const unsigned char *p = layer->buf;
	unsigned opens = 0;
	int fmt;

	for (size_t at = 1; (at = reader_sig_next(p, layer->size, at)) < layer->size; at++) {
		for (size_t i = 0; i < READER_NSIGS; i++) {
			if (at < next[i] ||
			    (fmt = reader_sig_match(p + at, layer->size - at, i)) == FMT_NONE)
				continue;
			if (++opens > READER_SEARCH_OPENS) {
				log_warnx("second reader: more than %d archive signatures in one layer",
				    READER_SEARCH_OPENS);
				reader_set_limit(r, READER_LIMIT_FILES);
				return -1;
			}
			if (r->lim.deadline > 0 && util_now() > r->lim.deadline) {
				reader_set_limit(r, READER_LIMIT_TIME);
				return -1;
			}
			if (reader_search_hit(r, layer, at, fmt, &next[i], members) != 0)
				return -1;
		}
	}
	return 0;
}

/* Whether the search reads the layer: not a compressed stream (read whole from its start), and
 * not an archive the other views read to its end (7-Zip, too, opens that one). */
static int
reader_search_wanted(const struct view *v0, const struct view *v1)
{
	if (v0->raw)
		return 0;
	return v0->members + v1->members == 0 || !v0->complete || !v1->complete;
}

int
reader_layer(struct reader *r, const void *buf, size_t size, const char *type, const char *name,
    unsigned depth, const char *path, size_t path_len, unsigned path_depth, unsigned *id_out)
{
	return reader_layer_hashed(r, buf, size, type, name, depth, path, path_len, path_depth, id_out,
	    NULL);
}

int
reader_layer_hashed(struct reader *r, const void *buf, size_t size, const char *type,
    const char *name, unsigned depth, const char *path, size_t path_len, unsigned path_depth,
    unsigned *id_out, struct reader_digest *ld)
{
	struct reader_digest own = { 0 };
	struct view v0 = { .buf = buf, .size = size, .raw = reader_raw_type(type), .path = path,
	    .path_len = path_len, .path_depth = path_depth, .depth = depth, .complete = 1,
	    .ld = ld != NULL ? ld : &own };
	struct view v1 = v0;

	v1.view = 1;
	v1.raw = 0;
	*id_out = 0;
	if (buf == NULL || r->limit != NULL)
		return 0;
	if (reader_note_scanned(r, buf, size, name, v0.ld) != 0)
		return -1;
	unsigned found = 0;

	if (reader_view(r, &v0) != 0 || (!v0.raw && reader_view(r, &v1) != 0) ||
	    (reader_search_wanted(&v0, &v1) && reader_search(r, &v0, &found) != 0))
		return r->limit != NULL ? 1 : -1;
	/* The search's members are scanned, but never make libclamav's count of a layer complete. */
	if (v0.members + v1.members == 0)
		return found > 0;
	if (reader_remember(r, v0.members > v1.members ? v0.members : v1.members,
	    v0.complete && v1.complete) != 0)
		return -1;
	*id_out = (unsigned)r->nseen;
	return 1;
}

int
reader_skip(struct reader *r, const void *buf, size_t size, const char *name,
    struct reader_digest *ld)
{
	if (r == NULL || buf == NULL || r->limit != NULL)
		return 0;
	return reader_note_scanned(r, buf, size, name, ld);
}

unsigned long
reader_layer_digests(const struct reader *r)
{
	return r->layer_digests;
}

int
reader_covered(const struct reader *r, unsigned id, unsigned want)
{
	const struct layer_seen *l;

	if (r == NULL || id == 0 || id > r->nseen)
		return 0;
	l = &r->seen[id - 1];
	return l->complete && l->members >= want && r->limit == NULL;
}

void
reader_prune(struct reader *r)
{
	struct pending **pp = &r->head, *p;

	r->tail = NULL;
	while ((p = *pp) != NULL) {
		if (keyset_has(&r->scanned, p->digest)) {
			*pp = p->next;
			reader_pending_free(p);
			continue;
		}
		r->tail = p;
		pp = &p->next;
	}
}

/* The member's path: its layer's names, then its own. */
static int
reader_member_path(struct reader_member *m, const struct pending *p)
{
	size_t k = strlen(p->name);

	if ((m->path = malloc(p->src->path_len + k + 1)) == NULL)
		return -1;
	if (p->src->path_len > 0)
		memcpy(m->path, p->src->path, p->src->path_len);
	memcpy(m->path + p->src->path_len, p->name, k + 1);
	m->path_len = p->src->path_len + k + 1;
	m->path_depth = p->src->path_depth + 1;
	return 0;
}

/* Extracts the pending member again from its layer's bytes, into m. 0, or -1 (a limit, or it
 * could not be found again: r->unscanned). */
static int
reader_fetch(struct reader *r, const struct pending *p, struct reader_member *m)
{
	const unsigned char *buf = p->src->bytes != NULL ? p->src->bytes : r->upload;
	size_t size = p->src->bytes != NULL ? p->src->size : r->upload_len;
	struct view v = { .view = p->view, .depth = p->src->depth };
	struct archive *a;
	struct archive_entry *e;
	unsigned idx = 0;
	int ret = -1;

	if (buf != NULL && p->src->bytes == NULL && p->src->offset <= size) {
		buf += p->src->offset;		/* a hit of the search in the upload */
		size -= p->src->offset;
	}
	a = buf != NULL ? reader_open(buf, size, p->view, p->src->raw, p->src->fmt) : NULL;
	while (a != NULL && archive_read_next_header(a, &e) >= ARCHIVE_WARN) {
		if (archive_entry_filetype(e) != AE_IFREG || idx++ != p->ordinal)
			continue;
		if (reader_extract(r, a, &v, p->name, -1, 1) == 0) {
			m->data = v.out;
			m->len = (size_t)v.len;
			v.out = NULL;
			ret = 0;
		}
		break;
	}
	free(v.out);
	if (a != NULL)
		archive_read_free(a);
	if (ret != 0 && r->limit == NULL && p->view != READER_VIEW_SEARCH)
		r->unscanned = 1;	/* listed and hashed before, not found again */
	return ret;
}

struct reader_member *
reader_next(struct reader *r)
{
	struct reader_member *m;
	struct pending *p;

	reader_prune(r);
	while ((p = r->head) != NULL) {
		r->head = p->next;
		if (r->head == NULL)
			r->tail = NULL;
		if ((m = calloc(1, sizeof(*m))) == NULL || reader_member_path(m, p) != 0 ||
		    reader_fetch(r, p, m) != 0) {
			reader_member_free(m);
			reader_pending_free(p);
			if (r->limit != NULL || r->unscanned)
				return NULL;
			continue;
		}
		memcpy(m->digest, p->digest, READER_DIGEST_LEN);
		m->depth = p->src->depth + 1;
		reader_pending_free(p);
		r->rescanned++;
		return m;
	}
	return NULL;
}

const char *
reader_finding(const struct reader *r, int *is_limit)
{
	*is_limit = r->limit != NULL;
	if (r->limit != NULL)
		return r->limit;
	if (r->encrypted != NULL)
		return r->encrypted;
	if (r->unscanned)
		return READER_UNSCANNED;
	for (const struct hole *h = r->holes; h != NULL; h = h->next)
		if (!keyset_has(&r->scanned_names, h->key))
			return READER_UNSCANNED;
	return NULL;
}

void
reader_counts(const struct reader *r, unsigned *layers_read, unsigned *members,
    unsigned *rescanned)
{
	*layers_read = r->layers_read;
	*members = r->listed;
	*rescanned = r->rescanned;
}
