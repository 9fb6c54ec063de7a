"""policy_samples -- files for the upload policy's tests (test_upload_policy.py), written here:
images, an OLE2 compound file with or without a VBA project, OOXML documents with or without a
vbaProject.bin, scripts, and archives of them (zip, 7z, tar.gz, encrypted zip)."""
import io
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib

import pytest


def png():
    raw = b"".join(b"\x00" + bytes([x * 16 % 256, 0, 0]) * 4 for x in range(4))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gif():
    return bytes.fromhex("474946383961010001008000000000ffffff21f90401000000002c000000000100010000"
                         "02024401003b")


def jpeg():
    return (bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(range(1, 65)) +
            bytes.fromhex("ffc0000b080001000101011100ffc4001f0000010501010101010100000000000000000102"
                          "030405060708090a0bffda0008010100003f00d2cf20ffd9"))


def ole2(vba=True, size=4096):
    """A compound file (the format of .doc, .xls and vbaProject.bin): root, a storage and one stream
    of size bytes in regular sectors; with vba the storage is VBA and the stream _VBA_PROJECT, as
    Office keeps a macro project, else an ordinary WordDocument stream."""
    def entry(name, kind, child, start, length):
        nm = (name + "\0").encode("utf-16le")
        e = nm.ljust(64, b"\0") + struct.pack("<HBB", len(nm), kind, 1)
        e += struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFF, child) + bytes(36)
        return e + struct.pack("<II", start, length) + bytes(4)
    sectors = size // 512
    directory = (entry("Root Entry", 5, 1, 0xFFFFFFFE, 0) +
                 entry("VBA" if vba else "ObjectPool", 1, 2, 0, 0) +
                 entry("_VBA_PROJECT" if vba else "WordDocument", 2, 0xFFFFFFFF, 2, size) + bytes(128))
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [3 + i for i in range(sectors - 1)] + [0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (128 - len(fat))
    hdr = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
    hdr += bytes(6) + struct.pack("<IIIIIIII", 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE)
    hdr += struct.pack("<I", 0) + struct.pack("<109I", *([0] + [0xFFFFFFFF] * 108))
    body = b'Attribute VB_Name = "Module1"\r\nSub AutoOpen()\r\nEnd Sub\r\n' if vba else b"Hello. "
    return hdr.ljust(512, b"\0") + struct.pack("<128I", *fat) + directory + (body * 200)[:size]


def ooxml(vba=False, image=False):
    """A Word document (docx, or docm with vba: word/vbaProject.bin, a VBA project)."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
                   '.org/package/2006/content-types"><Default Extension="xml" ContentType="applicati'
                   'on/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.op'
                   'enxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openx'
                   'mlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://s'
                   'chemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Targ'
                   'et="word/document.xml"/></Relationships>')
        z.writestr("word/document.xml",
                   '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxm'
                   'lformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Quarterly report'
                   '</w:t></w:r></w:p></w:body></w:document>')
        if image:
            z.writestr("word/media/image1.png", png())
        if vba:
            z.writestr("word/vbaProject.bin", ole2(True))
    return b.getvalue()


SHELL = b"#!/bin/sh\necho hello\nrm -rf \"$HOME/tmp\"\n"
PYTHON = b"#!/usr/bin/env python3\nimport os\nprint(os.getcwd())\n"
JS = b"var s = new ActiveXObject('WScript.Shell'); s.Run('calc');\n"
TEXT = b"date,amount\n2026-01-01,12.50\n2026-01-02,7.00\n"


def zip_of(members, password=None, tmp=None):
    """A zip of {name: bytes}; with password (needs tmp, a folder) encrypted by Info-ZIP."""
    if password is None:
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name, data)
        return b.getvalue()
    for name, data in members.items():
        (tmp / name).write_bytes(data)
    out = tmp / "enc.zip"
    subprocess.run(["zip", "-q", "-P", password, "-j", str(out), *[str(tmp / n) for n in members]],
                   check=True)
    return out.read_bytes()


def targz_of(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


def sevenz_of(members, tmp):
    if shutil.which("7z") is None:
        pytest.skip("7z is not installed (apt-get install p7zip-full)")
    for name, data in members.items():
        (tmp / name).write_bytes(data)
    out = tmp / "a.7z"
    subprocess.run(["7z", "a", "-bd", str(out), *[str(tmp / n) for n in members]], check=True,
                   stdout=subprocess.DEVNULL)
    return out.read_bytes()


# Headers libclamav types by (filetypes.c, daily.ftm): executables other than PE and ELF.
MACHO = struct.pack("<IiiIIII", 0xfeedfacf, 0x01000007, 3, 2, 0, 0, 0) + bytes(4100)
LNK = bytes.fromhex("4C0000000114020000000000C000000000000046") + bytes(200)
JAVA_CLASS = bytes.fromhex("CAFEBABE00000034") + bytes(200)
PYC = bytes.fromhex("550d0d0a") + bytes(200)
