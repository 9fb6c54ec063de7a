"""drops -- seeded regression files of libclamav 1.4.6's silent drops (issue 20, item 2), each one a
file an ordinary reader (Python's bz2/tarfile/zipfile, GNU tar, 7-Zip) finds EICAR in and Debian's
stock libclamav answers clean. Used by tests/libclamav/test_fix_drops.py (the library alone) and the
e2e tests (through clamrest). See docs/libclamav-quirks.md.

Every builder returns bytes; nothing is stored in git. EICAR is always compressed (or placed where
the raw scan of the outer file cannot see it): a drop means the member was never scanned, not that a
raw scan missed it.
"""
import bz2
import gzip
import io
import random
import tarfile
import zipfile

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
BLOCK = 512


def log_text(rng, size):
    """Plausible log lines (what pbzip2 is used for), about size bytes."""
    out = io.BytesIO()
    words = ["GET", "POST", "/index.html", "/api/v1/items", "200", "404", "503", "user", "session"]
    n = 0
    while out.tell() < size:
        n += 1
        out.write(f"2026-12-07T04:{n % 60:02d}:{n % 59:02d}Z host{rng.randrange(50)} "
                  f"{' '.join(rng.choice(words) for _ in range(rng.randint(3, 12)))} "
                  f"{rng.getrandbits(64):016x}\n".encode())
    return out.getvalue()


# --- bzip2 ---------------------------------------------------------------------------------------

def bzip2_multistream(seed=1, size=3_500_000, block=900_000):
    """What pbzip2 writes: one bzip2 stream per 900 kB block of the input; EICAR ends the last one."""
    data = log_text(random.Random(seed), size) + EICAR + b"\n"
    return b"".join(bz2.compress(data[i:i + block], 9) for i in range(0, len(data), block)), data


# --- HTML ----------------------------------------------------------------------------------------

