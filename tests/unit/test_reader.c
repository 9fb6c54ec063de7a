/* test_reader.c -- the second archive reader (reader.c) on archives made by Python's zipfile/bz2:
 * what it lists and hands back, what it skips as scanned, its limits and its findings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "log.h"
#include "reader.h"
#include "reader_sig.h"

static const char eicar[] =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/* The bytes a Python snippet writes to stdout (it gets EICAR as E). Caller frees. */
static unsigned char *
make(const char *code, size_t *len)
{
	char cmd[2048];
	unsigned char *buf = malloc(1 << 20);
	FILE *p;

	assert_non_null(buf);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"import io, sys, zipfile, bz2, gzip, lzma, random; "
	    "E = b'X5O!P%%@AP[4\\\\\\\\PZX54(P^)7CC)7}\\$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!\\$H+H*'; "
	    "%s\"", code);
	assert_non_null(p = popen(cmd, "r"));
	*len = fread(buf, 1, 1 << 20, p);
	assert_int_equal(pclose(p), 0);
	assert_true(*len > 0);
	return buf;
}

#define ZIP2 "b = io.BytesIO(); z = zipfile.ZipFile(b, 'w', zipfile.ZIP_LZMA); " \
	"z.writestr('a.txt', b'hello reader ' * 50); z.writestr('e.com', E); z.close(); " \
	"sys.stdout.buffer.write(b.getvalue())"

static struct reader_limits
limits(void)
{
	return (struct reader_limits){ .max_file_size = 1 << 20, .budget = 8 << 20,
	    .max_files = 100, .max_recursion = 5, .encrypted_alert = 1 };
}

static void
test_lists_and_hands_back_members(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_member *m;
	size_t len;
	unsigned char *zip = make(ZIP2, &len);
	unsigned id, got = 0;
	int is_limit, eicar_seen = 0;

	(void)state;
	assert_int_equal(reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id), 1);
	assert_true(id > 0);
	assert_true(reader_covered(r, id, 2));
	assert_false(reader_covered(r, id, 3));
	reader_set_upload(r, zip, len);
	while ((m = reader_next(r)) != NULL) {
		got++;
		eicar_seen |= m->len == strlen(eicar) && memcmp(m->data, eicar, m->len) == 0;
		assert_int_equal(m->depth, 1);
		assert_int_equal(m->path[m->path_len - 1], '\0');
		reader_member_free(m);
	}
	assert_int_equal(got, 2);
	assert_true(eicar_seen);
	assert_null(reader_finding(r, &is_limit));
	reader_free(r);
	free(zip);
}

/* A member whose content libclamav scanned (a layer with the same bytes) is not handed back. */
static void
test_skips_what_libclamav_scanned(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_member *m;
	size_t len;
	unsigned char *zip = make(ZIP2, &len);
	unsigned id;

	(void)state;
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_int_equal(reader_layer(r, eicar, strlen(eicar), "CL_TYPE_TEXT_ASCII", "e.com", 1, "", 0,
	    0, &id), 0);
	reader_prune(r);
	reader_set_upload(r, zip, len);
	assert_non_null(m = reader_next(r));
	assert_false(m->len == strlen(eicar) && memcmp(m->data, eicar, m->len) == 0);
	reader_member_free(m);
	assert_null(reader_next(r));
	reader_free(r);
	free(zip);
}

static void
test_limits(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r;
	size_t len;
	unsigned char *zip = make(ZIP2, &len);
	unsigned id;
	int is_limit;

	(void)state;
	lim.max_file_size = 100;	/* a.txt has 650 bytes */
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_FILE_SIZE);
	assert_true(is_limit);
	reader_free(r);
	lim = limits();
	lim.max_files = 1;
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_FILES);
	reader_free(r);
	lim = limits();
	lim.max_recursion = 3;
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 3, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_RECURSION);
	reader_free(r);
	lim = limits();
	lim.budget = 100;
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_SCAN_SIZE);
	reader_free(r);
	free(zip);
}

