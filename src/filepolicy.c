/* filepolicy.c -- the upload policy's rules and their matching: type names and groups, allow and
 * deny lists, the depth they reach, macros, encrypted members, file name extensions. */
#include "filepolicy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scanner.h"

/* libclamav 1.4's type names (filetypes.c's ftmap), without CL_TYPE_. */
static const char *const fp_types[] = {
	"TEXT_ASCII", "TEXT_UTF8", "TEXT_UTF16LE", "TEXT_UTF16BE", "BINARY_DATA", "IGNORED", "ANY",
	"MSEXE", "ELF", "MACHO", "MACHO_UNIBIN", "POSIX_TAR", "OLD_TAR", "CPIO_OLD", "CPIO_ODC",
	"CPIO_NEWC", "CPIO_CRC", "GZ", "ZIP", "BZ", "RAR", "ARJ", "MSSZDD", "MSOLE2", "MSCAB",
	"MSCHM", "SIS", "SCRENC", "GRAPHICS", "GIF", "PNG", "JPEG", "TIFF", "RIFF", "BINHEX", "TNEF",
	"CRYPTFF", "PDF", "UUENCODED", "HTML_UTF16", "SCRIPT", "RTF", "HTML", "MAIL", "SFX", "ZIPSFX",
	"RARSFX", "CABSFX", "ARJSFX", "NULSFT", "AUTOIT", "ISHIELD_MSI", "7Z", "7ZSFX", "SWF",
	"ISO9660", "JAVA", "DMG", "MBR", "GPT", "APM", "XAR", "PART_ANY", "PART_HFSPLUS", "XZ",
	"OOXML_WORD", "OOXML_PPT", "OOXML_XL", "INTERNAL", "XDP", "XML_WORD", "XML_XL", "HWP3",
	"XML_HWP", "HWPOLE2", "OOXML_HWP", "PS", "MHTML", "LNK", "EGG", "EGGSFX", "UDF", "ALZ",
	"ONENOTE", "PYTHON_COMPILED", "LHA_LZH", "AI_MODEL", "ZSTD",
};
#define FP_NTYPES (sizeof(fp_types) / sizeof(fp_types[0]))
#define FP_WORDS ((FP_NTYPES + 63) / 64)

struct fp_set {
	uint64_t bits[FP_WORDS];
	int macros;		/* office-macros */
};

struct filepolicy {
	struct fp_set allow, deny;
	int has_allow, has_deny;
	unsigned depth;
	int block_mismatch, report;
	char name[64];
};

/* The groups (docs/POLICY.md lists them). */
static const struct { const char *name, *types; } fp_groups[] = {
	{ "executables", "MSEXE ELF MACHO MACHO_UNIBIN JAVA PYTHON_COMPILED LNK SFX ZIPSFX RARSFX "
	  "CABSFX ARJSFX NULSFT 7ZSFX EGGSFX AUTOIT ISHIELD_MSI" },
	{ "scripts", "SCRIPT HTML HTML_UTF16 SCRENC MHTML AUTOIT" },
	{ "archives", "POSIX_TAR OLD_TAR CPIO_OLD CPIO_ODC CPIO_NEWC CPIO_CRC GZ ZIP BZ RAR ARJ "
	  "MSSZDD MSCAB MSCHM SIS 7Z XZ ISO9660 DMG XAR EGG UDF ALZ LHA_LZH ZSTD BINHEX UUENCODED "
	  "TNEF SFX ZIPSFX RARSFX CABSFX ARJSFX 7ZSFX EGGSFX NULSFT MBR GPT APM PART_ANY "
	  "PART_HFSPLUS" },
	{ "images", "GRAPHICS GIF PNG JPEG TIFF" },
	{ "documents", "PDF MSOLE2 OOXML_WORD OOXML_PPT OOXML_XL XML_WORD XML_XL RTF HWP3 XML_HWP "
	  "HWPOLE2 OOXML_HWP ONENOTE PS XDP TEXT_ASCII TEXT_UTF8 TEXT_UTF16LE TEXT_UTF16BE" },
	{ "text", "TEXT_ASCII TEXT_UTF8 TEXT_UTF16LE TEXT_UTF16BE" },
};

/* Types of the parts of a file rather than files of their own (a document's text streams, bytes
 * libclamav could not type): an allow list judges them only at the upload itself. */
