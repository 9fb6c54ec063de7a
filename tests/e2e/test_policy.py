"""test_policy -- the scan policy settings (clamd.conf's meaning): each switch with a file that proves
it, the file built here or taken from Debian's clamav-testfiles, scanned with the switch at its
default and turned the other way. docs/CONFIGURATION.md, "Scan policy", has the table these tests hold it to."""
import base64
import io
import json
import pathlib
import shutil
import struct
import subprocess
import zipfile
import zlib

import pytest
import requests

import harness

CORPUS = pathlib.Path("/usr/share/clamav-testfiles")
MARKER = b"clamrest-policy-test-pua-marker-7f3a9c"    # what the PUA test signature matches


def scan(srv, data):
    """(malware, reason) of data through /v2/scan-chunked."""
    r = harness.scan_chunked(srv, data, timeout=60)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}\n{srv.logs()[-2000:]}"
    body = r.json()
    return body["malware"], body["reason"]


def detected(srv, data, prefix):
    malware, reason = scan(srv, data)
    assert malware and reason.startswith(prefix), (malware, reason, prefix)


def clean(srv, data):
    malware, reason = scan(srv, data)
    assert not malware, reason


def corpus(name):
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} missing (apt-get install clamav-testfiles)")
    return path.read_bytes()


@pytest.fixture(scope="module")
def servers():
    """servers(**env) -> a server with those settings, one per distinct env for the module."""
    yield from harness.servers_by_settings()


# --- Files that prove a switch. ---

def encrypted_zip(tmp):
    (tmp / "note.txt").write_text("nothing to see here\n")
    subprocess.run(["zip", "-q", "-P", "secret", "-j", str(tmp / "enc.zip"), str(tmp / "note.txt")],
                   check=True)
    return (tmp / "enc.zip").read_bytes()


def encrypted_7z(tmp):
    if shutil.which("7z") is None:
        pytest.skip("7z is not installed (apt-get install p7zip-full)")
    (tmp / "note.txt").write_text("nothing to see here either\n")
    subprocess.run(["7z", "a", "-bd", "-psecret", "-mhe=on", str(tmp / "enc.7z"),
                    str(tmp / "note.txt")], check=True, stdout=subprocess.DEVNULL)
    return (tmp / "enc.7z").read_bytes()


def pdf(objects, trailer=b""):
    """A PDF of the given object bodies (numbered from 1) with a correct xref table."""
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R " % (len(objects) + 1) + trailer + b">>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return out


def stream(data, extra=b""):
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def encrypted_pdf():
    """Standard security handler, RC4 40-bit, with an /O and /U no empty user password opens:
    libclamav cannot decrypt it (Heuristics.Encrypted.PDF)."""
    content = bytes(range(7, 200, 3)) * 4
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
                stream(content),
                b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 "
                b"/O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> >>"],
               trailer=b"/Encrypt 5 0 R /ID [<00112233445566778899aabbccddeeff>"
                       b"<00112233445566778899aabbccddeeff>] ")


def obfuscated_pdf():
    """A filter name spelt with #xx escapes: Heuristics.PDF.ObfuscatedNameObject, a general
    heuristic (HEURISTIC_ALERTS)."""
    data = zlib.compress(b"BT /F1 12 Tf 20 100 Td (hello) Tj ET")
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
                stream(data, b"/Filter /Fl#61te#44#65#63#6f#64#65 ")])


def broken_elf():
    """A real ELF whose class byte is neither 32 nor 64 bit: Heuristics.Broken.Executable."""
    data = bytearray(pathlib.Path("/bin/true").read_bytes())
    data[4] = 3
    return bytes(data)


def compressed_swf(payload):
    """A zlib-compressed Flash file (CWS) whose body holds payload: found only once inflated."""
    body = b"\x78\x00\x05\x5f\x00\x00\x0f\xa0\x00\x00\x18\x01\x00" + payload
    return b"CWS\x0a" + (8 + len(body)).to_bytes(4, "little") + zlib.compress(body)


def word2003_xml(payload):
    """A Word 2003 XML document with payload base64-encoded in a w:binData element, in lines of 76
    characters as Word writes it (libclamav 1.4 decodes nothing from one long line)."""
    b64 = base64.encodebytes(payload)
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<?mso-application progid="Word.Document"?>\n'
            b'<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml">'
            b'<w:body><w:p><w:r><w:t>hello</w:t></w:r></w:p>'
            b'<w:binData w:name="wordml://03000001.exe">' + b64 + b'</w:binData>'
            b'</w:body></w:wordDocument>\n')


