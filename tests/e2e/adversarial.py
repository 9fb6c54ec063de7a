"""adversarial -- a seeded, reproducible generator of containers that hide EICAR next to a scan limit.

Every case is a container (zip stored/deflate/bzip2, gz, bz2, xz, tar, 7z, cab, chm, mbox, tnef) with
the EICAR string placed before, at and after one limit boundary of a settings group (member size,
scan size, file count, recursion depth, scan time), ± a few bytes and ± one 8 KiB block (libclamav
extracts in 8 KiB blocks). The property every case must keep: the server never answers
`malware: false` for it. A case whose every part is well inside the limits must moreover be found as
EICAR (expect "eicar"), so a server that just fails every scan does not pass.

The same seed gives the same bytes: `Generator(seed).cases()`; `cached_cases(Generator(seed))` gives
the same cases from build/adversarial/, built once per version of this file and of the tools. The seed picks the "few bytes" of
each boundary offset (1..7) and the member names; VERDICT_SEED in the environment overrides the
default. Run `python3 tests/e2e/adversarial.py --corpus DIR` to write the cases of at most 64 KiB
as fuzz seeds (fuzz/corpus/fuzz_scan), or `--list` to print them.

Tools: Python's zipfile/tarfile/gzip/bz2/lzma, and gcab (cab), 7z (p7zip-full), chmcmd (chm, from
Free Pascal's fp-utils; optional). A format whose tool is missing is left out (tools() says which).
"""
import bz2
import dataclasses
import email.mime.application
import email.mime.multipart
import email.mime.text
import gzip
import hashlib
import io
import json
import lzma
import os
import pathlib
import random
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
ANYWHERE_SIG = "Clamrest.Test.EICAR-Anywhere"
BLOCK = 8192            # bytes: libclamav writes extracted members in blocks of this size
DEFAULT_SEED = 9
CORPUS_MAX = 64 << 10   # bytes: largest fuzz seed and largest committed regression file
KIB, MIB = 1 << 10, 1 << 20
FIXED_TIME = 1704067200  # 2024-01-01: the mtime of every member, so that the tools' output is reproducible
CACHE = pathlib.Path(__file__).resolve().parents[2] / "build" / "adversarial"   # see cached_cases()


def anywhere_ndb():
    """A body signature matching EICAR at any offset (the make-testdb one does too; this one has a
    name of its own, so a test can tell which signature fired)."""
    return f"{ANYWHERE_SIG}:0:*:{EICAR.hex()}\n"


def add_anywhere_sig(db_dir):
    (pathlib.Path(db_dir) / "anywhere.ndb").write_text(anywhere_ndb())


# --- Settings groups: one server each. MAX_FILE_SIZE >= MAX_SCAN_SIZE >= MAX_CONTENT_LENGTH (the
# server refuses anything else). "dec" limits are decimal (not a multiple of the 8 KiB block), "mib"
# ones are; "split" has a member limit above the scan budget; "issue" is item 1/2's cheap form.
GROUPS = {
    "dec": {"MAX_CONTENT_LENGTH": "300000", "MAX_SCAN_SIZE": "300000", "MAX_FILE_SIZE": "300000",
            "MAX_FILES": "8", "MAX_RECURSION": "4"},
    "mib": {"MAX_CONTENT_LENGTH": "262144", "MAX_SCAN_SIZE": "524288", "MAX_FILE_SIZE": "524288",
            "MAX_FILES": "8", "MAX_RECURSION": "4"},
    "split": {"MAX_CONTENT_LENGTH": "100000", "MAX_SCAN_SIZE": "200000", "MAX_FILE_SIZE": "1000000"},
    "issue": {"MAX_CONTENT_LENGTH": "1000000"},   # derived: MAX_SCAN_SIZE = MAX_FILE_SIZE = 4000000
    "time": {"MAX_CONTENT_LENGTH": "1000000", "MAX_SCAN_TIME": "40"},
}
# What the groups above mean in numbers (derived defaults included).
LIMITS = {
    "dec": {"content": 300000, "scan": 300000, "file": 300000, "files": 8, "recursion": 4},
    "mib": {"content": 262144, "scan": 524288, "file": 524288, "files": 8, "recursion": 4},
    "split": {"content": 100000, "scan": 200000, "file": 1000000, "files": 10000, "recursion": 17},
    "issue": {"content": 1000000, "scan": 4000000, "file": 1000000, "files": 10000, "recursion": 17},
    "time": {"content": 1000000, "scan": 4000000, "file": 1000000, "files": 10000, "recursion": 17},
}