static const char fp_generic[] = "TEXT_ASCII TEXT_UTF8 TEXT_UTF16LE TEXT_UTF16BE BINARY_DATA ANY "
    "IGNORED INTERNAL";

/* The types a file name extension may be (BLOCK_EXTENSION_MISMATCH); an extension not here is
 * not judged. */
static const struct { const char *exts, *types; } fp_exts[] = {
	{ "pdf", "PDF" },
	{ "exe dll sys scr cpl ocx com efi", "MSEXE" },
	{ "doc dot xls xlt ppt pot msg msi pub vsd", "MSOLE2" },
	{ "docx docm dotx dotm", "OOXML_WORD ZIP" },
	{ "xlsx xlsm xltx xltm", "OOXML_XL ZIP" },
	{ "pptx pptm potx potm ppsx", "OOXML_PPT ZIP" },
	{ "zip jar apk", "ZIP ZIPSFX" },
	{ "7z", "7Z" },
	{ "rar", "RAR" },
	{ "gz tgz", "GZ" },
	{ "bz2 tbz2", "BZ" },
	{ "xz txz", "XZ" },
	{ "tar", "POSIX_TAR OLD_TAR" },
	{ "cab", "MSCAB" },
	{ "png", "PNG GRAPHICS" },
	{ "jpg jpeg jpe jfif", "JPEG GRAPHICS" },
	{ "gif", "GIF GRAPHICS" },
	{ "tif tiff", "TIFF GRAPHICS" },
	{ "bmp ico", "GRAPHICS" },
	{ "rtf", "RTF" },
	{ "txt csv tsv md log", "TEXT_ASCII TEXT_UTF8 TEXT_UTF16LE TEXT_UTF16BE" },
	{ "json xml yaml yml", "TEXT_ASCII TEXT_UTF8 TEXT_UTF16LE TEXT_UTF16BE XML_WORD XML_XL XDP" },
	{ "html htm", "HTML HTML_UTF16 TEXT_ASCII TEXT_UTF8 TEXT_UTF16LE TEXT_UTF16BE" },
	{ "swf", "SWF" },
	{ "one", "ONENOTE" },
	{ "ps eps", "PS" },
	{ "hwp", "HWP3 HWPOLE2 XML_HWP OOXML_HWP" },
	{ "lnk", "LNK" },
	{ "class", "JAVA" },
	{ "pyc", "PYTHON_COMPILED" },
	{ "elf so", "ELF" },
};

/* The index of a type name without CL_TYPE_ (len bytes), -1 if none. */
static int
fp_index(const char *t, size_t len)
{
	for (size_t i = 0; i < FP_NTYPES; i++)
		if (strlen(fp_types[i]) == len && strncasecmp(fp_types[i], t, len) == 0)
			return (int)i;
	return -1;
}

static int
fp_index_full(const char *type)
{
	if (type == NULL || strncmp(type, "CL_TYPE_", 8) != 0)
		return -1;
	return fp_index(type + 8, strlen(type + 8));
}

int
filepolicy_known_type(const char *type)
{
	return fp_index_full(type) >= 0;
}

static int
fp_has(const struct fp_set *s, int i)
{
	return i >= 0 && (s->bits[i / 64] >> (i % 64)) & 1;
}

/* Adds each of a space-separated list of names without CL_TYPE_ (all known). */
static void
fp_add_list(struct fp_set *s, const char *list)
{
	const char *p = list;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");
		int i = fp_index(p, n);

		if (i >= 0)
			s->bits[i / 64] |= 1ULL << (i % 64);
		p += n;
		p += strspn(p, " ");
	}
}

/* 1 when the space-separated list holds the type (CL_TYPE_...). */
static int
fp_in_list(const char *list, const char *type)
{
	struct fp_set s = { 0 };

	fp_add_list(&s, list);
	return fp_has(&s, fp_index_full(type));
}

/* One element of a comma list: a group, office-macros, or a type with or without CL_TYPE_. */
static int
fp_add_word(struct fp_set *s, const char *w, size_t n)
{
	int i;

	if (n == 13 && strncasecmp(w, "office-macros", n) == 0) {
		s->macros = 1;
		return 0;
	}
	for (size_t g = 0; g < sizeof(fp_groups) / sizeof(fp_groups[0]); g++)
		if (strlen(fp_groups[g].name) == n && strncasecmp(fp_groups[g].name, w, n) == 0) {
			fp_add_list(s, fp_groups[g].types);
			return 0;
		}
	if (n > 8 && strncasecmp(w, "CL_TYPE_", 8) == 0) {
		w += 8;
		n -= 8;
	}
	if ((i = fp_index(w, n)) < 0)
		return -1;
	s->bits[i / 64] |= 1ULL << (i % 64);
	return 0;
}

