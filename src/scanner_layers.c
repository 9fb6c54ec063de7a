/* scanner_layers.c -- layer tracking: libclamav's callbacks that follow one scan's layers, feed the
 * second reader, count what each container announced against what was scanned below it, and stop
 * the scan at our limits (scanner_inspect). */
#include "scanner_priv.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reader.h"
#include "util.h"

static void scanner_layer_open(struct scan_state *st, uint32_t level, const char *type,
    const char *name, size_t size, int embedded);

/* LAYER_ATTRIBUTES_EMBEDDED of ClamAV 1.5 and of our patch 0113 (Debian's 1.4.6 lacks it). */
#define SCANNER_LAYER_EMBEDDED 0x8

/* The second reader's hook: the layer's bytes go to libarchive (reader.c), which remembers them as
 * scanned and extracts what they hold. A detailed scan names the layer for the members' paths. */
static void
scanner_read_layer(struct scan_state *st, const char *buf, size_t size, const char *type,
    const char *name, uint32_t level, struct reader_digest *ld)
{
	char *path = NULL;
	size_t path_len = 0;
	unsigned id;
	int rc;

	if (st->rd == NULL)
		return;
	if (st->d != NULL && st->layers != NULL && level < st->max_depth &&
	    (path = scanner_path(st, level + 1, &path_len)) == NULL) {
		st->reader_oom = 1;
		return;
	}
	rc = reader_layer_hashed(st->rd, buf, size, type, name, st->base + level, path, path_len,
	    st->prefix_depth + level, &id, ld);
	free(path);
	if (rc < 0)
		st->reader_oom = 1;
	if (st->layers != NULL && level < st->max_depth && st->depth == level + 1)
		st->layers[level].read = id;
}

/* The guard against libclamav's silent truncations, seen from the one place every layer passes:
 * - a member within a margin of maxfilesize may have been cut to it: unzip, xar and the InstallShield
 *   reader stop writing at the last block that fits and raise nothing;
 * - a scan whose layers add up to within a margin of maxscansize may have had a member shrunk to what
 *   was left, or skipped: the CAB/CHM reader (libmspack glue) does both and answers CLEAN;
 * - more unpacked than MAX_EXPANSION times the upload: a decompression bomb, stopped here rather than
 *   after it has filled the temporary folder;
 * - a member extracted onto a file system that is now full was most likely cut short by ENOSPC, which
 *   most readers log at debug level only (invisible to us) before scanning what they got.
 * Answering CL_VIRUS stops the scan at once; scanner_verdict turns it into the limit or the error.
 * A member the member cache remembers clean (scanner_members.c) is answered CL_BREAK: libclamav
 * skips it and all it holds, and the second reader takes it as scanned without reading it. */
cl_error_t
scanner_inspect(int fd, const char *type, const char **ancestors, size_t parent_size,
    const char *name, size_t size, const char *buf, uint32_t level, uint32_t attributes,
    void *context)
{
	struct scan_state *st = context;
	const struct scanner *s;
	struct reader_digest ld = { 0 };	/* the layer's SHA-256, taken once for both */
	int hit;

	(void)ancestors;
	(void)parent_size;
	if (st == NULL)
		return CL_CLEAN;
	s = st->s;
	/* A file found at an offset of its parent (patch 0113) is a view of bytes already counted,
	 * and not one of the members the parent announced. */
	scanner_layer_open(st, level, type, name, size, (attributes & SCANNER_LAYER_EMBEDDED) != 0);
	scanner_kinds_layer(st, type, name, buf, size, level, attributes);
	if (attributes & SCANNER_LAYER_EMBEDDED)
		return CL_CLEAN;	/* its parent passed the limits and the second reader */
	st->total += size;
	hit = scanner_members_inspect(st, type, buf, size, level, attributes, &ld);
	if (!hit)
		scanner_read_layer(st, buf, size, type, name, level, &ld);
	else if (reader_skip(st->rd, buf, size, name, &ld) != 0)
		st->reader_oom = 1;
	/* HTML larger than CL_ENGINE_MAX_HTMLNORMALIZE (engine_limits: MAX_SCAN_SIZE) is not normalised:
	 * Debian's libclamav skips it whole, ours raw-scans it (docs/libclamav-quirks.md). A cut scan,
	 * marked but not stopped at the top level, so what the raw scan finds is still the answer. */
	if (type != NULL && strcmp(type, "CL_TYPE_HTML") == 0 && size > s->scan_limit)
		st->limit = SCANNER_LIMIT_SCAN_SIZE;
	if (level == 0 && st->base == 0) {
		st->type0 = type;
		return CL_CLEAN;
	}
	/* A member the second reader handed back starts a scan of its own at level 0: the depth of
	 * its archive counts. */
	if (st->base + level > s->o.max_recursion)
		st->limit = "Heuristics.Limits.Exceeded.MaxRecursion";
	else if ((uint64_t)size + SCANNER_LIMIT_MARGIN >= s->file_limit)
		st->limit = SCANNER_LIMIT_FILE_SIZE;
	else if (st->total + SCANNER_LIMIT_MARGIN >= s->scan_limit || st->total > st->budget)
		st->limit = SCANNER_LIMIT_SCAN_SIZE;
	else if (st->deadline > 0 && util_now() > st->deadline)
		st->limit = SCANNER_LIMIT_TIME;	/* the request's share of MAX_SCAN_TIME is spent */
	else if (st->member_hits > 0 && st->files > s->o.max_files)
		st->limit = SCANNER_LIMIT_FILES;	/* libclamav did not count what hits skipped */
	if (fd >= 0 && scanner_fs_low(fd))
		st->tmp_full = 1;
	if (st->limit != NULL || st->tmp_full)
		return CL_VIRUS;
	return hit ? CL_BREAK : CL_CLEAN;
}

