/* reader_sig.c -- archive signatures in a layer's bytes, found in one vectorised pass: a byte pair
 * that starts no signature costs a fraction of a cycle, so the reader can look at every layer. */
#include "reader_sig.h"

#include <stdint.h>
#include <string.h>

/* The first two bytes of a set of magics. */
struct sig_pairs {
	unsigned n;
	unsigned char first[8], second[8];
};

/* GCC's and clang's vector extension: 16 bytes at a time in plain code (SSE2, NEON), 32 where the
 * processor has AVX2 (32-byte vectors without it are split badly: 100 times slower). */
typedef unsigned char sig_v16 __attribute__((vector_size(16)));
typedef unsigned char sig_v32 __attribute__((vector_size(32)));

/* sig_pair_next: the first offset o in [at, end) with (p[o], p[o + 1]) in the set, or end; p[end]
 * is readable. A block of W bytes whose pairs all miss costs a few vector compares. */
#define SIG_PAIR_NEXT(attr, name, vec, W)						\
attr static size_t									\
name(const unsigned char *p, size_t end, size_t at, const struct sig_pairs *s)		\
{											\
	vec a[8], b[8];									\
											\
	for (unsigned k = 0; k < s->n; k++) {						\
		memset(&a[k], s->first[k], sizeof(a[k]));				\
		memset(&b[k], s->second[k], sizeof(b[k]));				\
	}										\
	for (; at + (W) <= end; at += (W)) {						\
		vec x, y, m = { 0 };							\
		uint64_t w[(W) / 8], any = 0;						\
											\
		memcpy(&x, p + at, sizeof(x));						\
		memcpy(&y, p + at + 1, sizeof(y));					\
		for (unsigned k = 0; k < s->n; k++)					\
			m |= (vec)((x == a[k]) & (y == b[k]));				\
		memcpy(w, &m, sizeof(w));						\
		for (unsigned j = 0; j < (W) / 8; j++)					\
			any |= w[j];							\
		if (any == 0)								\
			continue;							\
		for (unsigned j = 0; j < (W); j++)					\
			if (m[j] != 0)							\
				return at + j;						\
	}										\
	for (; at < end; at++)								\
		for (unsigned k = 0; k < s->n; k++)					\
			if (p[at] == s->first[k] && p[at + 1] == s->second[k])		\
				return at;						\
	return end;									\
}

SIG_PAIR_NEXT(, sig_pair_next_plain, sig_v16, 16)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
SIG_PAIR_NEXT(__attribute__((target("avx2"))), sig_pair_next_avx2, sig_v32, 32)

static size_t
sig_pair_next(const unsigned char *p, size_t end, size_t at, const struct sig_pairs *s)
{
	if (__builtin_cpu_supports("avx2"))
		return sig_pair_next_avx2(p, end, at, s);
	return sig_pair_next_plain(p, end, at, s);
}
/* Another copy for sig_eocd's one pair: sharing the function with the search's seven pairs would cost
 * it the compiler's copy specialised for them (the search ran 1.7 times slower). */
SIG_PAIR_NEXT(__attribute__((target("avx2"))), sig_pair1_next_avx2, sig_v32, 32)
SIG_PAIR_NEXT(, sig_pair1_next_plain, sig_v16, 16)

static size_t
sig_pair1_next(const unsigned char *p, size_t end, size_t at, const struct sig_pairs *s)
{
	if (__builtin_cpu_supports("avx2"))
		return sig_pair1_next_avx2(p, end, at, s);
	return sig_pair1_next_plain(p, end, at, s);
}
#else
#define sig_pair_next sig_pair_next_plain
SIG_PAIR_NEXT(, sig_pair1_next, sig_v16, 16)
#endif

struct sig {
	const char *magic;
	size_t len;
	int fmt;
};

/* The search's signatures; sig_search_pairs holds their first two bytes. */
static const struct sig sigs[READER_NSIGS] = {
	{ "\x1f\x8b\x08", 3, FMT_GZIP },
	{ "BZh", 3, FMT_BZIP2 },
	{ "\xfd" "7zXZ\0", 6, FMT_XZ },
	{ "7z\xbc\xaf\x27\x1c", 6, FMT_7ZIP },
	{ "MSCF\0\0\0\0", 8, FMT_CAB },
	{ "Rar!\x1a\x07", 6, FMT_RAR },
	{ "PK\x03\x04", 4, FMT_ZIP },
};

static const struct sig_pairs sig_search_pairs = { READER_NSIGS,
	{ 0x1f, 'B', 0xfd, '7', 'M', 'R', 'P' }, { 0x8b, 'Z', '7', 'z', 'S', 'a', 'K' } };

size_t
reader_sig_next(const unsigned char *p, size_t size, size_t at)
{
	if (size < 4 || at > size - 4)
		return size;
	at = sig_pair_next(p, size - 3, at, &sig_search_pairs);
	return at < size - 3 ? at : size;
}