# Bytes around a size limit inside which clamrest takes a layer as cut at the limit (src/scanner_priv.h,
# SCANNER_LIMIT_MARGIN): EICAR there is reported as Heuristics.Limits.Exceeded.*, not by name.
MARGIN = 64 * 1024
# Formats libclamav 1.4.6 lists but cannot unpack (Zip64 sizes; chmcmd's CHM layout): the right answer
# is clamrest's Heuristics.Unscanned.*, never clean and never EICAR by name.
UNSCANNABLE = ("zip64_deflate", "zip64_bzip2", "chm")


def found(fmt):
    """What a case well inside every limit must be answered: EICAR by name, or, for a format
    libclamav cannot unpack, Heuristics.Unscanned.*."""
    return "unscanned" if fmt in UNSCANNABLE else "eicar"


@dataclasses.dataclass
class Case:
    name: str
    group: str              # settings group (GROUPS) the case targets
    data: bytes = None      # the container, or None when it is in path
    path: str = None        # a big (sparse-backed) container on disk
    expect: str = "not_clean"   # "eicar": found as EICAR; "unscanned": Heuristics.Unscanned.*;
                                # "not_clean": anything but clean
    note: str = ""

    def size(self):
        return len(self.data) if self.data is not None else os.path.getsize(self.path)

    def body(self):
        if self.data is not None:
            return self.data
        return pathlib.Path(self.path).read_bytes()


def tools():
    """{format: available} for the formats that need an outside tool."""
    return {"cab": shutil.which("gcab") is not None, "7z": shutil.which("7z") is not None,
            "chm": shutil.which("chmcmd") is not None}


# --- Payloads ---

def payload(off, tail=0, fill=b"\0"):
    """off filler bytes, EICAR, tail filler bytes."""
    return fill * off + EICAR + fill * tail


def zeros(n):
    return b"\0" * n


# --- Container builders: each takes [(name, bytes)] and returns the container's bytes ---

def _zip(members, method):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def zip_stored(members):
    return _zip(members, zipfile.ZIP_STORED)


def zip_deflate(members):
    return _zip(members, zipfile.ZIP_DEFLATED)


def zip_bzip2(members):
    return _zip(members, zipfile.ZIP_BZIP2)


class _Zip64Limit:
    """Sets zipfile's ZIP64_LIMIT for a while: low, so that small members get Zip64 sizes (0xFFFFFFFF
    in the headers, the real sizes in the Zip64 extra field, as any member over 4 GiB has); or high,
    so that a member between 2 and 4 GiB is written with plain 32-bit sizes (as Info-ZIP does)."""

    def __init__(self, limit):
        self.limit = limit

    def __enter__(self):
        self.old, zipfile.ZIP64_LIMIT = zipfile.ZIP64_LIMIT, self.limit

    def __exit__(self, *exc):
        zipfile.ZIP64_LIMIT = self.old


def zip64_deflate(members):
    """libclamav 1.4.6's unzip does not read Zip64 sizes: it takes 0xFFFFFFFF for the compressed size,
    finds the member running past the end of the file and skips it, answering clean."""
    with _Zip64Limit(0):
        return _zip(members, zipfile.ZIP_DEFLATED)


def zip64_bzip2(members):
    with _Zip64Limit(0):
        return _zip(members, zipfile.ZIP_BZIP2)


def gz(members):
    (_, data), = members
    return gzip.compress(data, mtime=0)


def bz2_(members):
    (_, data), = members
    return bz2.compress(data)


def xz(members):
    (_, data), = members
    return lzma.compress(data, format=lzma.FORMAT_XZ)


def tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1704067200
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _in_tmp(members, build):
    """Writes members into a temporary folder and returns build(folder, names) read back."""
    with tempfile.TemporaryDirectory(prefix="adversarial-") as d:
        names = []
        for name, data in members:
            (pathlib.Path(d) / name).write_bytes(data)
            os.utime(pathlib.Path(d) / name, (FIXED_TIME, FIXED_TIME))
            names.append(name)
        out = build(d, names)
        return pathlib.Path(out).read_bytes()