/* The bytes a member must have to be scanned: libclamav skips files of 5 bytes or less. */
#define SCANNER_MEMBER_MIN 5
#define SCANNER_NAME_MAX 255	/* bytes of a plausible member name */

static const char *
scanner_unscanned_name(const struct scan_layer *l)
{
	return l->rar ? SCANNER_UNSCANNED_RAR : SCANNER_UNSCANNED_MEMBER;
}

/* A layer is complete when every member its format announced was scanned as a layer below it. The
 * cases this catches, all answered CLEAN by libclamav 1.4.6: zip members with a compression method it
 * lacks (LZMA, zstd, xz, PPMd) or Zip64 sizes ("stream out of file"), members whose data lies
 * beyond the end of the file, and RAR archives, which Debian's build cannot unpack at all. */
void
scanner_layer_names_free(struct scan_layer *l)
{
	for (unsigned i = 0; i < l->nnames; i++)
		free(l->names[i].name);
	for (unsigned i = 0; i < l->nothers; i++)
		free(l->others[i].name);
	free(l->names);
	free(l->others);
	l->names = l->others = NULL;
	l->nnames = l->capnames = l->nothers = l->capothers = 0;
}

static unsigned
scanner_layer_want(const struct scan_layer *l)
{
	unsigned want = l->zip ? (l->announced + 1) / 2 : l->announced;

	for (unsigned i = 0; i < l->nnames; i++)
		want += l->names[i].size > SCANNER_MEMBER_MIN;
	return want;
}

static int
scanner_layer_complete(const struct scan_layer *l)
{
	unsigned want = scanner_layer_want(l);

	/* A RAR, CAB or CHM whose reader announced nothing was not opened at all (no unrar; a CHM
	 * layout libmspack rejects, as chmcmd's): nothing in it was scanned. Not an embedded one
	 * (patch 0113): its announcements are not counted (scanner_meta), the second reader reads
	 * it with its parent. */
	if (!l->embedded && (l->rar || l->mspack) && l->announced == 0 && l->children == 0)
		return 0;
	return l->children >= want;
}


static void
scanner_layer_open(struct scan_state *st, uint32_t level, const char *type, const char *name,
    size_t size, int embedded)
{
	struct scan_layer *l;
	unsigned index = 0;
	int cut = 0;

	if (st->layers == NULL || level >= st->max_depth)
		return;
	/* A level libclamav skipped (none known in 1.4.6) must not lend a match path the name of a
	 * layer closed before: its fmap, which owns the name, is gone. */
	for (unsigned i = st->depth; i < level; i++)
		st->layers[i].name = NULL;
	st->depth = level + 1;
	if (level > 0 && embedded) {
		index = st->layers[level - 1].children;
	} else if (level > 0) {
		struct scan_layer *parent = &st->layers[level - 1];

		index = parent->children++;
		/* A CAB or CHM member of fewer bytes than announced was cut short on the way (libmspack's
		 * glue shrinks it to what is left of the scan budget, or a write hit ENOSPC) and scanned
		 * in part. Only these readers announce each member right before unpacking it; zip's
		 * announcements come in another order (its zip-bomb pass reads ahead). */
		if (parent->pending > size && st->unscanned == NULL) {
			log_debug("scan: a %s member of %zu bytes was announced with %lu", type ? type : "?",
			    size, parent->pending);
			st->unscanned = SCANNER_UNSCANNED_CUT;
			cut = 1;
		}
		parent->pending = 0;
	}
	l = &st->layers[level];
	scanner_layer_names_free(l);
	*l = (struct scan_layer){
		.size = size,
		.type = type,
		.name = name,
		.index = index,
		.zip = type != NULL && (strncmp(type, "CL_TYPE_ZIP", 11) == 0 ||
		    strncmp(type, "CL_TYPE_OOXML", 13) == 0),
		.rar = type != NULL && strncmp(type, "CL_TYPE_RAR", 11) == 0,	/* RARSFX too */
		.mspack = type != NULL && (strcmp(type, "CL_TYPE_MSCAB") == 0 ||
		    strcmp(type, "CL_TYPE_MSCHM") == 0),
		.embedded = embedded,
	};
	if (cut)
		scanner_place(st, SCANNER_UNSCANNED_CUT, st->depth, 1);
}