/* Two bzip2 streams: typed CL_TYPE_BZ, the one member is all of it (both streams). */
static void
test_multistream_bzip2_whole(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_member *m;
	size_t len;
	unsigned char *bz = make("sys.stdout.buffer.write(bz2.compress(b'first\\\\n' * 100) + "
	    "bz2.compress(E))", &len);
	unsigned id;

	(void)state;
	assert_int_equal(reader_layer(r, bz, len, "CL_TYPE_BZ", NULL, 0, "", 0, 0, &id), 1);
	reader_set_upload(r, bz, len);
	assert_non_null(m = reader_next(r));
	assert_int_equal(m->len, 600 + strlen(eicar));
	assert_memory_equal(m->data + 600, eicar, strlen(eicar));
	reader_member_free(m);
	reader_free(r);
	free(bz);
}

/* A compressed stream is read one filter deep: its member is the stream inside it, which libclamav
 * hands over as a layer of its own (and the reader reads then). libarchive would stack a filter for
 * every stream inside, up to 25, decompressing the first block of each at every layer: a bzip2
 * nested 250 deep held a scan thread 15 s. So, too, a stream the search finds behind a prefix. */
static void
test_stream_read_one_filter_deep(void **state)
{
	static const char *const recipes[][3] = {
		{ "CL_TYPE_BZ", "", "bz2.compress" },
		{ "CL_TYPE_GZ", "", "(lambda d: gzip.compress(d, mtime=0))" },
		{ "CL_TYPE_XZ", "", "lzma.compress" },
		{ "CL_TYPE_BINARY_DATA", "b'<html>' * 10 + ", "(lambda d: gzip.compress(d, mtime=0))" },
	};
	struct reader_limits lim = limits();
	char code[512];

	(void)state;
	for (size_t i = 0; i < sizeof(recipes) / sizeof(recipes[0]); i++) {
		struct reader *r = reader_new(&lim);
		struct reader_member *m;
		size_t len, inner_len;
		unsigned char *inner, *outer;
		unsigned id, got = 0, same = 0;

		snprintf(code, sizeof(code), "sys.stdout.buffer.write(%s(bz2.compress(gzip.compress(E, "
		    "mtime=0))))", recipes[i][2]);
		inner = make(code, &inner_len);
		snprintf(code, sizeof(code), "c = %s; sys.stdout.buffer.write(%sc(c(bz2.compress(gzip."
		    "compress(E, mtime=0)))))", recipes[i][2], recipes[i][1]);
		outer = make(code, &len);
		assert_true(reader_layer(r, outer, len, recipes[i][0], NULL, 0, "", 0, 0, &id) >= 0);
		reader_set_upload(r, outer, len);
		while ((m = reader_next(r)) != NULL) {
			got++;
			same |= m->len == inner_len && memcmp(m->data, inner, inner_len) == 0;
			reader_member_free(m);
		}
		assert_int_equal(got, 1);
		assert_true(same);
		reader_free(r);
		free(inner);
		free(outer);
	}
}

/* Text is no archive; a method libarchive lacks is a hole unless libclamav scanned that name and
 * size. */
static void
test_text_and_holes(void **state)
{
	static const char text[] = "just some text, mentioning PK and 7z and -lh5- in passing\n";
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	size_t len;
	unsigned char *zip = make("b = bytearray(); z = io.BytesIO(); "
	    "w = zipfile.ZipFile(z, 'w'); w.writestr('odd.bin', E * 3); w.close(); b = bytearray(z.getvalue()); "
	    "b[8] = 97; i = b.find(b'PK\\\\x01\\\\x02'); b[i + 10] = 97; sys.stdout.buffer.write(bytes(b))", &len);
	unsigned id;
	int is_limit;

	(void)state;
	assert_int_equal(reader_layer(r, text, sizeof(text) - 1, "CL_TYPE_TEXT_ASCII", NULL, 0, "", 0,
	    0, &id), 0);
	assert_int_equal(reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id), 1);
	assert_false(reader_covered(r, id, 1));
	assert_string_equal(reader_finding(r, &is_limit), READER_UNSCANNED);
	assert_false(is_limit);
	/* libclamav scanned a member of that name and size: not a hole. */
	reader_layer(r, zip, 3 * strlen(eicar), "CL_TYPE_BINARY_DATA", "odd.bin", 1, "", 0, 0, &id);
	assert_null(reader_finding(r, &is_limit));
	reader_free(r);
	free(zip);
}

