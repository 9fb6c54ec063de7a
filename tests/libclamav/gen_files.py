#!/usr/bin/python3
"""gen_files.py -- seeded files for the engine part of the libclamav differential test, made to reach
what gen_db.py's engine database (`gen_db.py --engine`) aims at.

Usage: gen_files.py OUTDIR [PE_FILE...]

* executables, whole and broken: an ELF64 (/usr/bin/true), a synthetic ELF32 and Mach-O (32/64-bit,
  with sections), the PE files given; each also without sections (ELF e_shnum=0, Mach-O segment
  without sections or no segment, PE NumberOfSections=0), with its section table cut off, and
  truncated at several lengths. ELF/Mach-O files without sections are the regression files of fix
  0101 (SL+ on them read sections[-1]): their names start with "nosec-".
* several executables in one scan (zip, tar, nested, an executable carrying a zip) and executables
  whose relative-offset patterns are reached thousands of times over several scan buffers (0504).
* macro files: the anchors and group members of the engine database's macro signatures at
  distances inside and outside the signatures' ranges, repeated, with and without "00 00" runs.
* byte-compare files (an anchor followed by numbers in decimal/hex text and binary), YARA files
  (the rules' strings in several combinations), identical-byte files, and runs of zero bytes.
* Boyer-Moore files (the BM_* patterns, which the engine database's eng-bm and eng-bmlong signatures
  are made of, all plain bytes: libclamav's Boyer-Moore matcher, not Aho-Corasick): each pattern as a
  whole file, at the start and at the end of a file, mixed with random bytes, in text to be
  normalised, and across the boundaries of libclamav's 128 KiB scan windows (the windows overlap by
  the longest pattern, so the patterns sit at every distance from both ends of the overlap).
* OLE2 files (speed patch 0506 memoises the directory's sector chain): long directory chains looked
  up out of order, a cycle in the chain, chains that end early (each FAT marker, a sector past the
  file, past the FAT, a hop through the XBAT), property indices past the chain and past the file,
  seeded random breaks; the same for the mini stream's and the SBAT's chains (0507); their streams
  carry EICAR and the BM_LONG patterns across two sectors (two 64-byte blocks).

The byte patterns are shared with gen_db.py (MACRO_*, BCOMP_*, YARA_*, SAME_* below). Same arguments
and DIFF_SEED (environment), same bytes.
"""
import io
import os
import random
import struct
import sys
import tarfile
import zipfile

SEED = 0x656E67696E65 + int(os.environ.get("DIFF_SEED", "0"))  # "engine" (+ DIFF_SEED)
# Shared with gen_db.py --engine.
MACRO_MEMBER = [bytes([0xA5, g, 0x5A]) for g in range(32)]   # group g's member: $g$ NDB
MACRO_ANCHOR = [b"MACANCH" + bytes([0x41 + k]) for k in range(4)]
BCOMP_ANCHOR = b"BCMPANCH"
YARA_STRINGS = [b"yara-alpha", b"YARA-BETA", b"\xde\xad\xbe\xef\x01", b"yara-gamma-42"]
SAME_BYTES = b"SAMEBYTESxx"
# Boyer-Moore patterns. 3 to 5 bytes, several sharing their first bytes (libclamav moves a pattern
# to the slot of a later 3-byte block when the first one's is taken: a prefix);
BM_SHORT = [b"Qz\x01", b"Qz\x01\x02", b"Qz\x01\x02\x03", b"k9_", b"k9_k", b"k9_k9", b"\x01\x02\x03\x04",
            b"\xfe\xff\xfe", b"\xfe\xff\xfe\xff\xfe"]
# identical bytes (every 3-byte block in one slot), of lengths around the skip windows;
BM_SAME = [b"\xee" * n for n in (3, 4, 5, 7, 8, 9, 16, 33, 64, 70)]
# 3-byte blocks of one hash slot (libclamav's 211a + 37b + c), alone and followed by a byte;
BM_COLLIDE = [bytes(t) for t in sorted((a, b, 21845 - 211 * a - 37 * b) for a in range(256) for b in range(256)
                                       if 0 <= 21845 - 211 * a - 37 * b < 256)[::23]]
