"""Debian's clamav-testfiles corpus: every file is detected through /v2/scan-chunked, and the exact
bytes of clam.exe (detected by its MD5 alone) survive every way of uploading it."""
import pathlib

import pytest
import requests

import harness

CORPUS = pathlib.Path("/usr/share/clamav-testfiles")
FILES = sorted(p.name for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []
CLAM_EXE = CORPUS / "clam.exe"   # 544 bytes; the test database knows it only by MD5 and size


@pytest.fixture(scope="module")
def srv(start_module):
    return start_module()


@pytest.fixture(scope="module")
def spill(start_module):
    """Bodies move from memory to a file after 100 bytes."""
    return start_module(env={"SPILL_THRESHOLD": "100"})


def pieces(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def verdict(r, what):
    c = f"{what}: {r.status_code} {r.text[:300]!r}"
    assert r.status_code == 200, c
    body = r.json()
    assert set(body) == {"malware", "reason", "time"}, c
    return body


def test_corpus_present():
    assert len(FILES) == 44, f"expected 44 files in {CORPUS}, found {len(FILES)}: {FILES}"


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_detected(srv, name):
    data = (CORPUS / name).read_bytes()
    r = requests.post(srv.url + "/v2/scan-chunked", data=data, auth=harness.auth(), timeout=60)
    body = verdict(r, name)
    assert body["malware"] is True, f"{name} ({len(data)} bytes) not detected: {body}"
    assert isinstance(body["reason"], str) and body["reason"], body


def clam_exe_uploads(srv):
    data = CLAM_EXE.read_bytes()
    a = harness.auth()
    url = srv.url
    yield "chunked-cl", requests.post(url + "/v2/scan-chunked", data=data, auth=a, timeout=30)
    yield "chunked-1byte", requests.post(url + "/v2/scan-chunked", data=pieces(data, 1), auth=a,
                                         timeout=30)
    yield "chunked-7bytes", requests.post(url + "/v2/scan-chunked", data=pieces(data, 7), auth=a,
                                          timeout=30)
    yield "multipart", requests.post(url + "/v2/scan", files={"file": ("clam.exe", data)}, auth=a,
                                     timeout=30)
    yield "multipart-with-field-first", requests.post(
        url + "/v2/scan", files=[("note", (None, "a plain field")), ("file", ("clam.exe", data))],
        auth=a, timeout=30)
    b = "----boundary-0123456789"
    body = (f"preamble\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    for size in (1, 3, 64):
        yield f"multipart-chunked-{size}", requests.post(
            url + "/v2/scan", data=pieces(body, size), auth=a, timeout=30,
            headers={"Content-Type": f"multipart/form-data; boundary={b}"})


def test_clam_exe_exact_bytes(srv, spill):
    for s in (srv, spill):
        for how, r in clam_exe_uploads(s):
            body = verdict(r, how)
            assert body["malware"] is True and "ClamAV-Test-File" in body["reason"], (how, body)


def test_clam_exe_changed_by_one_byte_is_not_detected(srv):
    """The check above can fail: one byte more and the MD5 signature no longer matches."""
    data = CLAM_EXE.read_bytes()
    # (A byte put in front is no test: libclamav finds the PE embedded at offset 1 and hashes it.)
    for variant in (data + b"\r\n", data + b"-", data[:-1], data[:-1] + bytes([data[-1] ^ 1])):
        r = requests.post(srv.url + "/v2/scan-chunked", data=variant, auth=harness.auth(), timeout=30)
        body = verdict(r, "variant")
        assert body["malware"] is False, body


def test_corpus_after_scans_tmpdir_clean(srv):
    assert harness.tmp_leftovers(srv) == [], harness.tmp_leftovers(srv)