def _run(args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sevenz(members):
    def build(d, names):
        _run(["7z", "a", "-t7z", "-m0=LZMA2", "-mtm=off", "-mtc=off", "-mta=off", "out.7z", *names], d)
        return f"{d}/out.7z"
    return _in_tmp(members, build)


def cab(members):
    """MS-ZIP compressed cabinet, as `gcab -c -z` makes it."""
    def build(d, names):
        _run(["gcab", "-c", "-z", "-n", "out.cab", *names], d)
        return f"{d}/out.cab"
    return _in_tmp(members, build)


def chm(members):
    """A CHM compiled by chmcmd with the members as topic files (LZX compressed)."""
    def build(d, names):
        pathlib.Path(d, "index.html").write_text("<html><body>index</body></html>")
        files = "\n".join(["index.html", *names])
        pathlib.Path(d, "p.hhp").write_text(
            "[OPTIONS]\nCompiled file=out.chm\nDefault topic=index.html\nTitle=t\n\n[FILES]\n" + files + "\n")
        _run(["chmcmd", "--no-html-scan", "p.hhp"], d)
        return f"{d}/out.chm"
    return _chm_untime(_in_tmp(members, build))


def _chm_untime(data):
    """chmcmd writes the time twice (ITSF header; #SYSTEM entry 10, which chmcmd writes first, right
    after the #SYSTEM version 3): both are zeroed so the same members give the same bytes."""
    out = bytearray(data)
    out[16:20] = bytes(4)
    at = out.find(b"\x03\x00\x00\x00\x0a\x00\x04\x00")
    if at >= 0:
        out[at + 8:at + 12] = bytes(4)
    return bytes(out)


def mbox(members):
    """One mail (an mbox "From " line first) with each member as a base64 attachment."""
    msg = email.mime.multipart.MIMEMultipart()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.org"
    msg["Subject"] = "attachments"
    msg["Date"] = "Mon, 01 Jan 2024 00:00:00 +0000"
    msg.set_boundary("==adversarial-boundary==")
    msg.attach(email.mime.text.MIMEText("see attached\n"))
    for name, data in members:
        part = email.mime.application.MIMEApplication(data, Name=name)
        part["Content-Disposition"] = f'attachment; filename="{name}"'
        msg.attach(part)
    return b"From a@example.org Mon Jan  1 00:00:00 2024\n" + msg.as_bytes()


def _tnef_attr(level, typ, tag, data):
    return (bytes([level]) + struct.pack("<Ii", (typ << 16) | tag, len(data)) + data +
            struct.pack("<H", sum(data) & 0xFFFF))


def tnef(members):
    """winmail.dat: a TNEF stream with one attachment (title + data attributes) per member."""
    out = struct.pack("<IH", 0x223E9F78, 1)
    out += _tnef_attr(1, 0x0009, 0x9006, struct.pack("<I", 0x00010000))    # attTnefVersion
    for name, data in members:
        out += _tnef_attr(2, 0x0006, 0x9002, bytes(14))                  # attAttachRendData
        out += _tnef_attr(2, 0x0001, 0x8010, name.encode() + b"\0")      # attAttachTitle
        out += _tnef_attr(2, 0x0006, 0x800F, data)                       # attAttachData
    return out


# name: (builder, holds several members, stores bytes uncompressed, needs tool)
FORMATS = {
    "zip_stored": (zip_stored, True, True, None),
    "zip_deflate": (zip_deflate, True, False, None),
    "zip_bzip2": (zip_bzip2, True, False, None),
    "zip64_deflate": (zip64_deflate, True, False, None),
    "zip64_bzip2": (zip64_bzip2, True, False, None),
    "gz": (gz, False, False, None),
    "bz2": (bz2_, False, False, None),
    "xz": (xz, False, False, None),
    "tar": (tar, True, True, None),
    "7z": (sevenz, True, False, "7z"),
    "cab": (cab, True, False, "cab"),
    "chm": (chm, True, False, "chm"),
    "mbox": (mbox, True, True, None),
    "tnef": (tnef, True, True, None),
}


def available_formats():
    have = tools()
    return [f for f, (_, _, _, tool) in FORMATS.items() if tool is None or have[tool]]


class Generator:
    """Cases for every group; the same seed gives the same cases, byte for byte."""

    def __init__(self, seed=None):
        if seed is None:
            seed = int(os.environ.get("VERDICT_SEED", DEFAULT_SEED))
        self.seed = seed
        self.rng = random.Random(seed)
        self.formats = available_formats()

    def pick(self, *key):
        """A fresh random stream for one group of cases: a case's bytes depend on the seed and its own
        name only, not on which formats are installed."""
        self.rng = random.Random(":".join(map(str, (self.seed,) + key)))

    def few(self):
        return self.rng.randint(1, 7)

    def member_name(self):
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) + ".bin"

    def build(self, fmt, members):
        return FORMATS[fmt][0](members)

    # EICAR's start offset in a member, relative to a limit L (the names are the test ids).
    def positions(self, limit):
        d = self.few()
        cut = limit // BLOCK * BLOCK        # where libclamav's block-wise writer stops
        n = len(EICAR)
        return {
            "before_block": limit - BLOCK - n - d,
            "before_few": limit - n - d,
            "straddle": limit - n // 2,
            "after_few": limit + d,
            "after_block": limit + BLOCK + d,
            "straddle_cut": cut - n // 2,
            "after_cut": cut + d,
        }

    def member_size_cases(self, group):
        """One member: EICAR before, at and after MAX_FILE_SIZE (and the 8 KiB cut below it)."""
        lim = LIMITS[group]
        out = []
        for fmt in self.formats:
            _, _, stored, _ = FORMATS[fmt]
            self.pick(group, "member", fmt)
            for pos, off in self.positions(lim["file"]).items():
                data = self.build(fmt, [(self.member_name(), payload(off))])
                if stored and len(data) > lim["content"]:
                    continue    # refused at the door (413): says nothing about the verdict
                # Well inside: the member and the whole scan fit, with the scanner's margin to spare
                # (within it a layer counts as cut at the limit: SCANNER_LIMIT_MARGIN).
                inside = off + len(EICAR) + len(data) <= min(lim["file"], lim["scan"]) - MARGIN
                out.append(Case(f"{group}-member-{fmt}-{pos}", group, data,
                                expect=found(fmt) if inside else "not_clean",
                                note=f"EICAR at {off} of a {off + len(EICAR)}-byte member"))
            # EICAR early in a member that runs past the limit: the scanned part holds it.
            off = lim["file"] - BLOCK - len(EICAR) - self.few()
            data = self.build(fmt, [(self.member_name(), payload(off, tail=2 * BLOCK))])
            if not (stored and len(data) > lim["content"]):
                out.append(Case(f"{group}-member-{fmt}-early_in_long", group, data, note="member over the limit"))
        return out

    def scan_budget_cases(self, group):
        """A filler member of about MAX_SCAN_SIZE first, then eicar.com (item 2's shape); and EICAR
        first, then the filler (must be found: it comes before the budget runs out)."""
        lim = LIMITS[group]
        out = []
        self.pick(group, "budget")
        d = self.few()
        sizes = {"minus_block": lim["scan"] - BLOCK, "minus_few": lim["scan"] - d, "exact": lim["scan"],
                 "plus_few": lim["scan"] + d, "plus_block": lim["scan"] + BLOCK}
        for fmt in self.formats:
            _, multi, stored, _ = FORMATS[fmt]
            if not multi:
                continue
            for label, size in sizes.items():
                data = self.build(fmt, [("filler.bin", zeros(size)), ("eicar.com", EICAR)])
                if stored and len(data) > lim["content"]:
                    continue
                out.append(Case(f"{group}-budget-{fmt}-filler_{label}_then_eicar", group, data,
                                note=f"{size} zero bytes, then eicar.com"))
            data = self.build(fmt, [("eicar.com", EICAR), ("filler.bin", zeros(lim["scan"] + BLOCK))])
            if not (stored and len(data) > lim["content"]):
                out.append(Case(f"{group}-budget-{fmt}-eicar_then_filler", group, data,
                                expect=found(fmt)))
        return out

    def file_count_cases(self, group, fmts=("zip_deflate", "tar", "7z", "cab")):
        """n small members with eicar.com as member k, around MAX_FILES."""
        mf = LIMITS[group]["files"]
        out = []
        for fmt in fmts:
            if fmt not in self.formats:
                continue
            for n, k, label in ((mf - 2, mf - 2, "last_below"), (mf - 1, mf - 1, "last_at"),
                                (mf, mf, "last_over"), (mf + 5, mf + 5, "last_far_over"),
                                (mf + 5, mf + 1, "at_limit_plus_one"), (mf + 5, 1, "first")):
                members = [(f"m{i:03d}.txt", b"clean member %d\n" % i) for i in range(1, n + 1)]
                members.insert(k - 1, ("eicar.com", EICAR))
                expect = "eicar" if (k < mf - 1 or label == "last_below") else "not_clean"
                out.append(Case(f"{group}-files-{fmt}-{label}", group, self.build(fmt, members),
                                expect=expect, note=f"{n + 1} members, eicar.com is number {k}"))
        return out

    def recursion_cases(self, group):
        """EICAR at the bottom of zips nested depth deep, and of a zip/tar/gz/7z mix."""
        rec = LIMITS[group]["recursion"]
        out = []
        for depth in (rec - 2, rec - 1, rec, rec + 1, rec + 3):
            data = EICAR
            for level in range(depth):
                data = zip_deflate([(f"level{depth - level}.{'zip' if level else 'com'}", data)])
            out.append(Case(f"{group}-recursion-zip-depth_{depth}", group, data,
                            expect="eicar" if depth <= rec - 2 else "not_clean",
                            note=f"zip nested {depth} deep"))
            data = EICAR
            chain = ["tar", "gz", "zip_deflate", "7z" if "7z" in self.formats else "bz2"]
            for level in range(depth):
                fmt = chain[level % len(chain)]
                data = self.build(fmt, [(f"n{level}", data)])
            out.append(Case(f"{group}-recursion-mixed-depth_{depth}", group, data,
                            expect="eicar" if depth <= rec - 2 else "not_clean",
                            note=f"tar/gz/zip/7z nested {depth} deep"))
        return out

    def scan_time_cases(self, group):
        """Many members that take longer than MAX_SCAN_TIME to unpack and scan, EICAR last or first."""
        out = []
        for fmt in ("zip_deflate", "7z", "cab", "tar"):
            if fmt not in self.formats:
                continue
            for n in (1, 8, 64):
                size = 256 * KIB if fmt != "tar" else 4 * KIB
                fill = [(f"f{i:03d}.bin", bytes([i % 251 + 1]) * size) for i in range(n)]
                data = self.build(fmt, fill + [("eicar.com", EICAR)])
                out.append(Case(f"{group}-time-{fmt}-{n}_members_then_eicar", group, data,
                                note=f"{n} x {size} bytes, then eicar.com"))
            fill = [(f"f{i:03d}.bin", bytes([i % 251 + 1]) * 256 * KIB) for i in range(64)]
            if fmt != "tar":
                out.append(Case(f"{group}-time-{fmt}-eicar_then_64_members", group,
                                self.build(fmt, [("eicar.com", EICAR)] + fill)))
        return out

    def issue_cases(self):
        """Items 1 and 2 of issue 9, cheap forms (MAX_CONTENT_LENGTH=1000000: limits 4000000)."""
        four_mb = 4 * 1000 * 1000
        out = [
            Case("issue9-case1-zip_bzip2_4MB_zeros_then_eicar", "issue",
                 zip_bzip2([("zeros-then-eicar.bin", payload(four_mb))]),
                 note="item 1 cheap form: one bzip2 member, 4 MB of zeros + EICAR"),
            Case("issue9-case1-zip_deflate_4MB_zeros_then_eicar", "issue",
                 zip_deflate([("zeros-then-eicar.bin", payload(four_mb))])),
            Case("issue9-zip64-deflate_member_skipped", "issue",
                 zip64_deflate([("eicar-in-zip64.bin", payload(1000))]),
                 note="found while writing the suite: any member with Zip64 sizes is skipped"),
        ]
        if "cab" in self.formats:
            out += [
                Case("issue9-case2-cab_5MB_zeros_member_then_eicar_com", "issue",
                     cab([("zeros.bin", zeros(5 * 1000 * 1000)), ("eicar.com", EICAR)]),
                     note="item 2: gcab -c -z with a 5 MB zero member, then eicar.com"),
                Case("issue9-case2-cab_one_member_5MB_zeros_then_eicar", "issue",
                     cab([("zeros-then-eicar.bin", payload(5 * 1000 * 1000))]),
                     note="item 2: one cab member of 5 MB zeros + EICAR"),
            ]
        if "chm" in self.formats:
            out.append(Case("issue9-case2-chm_5MB_zeros_then_eicar", "issue",
                            chm([("zeros.bin", zeros(5 * 1000 * 1000)), ("eicar.com", EICAR)])))
        return out

    def inside_cases(self, group):
        """EICAR in a small member of every format: within every limit, must be found as EICAR."""
        out = []
        for fmt in self.formats:
            self.pick(group, "inside", fmt)
            member = (self.member_name(), payload(1000, 1000))
            members = [("readme.txt", b"hello\n"), member] if FORMATS[fmt][1] else [member]
            out.append(Case(f"{group}-inside-{fmt}", group, self.build(fmt, members),
                            expect=found(fmt)))
        return out

    def cases(self, groups=("dec", "mib", "split", "issue", "time")):
        out = []
        for g in groups:
            if g == "issue":
                out += self.issue_cases()
                continue
            if g == "time":
                out += self.scan_time_cases(g)
                continue
            out += self.inside_cases(g)
            out += self.member_size_cases(g)
            out += self.scan_budget_cases(g)
            if LIMITS[g]["files"] < 100:
                out += self.file_count_cases(g)
            if LIMITS[g]["recursion"] < 10:
                out += self.recursion_cases(g)
        return out


