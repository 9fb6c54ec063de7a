"""disagree -- a seeded generator of archives that different readers read differently (issue 20,
item 6), and the oracle that says which readers extract EICAR from each.

Classes of sample (each carries EICAR in some member; the seed picks the variant, names, methods,
fillers and where EICAR goes):

  zip_dd        data descriptors (bit 3, sizes 0 in the local header), mixed methods
                (stored, deflate, bzip2, LZMA), with or without the descriptor signature
  zip_nocd      local headers only: no central directory, no end record
  zip_lying_cd  a central directory that differs from the local headers: names, sizes, offsets,
                methods, flags, extra fields, duplicated names, entries missing from it
  zip_prefix    SFX-like junk, an MZ stub, a shell script or HTML before the zip; offsets
                adjusted (as zip -A does) or not
  zip64         Zip64 extra fields (0xFFFFFFFF in the headers), with and without the Zip64 end
  zip_names     the UTF-8 flag, CP437 names with high bytes, long and odd names
  zip_crypt     ZipCrypto members whose encryption bit is set in one header and clear in the other
  multistream   concatenated gzip members, bzip2 streams (pbzip2's layout) and xz streams
  nested        a zip in a 7z, a 7z behind a prefix in a zip, a stored zip next to a BZip2 member
                in a 7z, a zip in a tar in a gzip
  tar_dialect   GNU long names, PAX size= records over a lying ustar size, base-256 sizes, v7
  cpio          newc, odc and old binary cpio
  zip_methods   EICAR's member in a method libclamav 1.4.6 does not unpack: zstd (93), xz (95),
                PPMd and Deflate64 (7z -tzip), LZMA
  sfx           other archives behind a prefix: a 7z or a cab behind an MZ stub or HTML, a zip
                appended to a clean zip, a gzip behind junk

The oracle (readers()) runs every installed reader on a sample -- Python's zipfile (central
directory), tarfile, gzip, bz2 and lzma; bsdtar on the file (central directory) and on a pipe (local
headers, as a streaming reader); 7z; unzip; GNU tar -- and recurses two levels into what they
extract. A sample any reader gets EICAR out of must never be answered clean by clamrest.

The same seed and count give the same samples: Generator(seed).samples(count). The corpus and the
oracle's findings are cached under build/disagree/<key>/, keyed by this file's hash, the seed and
the count (corpus()), so that a rerun does not run the readers again.
`python3 tests/e2e/disagree.py [--seed S] [--count N] [--list]` prints the samples and findings.
"""
import bz2
import dataclasses
import functools
import gzip
import hashlib
import io
import json
import lzma
import os
import pathlib
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

import adversarial     # tool_versions(), for the cache key

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PASSWORD = b"pass"
DEFAULT_SEED = 20
DEFAULT_COUNT = 44
ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "disagree"
READER_TIMEOUT = 30      # seconds per reader run
DEPTH = 2                # levels the oracle recurses into extracted members
DOS_TIME, DOS_DATE = 0, (2024 - 1980) << 9 | 1 << 5 | 1
FIXED_TIME = 1704067200
CLASSES = ("zip_dd", "zip_nocd", "zip_lying_cd", "zip_prefix", "zip64", "zip_names", "zip_crypt",
           "multistream", "nested", "tar_dialect", "cpio", "sfx", "zip_methods")


@dataclasses.dataclass
class Sample:
    name: str           # <class>-<index>-<variant>
    cls: str
    data: bytes
    recipe: str         # how it was built, for a failure report


# --- zip, written by hand: every field of both headers under control ---

ZIP_STORED, ZIP_DEFLATED, ZIP_BZIP2, ZIP_LZMA, ZIP_ZSTD, ZIP_XZ = 0, 8, 12, 14, 93, 95
METHODS = {"stored": ZIP_STORED, "deflate": ZIP_DEFLATED, "bzip2": ZIP_BZIP2, "lzma": ZIP_LZMA}


def compress(method, data):
    if method == ZIP_STORED:
        return data
    if method == ZIP_DEFLATED:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    if method == ZIP_BZIP2:
        return bz2.compress(data)
    if method == ZIP_LZMA:     # zip's LZMA: version, properties size, properties, raw LZMA1 (EOS)
        c = zipfile.LZMACompressor()
        return c.compress(data) + c.flush()
    if method == ZIP_ZSTD:
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True,
                              timeout=60).stdout
    if method == ZIP_XZ:
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    raise ValueError(method)


def _crc_table():
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        out.append(c)
    return out


_CRC = _crc_table()