/* A comma (or space) separated list into s; -1 with the bad word in err. *any: it named one. */
static int
fp_parse_list(struct fp_set *s, const char *list, int *any, const char *what, char *err,
    size_t errlen)
{
	const char *p = list != NULL ? list : "";
	static const char sep[] = ", \t\n";

	*any = 0;
	p += strspn(p, sep);
	while (*p != '\0') {
		size_t n = strcspn(p, sep);

		if (fp_add_word(s, p, n) != 0) {
			snprintf(err, errlen, "%s: '%.*s' is neither a libclamav type (CL_TYPE_PDF) nor a "
			    "group (executables, office-macros, scripts, archives, images, documents, "
			    "text)", what, (int)(n > 40 ? 40 : n), p);
			return -1;
		}
		*any = 1;
		p += n;
		p += strspn(p, sep);
	}
	return 0;
}

static int
fp_parse_depth(const char *d, unsigned *depth)
{
	char *end;
	unsigned long v;

	if (d == NULL || d[0] == '\0' || strcasecmp(d, "all") == 0) {
		*depth = FILEPOLICY_EVERY_DEPTH;
		return 0;
	}
	if (d[0] < '0' || d[0] > '9')
		return -1;
	v = strtoul(d, &end, 10);
	if (*end != '\0' || v > 1000)
		return -1;
	*depth = (unsigned)v;
	return 0;
}

struct filepolicy *
filepolicy_new(const struct filepolicy_spec *spec, const char *name, char *err, size_t errlen)
{
	struct filepolicy *p = calloc(1, sizeof(*p));
	const char *mode = spec->mode != NULL && spec->mode[0] != '\0' ? spec->mode : "enforce";

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->block_mismatch = spec->block_mismatch != 0;
	if (fp_parse_list(&p->allow, spec->allow, &p->has_allow, "ALLOW_TYPES", err, errlen) != 0 ||
	    fp_parse_list(&p->deny, spec->deny, &p->has_deny, "DENY_TYPES", err, errlen) != 0) {
		free(p);
		return NULL;
	}
	if (fp_parse_depth(spec->depth, &p->depth) != 0) {
		snprintf(err, errlen, "POLICY_DEPTH: '%.20s' is neither all nor a number from 0 to 1000",
		    spec->depth);
		free(p);
		return NULL;
	}
	if (strcmp(mode, "enforce") != 0 && strcmp(mode, "report") != 0) {
		snprintf(err, errlen, "POLICY_MODE: '%.20s' is neither enforce nor report", mode);
		free(p);
		return NULL;
	}
	p->report = strcmp(mode, "report") == 0;
	return p;
}

void
filepolicy_free(struct filepolicy *p)
{
	free(p);
}

int
filepolicy_active(const struct filepolicy *p)
{
	return p != NULL && (p->has_allow || p->has_deny || p->block_mismatch);
}

const char *
filepolicy_name(const struct filepolicy *p)
{
	return p != NULL ? p->name : "";
}

int
filepolicy_report_only(const struct filepolicy *p)
{
	return p != NULL && p->report;
}

/* The rule a kind of layer breaks, NULL if none; its reason in v. */
static const char *
fp_kind_rule(const struct filepolicy *p, const struct scan_kind *k, struct filepolicy_verdict *v)
{
	int i = fp_index_full(k->type);
	const char *t = strncmp(k->type, "CL_TYPE_", 8) == 0 ? k->type + 8 : k->type;

	if (k->encrypted) {
		/* A member the policy should judge that no reader could look into. */
		if (p->depth > k->depth && (p->has_allow || p->has_deny)) {
			snprintf(v->reason, sizeof(v->reason), "Policy.Encrypted.%s", t);
			return "encrypted";
		}
		return NULL;
	}
	if (k->macros) {
		if (!p->deny.macros)
			return NULL;
		snprintf(v->reason, sizeof(v->reason), "Policy.Macros.%s", t);
		return "macros";
	}
	snprintf(v->reason, sizeof(v->reason), "Policy.Type.%s", t);
	if (p->has_deny && fp_has(&p->deny, i))
		return "deny";
	if (p->has_allow && !fp_has(&p->allow, i) && (k->depth == 0 || !fp_in_list(fp_generic, k->type)))
		return "allow";
	return NULL;
}