# --- The cases built once: kept under build/adversarial/<key>/, the key a hash of what makes the bytes ---

TOOLS = (("7z", ()), ("gcab", ("--version",)), ("chmcmd", ()))


def tool_versions(tools=TOOLS):
    """One line per outside tool of tools ((name, arguments that make it print its version)): the
    version numbers it prints and its file's size and time, or "none" when it is not installed."""
    out = []
    for tool, args in tools:
        path = shutil.which(tool)
        if path is None:
            out.append(f"{tool}:none")
            continue
        r = subprocess.run([path, *args], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        text = (r.stdout + r.stderr).decode(errors="replace")
        st = os.stat(os.path.realpath(path))
        out.append(f"{tool}:{' '.join(re.findall(r'[0-9]+[.][0-9]+(?:[.][0-9]+)*', text)[:4])}:"
                   f"{st.st_size}:{st.st_mtime_ns}")
    return out


def cache_key(seed, groups):
    """The hash of this file, the tools' versions, Python's and zlib's, the seed and the groups: a
    change to any of them gives another key, so the cases are built again."""
    h = hashlib.sha256(pathlib.Path(__file__).read_bytes())
    for part in tool_versions() + [sys.version, zlib.ZLIB_RUNTIME_VERSION, str(seed), ",".join(groups)]:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def cached_cases(gen, groups=("dec", "mib", "split", "issue", "time")):
    """gen.cases(groups), read from CACHE when a run with the same key wrote them, else built and
    written there (in a folder of its own, renamed into place: a run never reads a half-written one)."""
    folder = CACHE / cache_key(gen.seed, groups)
    index = folder / "index.json"
    if index.exists():
        return [Case(row["name"], row["group"], (folder / row["file"]).read_bytes(),
                     expect=row["expect"], note=row["note"])
                for row in json.loads(index.read_text())]
    cases = gen.cases(groups)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=CACHE))
    rows = []
    for i, c in enumerate(cases):
        assert c.data is not None, c.name     # a case on disk (path) is never cached
        (tmp / f"{i:05d}.bin").write_bytes(c.data)
        rows.append({"name": c.name, "group": c.group, "file": f"{i:05d}.bin", "expect": c.expect,
                     "note": c.note})
    (tmp / "index.json").write_text(json.dumps(rows, indent=1))
    try:
        tmp.rename(folder)
        for old in CACHE.iterdir():     # what older generators or other seeds left
            if old.is_dir() and old.name != folder.name and "." not in old.name:
                shutil.rmtree(old, ignore_errors=True)
    except OSError:     # another run wrote it first
        shutil.rmtree(tmp, ignore_errors=True)
    return cases