def zipcrypto(data, check, password=PASSWORD, rng=None):
    """Traditional PKWARE encryption (APPNOTE 6.1): a 12-byte header whose last byte is check (the
    CRC's high byte; the time's with a data descriptor), then the data, XORed with the key stream."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(b):
        keys[0] = (keys[0] >> 8) ^ _CRC[(keys[0] ^ b) & 0xFF]
        keys[1] = (keys[1] + (keys[0] & 0xFF)) & 0xFFFFFFFF
        keys[1] = (keys[1] * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = (keys[2] >> 8) ^ _CRC[(keys[2] ^ (keys[1] >> 24)) & 0xFF]

    for b in password:
        update(b)
    rng = rng or random.Random(0)
    head = bytes(rng.randrange(256) for _ in range(11)) + bytes([check])
    out = bytearray()
    for b in head + data:
        k = keys[2] | 2
        out.append(b ^ (((k * (k ^ 1)) >> 8) & 0xFF))
        update(b)
    return bytes(out)


@dataclasses.dataclass
class Entry:
    name: bytes
    data: bytes
    method: int = ZIP_DEFLATED
    flags: int = 0
    dd: bool = False            # data descriptor (bit 3): sizes and CRC 0 in the local header
    dd_sig: bool = True         # the descriptor starts with PK\7\8
    encrypt: bool = False
    zip64: bool = False
    in_cd: bool = True
    local: dict = dataclasses.field(default_factory=dict)     # local header fields to override
    central: dict = dataclasses.field(default_factory=dict)   # central header fields to override
    extra: bytes = b""


def build_zip(entries, prefix=b"", adjust=True, cd=True, zip64_end=False, comment=b"", rng=None):
    """The zip of entries behind prefix. adjust: offsets count from the start of the file (as zip -A
    writes an SFX), else from the start of the zip. cd False: no central directory, no end record."""
    out = bytearray(prefix)
    base = len(prefix) if not adjust else 0
    cds = []
    for e in entries:
        crc = zlib.crc32(e.data)
        body = compress(e.method, e.data)
        flags = e.flags | (8 if e.dd else 0) | (2 if e.method == ZIP_LZMA else 0)
        if e.encrypt:
            body = zipcrypto(body, (DOS_TIME >> 8) & 0xFF if e.dd else crc >> 24, rng=rng)
            flags |= 1
        usize, csize = len(e.data), len(body)
        off = len(out) - base
        f = {"name": e.name, "flags": flags, "method": e.method, "crc": crc, "csize": csize,
             "usize": usize, "extra": e.extra, "version": 63 if e.method == ZIP_LZMA else 20}
        loc = dict(f)
        if e.dd:
            loc.update(crc=0, csize=0, usize=0)
        if e.zip64:
            loc["extra"] = struct.pack("<HHQQ", 1, 16, usize, csize) + loc["extra"]
            if not e.dd:
                loc.update(csize=0xFFFFFFFF, usize=0xFFFFFFFF)
            loc["version"] = 45
        loc.update(e.local)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, loc["version"], loc["flags"], loc["method"],
                           DOS_TIME, DOS_DATE, loc["crc"], loc["csize"], loc["usize"],
                           len(loc["name"]), len(loc["extra"])) + loc["name"] + loc["extra"]
        out += body
        if e.dd:
            fmt = "<IQQ" if e.zip64 else "<III"
            out += (struct.pack("<I", 0x08074B50) if e.dd_sig else b"") + struct.pack(fmt, crc, csize, usize)
        cen = dict(f, offset=off)
        if e.zip64:
            cen["extra"] = struct.pack("<HHQQQ", 1, 24, usize, csize, off) + cen["extra"]
            cen.update(csize=0xFFFFFFFF, usize=0xFFFFFFFF, offset=0xFFFFFFFF, version=45)
        cen.update(e.central)
        if e.in_cd:
            cds.append(cen)
    if not cd:
        return bytes(out)
    cd_off = len(out) - base
    for c in cds:
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, c["version"], c["flags"], c["method"],
                           DOS_TIME, DOS_DATE, c["crc"], c["csize"], c["usize"], len(c["name"]),
                           len(c["extra"]), 0, 0, 0, 0o100644 << 16, c["offset"]) + c["name"] + c["extra"]
    cd_size = len(out) - base - cd_off
    n = len(cds)
    if zip64_end:
        z64 = len(out) - base
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_off)
        out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(comment))
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_off, len(comment))
    return bytes(out + comment)


# --- Fillers, prefixes ---

def text(rng, n):
    words = [b"alpha", b"beta", b"gamma", b"report", b"the", b"of", b"2024", b"log", b"ok", b"value"]
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(rng.randrange(4, 12))) + b"\n"
    return bytes(out[:n])


def prefix(rng, kind=None):
    kind = kind or rng.choice(["junk", "mz", "sh", "html"])
    if kind == "junk":
        return kind, bytes(rng.randrange(256) for _ in range(rng.choice([64, 1000, 4096])))
    if kind == "mz":    # an MZ stub with a PE offset past itself, as an SFX stub starts
        stub = bytearray(b"MZ" + bytes(58) + struct.pack("<I", 0x80) + bytes(0x80 - 64))
        stub += b"PE\0\0" + bytes(rng.randrange(256) for _ in range(rng.choice([256, 2048])))
        return kind, bytes(stub)
    if kind == "sh":
        return kind, b"#!/bin/sh\nexec unzip -o \"$0\"\nexit 0\n" + text(rng, rng.choice([100, 3000]))
    return kind, b"<html><body>\n" + text(rng, rng.choice([200, 5000])) + b"</body></html>\n"


def tool(name):
    return shutil.which(name) is not None


def _run(args, cwd=None, stdin=None):
    subprocess.run(args, cwd=cwd, check=True, stdin=stdin or subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120)


def sevenz_folders(groups):
    """A 7z whose members are added in turns [(method, [(name, data)])]: each turn is a folder of its
    own with its own coder (7z u), so a Copy folder's bytes lie in the 7z as they are."""
    with tempfile.TemporaryDirectory(prefix="disagree-7z-") as d:
        for method, members in groups:
            names = []
            for name, data in members:
                p = pathlib.Path(d, name)
                p.write_bytes(data)
                os.utime(p, (FIXED_TIME, FIXED_TIME))
                names.append(name)
            _run(["7z", "u", "-t7z", f"-m0={method}", "-ms=off", "-mtm=off", "-mtc=off", "-mta=off",
                  "out.7z", *names], cwd=d)
        return pathlib.Path(d, "out.7z").read_bytes()


