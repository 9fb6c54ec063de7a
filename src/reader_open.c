/* reader_open.c -- libarchive opened on a layer's bytes for one view of the second reader: only the
 * formats and filters that view reads and that may bid on the bytes (reader_bidders), so that most
 * layers, which no bidder may take, are not opened at all (docs/second-reader.md). */
#include "reader_open.h"

#include <archive.h>

#include "reader_sig.h"

/* Which formats and filters a view offers, of those that may bid (bids: reader_bidders). Formats
 * that bid on any text (mtree, raw, empty) are left out; a layer libclamav typed as a compressed
 * stream gets raw alone. view 1: zip by its local headers alone (the streaming reader), view 0:
 * everything else, zip by its central directory. The formats whose bidder searches an executable
 * for an embedded (SFX) archive, slowly (5-7 ms for a 1 MiB PE each), are offered only when their
 * signature is in it (reader_signatures): an archive whose signature is absent cannot be found by
 * them. A bidder left out would have bid nothing: the same format wins, and a layer none can take
 * is not opened (most layers: each open costs allocations for every format offered). */
void
reader_support(struct archive *a, int view, int raw, unsigned bids)
{
	if (bids & READER_BID_FILTER) {
		archive_read_support_filter_gzip(a);
		archive_read_support_filter_bzip2(a);
		archive_read_support_filter_xz(a);
		archive_read_support_filter_lzma(a);
		archive_read_support_filter_zstd(a);
		archive_read_support_filter_compress(a);
		archive_read_support_filter_lzip(a);
		archive_read_support_filter_lz4(a);
	}
	if (view == 1) {
		archive_read_support_format_zip_streamable(a);
		return;
	}
	/* A compressed stream: what it decompresses to, whole, is its one member; libclamav's child
	 * is the same bytes (then the reader reads that child as a layer of its own, once) or is not
	 * (a second stream libclamav stopped before: scanned in the second pass). */
	if (raw) {
		archive_read_support_format_raw(a);
		return;
	}
	if (bids & READER_BID_ZIP)
		archive_read_support_format_zip_seekable(a);
	if (bids & READER_BID_TAR) {
		archive_read_support_format_tar(a);
		archive_read_support_format_gnutar(a);
	}
	if (bids & READER_BID_CPIO)
		archive_read_support_format_cpio(a);
	if (bids & READER_BID_ISO)
		archive_read_support_format_iso9660(a);
	if (bids & READER_BID_XAR)
		archive_read_support_format_xar(a);
	if (bids & READER_BID_AR)
		archive_read_support_format_ar(a);
	if (bids & READER_HAS_7Z)
		archive_read_support_format_7zip(a);
	if (bids & READER_HAS_CAB)
		archive_read_support_format_cab(a);
	if (bids & READER_HAS_LHA)
		archive_read_support_format_lha(a);
	if (bids & READER_HAS_RAR) {
		archive_read_support_format_rar(a);
		archive_read_support_format_rar5(a);
	}
}

/* A compressed stream is read one filter deep: its one member is what that filter decompresses to,
 * whole. Left to bid, libarchive stacks a filter for every stream inside (up to 25), decompressing
 * the first block of each as it opens: at every layer of a nested stream (a bzip2 nested 250 deep
 * held a scan thread 15 s). The stream inside is libclamav's next layer, which the reader reads
 * then; a stream libclamav does not open is a member not scanned, scanned as a layer of its own.
 * NULL when the filter takes no stream there (the caller lets the bidders decide). */
static struct archive *
reader_open_stream(const void *buf, size_t size, int filter)
{
	struct archive *a = archive_read_new();

	if (a == NULL)
		return NULL;
	if (archive_read_append_filter(a, filter) != ARCHIVE_OK ||
	    archive_read_support_format_raw(a) != ARCHIVE_OK ||
	    archive_read_open_memory(a, buf, size) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* A hit of the search reads one format (a compressed stream: reader_open_stream). */
static void
reader_support_fmt(struct archive *a, int fmt)
{
	switch (fmt) {
	case FMT_7ZIP: archive_read_support_format_7zip(a); return;
	case FMT_CAB: archive_read_support_format_cab(a); return;
	case FMT_RAR:
		archive_read_support_format_rar(a);
		archive_read_support_format_rar5(a);
		return;
	default: archive_read_support_format_zip_streamable(a); return;
	}
}

static const int fmt_filter[] = { [FMT_GZIP] = ARCHIVE_FILTER_GZIP, [FMT_BZIP2] = ARCHIVE_FILTER_BZIP2,
    [FMT_XZ] = ARCHIVE_FILTER_XZ };

struct archive *
reader_open(const void *buf, size_t size, int view, int raw, int fmt)
{
	unsigned bids = READER_BID_ALL;
	struct archive *a;

	if (view == READER_VIEW_SEARCH && fmt >= FMT_GZIP && fmt <= FMT_XZ)
		return reader_open_stream(buf, size, fmt_filter[fmt]);
	if (view == 0 && raw != 0 && (a = reader_open_stream(buf, size, raw)) != NULL)
		return a;
	if (view != READER_VIEW_SEARCH && !raw &&
	    (bids = reader_bidders(buf, size, view == 1 ? READER_BID_STREAM : READER_BID_ALL)) == 0)
		return NULL;	/* no bidder would take it */
	if ((a = archive_read_new()) == NULL)
		return NULL;
	if (view == READER_VIEW_SEARCH)
		reader_support_fmt(a, fmt);
	else
		reader_support(a, view, raw, bids);
	if (archive_read_open_memory(a, buf, size) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}
