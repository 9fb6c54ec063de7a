/* reader_sig.h -- archive signatures in a layer's bytes, for the second reader (reader.c): which
 * formats an executable's bytes may hold (their libarchive bidders search slowly), and the hits of
 * the signature search (docs/second-reader.md). Pure functions over bytes; no allocation. */
#ifndef CLAMREST_READER_SIG_H
#define CLAMREST_READER_SIG_H

#include <stddef.h>

/* Formats whose libarchive bidder searches an executable for an embedded (SFX) archive. */
#define READER_HAS_7Z	1
#define READER_HAS_CAB	2
#define READER_HAS_LHA	4
#define READER_HAS_RAR	8
#define READER_SFX_WINDOW (1024 * 1024)	/* bytes; past libarchive's SFX search windows */

/* What the signature search (view 2) looks for: the formats 7-Zip finds at any offset of a file. */
enum reader_fmt { FMT_NONE, FMT_GZIP, FMT_BZIP2, FMT_XZ, FMT_7ZIP, FMT_CAB, FMT_RAR, FMT_ZIP };

#define READER_NSIGS 7		/* signatures of the search, numbered 0..READER_NSIGS-1 */

/* READER_HAS_* of the formats whose signature is in the layer's first READER_SFX_WINDOW bytes when
 * it is an executable (MZ, ELF); all of them for any other layer (their bidders read its start). */
unsigned reader_signatures(const void *buf, size_t size);
/* The first offset at or after at where a search signature may start (its first two bytes), among
 * the offsets o with o + 4 <= size; size when there is none. */
size_t reader_sig_next(const unsigned char *p, size_t size, size_t at);
/* The format of signature i when the n bytes at p start it with a header its reader can take
 * (chance hits cost a comparison, not an open), else FMT_NONE. */
int reader_sig_match(const unsigned char *p, size_t n, size_t i);

#endif