/* How many members the reader hands back for buf (a layer at depth, typed type), and whether one
 * of them is EICAR. The upload's bytes are buf itself at depth 0. */
static unsigned
handed_back(struct reader *r, const unsigned char *buf, size_t len, const char *type,
    unsigned depth, int *eicar_seen)
{
	struct reader_member *m;
	unsigned id, got = 0;

	*eicar_seen = 0;
	assert_true(reader_layer(r, buf, len, type, NULL, depth, "", 0, 0, &id) >= 0);
	reader_set_upload(r, depth == 0 ? buf : NULL, len);
	while ((m = reader_next(r)) != NULL) {
		got++;
		*eicar_seen |= m->len == strlen(eicar) && memcmp(m->data, eicar, m->len) == 0;
		reader_member_free(m);
	}
	return got;
}

/* 7-Zip opens an archive wherever its signature is (a gzip behind junk, an xz behind HTML, a
 * zip without central directory behind an MZ stub): so does the search, in the upload and in a
 * member, and what it extracts is handed back. */
static void
test_search_finds_archives_at_an_offset(void **state)
{
	static const char *const recipes[] = {
		"sys.stdout.buffer.write(bytes(range(256)) * 4 + gzip.compress(E))",
		"sys.stdout.buffer.write(b'<html><body>' + b'text ' * 900 + bz2.compress(E))",
		"sys.stdout.buffer.write(b'<html>' * 10 + lzma.compress(E))",
		"b = io.BytesIO(); z = zipfile.ZipFile(b, 'w'); z.writestr('e.com', E); z.close(); "
		    "v = b.getvalue(); sys.stdout.buffer.write(b'MZ' + bytes(500) + v[:v.find(b'PK\\\\x01\\\\x02')])",
	};
	struct reader_limits lim = limits();
	int is_limit, seen;

	(void)state;
	for (size_t i = 0; i < sizeof(recipes) / sizeof(recipes[0]); i++) {
		size_t len;
		unsigned char *buf = make(recipes[i], &len);

		for (unsigned depth = 0; depth < 2; depth++) {
			struct reader *r = reader_new(&lim);

			assert_true(handed_back(r, buf, len, "CL_TYPE_BINARY_DATA", depth, &seen) >= 1);
			assert_true(seen);
			assert_null(reader_finding(r, &is_limit));
			reader_free(r);
		}
		free(buf);
	}
}

/* What the search finds and nobody extracts is no finding: a header followed by garbage, a stream
 * cut short, an encrypted zip behind a prefix; an archive read from its start is not searched. */
static void
test_search_adds_no_finding(void **state)
{
	static const char *const recipes[] = {
		"sys.stdout.buffer.write(b'junk' + b'\\\\x1f\\\\x8b\\\\x08\\\\x00' + bytes(6) + b'garbage!' * 4)",
		"sys.stdout.buffer.write(b'junk' * 50 + gzip.compress(E * 50)[:40])",
		"sys.stdout.buffer.write(b'junk' * 50 + "
		    "gzip.compress(random.Random(1).randbytes(400000) + E)[:200000])",
		"sys.stdout.buffer.write(b'junk' * 50 + lzma.compress(E)[:-20] + b'BZh91AY&SY' + bytes(30))",
		"sys.stdout.buffer.write(b'junk' + b'MSCF' + bytes(20) + bytes([3, 1]) + bytes(40))",
	};
	struct reader_limits lim = limits();
	int is_limit, seen;

	(void)state;
	for (size_t i = 0; i < sizeof(recipes) / sizeof(recipes[0]); i++) {
		size_t len;
		unsigned char *buf = make(recipes[i], &len);
		struct reader *r = reader_new(&lim);

		assert_int_equal(handed_back(r, buf, len, "CL_TYPE_BINARY_DATA", 0, &seen), 0);
		assert_null(reader_finding(r, &is_limit));
		reader_free(r);
		free(buf);
	}
}