# long ones, 16 to 70 bytes (eng-bmlong has only these: the skip windows of 16, 32 and 64 bytes);
BM_LONG = [(b"BMLONG%02d-" % n + bytes(range(0x80, 0xff)))[:n] for n in (16, 17, 31, 32, 40, 63, 64, 65, 70)]
# and lowercase text, found in the normalised text of an ASCII file.
BM_TEXT = [b"bmtextsignature", b"bmtext-two-words-here"]
BM_WINDOW = 131072  # SCANBUFF: libclamav scans a file in windows of this size
EICAR_OLE = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def elf32(nsec=2, body=b""):
    """A small ELF32 executable: one PT_LOAD, nsec sections after the body."""
    ehsize, phsize, shsize = 52, 32, 40
    code = b"\x90" * 32 + b"ELF32CODE" + body
    phoff = ehsize
    code_off = phoff + phsize
    shoff = code_off + len(code)
    hdr = b"\x7fELF" + bytes([1, 1, 1, 0]) + b"\0" * 8
    hdr += struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x08048000 + code_off, phoff, shoff if nsec else 0, 0,
                       ehsize, phsize, 1, shsize, nsec, 0)
    ph = struct.pack("<IIIIIIII", 1, 0, 0x08048000, 0x08048000, shoff, shoff, 5, 0x1000)
    sh = b""
    for i in range(nsec):
        sh += struct.pack("<IIIIIIIIII", 0, 1, 6, 0x08048000 + code_off + 16 * i, code_off + 16 * i, 16, 0, 0, 1, 0)
    return hdr + ph + code + sh


def macho(m64=True, nsec=2, segment=True, body=b""):
    """A small Mach-O (x86 or x86_64): one LC_SEGMENT(_64) with nsec sections (or no segment: an
    unknown load command only)."""
    if m64:
        hdr_fmt, seg_fmt, sec_fmt = "<IiiIIIII", "<II16sQQQQIIII", "<16s16sQQIIIIIIII"
        magic, cpu, segcmd = 0xFEEDFACF, 0x01000007, 0x19
    else:
        hdr_fmt, seg_fmt, sec_fmt = "<IiiIIII", "<II16sIIIIIIII", "<16s16sIIIIIIIII"
        magic, cpu, segcmd = 0xFEEDFACE, 7, 0x1
    hsize, segsize, secsize = struct.calcsize(hdr_fmt), struct.calcsize(seg_fmt), struct.calcsize(sec_fmt)
    if segment:
        cmdsize = segsize + nsec * secsize
    else:
        cmdsize = 16
    data_off = hsize + cmdsize
    code = b"MACHOCODE" + b"\xcc" * 23 + body
    if m64:
        hdr = struct.pack(hdr_fmt, magic, cpu, 3, 2, 1, cmdsize, 0, 0)
    else:
        hdr = struct.pack(hdr_fmt, magic, cpu, 3, 2, 1, cmdsize, 0)
    if segment:
        lc = struct.pack(seg_fmt, segcmd, cmdsize, b"__TEXT", 0x1000, 0x1000, 0, data_off + len(code), 5, 5, nsec, 0)
        for i in range(nsec):
            lc += struct.pack(sec_fmt, b"__text%d" % i, b"__TEXT", 0x1000 + data_off + 16 * i, 16,
                              data_off + 16 * i, 0, 0, 0, 0x80000400, 0, 0, *([0] if m64 else []))
    else:
        lc = struct.pack("<IIII", 0x26, 16, 0, 0)
    return hdr + lc + code