/* An LHA method name ("-lh5-", "-lzs-", "-lhd-") at p, n bytes on. */
static int
sig_lha_method(const unsigned char *p, size_t n)
{
	return n >= 5 && (p[2] == 'h' || p[2] == 'z') && p[4] == '-';
}

unsigned
reader_signatures(const void *buf, size_t size)
{
	static const struct sig_pairs pairs = { 4, { '7', 'M', '-', 'R' }, { 'z', 'S', 'l', 'a' } };
	const unsigned char *p = buf;
	unsigned m = 0;

	/* libarchive searches only executables (MZ, ELF); elsewhere these bidders read the start. */
	if (size < 4 || !((p[0] == 'M' && p[1] == 'Z') || memcmp(p, "\x7f" "ELF", 4) == 0))
		return READER_HAS_7Z | READER_HAS_CAB | READER_HAS_LHA | READER_HAS_RAR;
	/* and only so far (7z: 0x27000-0x60000, cab and rar: 128 KiB, lha: less). */
	if (size > READER_SFX_WINDOW)
		size = READER_SFX_WINDOW;
	for (size_t at = 0; m != 15 && (at = sig_pair_next(p, size - 1, at, &pairs)) < size - 1;
	    at++) {
		size_t n = size - at;

		if (n >= 6 && memcmp(p + at, "7z\xbc\xaf\x27\x1c", 6) == 0)
			m |= READER_HAS_7Z;
		else if (n >= 8 && memcmp(p + at, "MSCF\0\0\0\0", 8) == 0)
			m |= READER_HAS_CAB;
		else if (p[at] == '-' && sig_lha_method(p + at, n))
			m |= READER_HAS_LHA;
		else if (n >= 6 && memcmp(p + at, "Rar!\x1a\x07", 6) == 0)
			m |= READER_HAS_RAR;
	}
	return m;
}

static uint32_t sig_le32(const unsigned char *p);

/* A decompression filter reader_support offers may bid: gzip, compress, bzip2, xz, lzip, zstd and
 * lz4 (with their skippable frames) by magic; lzma (no magic: libarchive checks the properties
 * byte and a dictionary size from a list of powers of two and MiB multiples) by a looser test. */
static int
sig_filter(const unsigned char *p, size_t size)
{
	uint32_t m, dict;

	if (size >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9d))
		return 1;
	if ((size >= 3 && memcmp(p, "BZh", 3) == 0) || (size >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0) ||
	    (size >= 4 && memcmp(p, "LZIP", 4) == 0))
		return 1;
	if (size < 4)
		return 0;
	m = sig_le32(p);
	if (m == 0xfd2fb528u || m == 0x184d2204u || m == 0x184c2102u || (m & 0xfffffff0u) == 0x184d2a50u)
		return 1;
	if (size < 14 || p[0] > (4 * 5 + 4) * 9 + 8)
		return 0;
	dict = sig_le32(p + 1);
	return dict >= 0x1000 && dict <= 0x08000000 && (dict & 0xfff) == 0;
}

/* An end of central directory ("PK\5\6"; or Zip64's "PK\6\6", "PK\6\7") in the layer's tail. */
static int
sig_eocd(const unsigned char *p, size_t size)
{
	static const struct sig_pairs pk = { 1, { 'P' }, { 'K' } };
	size_t at = size > READER_EOCD_WINDOW ? size - READER_EOCD_WINDOW : 0;

	if (size < 22)
		return 0;
	for (; (at = sig_pair1_next(p, size - 3, at, &pk)) < size - 3; at++)
		if ((p[at + 2] == 5 && p[at + 3] == 6) || (p[at + 2] == 6 && (p[at + 3] == 6 ||
		    p[at + 3] == 7)))
			return 1;
	return 0;
}

/* tar's bid: a first block of zeros, or one whose checksum field (read as libarchive's tar_atol
 * does: spaces and tabs, a sign, octal digits; base-256 not parsed, so taken) holds the sum of its
 * bytes as unsigned or as signed chars, the field counted as spaces. */
static int
sig_tar(const unsigned char *h)
{
	int64_t v = 0;
	int u = 0, s = 0, zero = 1, neg = 0;
	size_t i = 148, n = 8;

	for (size_t k = 0; k < 512; k++) {
		zero &= h[k] == 0;
		u += k >= 148 && k < 156 ? 32 : h[k];
		s += k >= 148 && k < 156 ? 32 : (signed char)h[k];
	}
	if (zero || (h[148] & 0x80) != 0)
		return 1;
	while (n > 0 && (h[i] == ' ' || h[i] == '\t')) {
		i++;
		n--;
	}
	if (n > 0 && h[i] == '-') {
		neg = 1;
		i++;
		n--;
	}
	for (; n > 0 && h[i] >= '0' && h[i] <= '7'; i++, n--)
		v = v * 8 + (h[i] - '0');
	if (neg)
		v = -v;
	return v == u || v == s;
}