/* At the deepest layer allowed, a hit that yields nothing is no limit; one that yields a member is. */
static void
test_search_depth(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r;
	size_t len, fake_len;
	unsigned char *buf = make("sys.stdout.buffer.write(b'junk' * 50 + gzip.compress(E))", &len);
	/* a gzip libarchive opens, lists, and fails to inflate: cut short */
	unsigned char *fake = make("sys.stdout.buffer.write(b'junk' * 50 + "
	    "gzip.compress(random.Random(1).randbytes(400000))[:200000])", &fake_len);
	unsigned id;
	int is_limit;

	(void)state;
	r = reader_new(&lim);
	reader_layer(r, fake, fake_len, "CL_TYPE_BINARY_DATA", NULL, lim.max_recursion, "", 0, 0, &id);
	assert_null(reader_finding(r, &is_limit));
	reader_layer(r, buf, len, "CL_TYPE_BINARY_DATA", NULL, lim.max_recursion, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_RECURSION);
	reader_free(r);
	free(buf);
	free(fake);
}

/* Hits are bounded per layer: past the bound the answer is a limit, never clean (an attacker's
 * decoys before the real archive would otherwise hide it). */
static void
test_search_bounded(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r;
	size_t len;
	unsigned char *buf = make("sys.stdout.buffer.write((b'x\\\\x1f\\\\x8b\\\\x08\\\\x00' + bytes(6) + "
	    "b'garbage!' * 2) * 300 + gzip.compress(E))", &len);
	int is_limit, seen;

	(void)state;
	lim.max_files = 100000;
	r = reader_new(&lim);
	handed_back(r, buf, len, "CL_TYPE_BINARY_DATA", 0, &seen);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_FILES);
	assert_true(is_limit);
	reader_free(r);
	free(buf);
}

/* A member libclamav announced and did not scan where it announced it: a hole unless a layer of
 * that name and size is scanned anywhere in the scan, before or after. */
static void
test_announced_holes(void **state)
{
	static const char data[] = "some member content, 40 bytes long.....";
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	unsigned id;
	int is_limit;

	(void)state;
	assert_int_equal(reader_add_hole(r, "dir/gpl.exe", sizeof(data) - 1), 0);
	assert_string_equal(reader_finding(r, &is_limit), READER_UNSCANNED);
	assert_false(is_limit);
	/* the same name with another size is another member */
	reader_layer(r, data, sizeof(data) - 2, "CL_TYPE_TEXT_ASCII", "dir/gpl.exe", 1, "", 0, 0, &id);
	assert_string_equal(reader_finding(r, &is_limit), READER_UNSCANNED);
	reader_layer(r, data, sizeof(data) - 1, "CL_TYPE_TEXT_ASCII", "dir/gpl.exe", 3, "", 0, 0, &id);
	assert_null(reader_finding(r, &is_limit));
	reader_free(r);
}

