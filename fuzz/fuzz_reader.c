/* fuzz_reader.c -- libFuzzer target for the second archive reader (reader.c): libarchive parses the
 * input as every layer of a scan, and the members it extracts are read again, as the scan's second
 * pass does. Untrusted bytes in our process: it must never crash, leak or overrun, and it must keep
 * its limits: no member longer than max_file_size, no more bytes than the budget in all. And the
 * property the reader's speed rests on: reader_bidders (reader_sig.c) names every format libarchive
 * itself takes the input for, with all of the reader's formats and filters offered at once. */
#include <archive.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reader.h"
#include "reader_open.h"
#include "reader_sig.h"

#define FUZZ_FILE_SIZE	300000		/* bytes of one member */
#define FUZZ_BUDGET	1000000		/* bytes extracted in all */
#define FUZZ_FILES	64
#define FUZZ_RECURSION	4
#define FUZZ_ROUNDS	32		/* members read again at most */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libarchive is a system library without coverage instrumentation: as in fuzz_scan.c, what the
 * reader answered (its finding, how many members, their sizes) is made a feature of its own. */
#define FUZZ_FEATURES	4096
#if defined(__clang__)
__attribute__((section("__libfuzzer_extra_counters")))
#endif
static uint8_t fuzz_features[FUZZ_FEATURES];

static uint32_t
fuzz_hash(uint32_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;	/* FNV-1a */
	return h;
}

/* libclamav's type of the input, chosen by its first byte: some layers get the raw format. */
static const char *
fuzz_type(const uint8_t *data, size_t size)
{
	static const char *types[] = { "CL_TYPE_ZIP", "CL_TYPE_GZ", "CL_TYPE_BZ", "CL_TYPE_XZ",
	    "CL_TYPE_HTML", "CL_TYPE_BINARY_DATA", "CL_TYPE_7Z", "CL_TYPE_TEXT_ASCII" };

	return types[size > 0 ? data[0] % 8 : 0];
}

static void
fuzz_check(const struct reader_member *m, uint64_t *total)
{
	*total += m->len;
	if (m->len > FUZZ_FILE_SIZE || *total > FUZZ_BUDGET || m->depth > FUZZ_RECURSION ||
	    m->path_len == 0 || m->path[m->path_len - 1] != '\0') {
		fprintf(stderr, "fuzz_reader: a member past the limits (%zu bytes, %llu in all, depth %u)\n",
		    m->len, (unsigned long long)*total, m->depth);
		abort();
	}
}

/* The READER_BID_* bit that had to be set for libarchive's format (view: 0 all formats, zip by its
 * central directory; 1 zip by its local headers), or READER_BID_FILTER when a filter took it. */
static unsigned
fuzz_needed_bid(struct archive *a, int view)
{
	if (archive_filter_count(a) > 1)
		return READER_BID_FILTER;
	switch (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) {
	case ARCHIVE_FORMAT_ZIP: return view == 1 ? READER_BID_ZIPSTREAM : READER_BID_ZIP;
	case ARCHIVE_FORMAT_TAR: return READER_BID_TAR;
	case ARCHIVE_FORMAT_CPIO: return READER_BID_CPIO;
	case ARCHIVE_FORMAT_ISO9660: return READER_BID_ISO;
	case ARCHIVE_FORMAT_XAR: return READER_BID_XAR;
	case ARCHIVE_FORMAT_AR: return READER_BID_AR;
	case ARCHIVE_FORMAT_7ZIP: return READER_HAS_7Z;
	case ARCHIVE_FORMAT_CAB: return READER_HAS_CAB;
	case ARCHIVE_FORMAT_LHA: return READER_HAS_LHA;
	case ARCHIVE_FORMAT_RAR: case ARCHIVE_FORMAT_RAR_V5: return READER_HAS_RAR;
	default: return 0;
	}
}

/* libarchive with every format and filter the reader offers in a view, none held back: if it takes
 * the input (a format won the bid), reader_bidders must have let that format (or a filter) bid. */
static void
fuzz_bidders(const uint8_t *data, size_t size, int view)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	unsigned want = view == 1 ? READER_BID_STREAM : READER_BID_ALL, need;

	if (a == NULL)
		return;
	reader_support(a, view, 0, READER_BID_ALL);	/* what the reader offers, none held back */
	if (archive_read_open_memory(a, data, size) == ARCHIVE_OK) {
		(void)archive_read_next_header(a, &e);
		need = fuzz_needed_bid(a, view);
		if (need != 0 && (reader_bidders(data, size, want) & need) == 0) {
			fprintf(stderr, "fuzz_reader: libarchive takes the input as %s (filters: %d, view %d) "
			    "but reader_bidders (0x%x) does not let it bid\n", archive_format_name(a),
			    archive_filter_count(a), view, reader_bidders(data, size, want));
			abort();
		}
	}
	archive_read_free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader_limits lim = { .max_file_size = FUZZ_FILE_SIZE, .budget = FUZZ_BUDGET,
	    .max_files = FUZZ_FILES, .max_recursion = FUZZ_RECURSION, .encrypted_alert = 1 };
	unsigned id;
	struct reader_member *m;
	struct reader *r;
	uint64_t total = 0;
	unsigned layers, members, rescanned;
	const char *found;
	int is_limit, rounds = 0;
	uint32_t h;

	log_set_level("ERROR");
	fuzz_bidders(data, size, 0);
	fuzz_bidders(data, size, 1);
	if ((r = reader_new(&lim)) == NULL)
		return 0;
	reader_layer(r, data, size, fuzz_type(data, size), "input", 0, "input", 6, 1, &id);
	reader_set_upload(r, data, size);
	while (rounds++ < FUZZ_ROUNDS && (m = reader_next(r)) != NULL) {
		fuzz_check(m, &total);
		fuzz_bidders(m->data, m->len, 0);	/* each member is a layer of its own */
		fuzz_bidders(m->data, m->len, 1);
		reader_layer(r, m->data, m->len, "CL_TYPE_BINARY_DATA", NULL, m->depth, m->path,
		    m->path_len, m->path_depth, &id);
		reader_member_free(m);
	}
	found = reader_finding(r, &is_limit);
	reader_counts(r, &layers, &members, &rescanned);
	h = fuzz_hash(2166136261u, found != NULL ? found : "", found != NULL ? strlen(found) : 0);
	fuzz_features[h % FUZZ_FEATURES]++;
	fuzz_features[fuzz_hash(h, &members, sizeof(members)) % FUZZ_FEATURES]++;
	fuzz_features[fuzz_hash(h ^ 0x5bd1e995u, &rescanned, sizeof(rescanned)) % FUZZ_FEATURES]++;
	reader_free(r);
	return 0;
}