/* The formats with an SFX search, on a layer that is not an executable: their magic at the start. */
static unsigned
sig_start_formats(const unsigned char *p, size_t size)
{
	unsigned m = 0;

	if (size >= 6 && memcmp(p, "7z\xbc\xaf\x27\x1c", 6) == 0)
		m |= READER_HAS_7Z;
	if (size >= 4 && memcmp(p, "MSCF", 4) == 0)
		m |= READER_HAS_CAB;
	if (size >= 22 && p[2] == '-')
		m |= READER_HAS_LHA;
	if (size >= 4 && memcmp(p, "Rar!", 4) == 0)
		m |= READER_HAS_RAR;
	return m;
}

unsigned
reader_bidders(const void *buf, size_t size, unsigned want)
{
	const unsigned char *p = buf;
	unsigned m = 0;

	if (sig_filter(p, size))
		return READER_BID_ALL & want;
	if (size >= 2 && p[0] == 'P' && p[1] == 'K')
		m |= READER_BID_ZIPSTREAM;
	if ((want & READER_BID_ZIP) && sig_eocd(p, size))
		m |= READER_BID_ZIP;
	if ((want & READER_BID_TAR) && size >= 512 && sig_tar(p))
		m |= READER_BID_TAR;
	if (size >= 6 && (memcmp(p, "0707", 4) == 0 || (p[0] == 0x71 && p[1] == 0xc7) ||
	    (p[0] == 0xc7 && p[1] == 0x71)))
		m |= READER_BID_CPIO;
	if (size > 32769 + 5 && memcmp(p + 32769, "CD001", 5) == 0)
		m |= READER_BID_ISO;
	if (size >= 4 && memcmp(p, "xar!", 4) == 0)
		m |= READER_BID_XAR;
	if (size >= 8 && memcmp(p, "!<", 2) == 0)
		m |= READER_BID_AR;
	if (want & (READER_HAS_7Z | READER_HAS_CAB | READER_HAS_LHA | READER_HAS_RAR)) {
		if (size >= 4 && ((p[0] == 'M' && p[1] == 'Z') || memcmp(p, "\x7f" "ELF", 4) == 0))
			m |= reader_signatures(p, size);
		else
			m |= sig_start_formats(p, size);
	}
	return m & want;
}

/* CRC-32 (IEEE) of a few header bytes: 7z's start header and xz's stream flags carry one. */
static uint32_t
sig_crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static uint32_t
sig_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A zip local header: a version zip readers know, a known method, a name that fits. */
static int
sig_zip_valid(const unsigned char *p, size_t n)
{
	unsigned method = (unsigned)p[8] | (unsigned)p[9] << 8;
	size_t name = (size_t)p[26] | (size_t)p[27] << 8;

	return p[4] <= 63 && (method <= 20 || (method >= 93 && method <= 99)) && name > 0 &&
	    30 + name <= n;
}

/* Whether the n bytes at a hit start a header the format's reader can take: programs hold these
 * magics as constants. */
static int
sig_valid(const unsigned char *p, size_t n, int fmt)
{
	switch (fmt) {
	case FMT_GZIP:	/* reserved flag bits clear, extra flags 0, 2 or 4, a known OS */
		return n >= 18 && (p[3] & 0xe0) == 0 && (p[8] == 0 || p[8] == 2 || p[8] == 4) &&
		    (p[9] <= 13 || p[9] == 255);
	case FMT_BZIP2:	/* a block size, then a block's magic */
		return n >= 14 && p[3] >= '1' && p[3] <= '9' &&
		    memcmp(p + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0;
	case FMT_XZ:	/* stream flags naming a check xz knows, and their CRC */
		return n >= 32 && p[6] == 0 && (p[7] == 0 || p[7] == 1 || p[7] == 4 || p[7] == 10) &&
		    sig_crc32(p + 6, 2) == sig_le32(p + 8);
	case FMT_7ZIP:	/* major version 0, and the start header's CRC */
		return n >= 32 && p[6] == 0 && sig_crc32(p + 12, 20) == sig_le32(p + 8);
	case FMT_CAB:	/* version 1.3, a cabinet size past its header, its file table inside */
		return n >= 36 && p[24] == 3 && p[25] == 1 && sig_le32(p + 8) >= 36 &&
		    sig_le32(p + 16) < sig_le32(p + 8) && p[26] + p[27] > 0 && p[28] + p[29] > 0;
	case FMT_RAR:	/* RAR 1.5-4 or RAR 5 marker */
		return n >= 8 && (p[6] == 0 || (p[6] == 1 && p[7] == 0));
	default:
		return n >= 30 && sig_zip_valid(p, n);
	}
}

int
reader_sig_match(const unsigned char *p, size_t n, size_t i)
{
	if (i >= READER_NSIGS || n < sigs[i].len || memcmp(p, sigs[i].magic, sigs[i].len) != 0 ||
	    !sig_valid(p, n, sigs[i].fmt))
		return FMT_NONE;
	return sigs[i].fmt;
}