def xlm_workbook():
    """A minimal OLE2 (CFB v3) file with one stream, Workbook, whose BIFF8 records declare an
    Excel 4.0 macro sheet (BOUNDSHEET with dt = 1): libclamav's XLM macro indicator."""
    END, FREE, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    name = "Macro1"
    bof = struct.pack("<HH", 0x0809, 16) + struct.pack("<HHHHII", 0x0600, 0x0005, 0, 0, 0, 0)
    sheet = struct.pack("<IBB", 0, 0, 1) + struct.pack("<BB", len(name), 0) + name.encode()
    boundsheet = struct.pack("<HH", 0x0085, len(sheet)) + sheet
    eof = struct.pack("<HH", 0x000A, 0)
    stream = (bof + boundsheet + eof).ljust(4096, b"\0")    # >= the mini stream cutoff
    nsect = len(stream) // 512
    header = (bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16) +
              struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6) +
              struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, END, 0, END, 0) +
              struct.pack("<109I", 0, *([FREE] * 108)))
    fat = [FATSECT, END] + [3 + i for i in range(nsect - 1)] + [END]
    fat_sector = struct.pack(f"<{len(fat)}I", *fat) + struct.pack("<I", FREE) * (128 - len(fat))

    def entry(ename, etype, child, start, size):
        n = (ename + "\0").encode("utf-16-le") if ename else b""
        return (n.ljust(64, b"\0") + struct.pack("<HBB", len(n), etype, 1 if ename else 0) +
                struct.pack("<III", NOSTREAM, NOSTREAM, child) + bytes(16) + bytes(4) + bytes(16) +
                struct.pack("<IQ", start, size))

    directory = (entry("Root Entry", 5, 1, END, 0) + entry("Workbook", 2, NOSTREAM, 2, len(stream)) +
                 entry("", 0, NOSTREAM, 0, 0) + entry("", 0, NOSTREAM, 0, 0))
    return header + fat_sector + directory + stream


def nested_zip(tmp, data, depth):
    """data inside depth levels of zip."""
    inner = tmp / "level0.bin"
    inner.write_bytes(data)
    for i in range(1, depth + 1):
        out = tmp / f"level{i}.zip"
        subprocess.run(["zip", "-q", "-j", str(out), str(inner)], check=True)
        inner = out
    return inner.read_bytes()


def pua_db(tmp):
    """The test database plus one PUA signature, PUA.Win.Packer.Test, in a .ndu file (libclamav
    loads .ndu files only with DETECT_PUA)."""
    db = harness.make_db(tmp / "db-pua")
    (db / "pua.ndu").write_text(f"PUA.Win.Packer.Test:0:*:{MARKER.hex()}\n")
    return db


def phishing_db(tmp):
    """The test database plus a phishing domain list naming example.com (as ClamAV's own
    unit_tests/clamscan/phishing_test.py does)."""
    db = harness.make_db(tmp / "db-phish")
    (db / "monitor.pdb").write_text("H:example.com\n")
    return db


MAIL_HEAD = b"From test@example.com\nFrom: test@example.com\nTo: test@example.com\n\n"
PHISH_SSL = MAIL_HEAD + b"<a href='ssl-example.com/something.not'>https://ssl-example.com</a>\n"
PHISH_CLOAK = MAIL_HEAD + (b"<a href='http://real-example.com%00fake.example.com/'>"
                           b"real-example.com</a>\n")


# --- The policy as logged. ---

def test_policy_logged_at_start(servers):
    srv = servers()
    lines = [json.loads(l) for l in srv.logs().splitlines() if l.startswith("{")]
    found = [l["clamrest.policy"] for l in lines if l.get("message") == "scan policy"]
    assert len(found) == 1, srv.logs()
    policy = found[0]
    assert policy["alert_encrypted_archive"] is True and policy["alert_encrypted_doc"] is True
    assert policy["alert_exceeds_max"] is True and policy["scan_archive"] is True
    assert policy["detect_pua"] is False and policy["alert_ole2_macros"] is False
    off = servers(SCAN_ARCHIVE="no", ALERT_ENCRYPTED="yes")
    text = off.logs()
    line = next(l for l in text.splitlines() if '"scan policy"' in l)
    policy = json.loads(line)["clamrest.policy"]
    # clamd: encrypted-archive alerts need archive parsing.
    assert policy["scan_archive"] is False and policy["alert_encrypted_archive"] is False
    assert "SCAN_ARCHIVE is off" in text


