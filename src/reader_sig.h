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

/* Which of libarchive's bidders can take a layer (reader_bidders): a bidder that cannot bid is not
 * offered, and a layer no bidder can take is not opened. The READER_HAS_* bits are the four above. */
#define READER_BID_FILTER	0x10	/* a decompression filter's magic: every format may follow */
#define READER_BID_ZIPSTREAM	0x20	/* "PK" at the start: zip by its local headers (view 1) */
#define READER_BID_ZIP		0x40	/* an end of central directory in the tail: zip_seekable */
#define READER_BID_TAR		0x80	/* a first block that is all zeros or has a valid checksum */
#define READER_BID_CPIO		0x100
#define READER_BID_ISO		0x200
#define READER_BID_XAR		0x400
#define READER_BID_AR		0x800
#define READER_BID_ALL		0xfffU
#define READER_BID_STREAM	(READER_BID_FILTER | READER_BID_ZIPSTREAM)	/* view 1's */
#define READER_EOCD_WINDOW	(64 * 1024 + 64)	/* tail searched; libarchive searches 16 KiB */

/* What the signature search (view 2) looks for: the formats 7-Zip finds at any offset of a file. */
enum reader_fmt { FMT_NONE, FMT_GZIP, FMT_BZIP2, FMT_XZ, FMT_7ZIP, FMT_CAB, FMT_RAR, FMT_ZIP };

#define READER_NSIGS 7		/* signatures of the search, numbered 0..READER_NSIGS-1 */

/* READER_HAS_* of the formats whose signature is in the layer's first READER_SFX_WINDOW bytes when
 * it is an executable (MZ, ELF); all of them for any other layer (their bidders read its start). */
unsigned reader_signatures(const void *buf, size_t size);
/* READER_BID_* of the bidders (of those in want) that may bid on the layer: a superset of what
 * libarchive 3.6/3.7's bidders accept (each reads the start, zip_seekable its last 16 KiB, the SFX
 * searches an executable's first MiB); with READER_BID_FILTER, all of them. */
unsigned reader_bidders(const void *buf, size_t size, unsigned want);
/* The first offset at or after at where a search signature may start (its first two bytes), among
 * the offsets o with o + 4 <= size; size when there is none. */
size_t reader_sig_next(const unsigned char *p, size_t size, size_t at);
/* The format of signature i when the n bytes at p start it with a header its reader can take
 * (chance hits cost a comparison, not an open), else FMT_NONE. */
int reader_sig_match(const unsigned char *p, size_t n, size_t i);

#endif