/* A cabinet of one stored member (no checksum), as makecab writes one: n bytes at out, returned. */
static size_t
cab_make(unsigned char *out, const char *name, const void *data, size_t len)
{
	size_t nl = strlen(name) + 1, files = 36 + 8, at = files + 16 + nl, total = at + 8 + len;
	unsigned char *p = out;

	memset(out, 0, total);
	memcpy(p, "MSCF", 4);
	p[8] = (unsigned char)total;
	p[9] = (unsigned char)(total >> 8);
	p[16] = (unsigned char)files;
	p[24] = 3;			/* version 1.3 */
	p[25] = 1;
	p[26] = 1;			/* one folder */
	p[28] = 1;			/* one file */
	p = out + 36;			/* the folder: where its data is, one block, stored */
	p[0] = (unsigned char)at;
	p[1] = (unsigned char)(at >> 8);
	p[4] = 1;
	p = out + files;		/* the file: its size, folder 0 from 0 */
	p[0] = (unsigned char)len;
	p[1] = (unsigned char)(len >> 8);
	p[12] = 0x20;
	memcpy(p + 16, name, nl);
	p = out + at;			/* the data block: no checksum */
	p[4] = p[6] = (unsigned char)len;
	p[5] = p[7] = (unsigned char)(len >> 8);
	memcpy(p + 8, data, len);
	return total;
}

/* An InstallShield setup's cab: in the setup (read where libarchive's SFX search finds it), then as
 * a layer of its own. The same bytes are not extracted twice and answer the same; other bytes
 * (the same name and size) are read anew; what the first read counted counts again. */
static void
test_cab_read_once(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_member *m;
	unsigned char pe[2048] = "MZ", cab[1024], other[1024], e2[sizeof(eicar)];
	size_t n = cab_make(cab, "e.com", eicar, strlen(eicar)), got = 0;
	unsigned id, layers, members, rescanned;
	int is_limit;

	(void)state;
	memset(pe + 2, 'x', 500);
	memcpy(pe + 502, cab, n);
	assert_int_equal(reader_layer(r, pe, 502 + n, "CL_TYPE_MSEXE", NULL, 0, "", 0, 0, &id), 1);
	assert_true(reader_covered(r, id, 1));
	assert_int_equal(reader_layer(r, cab, n, "CL_TYPE_MSCAB", NULL, 1, "", 0, 0, &id), 1);
	assert_true(reader_covered(r, id, 1));
	assert_false(reader_covered(r, id, 2));
	memcpy(e2, eicar, sizeof(eicar));
	e2[0] = 'Y';
	assert_int_equal(cab_make(other, "e.com", e2, strlen(eicar)), n);
	assert_int_equal(reader_layer(r, other, n, "CL_TYPE_MSCAB", NULL, 1, "", 0, 0, &id), 1);
	reader_counts(r, &layers, &members, &rescanned);
	assert_int_equal(layers, 3);
	assert_int_equal(members, 3);
	reader_set_upload(r, pe, 502 + n);
	while ((m = reader_next(r)) != NULL) {
		got++;
		assert_int_equal(m->len, strlen(eicar));
		reader_member_free(m);
	}
	assert_int_equal(got, 2);	/* EICAR and its altered copy */
	assert_null(reader_finding(r, &is_limit));
	reader_free(r);

	lim.max_files = 1;
	r = reader_new(&lim);
	assert_int_equal(reader_layer(r, pe, 502 + n, "CL_TYPE_MSEXE", NULL, 0, "", 0, 0, &id), 1);
	assert_null(reader_finding(r, &is_limit));
	assert_int_equal(reader_layer(r, cab, n, "CL_TYPE_MSCAB", NULL, 1, "", 0, 0, &id), 1);
	assert_string_equal(reader_finding(r, &is_limit), READER_LIMIT_FILES);
	reader_free(r);
}

static void
sha256(const void *data, size_t len, unsigned char *out)
{
	assert_int_equal(EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL), 1);
}

/* A layer's digest is taken once: the reader uses the one its caller (the member cache) took,
 * hashes the layer itself only when a pending member has its size and no digest came with it, and
 * hands the digest it took back for the next user; a cabinet that is its whole layer is not hashed
 * again for the cabinet memo. */
