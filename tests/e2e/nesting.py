"""nesting -- EICAR nested depth times in one format (gzip, bzip2, xz, zip, 7z, tar, mail), for the
stack-depth tests (issue 20 item 5). Each layer holds the previous one; 7z needs /usr/bin/7z."""
import bz2
import gzip
import io
import lzma
import os
import subprocess
import tarfile
import tempfile
import zipfile

from harness import EICAR


def _zip(data):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a", data)
    return b.getvalue()


def _tar(data):
    """One ustar member, no end blocks nor record padding (GNU tar and libclamav read it): 512
    bytes and the padding of the member per layer, where tarfile's 10 KiB records grow by 10 KiB."""
    info = tarfile.TarInfo("a")
    info.size = len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def _mail(data):
    """A message whose only part is the previous message (message/rfc822, not encoded: linear)."""
    boundary = f"b{len(data)}"
    head = ("From: a@example.org\r\nSubject: n\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n")
    if not data.startswith(b"From:"):
        head = head.replace("message/rfc822", "application/octet-stream\r\n"
                            "Content-Transfer-Encoding: 8bit")
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode()


def _7z_chain(data, depth):
    """7-Zip runs once per layer: about 10 ms each."""
    with tempfile.TemporaryDirectory() as d:
        cur = os.path.join(d, "a")
        with open(cur, "wb") as f:
            f.write(data)
        for i in range(depth):
            out = os.path.join(d, f"l{i}.7z")
            subprocess.run(["7z", "a", "-mx=0", "-bd", "-y", out, cur], check=True,
                           stdout=subprocess.DEVNULL)
            os.unlink(cur)
            cur = out
        with open(cur, "rb") as f:
            return f.read()


WRAP = {
    "gzip": lambda d: gzip.compress(d, 1, mtime=0),
    "bzip2": lambda d: bz2.compress(d, 1),
    "xz": lambda d: lzma.compress(d, preset=0),
    "zip": _zip,
    "tar": _tar,
    "mail": _mail,
}
FORMATS = sorted([*WRAP, "7z"])


def nested(fmt, depth, inner=EICAR):
    if fmt == "7z":
        return _7z_chain(inner, depth)
    data = inner
    for _ in range(depth):
        data = WRAP[fmt](data)
    return data