def zip_eicar(method=zipfile.ZIP_DEFLATED, name="eicar.com"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(name, EICAR)
    return buf.getvalue()


def html_large(size=41 << 20, payload=None):
    """A file libclamav types as HTML, larger than its 40 MiB normalisation limit, with a zip
    holding EICAR (deflated: invisible to a raw scan) appended."""
    head = b"<html><body>\n"
    payload = zip_eicar() if payload is None else payload
    pad = size - len(head) - len(payload) - len(b"</body></html>\n")
    filler = (b"<p>" + b"lorem ipsum dolor sit amet " * 37 + b"</p>\n")
    body = filler * (pad // len(filler) + 1)
    return head + body[:pad] + b"</body></html>\n" + payload


# --- embedded SFX layers ---------------------------------------------------------------------------

def zip_behind_prefix(seed=3):
    """A zip behind a prefix of random bytes (libclamav finds it as ZIPSFX by its raw scan): one
    ordinary deflated member plus EICAR in an LZMA member libclamav cannot unpack."""
    rng = random.Random(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("readme.txt"), log_text(rng, 4000), zipfile.ZIP_DEFLATED)
        z.writestr(zipfile.ZipInfo("eicar.com"), EICAR, zipfile.ZIP_LZMA)
    return rng.randbytes(1000) + buf.getvalue()


# --- tar -----------------------------------------------------------------------------------------

def _chksum(h):
    h = bytearray(h)
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def tar_header(name, size, typeflag=b"0", size_field=None, gnu=True):
    """One 512-byte header; size_field (12 bytes) replaces the octal size when given."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.type = typeflag
    ti.mtime = 1700000000
    h = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT if gnu else tarfile.USTAR_FORMAT))
    if size_field is not None:
        assert len(size_field) == 12
        h[124:136] = size_field
    return _chksum(h[:BLOCK])


def _pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def _end(body):
    return body + b"\0" * (2 * BLOCK)


def gz_eicar():
    return gzip.compress(EICAR, mtime=0)


def tar_base256_size():
    """GNU tar writes sizes of 8 GiB or more in base-256 (first byte 0x80); here a small one."""
    data = gz_eicar()
    field = b"\x80" + len(data).to_bytes(11, "big")
    return _end(tar_header("big.gz", len(data), size_field=field) + _pad(data))


def tar_pax_size():
    """The size in a PAX 'x' record (as for members of 8 GiB or more), the ustar field 0."""
    data = gz_eicar()
    rec = pax_record(b"size", b"%d" % len(data))
    pax = tar_header("./PaxHeaders/x.gz", len(rec), typeflag=b"x", gnu=False) + _pad(rec)
    member = tar_header("x.gz", 0, gnu=False)
    return _end(pax + member + _pad(data))


def pax_record(key, value):
    """One PAX record: "<length> key=value\n", the length counting itself."""
    body = b" %s=%s\n" % (key, value)
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def tar_pax_global_size():
    """The size in a PAX global header ('g'): GNU tar and Python apply it to the members after it."""
    data = gz_eicar()
    rec = pax_record(b"size", b"%d" % len(data))
    glob = tar_header("./GlobalHead", len(rec), typeflag=b"g", gnu=False) + _pad(rec)
    return _end(glob + tar_header("g.gz", 0, gnu=False) + _pad(data))


def tar_empty_pax_then_member():
    """An empty PAX extended header (size 0) before a member: libclamav skipped one block more."""
    data = gz_eicar()
    pax = tar_header("./PaxHeaders/e", 0, typeflag=b"x", gnu=False)
    return _end(pax + tar_header("e.gz", len(data), gnu=False) + _pad(data))


def tar_nameless_member():
    """A member whose name field is empty (the block is not all zeros: not the end)."""
    data = gz_eicar()
    h = bytearray(tar_header("", len(data)))
    h[0:100] = b"\0" * 100
    return _end(_chksum(h) + _pad(data))


def tar_typeflag(flag):
    """A member of a typeflag GNU tar extracts as a regular file ('Unknown file type')."""
    data = gz_eicar()
    return _end(tar_header("t.gz", len(data), typeflag=flag) + _pad(data))


def _octal(v, width):
    return b"%0*o\0" % (width - 1, v)


def tar_gnu_sparse():
    """An old-GNU sparse member ('S') with more than 4 chunks: its map continues in an extension
    block after the header, before the data. The first chunk holds gzipped EICAR."""
    gz = gz_eicar()
    chunks = [(i * 4096, BLOCK) for i in range(6)]
    data = _pad(gz)
    for _ in chunks[1:]:
        data += b"\x01" * BLOCK
    realsize = chunks[-1][0] + chunks[-1][1]
    h = bytearray(tar_header("s.gz", len(data), typeflag=b"S"))
    for i, (off, n) in enumerate(chunks[:4]):
        h[386 + 24 * i:386 + 24 * i + 24] = _octal(off, 12) + _octal(n, 12)
    h[482] = 1
    h[483:495] = _octal(realsize, 12)
    ext = bytearray(BLOCK)
    for i, (off, n) in enumerate(chunks[4:]):
        ext[24 * i:24 * i + 24] = _octal(off, 12) + _octal(n, 12)
    ext[504] = 0
    return _end(_chksum(h) + bytes(ext) + data)


TAR_CASES = {
    "tar-base256-size": tar_base256_size,
    "tar-pax-size": tar_pax_size,
    "tar-pax-global-size": tar_pax_global_size,
    "tar-empty-pax-header": tar_empty_pax_then_member,
    "tar-nameless-member": tar_nameless_member,
    "tar-typeflag-A": lambda: tar_typeflag(b"A"),
    "tar-typeflag-E": lambda: tar_typeflag(b"E"),
    "tar-typeflag-I": lambda: tar_typeflag(b"I"),
    "tar-gnu-sparse": tar_gnu_sparse,
}


def python_tar_members(data):
    """{name: bytes} of the regular members Python's tarfile extracts (the reference reader)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            f = t.extractfile(m)
            if f is not None:
                out[m.name] = f.read()
    return out


def seven_zip_stored_zip_and_bzip2(workdir, seed=4):
    """A 7z (7-Zip's own writer) holding a zip stored uncompressed (libclamav finds it again as
    ZIPSFX by its raw scan) and EICAR compressed with BZip2, a method libclamav's 7z reader lacks.
    workdir: an empty folder. None when 7z is not installed."""
    import pathlib
    import shutil
    import subprocess
    if shutil.which("7z") is None:
        return None
    rng = random.Random(seed)
    w = pathlib.Path(workdir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", log_text(rng, 3000))
    (w / "inner.zip").write_bytes(buf.getvalue())
    (w / "eicar.com").write_bytes(EICAR)
    out = w / "case.7z"
    for name, method in (("inner.zip", "Copy"), ("eicar.com", "BZip2")):
        subprocess.run(["7z", "a", "-bd", "-y", f"-m0={method}", "-mtm=off", "-mtc=off", "-mta=off",
                        str(out), name], cwd=w, check=True, capture_output=True)
    return out.read_bytes()
