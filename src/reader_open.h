/* reader_open.h -- libarchive opened on a layer's bytes for one view of the second reader (reader.c),
 * offering the formats and filters that view reads and that may bid on those bytes. */
#ifndef CLAMREST_READER_OPEN_H
#define CLAMREST_READER_OPEN_H

#include <stddef.h>

#define READER_VIEW_SEARCH 2	/* the view that reads from each archive signature in a layer */

struct archive;

/* An archive reading buf for view 0 (raw: libclamav typed it a compressed stream: the stream's
 * ARCHIVE_FILTER_*, read one filter deep), 1 or READER_VIEW_SEARCH (fmt: the hit's enum
 * reader_fmt); NULL when no bidder may take the bytes, or
 * libarchive takes none. The caller frees it with archive_read_free. */
struct archive *reader_open(const void *buf, size_t size, int view, int raw, int fmt);
/* Offers a the formats and filters view 0 (raw: the raw format alone) or 1 reads, of those bids
 * (READER_BID_*) allows: READER_BID_ALL offers them all (the fuzz target's check of the bidders). */
void reader_support(struct archive *a, int view, int raw, unsigned bids);

#endif