# --- Big cases of issue 9 at the default settings (slow: written to disk, sparse where possible) ---

def zip_bzip2_huge(path, zero_bytes=2 << 30, zip64=False):
    """Item 1 at defaults: a zip whose one bzip2 member is zero_bytes zeros followed by EICAR
    (2 GiB: the zip is about 1.7 KB), with plain 32-bit sizes (Python would use Zip64 above 2 GiB,
    which libclamav skips at once: see zip64_deflate). Streamed: never the whole member in memory."""
    chunk = zeros(16 * MIB)
    with _Zip64Limit(0 if zip64 else 0xFFFFFFFE), zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("zeros-then-eicar.bin", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_BZIP2
        with z.open(info, "w", force_zip64=zip64) as w:
            left = zero_bytes
            while left > 0:
                n = min(left, len(chunk))
                w.write(chunk[:n])
                left -= n
            w.write(EICAR)
    return path


def cab_sparse_huge(path, zero_bytes=2 * 1000 * 1000 * 1000):
    """Item 2 at defaults: gcab -c -z of a sparse 2 GB member followed by EICAR (a 3.6 MB cab)."""
    with tempfile.TemporaryDirectory(prefix="adversarial-") as d:
        member = pathlib.Path(d) / "sparse-then-eicar.bin"
        with open(member, "wb") as f:
            f.truncate(zero_bytes)
            f.seek(zero_bytes)
            f.write(EICAR)
        _run(["gcab", "-c", "-z", "-n", str(pathlib.Path(path).resolve()), member.name], d)
    return path


def write_corpus(folder, cases):
    """Writes the cases of at most CORPUS_MAX bytes into folder, named by their SHA-1; returns how many."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for c in cases:
        if c.data is None or len(c.data) > CORPUS_MAX:
            continue
        (folder / hashlib.sha1(c.data).hexdigest()).write_bytes(c.data)
        n += 1
    return n


# tests/regression/issue9/<file>: the issue's cases as committed files (see issue_cases()).
REGRESSION_FILES = {
    "case1-zip-bzip2-4MB-zeros-eicar.zip": "issue9-case1-zip_bzip2_4MB_zeros_then_eicar",
    "case1-zip-deflate-4MB-zeros-eicar.zip": "issue9-case1-zip_deflate_4MB_zeros_then_eicar",
    "case2-cab-5MB-zeros-then-eicar-com.cab": "issue9-case2-cab_5MB_zeros_member_then_eicar_com",
    "case2-cab-5MB-zeros-eicar.cab": "issue9-case2-cab_one_member_5MB_zeros_then_eicar",
    "case2-chm-5MB-zeros-then-eicar.chm": "issue9-case2-chm_5MB_zeros_then_eicar",
    "zip64-deflate-member.zip": "issue9-zip64-deflate_member_skipped",
}


def write_regression(folder):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    built = {c.name: c.data for c in Generator().issue_cases()}
    for fname, cname in REGRESSION_FILES.items():
        if cname in built:
            assert len(built[cname]) < CORPUS_MAX, cname
            (folder / fname).write_bytes(built[cname])
    return len(built)


def main(argv):
    gen = Generator()
    cases = gen.cases()
    if argv[1:2] == ["--corpus"] and len(argv) == 3:
        print(f"wrote {write_corpus(argv[2], cases)} seeds (seed {gen.seed}) to {argv[2]}")
        return 0
    if argv[1:2] == ["--regression"] and len(argv) == 3:
        print(f"wrote {write_regression(argv[2])} regression files to {argv[2]}")
        return 0
    if argv[1:] == ["--list"]:
        for c in cases:
            print(f"{c.name}\t{c.group}\t{c.size()}\t{c.expect}\t{c.note}")
        print(f"{len(cases)} cases, seed {gen.seed}, formats {' '.join(gen.formats)}", file=sys.stderr)
        return 0
    print("usage: adversarial.py --list | --corpus DIR | --regression DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
