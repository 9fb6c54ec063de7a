/* scanner_kinds.c -- the kinds of layers a scan met, for the upload policy (filepolicy.c): each
 * file layer's type with the shallowest depth and path it was met at, whether an OLE2 layer holds
 * VBA macros, and the containers with encrypted members; copied with a clean cache entry. */
#include "scanner_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCANNER_KIND_EMBEDDED 0x8	/* LAYER_ATTRIBUTES_EMBEDDED (ClamAV 1.5, our patch 0113) */

/* A VBA project: the OLE2 storage "_VBA_PROJECT_CUR" (Excel) or "Macros/VBA/_VBA_PROJECT" (Word,
 * PowerPoint) are both named in the directory in UTF-16LE; libclamav's own macro reader scans them
 * without a layer of their own, so the directory is looked at here. */
static int
scanner_has_vba(const char *buf, size_t size)
{
	static const char want[] = "_VBA_PROJECT";
	const size_t n = sizeof(want) - 1;

	if (buf == NULL || size < 2 * n)
		return 0;
	for (size_t i = 0; i + 2 * n <= size; i++) {
		size_t k = 0;

		while (k < n && (buf[i + 2 * k] & ~0x20) == (want[k] & ~0x20) && buf[i + 2 * k + 1] == 0)
			k++;
		if (k == n)
			return 1;
	}
	return 0;
}

/* The member an OOXML file keeps its VBA project in (word/vbaProject.bin, xl/vbaProject.bin). */
static int
scanner_vba_name(const char *name)
{
	const char *base;

	if (name == NULL)
		return 0;
	base = strrchr(name, '/');
	base = base != NULL ? base + 1 : name;
	return strcasecmp(base, "vbaProject.bin") == 0;
}

/* A script: libclamav types shell, Python, JavaScript, VBScript or PowerShell files as text
 * (CL_TYPE_SCRIPT is only its name for the macros it extracts), so a text layer that starts with
 * "#!" or whose name has a script's extension counts as CL_TYPE_SCRIPT too. */
int
scanner_script_name(const char *name, size_t len)
{
	static const char *const exts[] = { "sh", "bash", "zsh", "ksh", "csh", "py", "pyw", "pl",
	    "rb", "php", "js", "jse", "mjs", "vbs", "vbe", "wsf", "wsh", "hta", "ps1", "psm1", "bat",
	    "cmd", "lua", "tcl", "applescript", "scpt" };
	size_t dot = len;

	for (size_t i = 0; name != NULL && i < len; i++)
		if (name[i] == '.')
			dot = i;
		else if (name[i] == '/' || name[i] == '\\')
			dot = len;
	if (dot == len)
		return 0;
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strlen(exts[i]) == len - dot - 1 && strncasecmp(name + dot + 1, exts[i], len - dot - 1) == 0)
			return 1;
	return 0;
}

static int
scanner_is_script(const char *type, const char *name, const char *buf, size_t size)
{
	if (type == NULL || strncmp(type, "CL_TYPE_TEXT_", 13) != 0)
		return 0;
	if (buf != NULL && size >= 2 && buf[0] == '#' && buf[1] == '!')
		return 1;
	return name != NULL && scanner_script_name(name, strlen(name));
}

/* libclamav looks for zip headers at every offset of a file, and finds an OOXML document's or a
 * zip's own again: that embedded "member" is the parent's bytes, not a file of its own. */
static int
scanner_own_zip(const struct scan_state *st, const char *type, uint32_t level, uint32_t attributes)
{
	const char *parent;

	if (!(attributes & SCANNER_KIND_EMBEDDED) || level == 0 || st->layers == NULL ||
	    level > st->max_depth || type == NULL || strcmp(type, "CL_TYPE_ZIP") != 0)
		return 0;
	parent = st->layers[level - 1].type;
	return parent != NULL && (strcmp(parent, "CL_TYPE_ZIP") == 0 ||
	    strncmp(parent, "CL_TYPE_OOXML", 13) == 0);
}

/* A 7z whose header is encrypted (7z a -mhe): libclamav cannot list it and says nothing when
 * ALERT_ENCRYPTED_ARCHIVE is off. Its next header (offset and size in the start header) is then an
 * encoded header whose coders name AES-256 (method 06 F1 07 01). */
static int
scanner_7z_sealed(const char *buf, size_t size)
{
	static const char aes[] = { 0x06, (char)0xf1, 0x07, 0x01 };
	uint64_t off, len;

	if (buf == NULL || size < 32 || memcmp(buf, "7z\xbc\xaf\x27\x1c", 6) != 0)
		return 0;
	memcpy(&off, buf + 12, 8);	/* little-endian, as the hosts we build for */
	memcpy(&len, buf + 20, 8);
	if (off > size - 32 || len > size - 32 - off || len < 1 || buf[32 + off] != 0x17)
		return 0;
	return memmem(buf + 32 + off, (size_t)len, aes, sizeof(aes)) != NULL;
}