static void
test_layer_digest_taken_once(void **state)
{
	struct reader_limits lim = limits();
	struct reader *r = reader_new(&lim);
	struct reader_digest ld = { 0 };
	size_t len, n;
	unsigned char *zip = make(ZIP2, &len), want[READER_DIGEST_LEN], cab[1024];
	char other[sizeof(eicar)];
	unsigned id;

	(void)state;
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	assert_int_equal(reader_layer_digests(r), 0);	/* the upload: no member of its size */
	/* A layer of EICAR's size whose digest came with it: taken as given, not recomputed (here a
	 * digest of other bytes, which only the caller could have supplied). */
	memcpy(other, eicar, sizeof(eicar));
	other[0] = 'Y';
	sha256(eicar, strlen(eicar), ld.d);
	ld.have = 1;
	assert_int_equal(reader_layer_hashed(r, other, strlen(other), "CL_TYPE_TEXT_ASCII", NULL, 1,
	    "", 0, 0, &id, &ld), 0);
	assert_int_equal(reader_layer_digests(r), 0);
	reader_prune(r);
	reader_set_upload(r, zip, len);
	{
		struct reader_member *m = reader_next(r);

		assert_non_null(m);	/* a.txt; EICAR counts as scanned */
		assert_int_not_equal(m->len, strlen(eicar));
		reader_member_free(m);
		assert_null(reader_next(r));
	}
	reader_free(r);

	/* Without one: hashed once, and handed back. */
	r = reader_new(&lim);
	reader_layer(r, zip, len, "CL_TYPE_ZIP", NULL, 0, "", 0, 0, &id);
	memset(&ld, 0, sizeof(ld));
	assert_int_equal(reader_layer_hashed(r, eicar, strlen(eicar), "CL_TYPE_TEXT_ASCII", NULL, 1,
	    "", 0, 0, &id, &ld), 0);
	assert_int_equal(reader_layer_digests(r), 1);
	assert_true(ld.have);
	sha256(eicar, strlen(eicar), want);
	assert_memory_equal(ld.d, want, READER_DIGEST_LEN);
	/* A size no pending member has: not hashed, nothing handed back. */
	memset(&ld, 0, sizeof(ld));
	assert_int_equal(reader_skip(r, "hello", 5, "h.txt", &ld), 0);
	assert_int_equal(reader_layer_digests(r), 1);
	assert_false(ld.have);
	reader_free(r);

	/* A cabinet layer with its digest: the memo's key is that digest, not a second hash. */
	r = reader_new(&lim);
	n = cab_make(cab, "e.com", eicar, strlen(eicar));
	memset(&ld, 0, sizeof(ld));
	sha256(cab, n, ld.d);
	ld.have = 1;
	assert_int_equal(reader_layer_hashed(r, cab, n, "CL_TYPE_MSCAB", NULL, 1, "", 0, 0, &id, &ld),
	    1);
	assert_int_equal(reader_layer_digests(r), 0);
	assert_int_equal(reader_layer(r, cab, n, "CL_TYPE_MSCAB", NULL, 1, "", 0, 0, &id), 1);
	assert_int_equal(reader_layer_digests(r), 1);	/* without it: hashed for the memo */
	reader_free(r);
	free(zip);
}

/* Which bidders may take a layer: libarchive is opened only when one may, and offered only those;
 * each test here is looser than the bidder's own. */