/* A layer libclamav announced more members in than it scanned below it, all of them from an
 * archive it found at an offset of the layer: a member it scanned elsewhere in the scan under the
 * same name and size is no hole (an archive found again at a raw offset of its container, where its bytes are cut or out of order: InstallShield's MSI holds its
 * cab as an OLE2 stream, scanned, and libclamav's CAB-SFX search finds the same cab in the MSI's
 * raw sectors and fails to unpack it). Which of them is which is known only when the scan ends:
 * every named member goes to the second reader as a hole, resolved there (reader_finding). 0:
 * deferred; -1: decided now (a member without a name, a RAR, no reader, out of memory). */
static int
scanner_defer_holes(struct scan_state *st, const struct scan_layer *l)
{
	if (st->rd == NULL || l->unnamed || l->rar || (l->zip && l->announced > 0) ||
	    l->nnames + l->nothers == 0)
		return -1;
	for (unsigned i = 0; i < l->nnames; i++)
		if (l->names[i].size > SCANNER_MEMBER_MIN &&
		    reader_add_hole(st->rd, l->names[i].name, l->names[i].size) != 0)
			return -1;
	for (unsigned i = 0; i < l->nothers; i++)
		if (reader_add_hole(st->rd, l->others[i].name, l->others[i].size) != 0)
			return -1;
	log_debug("scan: a %s layer announced %u members and %u were scanned below it: checked by "
	    "name and size when the scan ends", l->type ? l->type : "?", scanner_layer_want(l),
	    l->children);
	return 0;
}

cl_error_t
scanner_layer_done(int fd, int result, const char *virname, void *context)
{
	struct scan_state *st = context;
	struct scan_layer *l;

	(void)fd;
	(void)virname;
	if (st == NULL || st->layers == NULL || st->depth == 0)
		return CL_CLEAN;
	/* A match libclamav reports only at the end of the scan (a "potentially unwanted" one: every
	 * Heuristics.* alert) is placed at the innermost layer that closes with it as its last match. */
	if (st->d != NULL && result == CL_VIRUS && virname != NULL)
		scanner_place(st, virname, st->depth, 1);
	l = &st->layers[st->depth - 1];
	/* libclamav's count is the second line of defence: a layer the second reader read to its
	 * end, extracting as many members, is complete (its members are scanned after, as layers
	 * of their own, when libclamav did not scan them). A member cache hit announced nothing:
	 * what it holds was scanned in full by the scan that remembered it. */
	if (!scanner_members_done(st, l, result) && result != CL_VIRUS && st->unscanned == NULL &&
	    !scanner_layer_complete(l) &&
	    !reader_covered(st->rd, l->read, scanner_layer_want(l)) && scanner_defer_holes(st, l) != 0) {
		st->unscanned = scanner_unscanned_name(l);
		scanner_place(st, st->unscanned, st->depth, 1);
	}
	if (l->read && st->rd != NULL)
		reader_prune(st->rd);
	scanner_layer_names_free(l);
	st->depth--;
	return CL_CLEAN;
}

/* libclamav also looks for zip headers inside files of any type (a zip appended to an executable, or
 * just the bytes "PK\3\4" in a binary) and announces what it finds there. Such an embedded entry
 * counts only when it looks like a member someone made: a compressed size that fits in the layer and
 * a printable name; so does an entry of an archive found at an offset (an embedded layer, patch 0113).
 * Entries of the layer's own format always count. */