static struct scan_kind *
scanner_kind_find(struct scan_kinds *k, const char *type, int macros, int encrypted)
{
	for (unsigned i = 0; i < k->n; i++)
		if (k->v[i].macros == macros && k->v[i].encrypted == encrypted &&
		    strcmp(k->v[i].type, type) == 0)
			return &k->v[i];
	return NULL;
}

/* Counts a kind met at depth, the open layers' names 1..level its path. */
static void
scanner_kind_add(struct scan_state *st, const char *type, unsigned level, int macros, int encrypted)
{
	struct scan_kinds *k = st->kinds;
	unsigned depth = st->base + level;
	struct scan_kind *e;
	char *names = NULL;
	size_t len = 0;

	if (type == NULL)
		type = "CL_TYPE_ANY";
	e = scanner_kind_find(k, type, macros, encrypted);
	if (e != NULL && e->depth <= depth)
		return;
	if (st->layers != NULL && level < st->max_depth)
		names = scanner_path(st, level + 1, &len);
	if (e == NULL) {
		if (k->n == SCANNER_KINDS_MAX ||
		    (k->n % 8 == 0 && (e = realloc(k->v, (k->n + 8) * sizeof(*e))) == NULL)) {
			k->overflow = 1;
			free(names);
			return;
		}
		if (k->n % 8 == 0)
			k->v = e;
		e = &k->v[k->n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->type, sizeof(e->type), "%s", type);
		e->macros = (unsigned char)macros;
		e->encrypted = (unsigned char)encrypted;
	}
	free(e->names);
	e->depth = depth;
	e->names = names;
	e->names_len = names != NULL ? len : 0;
}

void
scanner_kinds_layer(struct scan_state *st, const char *type, const char *name, const char *buf,
    size_t size, uint32_t level, uint32_t attributes)
{
	int macros;

	if (st->kinds == NULL || (attributes & LAYER_ATTRIBUTES_NORMALIZED) ||
	    scanner_own_zip(st, type, level, attributes))
		return;
	macros = type != NULL && strcmp(type, "CL_TYPE_MSOLE2") == 0 &&
	    (scanner_vba_name(name) || scanner_has_vba(buf, size));
	scanner_kind_add(st, type, level, 0, 0);
	if (macros)
		scanner_kind_add(st, type, level, 1, 0);
	if (scanner_is_script(type, name, buf, size))
		scanner_kind_add(st, "CL_TYPE_SCRIPT", level, 0, 0);
	if (type != NULL && strcmp(type, "CL_TYPE_7Z") == 0 && scanner_7z_sealed(buf, size))
		scanner_kind_add(st, type, level, 0, 1);
}

void
scanner_kinds_encrypted(struct scan_state *st)
{
	if (st->kinds == NULL || st->layers == NULL || st->depth == 0)
		return;
	scanner_kind_add(st, st->layers[st->depth - 1].type, st->depth - 1, 0, 1);
}

void
scanner_kinds_free(struct scan_kinds *k)
{
	if (k == NULL)
		return;
	for (unsigned i = 0; i < k->n; i++)
		free(k->v[i].names);
	free(k->v);
	memset(k, 0, sizeof(*k));
}

/* A deep copy of from into to (emptied first); -1 when out of memory or when from has more than
 * max kinds (to is then empty). Paths go along only while their bytes together stay within
 * max_names (past it a kind keeps no path: the upload's name alone). */
int
scanner_kinds_copy(struct scan_kinds *to, const struct scan_kinds *from, unsigned max,
    size_t max_names)
{
	size_t names = 0;

	scanner_kinds_free(to);
	to->overflow = from->overflow;
	if (from->n == 0)
		return 0;
	if (from->n > max)
		return -1;
	if ((to->v = calloc(from->n, sizeof(*to->v))) == NULL)
		return -1;
	for (unsigned i = 0; i < from->n; i++) {
		to->v[i] = from->v[i];
		to->v[i].names = NULL;
		to->n = i + 1;
		if ((names += from->v[i].names_len) > max_names) {
			to->v[i].names_len = 0;
			continue;
		}
		if (from->v[i].names_len > 0 &&
		    (to->v[i].names = malloc(from->v[i].names_len)) == NULL) {
			scanner_kinds_free(to);
			return -1;
		}
		if (from->v[i].names_len > 0)
			memcpy(to->v[i].names, from->v[i].names, from->v[i].names_len);
	}
	return 0;
}