/* The upload's file name extension against its detected type. */
static int
fp_mismatch(const struct scan_kinds *k, const char *name, size_t namelen,
    struct filepolicy_verdict *v)
{
	const char *type0 = NULL, *dot = NULL;
	char ext[16];
	size_t n;

	for (unsigned i = 0; i < k->n; i++)
		if (k->v[i].depth == 0 && !k->v[i].macros && !k->v[i].encrypted)
			type0 = k->v[i].type;
	for (size_t i = 0; i < namelen; i++)
		if (name[i] == '.')
			dot = name + i;
		else if (name[i] == '/' || name[i] == '\\')
			dot = NULL;
	if (type0 == NULL || dot == NULL || (n = namelen - (size_t)(dot + 1 - name)) == 0 ||
	    n >= sizeof(ext))
		return 0;
	for (size_t i = 0; i < n; i++)
		ext[i] = (char)((dot[1 + i] >= 'A' && dot[1 + i] <= 'Z') ? dot[1 + i] + 32 : dot[1 + i]);
	ext[n] = '\0';
	for (size_t e = 0; e < sizeof(fp_exts) / sizeof(fp_exts[0]); e++) {
		const char *l = fp_exts[e].exts;
		size_t w;

		for (; *l != '\0'; l += w, l += strspn(l, " "))
			if ((w = strcspn(l, " ")) == n && strncmp(l, ext, n) == 0)
				break;
		if (*l == '\0')
			continue;
		if (fp_in_list(fp_exts[e].types, type0))
			return 0;
		snprintf(v->reason, sizeof(v->reason), "Policy.ExtensionMismatch.%s.%s", ext,
		    type0 + (strncmp(type0, "CL_TYPE_", 8) == 0 ? 8 : 0));
		snprintf(v->type, sizeof(v->type), "%s", type0);
		return 1;
	}
	return 0;
}

/* The upload itself, text named as a script (a.sh, run.ps1): judged as CL_TYPE_SCRIPT too. */
static int
fp_script_upload(const struct filepolicy *p, const struct scan_kinds *k, const char *name,
    size_t namelen, struct filepolicy_verdict *v)
{
	struct scan_kind s = { .type = "CL_TYPE_SCRIPT" };
	const char *rule;

	if (name == NULL || !scanner_script_name(name, namelen))
		return 0;
	for (unsigned i = 0; i < k->n; i++)
		if (k->v[i].depth == 0 && strncmp(k->v[i].type, "CL_TYPE_TEXT_", 13) == 0 &&
		    (rule = fp_kind_rule(p, &s, v)) != NULL) {
			v->rule = rule;
			snprintf(v->type, sizeof(v->type), "%s", s.type);
			return 1;
		}
	return 0;
}

void
filepolicy_judge(const struct filepolicy *p, const struct scan_kinds *k, const char *name,
    size_t namelen, struct filepolicy_verdict *v)
{
	const struct scan_kind *best = NULL;
	struct filepolicy_verdict t;

	memset(v, 0, sizeof(*v));
	if (!filepolicy_active(p))
		return;
	if (p->block_mismatch && name != NULL && fp_mismatch(k, name, namelen, v)) {
		v->rule = "extension";
	} else if (((p->has_allow || p->has_deny) && k->overflow) || (p->has_allow && k->n == 0)) {
		/* More kinds than kept: not all judged, so not accepted; none seen (an empty file, a
		 * file not scanned): not of an allowed type. */
		v->rule = "unknown";
		snprintf(v->reason, sizeof(v->reason), "Policy.Unjudged");
	} else if (fp_script_upload(p, k, name, namelen, v)) {
		/* v holds the rule */
	} else {
		for (unsigned i = 0; i < k->n; i++) {
			const char *rule;

			if (k->v[i].depth > p->depth || (best != NULL && best->depth <= k->v[i].depth))
				continue;
			memset(&t, 0, sizeof(t));
			if ((rule = fp_kind_rule(p, &k->v[i], &t)) == NULL)
				continue;
			best = &k->v[i];
			*v = t;
			v->rule = rule;
			v->kind = best;
			snprintf(v->type, sizeof(v->type), "%s", best->type);
		}
	}
	v->report = p->report;
	v->matched = v->rule != NULL;
	v->blocked = v->matched && !p->report;
}