def pe_variants(data):
    """NumberOfSections=0, section table cut off (file ends inside it), for a PE."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return {}
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    if lfanew + 24 > len(data) or data[lfanew:lfanew + 4] != b"PE\0\0":
        return {}
    out = {}
    d = bytearray(data)
    struct.pack_into("<H", d, lfanew + 6, 0)
    out["pe-nsec0"] = bytes(d)
    optsize = struct.unpack_from("<H", data, lfanew + 20)[0]
    sect_at = lfanew + 24 + optsize
    out["pe-secttable-cut"] = data[:sect_at + 20]
    return out


def truncations(name, data, rng):
    cuts = sorted({16, 52, 64, 120, 400, len(data) // 2, max(1, len(data) - 100), rng.randrange(1, len(data))})
    return {f"{name}-trunc{c}": data[:c] for c in cuts if c < len(data)}


def executables(rng, pe_files):
    out = {}
    elf = open("/usr/bin/true", "rb").read()
    out["elf64"] = elf
    d = bytearray(elf)
    struct.pack_into("<Q", d, 0x28, 0)
    struct.pack_into("<HH", d, 0x3C, 0, 0)
    out["nosec-elf64"] = bytes(d)
    d = bytearray(elf)
    struct.pack_into("<Q", d, 0x28, len(elf) + 4096)  # section table past the end of the file
    out["elf64-shoff-past-eof"] = bytes(d)
    out.update(truncations("elf64", elf, rng))
    for k, body in enumerate([b"", MACRO_ANCHOR[0] + b"zz" + MACRO_MEMBER[1], b"\0\0" * 8]):
        e32 = elf32(2, body)
        out[f"elf32-{k}"] = e32
        out[f"nosec-elf32-{k}"] = elf32(0, body)
        out.update(truncations(f"elf32-{k}", e32, rng))
        for m64 in (True, False):
            bits = 64 if m64 else 32
            m = macho(m64, 2, True, body)
            out[f"macho{bits}-{k}"] = m
            out[f"nosec-macho{bits}-seg-{k}"] = macho(m64, 0, True, body)
            out[f"nosec-macho{bits}-noseg-{k}"] = macho(m64, 0, False, body)
            out.update(truncations(f"macho{bits}-{k}", m, rng))
    for p in pe_files:
        data = open(p, "rb").read()
        base = "pe-" + os.path.basename(p)
        out[base] = data
        for k, v in pe_variants(data).items():
            out[f"{k}-{os.path.basename(p)}"] = v
        out.update(truncations(base, data, rng))
    return out


def _zip(members, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, method)
    return buf.getvalue()


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layered(exes):
    """Several executables in one scan (patch 0504 keeps the relative offsets computed in a scan
    of a layer: each layer must get its own, from its own target): archives of executables with
    different entry points and sections, nested, an executable carrying a zip of others, and files
    whose relative-offset patterns the trie reaches thousands of times (long runs of the engine
    database's patterns), over several scan buffers. Archives with a sectionless executable are
    named "nosec-" (fix 0101: Debian's library crashes on SL+ there)."""
    out = {}
    unit = b"\x90" * 37 + b"\0" * 9 + b"\xcc" * 11 + b"ELF32CODE" + b"MACHOCODE" + b"\x90\xcc\x90\x90" * 3
    runs = (unit + b"q" * 1400) * 200  # 300 KB: 3 scan buffers; ~40k matches in all-match mode
    out["hits-elf32"] = elf32(2, runs)
    out["hits-macho64"] = macho(True, 2, True, runs)
    pe = [k for k in ("pe-clam.exe", "pe-nsec0-clam.exe") if k in exes]
    if pe:
        out["hits-" + pe[0]] = exes[pe[0]] + runs  # PE overlay
    kinds = ["elf32-0", "macho64-1", "elf64", "macho32-2", "elf32-2"] + pe[:2]
    members = [(k, exes[k]) for k in kinds if k in exes]
    out["layers-exe.zip"] = _zip(members)
    out["layers-exe-deflated.zip"] = _zip(list(reversed(members)), zipfile.ZIP_DEFLATED)
    out["layers-exe.tar"] = _tar(members)
    out["layers-nested.zip"] = _zip([("inner.zip", out["layers-exe.zip"]), ("macho64-0", exes["macho64-0"]),
                                     ("inner.tar", _tar(members[::-1]))])
    out["layers-hits.zip"] = _zip([(k, v) for k, v in sorted(out.items()) if k.startswith("hits-")],
                                  zipfile.ZIP_DEFLATED)
    out["layers-elf32-with-zip"] = elf32(2, b"\x90" * 64 + out["layers-exe.zip"])
    out["layers-macho64-with-zip"] = macho(True, 2, True, b"\xcc" * 64 + _zip(members[::-1]))
    nosec = [(k, exes[k]) for k in ("nosec-elf32-0", "elf32-0", "nosec-macho64-seg-0", "macho64-0",
                                    "nosec-macho32-noseg-2", "elf64", "nosec-elf64") if k in exes]
    out["nosec-layers-exe.zip"] = _zip(nosec)
    out["nosec-layers-exe.tar"] = _tar(nosec[::-1])
    return out


def macro_files(rng):
    out = {}
    for g in range(32):
        a = MACRO_ANCHOR[g % len(MACRO_ANCHOR)]
        m = MACRO_MEMBER[g]
        fill = bytes([0x71]) * 12
        # In range (distance 10 after the anchor's start, what the signatures use for k=0), out of
        # range, anchor twice with one member (stock cancels the second count), zero runs between.
        out[f"macro-g{g}-near"] = a + b"zz" + m + fill + a + fill
        out[f"macro-g{g}-far"] = a + fill + m + fill
        out[f"macro-g{g}-zeros"] = a + b"\0\0" + m + b"\0\0\0\0" + a + b"\0\0" + m + fill
        out[f"macro-g{g}-member-first"] = m + fill + a + b"zz" + m
        pieces = [rng.choice([a, m, b"\0\0", b"q" * rng.randint(0, 12), rng.randbytes(rng.randint(0, 6))])
                  for _ in range(rng.randint(4, 14))]
        out[f"macro-g{g}-mix"] = b"".join(pieces)
    # The issue's file (Mac.ChkA with stock, Mac.ChkB with 0001's bug), in the engine's bytes too.
    out["macro-issue20"] = b"AAAAzzXXXqqqqqqqqqqqAAAAqqqqqqqqqqqqqqqq"
    allg = b"".join(MACRO_ANCHOR[g % 4] + b"zz" + MACRO_MEMBER[g] + b"\0\0" for g in range(32))
    out["macro-all-groups"] = allg
    return out


def bcomp_files(rng):
    out = {}
    for k, v in enumerate([0, 1, 7, 255, 256, 4096, 65535, 0x41414141, 123456]):
        out[f"bcomp-dec-{k}"] = BCOMP_ANCHOR + b"...." + str(v).encode() + b" tail"
        out[f"bcomp-hex-{k}"] = BCOMP_ANCHOR + b"...." + ("%x" % v).encode() + b" tail"
        out[f"bcomp-le-{k}"] = BCOMP_ANCHOR + b"...." + struct.pack("<I", v & 0xFFFFFFFF) + b"tail"
        out[f"bcomp-be-{k}"] = BCOMP_ANCHOR + b"...." + struct.pack(">I", v & 0xFFFFFFFF) + b"tail"
    out["bcomp-at-eof"] = b"x" * 10 + BCOMP_ANCHOR + b"12"
    out["bcomp-at-start"] = BCOMP_ANCHOR
    return out


def yara_files(rng):
    out = {}
    for k in range(16):
        parts = [s for i, s in enumerate(YARA_STRINGS) if k >> i & 1]
        pad = [rng.randbytes(rng.randint(0, 40)) for _ in parts]
        out[f"yara-{k}"] = b"".join(p + s for p, s in zip(pad, parts)) + b"end"
    out["yara-repeat"] = (YARA_STRINGS[0] + b"-") * 5
    out["yara-mz"] = b"MZ" + YARA_STRINGS[1] + b"\0" * 100
    return out


def other_files(rng):
    out = {"zeros-4096": b"\0" * 4096, "zeros-3": b"\0\0\0",
           "zeros-random": bytes(rng.choice([0, 0, 0, rng.randrange(256)]) for _ in range(8192))}
    for k in range(4):
        out[f"same-bytes-{k}"] = rng.randbytes(rng.randint(0, 300)) + SAME_BYTES + rng.randbytes(k * 100)
    return out


def bm_patterns():
    return BM_SHORT + BM_SAME + BM_COLLIDE + [c + b"\xc3" for c in BM_COLLIDE] + BM_LONG + BM_TEXT


def bm_files(rng):
    out = {}
    pats = bm_patterns()
    for k, pat in enumerate(pats):
        out[f"bm-exact-{k}"] = pat
        out[f"bm-pad-{k}"] = rng.randbytes(rng.randint(0, 40)) + pat + rng.randbytes(rng.randint(0, 40))
    out["bm-head-tail"] = BM_LONG[0] + rng.randbytes(1000) + BM_SHORT[2]
    out["bm-head-tail-short"] = BM_SHORT[0] + BM_SAME[0] + b"\x11" + BM_COLLIDE[0]
    for k in range(8):
        out[f"bm-mix-{k}"] = b"".join(rng.choice(pats) + rng.randbytes(rng.randint(0, 9)) for _ in range(rng.randint(4, 40)))
    for k, d in enumerate([-75, -71, -70, -66, -65, -64, -63, -40, -17, -5, -3, -2, -1, 0, 1, 2, 5]):
        data = bytearray(rng.randbytes(2 * BM_WINDOW + 777))
        for at, pat in ((BM_WINDOW + d, BM_LONG[k % len(BM_LONG)]), (BM_WINDOW + d + 80, BM_SHORT[k % len(BM_SHORT)]),
                        (2 * BM_WINDOW - 70 + d, BM_LONG[(k + 3) % len(BM_LONG)]),
                        (BM_WINDOW - 70 + d, BM_SAME[k % len(BM_SAME)]), (len(data) - len(BM_SHORT[k % 3]), BM_SHORT[k % 3])):
            data[at:at + len(pat)] = pat
        out[f"bm-window-{d}"] = bytes(data)
    for k in range(4):
        words = [rng.choice(["BMTextSignature", "bmtext-two-words-here", "plain", "text", "Qz", "k9_k9"]) for _ in range(50)]
        out[f"bm-text-{k}.txt"] = (" " * k + "\n".join(words)).encode()
    return out


# OLE2 (speed patch 0506 memoises the directory's sector chain): markers of a FAT entry.
OLE_FREE, OLE_END, OLE_FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
OLE_XBAT_HOP = 109 * 128 + 3  # a sector number whose FAT entry libclamav reads through the XBAT


def _ole2_entry(name, kind, left, right, child, start=OLE_END, size=0):
    n = (name + "\0").encode("utf-16-le")
    return (n.ljust(64, b"\0") + struct.pack("<HBBIII", len(n), kind, 1, left, right, child) +
            bytes(36) + struct.pack("<III", start, size, 0))


def _ole2_mini(rng, small, free, sectors, fat):
    """Places the small streams {index: (bytes, pattern)} in the mini stream: each in a run of 64-byte
    blocks (the runs in random order), chained in the SBAT in shuffled order, its pattern across
    two blocks that are not adjacent; the mini stream's and the SBAT's sectors taken from free in
    its (shuffled) order. Returns (starts, mini sectors, SBAT sectors, what is left of free)."""
    nblk = {i: -(-len(d) // 64) for i, (d, _) in small.items()}
    total = sum(nblk.values())
    nmini, nsbat = -(-total // 8), -(-total // 128)
    mini, sbat_secs, free = free[:nmini], free[nmini:nmini + nsbat], free[nmini + nsbat:]
    order = sorted(small)
    rng.shuffle(order)
    first, at0 = {}, 0
    for i in order:
        first[i], at0 = at0, at0 + nblk[i]
    data = bytearray(512 * nmini)
    sbat = [OLE_FREE] * (128 * nsbat)
    starts = {}
    for i, (d, pat) in sorted(small.items()):
        mine = list(range(first[i], first[i] + nblk[i]))
        rng.shuffle(mine)
        if mine == sorted(mine):
            mine.reverse()
        starts[i] = mine[0]
        k = next((k for k in range(1, len(mine)) if mine[k] != mine[k - 1] + 1), 0)
        at = max(0, 64 * k - len(pat) // 2)
        d = (d[:at] + pat + d[at + len(pat):])[:len(d)]
        for k, b in enumerate(mine):
            data[64 * b:64 * b + 64] = d[64 * k:64 * (k + 1)].ljust(64, b"\0")
            sbat[b] = mine[k + 1] if k + 1 < len(mine) else OLE_END
    for chain, content in ((mini, bytes(data)), (sbat_secs, struct.pack("<%dI" % len(sbat), *sbat))):
        for k, sec in enumerate(chain):
            sectors[sec] = content[512 * k:512 * (k + 1)]
            fat[sec] = chain[k + 1] if k + 1 < len(chain) else OLE_END
    return starts, mini, sbat_secs, free


def ole2(rng, n_entries, streams, links=None, chain_fat=None, header=None, xbat_next=None, dirs_sorted=False,
         small=None, mini_fat=None):
    """An OLE2 file of n_entries directory entries (index 0 the root) in sectors scattered over the
    file (the directory's chain jumps back and forth; dirs_sorted: forward), the entries after the
    root one tree of siblings, a heap of left/right links in nearly increasing index order (the walk
    looks entries up out of order; an entry that cannot be read loses its subtree, mostly later
    entries; `links`: index -> (right or None: the tree's, child)), streams {index:
    (bytes, pattern)} of 4 KiB and more (big blocks, read through the FAT), each with its pattern
    across two of its sectors that are not adjacent in the file (found only in the stream), and
    small ones (under 4 KiB: in the mini stream, _ole2_mini()). chain_fat(fat, dir_sectors, nsec)
    may break the directory's chain (the FAT entries of its sectors), mini_fat(fat, mini_sectors,
    sbat_sectors, nsec) the mini stream's and the SBAT's; header overrides fields of the header
    (root_start: the root entry's start); xbat_next(dir_sectors): with an XBAT block whose first
    FAT sector gives OLE_XBAT_HOP's next sector, that sector."""
    links = links or {}
    small = small or {}
    ndir = -(-n_entries // 4)
    nstream = {i: -(-len(d) // 512) for i, (d, _) in streams.items()}
    nblk = sum(-(-len(d) // 64) for d, _ in small.values())
    body = ndir + sum(nstream.values()) + (2 if xbat_next is not None else 0) + -(-nblk // 8) + -(-nblk // 128)
    nfat = 1
    while nfat * 128 < nfat + body:
        nfat += 1
    nsec = nfat + body
    free = list(range(nfat, nsec))
    rng.shuffle(free)
    dirs, free = free[:ndir], free[ndir:]
    if dirs_sorted:
        dirs.sort()
    fat = [OLE_FATSECT] * nfat + [OLE_FREE] * (128 * nfat - nfat)
    sectors = {}
    starts = {}
    for i, (d, pat) in sorted(streams.items()):
        mine, free = free[:nstream[i]], free[nstream[i]:]
        starts[i] = mine[0]
        k = next((k for k in range(1, len(mine)) if mine[k] != mine[k - 1] + 1), 1)
        at = 512 * k - len(pat) // 2
        d = d[:at] + pat + d[at + len(pat):]
        for k, sec in enumerate(mine):
            sectors[sec] = d[512 * k:512 * (k + 1)]
            fat[sec] = mine[k + 1] if k + 1 < len(mine) else OLE_END
    mini, sbat_secs = [], []
    if small:
        sstarts, mini, sbat_secs, free = _ole2_mini(rng, small, free, sectors, fat)
        starts.update(sstarts)
        streams = {**streams, **small}
    xbat_fields = (OLE_END, 0)
    if xbat_next is not None:
        xsec, xfat = free[0], free[1]
        sectors[xsec] = struct.pack("<I", xfat) + b"\xff" * 508
        sectors[xfat] = b"\xff" * 12 + struct.pack("<I", xbat_next(dirs)) + b"\xff" * 496
        xbat_fields = (xsec, 1)
    order = list(range(1, n_entries))
    for k in range(0, len(order), 8):
        window = order[k:k + 8]
        rng.shuffle(window)
        order[k:k + 8] = window
    left = {order[(j - 1) // 2]: order[j] for j in range(1, len(order), 2)}
    right = {order[(j - 1) // 2]: order[j] for j in range(2, len(order), 2)}
    h = {"bat_count": nfat, "xbat_start": xbat_fields[0], "xbat_count": xbat_fields[1],
         "root_start": mini[0] if mini else OLE_END, "sbat_start": sbat_secs[0] if sbat_secs else OLE_END}
    h.update(header or {})
    ents = [_ole2_entry("Root Entry", 5, 0xFFFFFFFF, 0xFFFFFFFF, order[0] if order else 0xFFFFFFFF,
                        h["root_start"] & 0xFFFFFFFF, 512 * len(mini))]
    for i in range(1, n_entries):
        r, c = links.get(i, (None, 0xFFFFFFFF))
        r = right.get(i, 0xFFFFFFFF) if r is None else r
        lf = left.get(i, 0xFFFFFFFF)
        if i in streams:
            ents.append(_ole2_entry("S%d" % i, 2, lf, r, c, starts[i], len(streams[i][0])))
        else:
            ents.append(_ole2_entry("D%d" % i, 1, lf, r, c))
    ents += [bytes(128)] * (4 * ndir - n_entries)
    for k, sec in enumerate(dirs):
        sectors[sec] = b"".join(ents[4 * k:4 * k + 4])
        fat[sec] = dirs[k + 1] if k + 1 < ndir else OLE_END
    if chain_fat:
        chain_fat(fat, dirs, nsec)
    if mini_fat:
        mini_fat(fat, mini, sbat_secs, nsec)
    for k in range(nfat):
        sectors[k] = struct.pack("<128I", *fat[128 * k:128 * (k + 1)])
    h.setdefault("prop_start", dirs[0])
    head = (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) +
            struct.pack("<HHHHH6sIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, bytes(6), 0, h["bat_count"] & 0xFFFFFFFF,
                        h["prop_start"] & 0xFFFFFFFF, 0, 4096, h["sbat_start"] & 0xFFFFFFFF, len(sbat_secs),
                        h["xbat_start"], h["xbat_count"]))
    head += struct.pack("<109I", *([k for k in range(nfat)] + [OLE_FREE] * (109 - nfat)))
    return head + b"".join(sectors.get(k, bytes(512)).ljust(512, b"\0") for k in range(nsec))


def ole2_files(rng):
    """OLE2 files whose directory chains stress 0506's memo: long (the memo grows from 64 entries),
    looked up in random order, with a cycle, ending early (end, free and FAT-sector markers, a
    sector past the file, past the FAT (bat_count), through the XBAT), property indices past the
    chain and past the file, and seeded random breaks. Streams carry EICAR and the BM_LONG
    patterns, so which entries a walk reaches shows in the answers (all-matches: every one)."""
    def streams(n, count):
        out = {}
        for j, i in enumerate(sorted(rng.sample(range(1, n), count))):
            pat = EICAR_OLE if j % 5 == 2 else BM_LONG[j % len(BM_LONG)]
            out[i] = (rng.randbytes(4096 + rng.randrange(1200)), pat)
        return out

    def chain_to(k, value):
        def f(fat, dirs, nsec):
            fat[dirs[k]] = value(dirs, nsec) if callable(value) else value
        return f

    out = {}
    n = 1600    # 400 directory sectors
    out["ole2-long"] = ole2(rng, n, streams(n, 12))
    n = 240     # 60 sectors
    out["ole2-cycle"] = ole2(rng, n, streams(n, 8), chain_fat=chain_to(59, lambda d, _: d[20]),
                             links={7: (None, 4 * 75 + 1), 9: (None, 4 * 130 + 3)})
    out["ole2-cycle-self"] = ole2(rng, n, streams(n, 8), chain_fat=chain_to(33, lambda d, _: d[33]))
    ends = {"end": OLE_END, "free": OLE_FREE, "fatsect": OLE_FATSECT, "past-file": lambda d, nsec: nsec + 40,
            "past-fat": lambda d, nsec: 128 * 3 + 7, "xbat": OLE_XBAT_HOP, "fat0": 0}
    for name, value in ends.items():
        out[f"ole2-short-{name}"] = ole2(rng, n, streams(n, 10), chain_fat=chain_to(30, value))
    # The chain's 32nd sector is a sector number read through the XBAT, which goes on to the 33rd
    # (entries 124-127 are not in the file) or to a FAT sector.
    out["ole2-xbat-hop"] = ole2(rng, n, streams(n, 10), chain_fat=chain_to(30, OLE_XBAT_HOP),
                                xbat_next=lambda d: d[32])
    out["ole2-xbat-hop-fat"] = ole2(rng, n, streams(n, 10), chain_fat=chain_to(30, OLE_XBAT_HOP),
                                    xbat_next=lambda d: 0)
    # bat_count below the FAT's sectors: the sectors of the last FAT sector's range are "past the FAT".
    n = 1600
    for name, count in (("batcount-short", 2), ("batcount-negative", -1), ("batcount-zero", 0)):
        out[f"ole2-{name}"] = ole2(rng, n, streams(n, 12), header={"bat_count": count}, dirs_sorted=True)
    n = 240
    beyond = {3: (None, 4 * 60 + 2), 5: (None, 4 * 60 + 40), 11: (None, 0x7FFFFFF0), 13: (None, 0xFFFFFFF0),
              17: (None, 4 * 2000), 19: (None, 1200)}
    out["ole2-index-beyond"] = ole2(rng, n, streams(n, 8), links=beyond)
    out["ole2-propstart-past-fat"] = ole2(rng, n, streams(n, 4), header={"prop_start": 128 * 5 + 1})
    out["ole2-propstart-end"] = ole2(rng, n, streams(n, 4), header={"prop_start": -2})
    for k in range(6):
        n = rng.choice([240, 800, 1600])
        picks = list(ends.values()) + [lambda d, _: rng.choice(d)] * 3

        def breaks(fat, dirs, nsec, picks=picks):
            for _ in range(rng.randint(1, 3)):
                v = rng.choice(picks)
                fat[rng.choice(dirs)] = v(dirs, nsec) if callable(v) else v
        out[f"ole2-random-{k}"] = ole2(rng, n, streams(n, 10), chain_fat=breaks,
                                       links={rng.randrange(1, n): (None, rng.randrange(n + 200))
                                              for _ in range(3)})
    out.update(ole2_mini_files(rng, ends))
    return out


def ole2_mini_files(rng, ends):
    """Small streams (the mini stream, whose sectors and SBAT sectors are chains too): many of them
    (both chains longer than the memo's first 64 entries), and the mini stream's or the SBAT's chain
    ending early (each of `ends`), with a cycle, from a start past the FAT, and seeded random breaks."""
    def small(n, count):
        out = {}
        for j, i in enumerate(sorted(rng.sample(range(1, n), count))):
            pat = EICAR_OLE if j % 7 == 3 else BM_LONG[j % len(BM_LONG)]
            out[i] = (rng.randbytes(rng.choice([200, 1000, 2500, 4000])), pat)
        return out

    def chain_to(which, k, value):
        def f(fat, mini, sbat, nsec):
            chain = mini if which == "mini" else sbat
            fat[chain[min(k, len(chain) - 1)]] = value(chain, nsec) if callable(value) else value
        return f

    out = {}
    n = 400
    out["ole2-mini-long"] = ole2(rng, n, {}, small=small(n, 150))
    out["ole2-mini-mixed"] = ole2(rng, n, {i: (rng.randbytes(5000), BM_LONG[1]) for i in (7, 90, 300)},
                                  small=small(n, 60))
    for which, k in (("mini", 40), ("sbat", 3)):
        for name, value in ends.items():
            out[f"ole2-{which}-short-{name}"] = ole2(rng, n, {}, small=small(n, 60), mini_fat=chain_to(which, k, value))
        out[f"ole2-{which}-cycle"] = ole2(rng, n, {}, small=small(n, 60),
                                          mini_fat=chain_to(which, k, lambda c, _: c[k // 2]))
    out["ole2-mini-root-past-fat"] = ole2(rng, n, {}, small=small(n, 30), header={"root_start": 128 * 9 + 5})
    out["ole2-mini-sbat-start-end"] = ole2(rng, n, {}, small=small(n, 30), header={"sbat_start": -2})
    for k in range(4):
        picks = list(ends.values()) + [lambda c, _: rng.choice(c)] * 2

        def breaks(fat, mini, sbat, nsec, picks=picks):
            for _ in range(rng.randint(1, 3)):
                v = rng.choice(picks)
                fat[rng.choice(rng.choice([mini, mini, sbat]))] = v(mini, nsec) if callable(v) else v
        out[f"ole2-mini-random-{k}"] = ole2(rng, n, {}, small=small(n, 60), mini_fat=breaks)
    return out


def main():
    outdir = sys.argv[1]
    rng = random.Random(SEED)
    os.makedirs(outdir, exist_ok=True)
    files = {}
    exes = executables(rng, sys.argv[2:])
    for part in (exes, layered(exes), macro_files(rng), bcomp_files(rng), yara_files(rng), other_files(rng),
                 bm_files(rng), ole2_files(rng)):
        files.update(part)
    for name, data in sorted(files.items()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