static int
scanner_member_plausible(const struct scan_layer *l, const char *container_type,
    unsigned long csize, const char *name)
{
	size_t n;

	if (!l->embedded && l->type != NULL && container_type != NULL &&
	    strcmp(l->type, container_type) == 0)
		return 1;
	if (csize > l->size || name == NULL || (n = strlen(name)) == 0 || n > SCANNER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x20 || name[i] > 0x7e)
			return 0;
	return 1;
}

/* FNV-1a: which zip member an announcement is about. */
static uint64_t
scanner_name_hash(const char *name)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return h;
}

/* A zip member announced: counted once by name, with the largest size any header gave it. */
static int
scanner_announce(struct scan_layer *l, const char *name, unsigned long size)
{
	uint64_t h = scanner_name_hash(name);
	struct scan_announce *a;

	for (unsigned i = 0; i < l->nnames; i++)
		if (l->names[i].hash == h) {
			if (size > l->names[i].size)
				l->names[i].size = size;
			return 0;
		}
	if (l->nnames == l->capnames) {
		unsigned cap = l->capnames == 0 ? 8 : l->capnames * 2;

		if ((a = realloc(l->names, cap * sizeof(*a))) == NULL)
			return -1;
		l->names = a;
		l->capnames = cap;
	}
	l->names[l->nnames] = (struct scan_announce){ .hash = h, .size = size,
	    .name = strndup(name, SCANNER_NAME_MAX) };
	if (l->names[l->nnames++].name == NULL)
		l->unnamed = 1;
	return 0;
}

/* A member of another format counted in announced, remembered by name when it has one. */
static void
scanner_announce_other(struct scan_layer *l, const char *name, unsigned long size)
{
	struct scan_announce *a;

	if (l->unnamed || name == NULL || name[0] == '\0') {
		l->unnamed = 1;
		return;
	}
	if (l->nothers == l->capothers) {
		unsigned cap = l->capothers == 0 ? 8 : l->capothers * 2;

		if ((a = realloc(l->others, cap * sizeof(*a))) == NULL) {
			l->unnamed = 1;
			return;
		}
		l->others = a;
		l->capothers = cap;
	}
	l->others[l->nothers] = (struct scan_announce){ .size = size,
	    .name = strndup(name, SCANNER_NAME_MAX) };
	if (l->others[l->nothers++].name == NULL)
		l->unnamed = 1;
}

cl_error_t
scanner_meta(const char *container_type, unsigned long fsize_container, const char *filename,
    unsigned long fsize_real, int is_encrypted, unsigned int filepos, void *context)
{
	struct scan_state *st = context;
	struct scan_layer *l;

	(void)filepos;
	if (st == NULL || st->layers == NULL || st->depth == 0)
		return CL_CLEAN;
	l = &st->layers[st->depth - 1];
	/* The upload policy cannot judge what it cannot see: a member someone made, encrypted. */
	if (is_encrypted && !l->embedded &&
	    scanner_member_plausible(l, container_type, fsize_container, filename))
		scanner_kinds_encrypted(st);
	/* ALERT_ENCRYPTED_ARCHIVE=no accepts encrypted members unscanned, as clamd does: they are not
	 * counted as announced, so they do not make the layer incomplete (Unscanned.ArchiveMember). */
	if (is_encrypted && !(st->s->scan_opts.heuristic & CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE))
		return CL_CLEAN;
	/* An archive found at an offset (patch 0113) is read by the second reader with its parent;
	 * libclamav's single-entry view of it is not counted (InstallShield, zip headers in binaries). */
	if (l->embedded)
		return CL_CLEAN;
	if (!scanner_member_plausible(l, container_type, fsize_container, filename))
		return CL_CLEAN;
	/* Only an archive libclamav found at an offset of the layer (its SFX search: another type
	 * than the layer's) may be a second sighting of a member scanned elsewhere
	 * (scanner_defer_holes); the layer's own members are decided here, as before. */
	if (l->type == NULL || container_type == NULL || strcmp(l->type, container_type) == 0)
		l->unnamed = 1;
	/* Distinct zip members, not announcements: a data descriptor's local header says 0 bytes. */
	if (l->zip && filename != NULL && filename[0] != '\0') {
		if (scanner_announce(l, filename, fsize_real) != 0)
			l->announced += 2;	/* out of memory: counted as before, roughly */
		return CL_CLEAN;
	}
	if (fsize_real <= SCANNER_MEMBER_MIN)
		return CL_CLEAN;
	l->announced++;
	scanner_announce_other(l, filename, fsize_real);
	if (l->mspack)
		l->pending = fsize_real;
	return CL_CLEAN;
}

