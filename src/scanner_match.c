/* scanner_match.c -- /v3 match placement: each match of a detailed scan with the path of layers it
 * was found in, from libclamav's virus-found callback and the layer callbacks. */
#include "scanner_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index of a match of sig in st->d (provisional or not, as asked; -1: any), or -1. */
static int
scanner_match_find(const struct scan_state *st, const char *sig, int provisional)
{
	const struct scan_detail *d = st->d;

	for (unsigned i = 0; i < d->nmatches; i++)
		if ((provisional == -1 || st->provisional[i] == provisional) &&
		    strcmp(d->matches[i].signature, sig) == 0)
			return (int)i;
	return -1;
}

/* The names of the open layers 1..depth-1 (the upload, layer 0, is the caller's to name). */
char *
scanner_path(const struct scan_state *st, unsigned depth, size_t *len)
{
	char num[16], *names, *o;
	const char *n;
	size_t total = 0, k;

	for (unsigned i = 1; i < depth; i++)
		total += SCANNER_NAME_KEEP + 1;
	if ((names = malloc(st->prefix_len + total + 1)) == NULL)
		return NULL;
	o = names;
	/* A member the second reader handed back: its path first. */
	if (st->prefix_len > 0) {
		memcpy(o, st->prefix, st->prefix_len);
		o += st->prefix_len;
	}
	for (unsigned i = 1; i < depth; i++) {
		n = st->layers[i].name;
		if (n == NULL) {
			snprintf(num, sizeof(num), "#%u", st->layers[i].index);
			n = num;
		}
		k = strnlen(n, SCANNER_NAME_KEEP);
		memcpy(o, n, k);
		o[k] = '\0';
		o += k + 1;
	}
	*len = (size_t)(o - names);
	return names;
}

/* Room for one more match: the array grows by doubling (most scans report one). */
static int
scanner_matches_grow(struct scan_detail *d)
{
	unsigned cap = d->nmatches == 0 ? 2 : d->nmatches * 2;
	struct scan_match *m;

	if (d->nmatches != 0 && (d->nmatches & (d->nmatches - 1)) != 0)
		return 0;	/* not a power of two: there is room */
	if (d->nmatches == 1)
		return 0;
	if (cap > SCANNER_MATCHES_MAX)
		cap = SCANNER_MATCHES_MAX;
	if ((m = realloc(d->matches, cap * sizeof(*m))) == NULL)
		return -1;
	d->matches = m;
	return 0;
}

/* Records sig as found in the layer open at depth (0: the upload), unless the same match is
 * already there. A provisional place is kept only if libclamav reports sig later, or it is the
 * verdict (scanner_detail_finish). */
void
scanner_place(struct scan_state *st, const char *sig, unsigned depth, int provisional)
{
	struct scan_detail *d = st->d;
	struct scan_match *m;
	size_t len = 0;
	char *names;

	if (d == NULL || st->layers == NULL || (provisional && scanner_match_find(st, sig, -1) >= 0))
		return;
	if ((names = scanner_path(st, depth, &len)) == NULL) {
		d->dropped++;
		return;
	}
	for (unsigned i = 0; i < d->nmatches; i++) {
		m = &d->matches[i];
		if (!st->provisional[i] && m->depth + 1 == depth && m->names_len == len &&
		    memcmp(m->names, names, len) == 0 && strcmp(m->signature, sig) == 0) {
			free(names);
			return;
		}
	}
	if (d->nmatches == SCANNER_MATCHES_MAX || scanner_matches_grow(d) != 0) {
		free(names);
		d->dropped++;
		return;
	}
	m = &d->matches[d->nmatches++];
	snprintf(m->signature, sizeof(m->signature), "%s", sig);
	m->names = names;
	m->names_len = len;
	m->depth = st->prefix_depth + (depth > 0 ? depth - 1 : 0);
	st->provisional[d->nmatches - 1] = provisional != 0;
}

/* libclamav's virus-found callback, on the scanning thread: once per match in all-match mode, once a
 * scan otherwise. A strong match comes while the layer it was found in is open; "potentially
 * unwanted" ones (Heuristics.*) come after the whole scan (libclamav 1.4: evidence.c keeps them to
 * the end, with fd -1), so they take the place scanner_layer_done saw them at. Our own inspection
 * block comes as "Detected.By.Callback.Inspection": it is the limit scanner_inspect met. */
void
scanner_found(int fd, const char *virname, void *context)
{
	struct scan_state *st = context;
	int i;

	(void)fd;
	if (st == NULL || st->d == NULL || virname == NULL)
		return;
	if (strcmp(virname, "Detected.By.Callback.Inspection") == 0) {
		/* Every later layer is blocked too: the limit is placed where it was first met. */
		if (st->limit == NULL || scanner_match_find(st, st->limit, 0) >= 0)
			return;
		virname = st->limit;
	}
	if (st->depth > 0) {
		scanner_place(st, virname, st->depth, 0);
		return;
	}
	if ((i = scanner_match_find(st, virname, 1)) >= 0)
		st->provisional[i] = 0;
	else if (scanner_match_find(st, virname, 0) < 0)
		scanner_place(st, virname, 0, 0);
}

/* 1 when a match says the file was not scanned completely: a limit (libclamav's or ours) or a
 * member that could not be unpacked. In all-match mode such a match may come with a signature
 * match, which is then the verdict's reason. */
static int
scanner_cut_name(const char *sig)
{
	return strncmp(sig, "Heuristics.Limits.Exceeded.", 27) == 0 ||
	    strncmp(sig, "Heuristics.Unscanned.", 21) == 0;
}

/* After the verdict: a clean or failed scan reports no match; a malware verdict always has its
 * signature among the matches (our limits and unscanned members are verdicts libclamav never
 * reported); places never confirmed are dropped. */
void
scanner_detail_finish(struct scan_state *st, const struct scan_result *r)
{
	struct scan_detail *d = st->d;
	unsigned o = 0;
	int i;

	if (d == NULL)
		return;
	snprintf(d->type, sizeof(d->type), "%s", st->type0 != NULL ? st->type0 : "");
	if (r->verdict == SCAN_MALWARE && scanner_match_find(st, r->reason, 0) < 0) {
		if ((i = scanner_match_find(st, r->reason, 1)) >= 0)
			st->provisional[i] = 0;
		else
			scanner_place(st, r->reason, 0, 0);
	}
	d->cut = r->limit_exceeded;
	for (unsigned i2 = 0; i2 < d->nmatches; i2++) {
		if (r->verdict == SCAN_MALWARE && !st->provisional[i2]) {
			d->cut |= scanner_cut_name(d->matches[i2].signature);
			d->matches[o++] = d->matches[i2];
		} else
			free(d->matches[i2].names);
	}
	d->nmatches = o;
}

void
scanner_detail_free(struct scan_detail *d)
{
	if (d == NULL)
		return;
	for (unsigned i = 0; i < d->nmatches; i++)
		free(d->matches[i].names);
	free(d->matches);
	d->matches = NULL;
	d->nmatches = 0;
}


void
scanner_detail_skipped(struct scan_detail *d, const char *limit)
{
	struct scan_match *m;

	if (d->nmatches < SCANNER_MATCHES_MAX && scanner_matches_grow(d) == 0 &&
	    (d->matches[d->nmatches].names = calloc(1, 1)) != NULL) {
		/* The limit, found at the upload itself, as a scan cut there would list it. */
		m = &d->matches[d->nmatches++];
		*m = (struct scan_match){ .names = m->names };
		snprintf(m->signature, sizeof(m->signature), "%s", limit);
	}
	d->cut = 1;
}