static void
test_bidders(void **state)
{
	unsigned char b[40000];
	size_t len;
	unsigned char *tar = make("b = io.BytesIO(); t = __import__('tarfile').open(fileobj=b, mode='w'); "
	    "i = __import__('tarfile').TarInfo('e.com'); i.size = len(E); t.addfile(i, io.BytesIO(E)); "
	    "t.close(); sys.stdout.buffer.write(b.getvalue())", &len);
	unsigned char *zip = make(ZIP2, &len);

	(void)state;
	memset(b, 'a', sizeof(b));
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_ALL), 0);	/* text: not opened */
	assert_int_equal(reader_bidders(b, 3, READER_BID_ALL), 0);
	memcpy(b, "\x1f\x8b", 2);			/* a filter: every format may follow */
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_ALL), READER_BID_ALL);
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_STREAM), READER_BID_STREAM);
	memcpy(b, "\x5d\0\0\x80\0", 5);			/* lzma's usual header */
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_ALL), READER_BID_ALL);
	memcpy(b, "PK\x03\x04", 4);
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_STREAM), READER_BID_ZIPSTREAM);
	assert_int_equal(reader_bidders(zip, len, READER_BID_ALL),
	    READER_BID_ZIPSTREAM | READER_BID_ZIP);
	memset(b, 'a', sizeof(b));			/* an end of central directory in the tail */
	memcpy(b + sizeof(b) - 30, "PK\x05\x06", 4);
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_ALL), READER_BID_ZIP);
	memset(b, 0, 512);				/* tar: a zero block, or a valid checksum */
	assert_int_equal(reader_bidders(b, 512, READER_BID_ALL), READER_BID_TAR);
	assert_int_equal(reader_bidders(tar, 512, READER_BID_ALL), READER_BID_TAR);
	tar[0] ^= 1;
	assert_int_equal(reader_bidders(tar, 512, READER_BID_ALL), 0);
	memset(b, 'a', sizeof(b));
	memcpy(b, "\xc7\x71", 2);			/* binary cpio, little-endian */
	assert_int_equal(reader_bidders(b, 6, READER_BID_ALL), READER_BID_CPIO);
	memcpy(b, "070701", 6);
	assert_int_equal(reader_bidders(b, 6, READER_BID_ALL), READER_BID_CPIO);
	memcpy(b, "!<arch>\n", 8);
	assert_int_equal(reader_bidders(b, 8, READER_BID_ALL), READER_BID_AR);
	memcpy(b, "xar!", 4);
	assert_int_equal(reader_bidders(b, 28, READER_BID_ALL), READER_BID_XAR);
	memcpy(b, "aaaa", 4);
	memcpy(b + 32769, "CD001", 5);
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_ALL), READER_BID_ISO);
	memset(b, 'a', sizeof(b));
	memcpy(b, "MSCF", 4);				/* the SFX formats: their magic at the start */
	assert_int_equal(reader_bidders(b, 64, READER_BID_ALL), READER_HAS_CAB);
	memcpy(b, "Rar!\x1a\x07\x00", 7);
	assert_int_equal(reader_bidders(b, 64, READER_BID_ALL), READER_HAS_RAR);
	memcpy(b, "7z\xbc\xaf\x27\x1c", 6);
	assert_int_equal(reader_bidders(b, 64, READER_BID_ALL), READER_HAS_7Z);
	memcpy(b, "aa-lh5-", 7);
	assert_int_equal(reader_bidders(b, 64, READER_BID_ALL), READER_HAS_LHA);
	memset(b, 'a', sizeof(b));
	memcpy(b, "MZ", 2);				/* or anywhere in an executable's first MiB */
	memcpy(b + 5000, "MSCF\0\0\0\0", 8);
	assert_int_equal(reader_bidders(b, sizeof(b), READER_BID_ALL), READER_HAS_CAB);
	free(tar);
	free(zip);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_and_hands_back_members),
		cmocka_unit_test(test_skips_what_libclamav_scanned),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_multistream_bzip2_whole),
		cmocka_unit_test(test_stream_read_one_filter_deep),
		cmocka_unit_test(test_text_and_holes),
		cmocka_unit_test(test_search_finds_archives_at_an_offset),
		cmocka_unit_test(test_search_adds_no_finding),
		cmocka_unit_test(test_search_bounded),
		cmocka_unit_test(test_search_depth),
		cmocka_unit_test(test_announced_holes),
		cmocka_unit_test(test_cab_read_once),
		cmocka_unit_test(test_layer_digest_taken_once),
		cmocka_unit_test(test_bidders),
	};

	log_set_level("ERROR");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