def gzip_member(data, name=None):
    return gzip.compress(data, mtime=0)


def pbzip2(data, block=9):
    """What pbzip2 writes: one bzip2 stream per block of block * 100 kB (pbzip2 itself when
    installed)."""
    if tool("pbzip2"):
        r = subprocess.run(["pbzip2", "-c", "-9", f"-b{block}", "-p1"], input=data, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, check=True, timeout=120)
        return r.stdout
    step = block * 100000
    return b"".join(bz2.compress(data[i:i + step]) for i in range(0, len(data), step))


# --- tar and cpio, written by hand where the dialect needs it ---

def _tar_header(name, size_field, typeflag=b"0", magic=b"ustar\x0000", prefix_=b""):
    h = bytearray(512)
    h[0:len(name[:100])] = name[:100]
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field
    h[136:148] = b"%011o\0" % FIXED_TIME
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    if magic:
        h[257:265] = magic
        h[345:345 + len(prefix_)] = prefix_
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _pad(data):
    return data + bytes(-len(data) % 512)


def pax_record(key, value):
    """b"LEN key=value\\n", LEN counting itself."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n += 1
    return b"%d" % n + body


def tar_member(name, data, dialect):
    size = len(data)
    if dialect == "base256":
        field = b"\x80" + bytes(3) + size.to_bytes(8, "big")
        return _tar_header(name, field, magic=b"ustar  \0") + _pad(data)
    if dialect == "pax_size":   # the ustar size lies (0); the PAX record gives the real one
        rec = pax_record(b"size", b"%d" % size)
        pax = _tar_header(b"PaxHeaders/" + name[:80], b"%011o\0" % len(rec), typeflag=b"x")
        return pax + _pad(rec) + _tar_header(name, b"%011o\0" % 0) + _pad(data)
    if dialect == "gnu_longname":
        long = name
        ln = _tar_header(b"././@LongLink", b"%011o\0" % (len(long) + 1), typeflag=b"L", magic=b"ustar  \0")
        head = _tar_header(name[:99], b"%011o\0" % size, magic=b"ustar  \0")
        return ln + _pad(long + b"\0") + head + _pad(data)
    if dialect == "gnu_type7":     # a contiguous file: GNU tar reads it as a regular one
        return _tar_header(name, b"%011o\0" % size, typeflag=b"7", magic=b"ustar  \0") + _pad(data)
    if dialect == "v7":
        return _tar_header(name, b"%011o\0" % size, typeflag=b"\0", magic=b"") + _pad(data)
    if dialect == "pax_path":   # a PAX path= record with a non-ASCII name
        rec = pax_record(b"path", name)
        pax = _tar_header(b"PaxHeaders/x", b"%011o\0" % len(rec), typeflag=b"x")
        return pax + _pad(rec) + _tar_header(b"short", b"%011o\0" % size) + _pad(data)
    return _tar_header(name, b"%011o\0" % size) + _pad(data)


def tar_archive(members):
    return b"".join(tar_member(n, d, dialect) for n, d, dialect in members) + bytes(1024)


def cpio_archive(members, fmt):
    out = bytearray()
    ino = 1
    for name, data in members + [(b"TRAILER!!!", b"")]:
        nm = name + b"\0"
        mode = 0o100644 if data or name != b"TRAILER!!!" else 0
        if fmt in ("newc", "crc"):
            chk = sum(data) & 0xFFFFFFFF if fmt == "crc" else 0
            magic = b"070702" if fmt == "crc" else b"070701"
            out += magic + b"".join(b"%08X" % v for v in (ino, mode, 0, 0, 1, FIXED_TIME, len(data), 0, 0,
                                                          0, 0, len(nm), chk)) + nm
            out += bytes(-len(out) % 4) + data + bytes(-len(data) % 4)
        elif fmt == "odc":
            out += b"070707" + b"%06o%06o%06o%06o%06o%06o%06o%011o%06o%011o" % (
                0, ino, mode, 0, 0, 1, 0, FIXED_TIME, len(nm), len(data)) + nm + data
        else:   # old binary, little-endian
            out += struct.pack("<HHHHHHHHHHHHH", 0o070707, 0, ino, mode, 0, 0, 1, 0,
                               FIXED_TIME >> 16, FIXED_TIME & 0xFFFF, len(nm), len(data) >> 16,
                               len(data) & 0xFFFF) + nm + bytes(len(nm) % 2) + data + bytes(len(data) % 2)
        ino += 1
    return bytes(out + bytes(-len(out) % 512))


# --- The generator ---

class Generator:
    def __init__(self, seed=None):
        self.seed = int(os.environ.get("DISAGREE_SEED", DEFAULT_SEED)) if seed is None else seed

    def samples(self, count=None):
        count = int(os.environ.get("DISAGREE_COUNT", DEFAULT_COUNT)) if count is None else count
        out = []
        for i in range(count):
            cls = CLASSES[i % len(CLASSES)]
            rng = random.Random(f"{self.seed}:{i}:{cls}")
            variant, data, recipe = getattr(self, "gen_" + cls)(rng)
            out.append(Sample(f"{cls}-{i:03d}-{variant}", cls, data, recipe))
        return out

    # Members: a few clean ones and EICAR (alone, or inside text) in one of them.
    def members(self, rng, n=None, wrap=False):
        """[(name, body)] and the index of EICAR's; wrap: EICAR's body is compressed (gzip, bzip2 or
        xz), so that a scanner which skips the member cannot find EICAR by scanning the bytes raw."""
        n = n or rng.randrange(2, 5)
        names = [f"dir{rng.randrange(9)}/file{k}.{rng.choice(['txt', 'log', 'bin', 'com'])}"
                 for k in range(n)]
        hit = rng.randrange(n)
        out = []
        for k, name in enumerate(names):
            body = text(rng, rng.choice([0, 10, 300, 5000]))
            if k == hit:
                body = EICAR if rng.random() < 0.4 else body + b"\n" + EICAR + b"\n" + text(rng, 100)
                if wrap:
                    ext, pack = rng.choice([(".gz", gzip_member), (".bz2", bz2.compress),
                                            (".xz", lzma.compress)])
                    name, body = name + ext, pack(body)
            out.append((name.encode(), body))
        return out, hit

    def method(self, rng, allow=("stored", "deflate", "bzip2", "lzma")):
        m = rng.choice(allow)
        return m, METHODS[m]

    def gen_zip_dd(self, rng):
        mem, hit = self.members(rng)
        ents, desc = [], []
        for k, (n, d) in enumerate(mem):
            m, code = self.method(rng, ("deflate", "lzma", "bzip2", "stored") if k == hit else
                                  ("deflate", "stored", "lzma"))
            dd = rng.random() < 0.8 or k == hit
            sig = rng.random() < 0.7
            ents.append(Entry(n, d, code, dd=dd, dd_sig=sig))
            desc.append(f"{n.decode()}:{m}{':dd' if dd else ''}{'' if sig else '(nosig)'}"
                        f"{':EICAR' if k == hit else ''}")
        return "dd", build_zip(ents), "zip, data descriptors: " + ", ".join(desc)

    def gen_zip_nocd(self, rng):
        mem, hit = self.members(rng)
        dd = rng.random() < 0.5
        ents = [Entry(n, d, self.method(rng, ("deflate", "stored"))[1], dd=dd) for n, d in mem]
        return ("nocd-dd" if dd else "nocd"), build_zip(ents, cd=False), \
            f"zip of {len(ents)} local entries (data descriptors {dd}), no central directory, EICAR in #{hit}"

    def gen_zip_lying_cd(self, rng):
        mem, hit = self.members(rng)
        ents = [Entry(n, d, self.method(rng, ("deflate", "stored", "bzip2"))[1]) for n, d in mem]
        e = ents[hit]
        lie = rng.choice(["name", "csize", "usize", "method", "hidden", "dup_name", "offset", "extra",
                          "dd_flag", "crc"])
        if lie == "name":
            e.central["name"] = b"innocent.txt"
        elif lie == "csize":
            e.central["csize"] = rng.choice([0, 1, 5])
        elif lie == "usize":
            e.central["usize"] = rng.choice([0, 5])
        elif lie == "method":
            e.central["method"] = ZIP_STORED if e.method != ZIP_STORED else ZIP_DEFLATED
        elif lie == "hidden":   # in the local headers only
            e.in_cd = False
        elif lie == "dup_name":  # a clean entry of the same name first
            ents.insert(hit, Entry(e.name, text(rng, 64), ZIP_DEFLATED))
        elif lie == "offset":   # the central directory points EICAR's entry at the first entry
            if hit == 0:
                ents.insert(0, Entry(b"first.txt", text(rng, 200), ZIP_STORED))
            e.central["offset"] = 0
            e.central["name"] = ents[0].name
            e.central["csize"] = len(compress(ents[0].method, ents[0].data))
            e.central["usize"] = len(ents[0].data)
            e.central["crc"] = zlib.crc32(ents[0].data)
            e.central["method"] = ents[0].method
        elif lie == "extra":    # a truncated Zip64 extra field and an unknown one
            e.central["extra"] = (struct.pack("<HH", 0x0001, 4) + b"\xff" * 4 +
                                  struct.pack("<HH", 0x7075, 3) + b"abc")
            e.local["extra"] = struct.pack("<HH", 0xCAFE, 0)
        elif lie == "dd_flag":  # bit 3 only in the central directory
            e.central["flags"] = 8
        elif lie == "crc":
            e.central["crc"] = 0
        return lie, build_zip(ents), \
            f"zip, central directory lies ({lie}) about EICAR's entry #{hit} of {len(mem)}"

    def gen_zip_prefix(self, rng):
        kind, pre = prefix(rng)
        mem, hit = self.members(rng)
        ents = [Entry(n, d, self.method(rng, ("deflate", "stored", "bzip2"))[1],
                      dd=rng.random() < 0.3) for n, d in mem]
        adjust = rng.random() < 0.5
        return f"{kind}-{'adj' if adjust else 'noadj'}", build_zip(ents, prefix=pre, adjust=adjust), \
            f"{len(pre)} bytes of {kind} then a zip of {len(mem)} (offsets adjusted {adjust}), " \
            f"EICAR in #{hit}"

    def gen_zip64(self, rng):
        mem, hit = self.members(rng)
        ents = [Entry(n, d, self.method(rng, ("deflate", "stored", "bzip2"))[1],
                      zip64=rng.random() < 0.7 or k == hit,
                      dd=rng.random() < 0.3) for k, (n, d) in enumerate(mem)]
        z64end = rng.random() < 0.5
        return ("z64end" if z64end else "z64"), build_zip(ents, zip64_end=z64end), \
            f"zip, Zip64 extra fields ({[e.zip64 for e in ents]}), Zip64 end {z64end}, EICAR in #{hit}"

    def gen_zip_names(self, rng):
        mem, hit = self.members(rng)
        kind = rng.choice(["utf8", "cp437", "utf8_flag_cp437", "long", "dotslash", "backslash"])
        ents = []
        for k, (n, d) in enumerate(mem):
            e = Entry(n, d, self.method(rng, ("deflate", "stored"))[1])
            if k == hit:
                if kind == "utf8":
                    e.name, e.flags = "résumé-ünïcödé-файл.txt".encode(), 0x800
                elif kind == "cp437":
                    e.name = "r\u00e9sum\u00e9-\u00c7\u00fc.txt".encode("cp437")
                elif kind == "utf8_flag_cp437":    # the flag says UTF-8, the bytes are not
                    e.name, e.flags = b"bad\x82\x81\xff.txt", 0x800
                elif kind == "long":
                    e.name = b"d/" * 150 + b"x.txt"
                elif kind == "dotslash":
                    e.name = b"./a/./b//c.txt"
                else:
                    e.name = b"dir\\sub\\eicar.com"
            ents.append(e)
        return kind, build_zip(ents), \
            f"zip, EICAR's entry #{hit} named {ents[hit].name!r} (flags {ents[hit].flags:#x})"

    def gen_zip_crypt(self, rng):
        mem, hit = self.members(rng)
        where = rng.choice(["local_clear", "central_clear", "both"])
        ents = []
        for k, (n, d) in enumerate(mem):
            e = Entry(n, d, self.method(rng, ("deflate", "stored"))[1], encrypt=(k == hit),
                      dd=rng.random() < 0.3)
            if k == hit:
                crypt_flags = 1 | (8 if e.dd else 0)
                if where == "local_clear":
                    e.local["flags"] = crypt_flags & ~1
                elif where == "central_clear":
                    e.central["flags"] = crypt_flags & ~1
            ents.append(e)
        return where, build_zip(ents, rng=rng), \
            f"zip, entry #{hit} ZipCrypto (password {PASSWORD.decode()}), encryption bit: {where}"

    def gen_multistream(self, rng):
        kind = rng.choice(["gzip", "bzip2", "xz", "pbzip2"])
        parts = [text(rng, rng.choice([100, 20000, 200000])) for _ in range(rng.randrange(2, 5))]
        parts[-1] += EICAR
        if kind == "gzip":
            data = b"".join(gzip_member(p) for p in parts)
        elif kind == "bzip2":
            data = b"".join(bz2.compress(p) for p in parts)
        elif kind == "xz":
            data = b"".join(lzma.compress(p) for p in parts)
        else:
            data = pbzip2(b"".join(parts), block=1)
        return kind, data, f"{len(parts)} {kind} streams, EICAR at the end of the last"

    def gen_nested(self, rng):
        kind = rng.choice(["zip_in_7z", "7z_prefix_in_zip", "stored_zip_bzip2_7z", "zip_tar_gz"]
                          if tool("7z") else ["zip_tar_gz"])
        mem, hit = self.members(rng)
        inner = build_zip([Entry(n, d, ZIP_DEFLATED) for n, d in mem])
        if kind == "zip_in_7z":
            data = sevenz_folders([(rng.choice(["LZMA2", "Copy", "BZip2"]), [("inner.zip", inner)])])
        elif kind == "7z_prefix_in_zip":
            s7 = sevenz_folders([("LZMA2", [(n.decode().replace("/", "_"), d) for n, d in mem])])
            _, pre = prefix(rng, "mz")
            data = build_zip([Entry(b"setup.exe", pre + s7, rng.choice([ZIP_STORED, ZIP_DEFLATED])),
                              Entry(b"readme.txt", text(rng, 300))])
        elif kind == "stored_zip_bzip2_7z":
            clean = build_zip([Entry(b"a.txt", text(rng, 500), ZIP_STORED),
                               Entry(b"b.txt", text(rng, 50), ZIP_STORED)])
            data = sevenz_folders([("Copy", [("stored.zip", clean)]), ("BZip2", [("eicar.com", EICAR)])])
        else:
            data = gzip_member(tar_archive([(b"inner.zip", inner, "ustar"),
                                            (b"x.txt", text(rng, 99), "ustar")]))
        return kind, data, f"nested: {kind}, EICAR in member #{hit} of the inner archive"

    def gen_tar_dialect(self, rng):
        mem, hit = self.members(rng, wrap=True)
        dialect = rng.choice(["base256", "pax_size", "gnu_longname", "v7", "pax_path", "gnu_type7"])
        out = []
        for k, (n, d) in enumerate(mem):
            name = n
            if k == hit and dialect == "gnu_longname":
                name = b"long/" * 30 + b"eicar.com"
            if k == hit and dialect == "pax_path":
                name = "ünïcödé/eicar.com".encode()
            out.append((name, d, dialect if k == hit else rng.choice(["ustar", dialect])))
        data = tar_archive(out)
        wrap = rng.choice(["", "gz", "bz2"])
        if wrap == "gz":
            data = gzip_member(data)
        elif wrap == "bz2":
            data = bz2.compress(data)
        return dialect + (f"-{wrap}" if wrap else ""), data, \
            f"tar, EICAR's member #{hit} in {dialect}{', ' + wrap if wrap else ''}"

    def gen_sfx(self, rng):
        kinds = ["zip_after_zip", "gzip_after_junk"] + (["7z"] if tool("7z") else []) + \
            (["cab"] if tool("gcab") else [])
        kind = rng.choice(kinds)
        pkind, pre = prefix(rng, rng.choice(["mz", "html", "junk"]))
        mem, hit = self.members(rng)
        flat = [(n.decode().replace("/", "_"), d) for n, d in mem]
        if kind == "7z":
            data = pre + sevenz_folders([(rng.choice(["LZMA2", "BZip2", "Deflate"]), flat)])
        elif kind == "cab":
            data = pre + gcab(flat)
        elif kind == "zip_after_zip":
            clean = build_zip([Entry(b"clean.txt", text(rng, 500))])
            adjust = rng.random() < 0.5
            data = build_zip([Entry(n, d) for n, d in mem], prefix=clean, adjust=adjust)
            pkind = f"clean zip (offsets adjusted {adjust})"
        else:
            data = pre + gzip_member(b"".join(d for _, d in mem))
        return f"{kind}", data, f"{kind} behind {len(pre)} bytes of {pkind}, EICAR in member #{hit}"

    def gen_zip_methods(self, rng):
        kinds = ["zstd", "xz", "lzma"] if tool("zstd") else ["xz", "lzma"]
        kinds += ["PPMd", "Deflate64"] if tool("7z") else []
        kind = rng.choice(kinds)
        mem, hit = self.members(rng)
        mem[hit] = (mem[hit][0], text(rng, 2000) + EICAR + text(rng, 500))     # compressible: not stored
        if kind in ("PPMd", "Deflate64"):
            with tempfile.TemporaryDirectory(prefix="disagree-7zip-") as d:
                names = []
                for k, (n, data) in enumerate(mem):
                    name = f"m{k}-" + n.decode().replace("/", "_")
                    pathlib.Path(d, name).write_bytes(data)
                    os.utime(pathlib.Path(d, name), (FIXED_TIME, FIXED_TIME))
                    names.append(name)
                _run(["7z", "a", "-tzip", f"-mm={kind}", "-mtc=off", "out.zip", *names], cwd=d)
                data = pathlib.Path(d, "out.zip").read_bytes()
        else:
            code = {"zstd": ZIP_ZSTD, "xz": ZIP_XZ, "lzma": ZIP_LZMA}[kind]
            data = build_zip([Entry(n, d, code if k == hit else ZIP_DEFLATED, dd=rng.random() < 0.3)
                              for k, (n, d) in enumerate(mem)])
        return kind, data, f"zip, EICAR's member #{hit} compressed with {kind}"

    def gen_cpio(self, rng):
        mem, hit = self.members(rng, wrap=True)
        fmt = rng.choice(["newc", "crc", "odc", "bin"])
        return fmt, cpio_archive(mem, fmt), f"cpio {fmt}, EICAR in member #{hit}"


def gcab(members):
    with tempfile.TemporaryDirectory(prefix="disagree-cab-") as d:
        for name, data in members:
            pathlib.Path(d, name).write_bytes(data)
            os.utime(pathlib.Path(d, name), (FIXED_TIME, FIXED_TIME))
        _run(["gcab", "-c", "-z", "out.cab", *[n for n, _ in members]], cwd=d)
        return pathlib.Path(d, "out.cab").read_bytes()


# --- The families: one regression file each, built here (no large binaries in git) ---

def reg_dd_deflate_lzma(rng):
    """Java/streaming-writer style: both members with data descriptors; EICAR in the LZMA one."""
    return build_zip([Entry(b"readme.txt", text(rng, 2000), ZIP_DEFLATED, dd=True),
                      Entry(b"eicar.com", EICAR, ZIP_LZMA, dd=True)])


def reg_prefix_plus_member(rng, kind):
    """A zip (as Python's zipfile writes it) behind a prefix, one ordinary member next to EICAR."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("notes.txt", (2024, 1, 1, 0, 0, 0)), text(rng, 3000))
        z.writestr(zipfile.ZipInfo("eicar.com", (2024, 1, 1, 0, 0, 0)), EICAR)
    return prefix(rng, kind)[1] + buf.getvalue()


def reg_7z_stored_zip_bzip2(rng):
    """A 7z: a Copy folder holding a stored zip (clean), and a BZip2 folder holding EICAR."""
    inner = build_zip([Entry(b"a.txt", text(rng, 4000), ZIP_STORED),
                       Entry(b"b.txt", text(rng, 100), ZIP_STORED)])
    return sevenz_folders([("Copy", [("stored.zip", inner)]), ("BZip2", [("eicar.com", EICAR)])])


def reg_pbzip2_log(rng):
    """A 3.5 MB log compressed by pbzip2 (a stream per 900 kB block), EICAR at its end."""
    return pbzip2(text(rng, 3500000) + EICAR + b"\n")


HTML_SIZE = 41 << 20


def reg_html_zip(rng):
    """41 MiB of HTML (starting with <html>) and a zip holding EICAR (deflated) appended."""
    line = b"<p>" + text(rng, 70).replace(b"\n", b" ") + b"</p>\n"
    head = b"<html><head><title>report</title></head><body>\n"
    body = head + line * ((HTML_SIZE - len(head)) // len(line) + 1)
    body = body[:HTML_SIZE - 16] + b"</body></html>\n"
    return body + build_zip([Entry(b"eicar.com", EICAR, ZIP_DEFLATED)])


def reg_html_zip_gz(rng):
    return gzip.compress(reg_html_zip(rng), compresslevel=9, mtime=0)


def reg_crypt_local_clear(rng):
    """zip -P pass (ZipCrypto), then bit 0 of the local header's flags cleared: the central
    directory still says encrypted."""
    with tempfile.TemporaryDirectory(prefix="disagree-zip-") as d:
        pathlib.Path(d, "eicar.com").write_bytes(EICAR)
        os.utime(pathlib.Path(d, "eicar.com"), (FIXED_TIME, FIXED_TIME))
        _run(["zip", "-q", "-X", "-P", PASSWORD.decode(), "out.zip", "eicar.com"], cwd=d)
        data = bytearray(pathlib.Path(d, "out.zip").read_bytes())
    assert data[:4] == b"PK\x03\x04" and data[6] & 1, "zip -P did not encrypt"
    data[6] &= 0xFE
    return bytes(data)


def reg_tar(dialect):
    """A tar whose second member (EICAR, gzipped: not visible in the raw bytes) has dialect's header."""
    def build(rng):
        return tar_archive([(b"notes.txt", text(rng, 1000), "ustar"),
                            (b"eicar.com.gz", gzip_member(EICAR), dialect)])
    return build


REGRESSION = {      # name: (builder(rng), tools it needs, what the issue says)
    "dd_deflate_lzma.zip": (reg_dd_deflate_lzma, (), "data descriptors, deflate + LZMA(EICAR)"),
    "prefix_junk_plus_member.zip": (lambda r: reg_prefix_plus_member(r, "junk"), (),
                                    "zip behind junk + ordinary member"),
    "prefix_mz_plus_member.exe": (lambda r: reg_prefix_plus_member(r, "mz"), (),
                                  "zip behind an MZ stub + ordinary member"),
    "prefix_html_plus_member.html": (lambda r: reg_prefix_plus_member(r, "html"), (),
                                     "zip behind HTML + ordinary member"),
    "stored_zip_bzip2_eicar.7z": (reg_7z_stored_zip_bzip2, ("7z",), "7z: stored zip + BZip2 EICAR"),
    "pbzip2_log.bz2": (reg_pbzip2_log, (), "pbzip2 3.5 MB log, EICAR at the end"),
    "html41mib_zip.html": (reg_html_zip, (), "41 MiB <html> + zip"),
    "html41mib_zip.html.gz": (reg_html_zip_gz, (), "41 MiB <html> + zip, gzipped"),
    "crypt_local_bit_clear.zip": (reg_crypt_local_clear, ("zip",), "ZipCrypto, local encryption bit cleared"),
    "tar_base256.tar": (reg_tar("base256"), (), "tar, base-256 size"),
    "tar_pax_size.tar": (reg_tar("pax_size"), (), "tar, PAX size= over a ustar size of 0"),
    "tar_gnu_type7.tar": (reg_tar("gnu_type7"), (), "tar, GNU typeflag 7"),
    "tar_gnu_longname.tar": (reg_tar("gnu_longname"), (), "tar, GNU long name"),
}


def regression_file(name, seed=DEFAULT_SEED):
    """The path of regression file name, built under build/disagree/regression/<hash>/ once."""
    builder, needs, _ = REGRESSION[name]
    missing = [t for t in needs if not tool(t)]
    if missing:
        raise FileNotFoundError(f"{name} needs {missing}")
    folder = _mkdir(CACHE / "regression" / f"{generator_hash()}-{seed}")
    path = folder / name
    if not path.exists():
        tmp = folder / (name + f".tmp{os.getpid()}")
        tmp.write_bytes(builder(random.Random(f"{seed}:{name}")))
        tmp.rename(path)
        _prune(folder.parent)
    return path


# --- The oracle: which installed readers extract EICAR ---

ARCHIVE_MAGIC = (b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"BZh", b"\x1f\x8b", b"\xfd7zXZ\0", b"070701",
                 b"070702", b"070707", b"\xc7\x71", b"MZ", b"Rar!")


def looks_like_archive(data):
    return (data[:6].startswith(ARCHIVE_MAGIC) or data[257:262] == b"ustar" or
            b"PK\x03\x04" in data[:1 << 20] or b"PK\x05\x06" in data[-(66 << 10):])


def _py_zipfile(path, out):
    with zipfile.ZipFile(path) as z:
        for i, info in enumerate(z.infolist()):
            try:
                data = z.read(info, pwd=PASSWORD)
            except Exception:   # a member this reader cannot extract: the others are still read
                continue
            (out / f"m{i}").write_bytes(data)


def _py_tarfile(path, out):
    with tarfile.open(path, "r:*") as t:
        for i, m in enumerate(t):
            if m.isfile():
                f = t.extractfile(m)
                (out / f"m{i}").write_bytes(f.read())


def _py_stream(mod):
    def run(path, out):
        (out / "m0").write_bytes(mod.decompress(pathlib.Path(path).read_bytes()))
    return run


PY_READERS = {"zipfile": _py_zipfile, "tarfile": _py_tarfile, "gzip": _py_stream(gzip),
              "bz2": _py_stream(bz2), "lzma": _py_stream(lzma)}
CLI_READERS = {     # name: (tool, argv with {f} the file and {d} the folder, read from stdin)
    "bsdtar": ("bsdtar", ["bsdtar", "--passphrase", "pass", "-xf", "{f}", "-C", "{d}"], False),
    "bsdtar-stream": ("bsdtar", ["bsdtar", "--passphrase", "pass", "-xf", "-", "-C", "{d}"], True),
    "7z": ("7z", ["7z", "x", "-y", "-bd", "-ppass", "-o{d}", "{f}"], False),
    "unzip": ("unzip", ["unzip", "-qq", "-o", "-P", "pass", "{f}", "-d", "{d}"], False),
    "gnutar": ("tar", ["tar", "-xf", "{f}", "-C", "{d}"], False),
}


def installed_readers():
    return list(PY_READERS) + [n for n, (t, _, _) in CLI_READERS.items() if tool(t)]


def _extract(reader, path, out):
    """Extracts path with reader into the folder out (best effort: a reader that fails part way keeps
    what it got)."""
    if reader in PY_READERS:
        try:
            PY_READERS[reader](path, out)
        except Exception:   # a reader that cannot read the file at all
            pass
        return
    _, argv, stdin = CLI_READERS[reader]
    argv = [a.replace("{f}", str(path)).replace("{d}", str(out)) for a in argv]
    try:
        # A pipe, not the file: libarchive seeks (and reads the central directory) when it can.
        subprocess.run(argv, input=pathlib.Path(path).read_bytes() if stdin else b"",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=READER_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass


def findings(data, depth=DEPTH, readers=None):
    """{reader chain: [member, ...]} of the members in which some reader (or chain of readers, one
    per level) finds EICAR."""
    readers = readers or installed_readers()
    found = {}
    with tempfile.TemporaryDirectory(prefix="disagree-oracle-") as d:
        src = pathlib.Path(d, "sample")
        src.write_bytes(data)
        for reader in readers:
            out = pathlib.Path(d, "x-" + reader)
            out.mkdir()
            _extract(reader, src, out)
            for p in sorted(out.rglob("*")):
                if not p.is_file() or p.is_symlink():
                    continue
                got = p.read_bytes()
                member = str(p.relative_to(out))
                if EICAR in got:
                    found.setdefault(reader, []).append(member)
                elif depth > 1 and looks_like_archive(got):
                    for chain, members in findings(got, depth - 1, readers).items():
                        found.setdefault(f"{reader}>{chain}", []).extend(f"{member}>{m}" for m in members)
    return found


def eicar_only_db(path):
    """daily.cud with EICAR's hash and body signatures only (make-testdb's without the ClamAV test
    file), so that nothing but EICAR can make an answer malware by name."""
    src, empty = path / "src", path / "empty"
    for d in (src, empty):
        d.mkdir(parents=True)
    (src / "daily.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Win.Test.EICAR_HDB-1\n")
    (src / "daily.ndb").write_text(f"Eicar-Test-Signature:0:*:{EICAR.hex()}\n")
    (src / "COPYING").write_text("clamrest test database\n")
    subprocess.run(["sigtool", "--build=daily.cud", "--unsigned", "--cvd-version=27000", "--no-cdiff",
                    f"--datadir={empty}"], cwd=src, input=b"clamrest\n", check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = path / "db"
    db.mkdir()
    shutil.copy(src / "daily.cud", db / "daily.cud")
    return db


# --- The cached corpus ---

# The outside tools that build samples or read them, with the arguments that print their version.
TOOLS = (("7z", ()), ("gcab", ("--version",)), ("pbzip2", ("-V",)), ("zstd", ("--version",)),
         ("zip", ("-v",)), ("bsdtar", ("--version",)), ("unzip", ("-v",)), ("tar", ("--version",)))


@functools.lru_cache(maxsize=1)
def generator_hash():
    """The cache key: this file, the readers installed, the tools' versions (a new bsdtar may read a
    sample differently), Python's and zlib's."""
    h = hashlib.sha256(pathlib.Path(__file__).read_bytes())
    h.update(" ".join(installed_readers()).encode())
    for line in adversarial.tool_versions(TOOLS) + [sys.version, zlib.ZLIB_RUNTIME_VERSION]:
        h.update(line.encode() + b"\0")
    return h.hexdigest()[:16]


def corpus(seed=None, count=None):
    """[(Sample, findings)] of Generator(seed).samples(count), from build/disagree/<key>/ when it is
    there, else built (and the readers run) and written there."""
    gen = Generator(seed)
    count = int(os.environ.get("DISAGREE_COUNT", DEFAULT_COUNT)) if count is None else count
    folder = CACHE / f"{generator_hash()}-{gen.seed}-{count}"
    index = folder / "index.json"
    if index.exists():
        out = []
        for row in json.loads(index.read_text()):
            data = (folder / row["name"]).read_bytes()
            out.append((Sample(row["name"], row["cls"], data, row["recipe"]), row["findings"]))
        return out
    out = [(s, findings(s.data)) for s in gen.samples(count)]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=_mkdir(CACHE)))
    for s, _ in out:
        (tmp / s.name).write_bytes(s.data)
    (tmp / "index.json").write_text(json.dumps([{"name": s.name, "cls": s.cls, "recipe": s.recipe,
                                                 "findings": f} for s, f in out], indent=1))
    try:
        tmp.rename(folder)
    except OSError:     # another run wrote it first
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(CACHE)
    return out


def _prune(parent):
    """Removes what an older generator left in parent (another hash: never read again)."""
    key = generator_hash()
    for p in parent.iterdir():
        if p.is_dir() and p.name != "regression" and not p.name.startswith(key) and "." not in p.name:
            shutil.rmtree(p, ignore_errors=True)


def _mkdir(p):
    p.mkdir(parents=True, exist_ok=True)
    return p


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--out", help="write the samples to this folder")
    a = ap.parse_args(argv)
    rows = corpus(a.seed, a.count)
    for s, f in rows:
        says = "EICAR via " + ",".join(sorted(f)) if f else "no reader finds EICAR"
        print(f"{s.name:40} {len(s.data):8} {says}"
              f"  [{s.recipe}]")
        if a.out:
            _mkdir(pathlib.Path(a.out))
            pathlib.Path(a.out, s.name).write_bytes(s.data)
    print(f"{sum(1 for _, f in rows if f)} of {len(rows)} samples give EICAR to some reader")


if __name__ == "__main__":
    main(sys.argv[1:])