def test_bad_boolean_names_the_setting(tmp_path):
    env = {"SCAN_PDF": "maybe", "CLAMAV_DB_DIR": str(tmp_path)}
    r = subprocess.run([harness.BIN], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "SCAN_PDF" in r.stderr and "yes or no" in r.stderr, r.stderr


# --- Encrypted archives and documents. ---

def test_encrypted_zip_alerts_by_default(servers, tmp_path):
    detected(servers(), encrypted_zip(tmp_path), "Heuristics.Encrypted.Zip")


def test_encrypted_zip_clean_without_archive_alert(servers, tmp_path):
    clean(servers(ALERT_ENCRYPTED_ARCHIVE="no"), encrypted_zip(tmp_path))


def test_encrypted_7z_alerts_by_default(servers, tmp_path):
    detected(servers(), encrypted_7z(tmp_path), "Heuristics.Encrypted.7Zip")


def test_encrypted_7z_clean_without_archive_alert(servers, tmp_path):
    clean(servers(ALERT_ENCRYPTED_ARCHIVE="no"), encrypted_7z(tmp_path))


def test_encrypted_pdf_alerts_by_default(servers):
    detected(servers(), encrypted_pdf(), "Heuristics.Encrypted.PDF")


def test_encrypted_pdf_clean_without_doc_alert(servers):
    clean(servers(ALERT_ENCRYPTED_DOC="no"), encrypted_pdf())


def test_alert_encrypted_covers_both(servers, tmp_path):
    """ALERT_ENCRYPTED adds to the two others, as clamd's AlertEncrypted does."""
    srv = servers(ALERT_ENCRYPTED="yes", ALERT_ENCRYPTED_ARCHIVE="no", ALERT_ENCRYPTED_DOC="no")
    detected(srv, encrypted_zip(tmp_path), "Heuristics.Encrypted.Zip")
    detected(srv, encrypted_pdf(), "Heuristics.Encrypted.PDF")


# --- Limits. ---

def test_exceeds_max_alerts_by_default(servers, tmp_path):
    srv = servers(MAX_RECURSION="2")
    detected(srv, nested_zip(tmp_path, corpus("clam.exe"), 4), "Heuristics.Limits.Exceeded")


def bomb_then(payload):
    """A zip whose first member unpacks to 70 MiB of zeros (past the 64 MiB every scan may unpack
    when MAX_EXPANSION's share is smaller), and whose second member is payload."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(70 << 20))
        z.writestr("payload.bin", payload)
    return buf.getvalue()


def test_exceeds_max_off_answers_what_was_scanned(servers):
    """ALERT_EXCEEDS_MAX=no: the scan stops at the unpacking budget, clam.exe (known by its MD5
    alone) after it is never reached, and the answer is clean, as clamd's AlertExceedsMax no
    answers; the cut is logged and counted, and not cached."""
    data = bomb_then(corpus("clam.exe"))
    detected(servers(), data, "Heuristics.Limits.Exceeded.MaxScanSize")
    srv = servers(ALERT_EXCEEDS_MAX="no")
    clean(srv, data)
    clean(srv, data)    # the second answer is a scan again, not the cache's
    assert "answered clean: ALERT_EXCEEDS_MAX is off" in srv.logs()
    metrics = requests.get(srv.url + "/metrics", timeout=10).text
    assert "clamrest_scan_cut_clean_total 2" in metrics, metrics
    detected(srv, corpus("clam.zip"), "ClamAV-Test-File")


def test_exceeds_max_off_and_nesting_past_max_recursion(servers, tmp_path):
    """Past MAX_RECURSION libclamav lists a zip's members without scanning them and says nothing;
    the second reader names the limit (MaxRecursion), so it is a limit like the others: malware by
    default, and with ALERT_EXCEEDS_MAX=no the verdict of what was scanned (clean, logged and
    counted in clamrest_scan_cut_clean_total), as clamd answers with AlertExceedsMax off. (Before the
    second reader it was answered Heuristics.Unscanned.ArchiveMember, which this setting does not
    govern.)"""
    nested = nested_zip(tmp_path, corpus("clam.exe"), 4)
    detected(servers(MAX_RECURSION="2"), nested, "Heuristics.Limits.Exceeded.MaxRecursion")
    clean(servers(MAX_RECURSION="2", ALERT_EXCEEDS_MAX="no"), nested)


# --- PUA. ---

def test_pua_not_loaded_by_default(servers, tmp_path):
    srv = servers(db=pua_db(tmp_path))
    clean(srv, b"xx" + MARKER + b"yy")
    detected(srv, harness.EICAR, "Eicar")


def test_detect_pua(servers, tmp_path):
    detected(servers(db=pua_db(tmp_path), DETECT_PUA="yes"), b"xx" + MARKER + b"yy",
             "PUA.Win.Packer.Test")


@pytest.mark.parametrize("setting,category,found", [
    ("PUA_INCLUDE", "Packer", True), ("PUA_INCLUDE", "Win.Packer", True),
    ("PUA_INCLUDE", "Tool", False), ("PUA_EXCLUDE", "Packer", False),
    ("PUA_EXCLUDE", "Tool", True)])
def test_pua_categories(servers, tmp_path, setting, category, found):
    srv = servers(db=pua_db(tmp_path), DETECT_PUA="yes", **{setting: category})
    if found:
        detected(srv, b"xx" + MARKER + b"yy", "PUA.Win.Packer.Test")
    else:
        clean(srv, b"xx" + MARKER + b"yy")


def test_pua_category_list_refused(tmp_path):
    """libclamav 1.4 matches no list of categories: refused rather than silently ignored."""
    env = {"DETECT_PUA": "yes", "PUA_EXCLUDE": "Packer,Tool", "CLAMAV_DB_DIR": str(tmp_path)}
    r = subprocess.run([harness.BIN], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "PUA_EXCLUDE" in r.stderr, r.stderr


# --- Heuristics. ---

def test_heuristic_alerts(servers):
    detected(servers(), obfuscated_pdf(), "Heuristics.PDF.ObfuscatedNameObject")
    clean(servers(HEURISTIC_ALERTS="no"), obfuscated_pdf())


def test_broken_executables(servers):
    clean(servers(), broken_elf())
    detected(servers(ALERT_BROKEN_EXECUTABLES="yes"), broken_elf(), "Heuristics.Broken.Executable")


def test_ole2_macros(servers):
    """An OLE2 workbook with an Excel 4.0 macro sheet (libclamav's XLM indicator; the corpus has no
    VBA): clean by default, Heuristics.OLE2.ContainsMacros with ALERT_OLE2_MACROS, which needs
    SCAN_OLE2."""
    data = xlm_workbook()
    clean(servers(), data)
    detected(servers(ALERT_OLE2_MACROS="yes"), data, "Heuristics.OLE2.ContainsMacros")
    clean(servers(ALERT_OLE2_MACROS="yes", SCAN_OLE2="no"), data)


def test_phishing_ssl_mismatch(servers, tmp_path):
    db = phishing_db(tmp_path)
    clean(servers(db=db), PHISH_SSL)
    detected(servers(db=db, ALERT_PHISHING_SSL_MISMATCH="yes"), PHISH_SSL,
             "Heuristics.Phishing.Email.SSL-Spoof")


def test_phishing_cloak(servers, tmp_path):
    db = phishing_db(tmp_path)
    clean(servers(db=db), PHISH_CLOAK)
    detected(servers(db=db, ALERT_PHISHING_CLOAK="yes"), PHISH_CLOAK,
             "Heuristics.Phishing.Email.Cloaked")


# --- Parsers: the file is detected with the parser on, and clean with it off. ---

PARSERS = [
    ("SCAN_PE", "clam-upx.exe"),          # the packed clam.exe is found once UPX is undone
    ("SCAN_ARCHIVE", "clam.zip"),         # dangerous: malware in any archive is missed
    ("SCAN_OLE2", "clam.ole.doc"),
    ("SCAN_PDF", "clam.pdf"),
    ("SCAN_HTML", "clam.exe.html"),
    ("SCAN_MAIL", "clam.mail"),
]


@pytest.mark.parametrize("setting,name", PARSERS)
def test_parser_switch(servers, setting, name):
    data = corpus(name)
    detected(servers(), data, "ClamAV-Test-File")
    clean(servers(**{setting: "no"}), data)


def test_scan_elf(servers):
    """The broken ELF alert needs the ELF parser."""
    detected(servers(ALERT_BROKEN_EXECUTABLES="yes"), broken_elf(), "Heuristics.Broken.Executable")
    clean(servers(ALERT_BROKEN_EXECUTABLES="yes", SCAN_ELF="no"), broken_elf())


def test_scan_swf(servers):
    data = compressed_swf(b"\x00" * 16 + harness.EICAR + b"\x00" * 16)
    detected(servers(), data, "Eicar")
    clean(servers(SCAN_SWF="no"), data)


def test_scan_xmldocs(servers):
    data = word2003_xml(corpus("clam.exe"))
    detected(servers(), data, "ClamAV-Test-File")
    clean(servers(SCAN_XMLDOCS="no"), data)
