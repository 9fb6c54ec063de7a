"""Scans: POST /v2/scan (multipart, one file), /v2/scan-chunked (the body is the file) and the
deprecated /scan (OK / NOTOK)."""
import functools
import json
import os
import subprocess

import pytest
import requests

import harness

CLEAN = b"just a harmless text file\n" * 10


@pytest.fixture(scope="module")
def srv(start_module):
    return start_module()


def ctx(r, srv=None):
    s = f"{r.request.method} {r.request.url} -> {r.status_code} {dict(r.headers)} {r.text[:500]!r}"
    if srv is not None:
        s += "\nserver logs (tail):\n" + srv.logs()[-3000:]
    return s


def verdict(r, srv=None):
    """The parsed JSON verdict of a 200 scan answer, after checking its shape."""
    c = ctx(r, srv)
    assert r.status_code == 200, c
    assert r.headers.get("Content-Type", "").startswith("application/json"), c
    body = json.loads(r.text)
    assert set(body) == {"malware", "reason", "time"}, c
    assert type(body["malware"]) is bool, c
    assert type(body["time"]) is float and body["time"] >= 0, c
    if body["malware"]:
        assert isinstance(body["reason"], str) and body["reason"], c
    else:
        assert body["reason"] is None, c
    return body


scan = harness.scan_multipart                                       # /v2/scan, 60 s
scan_chunked = functools.partial(harness.scan_chunked, timeout=120)   # large bodies: 120 s


def pieces(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


# --- /v2/scan ---

def test_v2_scan_eicar(srv):
    body = verdict(scan(srv, {"file": ("eicar.com", harness.EICAR)}), srv)
    assert body["malware"] is True, body
    assert "eicar" in body["reason"].lower(), body


def test_v2_scan_clean(srv):
    body = verdict(scan(srv, {"file": ("clean.txt", CLEAN)}), srv)
    assert body == {"malware": False, "reason": None, "time": body["time"]}


def test_v2_scan_empty_file_is_clean(srv):
    body = verdict(scan(srv, {"file": ("empty", b"")}), srv)
    assert body["malware"] is False and body["reason"] is None, body


def test_v2_scan_field_name_does_not_matter(srv):
    body = verdict(scan(srv, {"upload": ("x.bin", harness.EICAR)}), srv)
    assert body["malware"] is True, body


def test_v2_scan_ignores_non_file_fields(srv):
    r = scan(srv, {"file": ("eicar.com", harness.EICAR)}, data={"comment": "hello"})
    assert verdict(r, srv)["malware"] is True


def test_v2_scan_zero_files(srv):
    r = requests.post(srv.url + "/v2/scan", data={"comment": "no file here"}, auth=harness.auth(),
                      timeout=30)
    # requests sends form fields without files as urlencoded: a non-multipart body.
    assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)
    # A multipart body with only a plain field and no file.
    r = scan(srv, {"comment": (None, "no file here")})
    assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)


def test_v2_scan_empty_multipart(srv):
    b = "XyZboundary"
    r = requests.post(srv.url + "/v2/scan", data=f"--{b}--\r\n".encode(), auth=harness.auth(),
                      headers={"Content-Type": f"multipart/form-data; boundary={b}"}, timeout=30)
    assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)


def test_v2_scan_two_files(srv):
    r = scan(srv, [("file", ("a.txt", CLEAN)), ("file", ("b.txt", CLEAN))])
    assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)
    r = scan(srv, [("a", ("a.txt", harness.EICAR)), ("b", ("b.txt", CLEAN))])
    assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)


@pytest.mark.parametrize("ctype", [None, "application/octet-stream", "text/plain",
                                   "application/x-www-form-urlencoded"])
def test_v2_scan_not_multipart(srv, ctype):
    headers = {} if ctype is None else {"Content-Type": ctype}
    r = requests.post(srv.url + "/v2/scan", data=harness.EICAR, headers=headers,
                      auth=harness.auth(), timeout=30)
    assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)


def test_v2_scan_multipart_without_boundary(srv):
    body = (b"--abc\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n"
            + harness.EICAR + b"\r\n--abc--\r\n")
    r = requests.post(srv.url + "/v2/scan", data=body, auth=harness.auth(), timeout=30,
                      headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400, ctx(r)


@pytest.mark.parametrize("ctype", [
    'multipart/form-data; boundary="XyZ b"',
    "multipart/form-data; charset=utf-8; boundary=XyZ b",
    "Multipart/Form-Data; BOUNDARY=XyZ b",
    "multipart/form-data;boundary=XyZ b",
], ids=["quoted", "extra-param", "case", "no-space"])
def test_v2_scan_multipart_content_type_variants(srv, ctype):
    b = "XyZ b".replace(" ", "") if "quoted" not in ctype and '"' not in ctype else "XyZ b"
    ctype = ctype.replace("XyZ b", b)
    body = (f"preamble\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n"
            .encode() + harness.EICAR + f"\r\n--{b}--\r\nepilogue".encode())
    r = requests.post(srv.url + "/v2/scan", data=body, auth=harness.auth(), timeout=30,
                      headers={"Content-Type": ctype})
    assert verdict(r, srv)["malware"] is True, (ctype, r.text)


def test_v2_scan_multipart_truncated(srv):
    b = "XyZboundary"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n".encode()
            + harness.EICAR)  # no closing boundary
    r = requests.post(srv.url + "/v2/scan", data=body, auth=harness.auth(), timeout=30,
                      headers={"Content-Type": f"multipart/form-data; boundary={b}"})
    assert r.status_code == 400, ctx(r)


def test_v2_scan_multipart_chunked(srv):
    """A multipart body sent with Transfer-Encoding: chunked, in small pieces."""
    b = "XyZboundary"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + b"A" * 5000 + harness.EICAR + f"\r\n--{b}--\r\n".encode())
    r = requests.post(srv.url + "/v2/scan", data=pieces(body, 7), auth=harness.auth(), timeout=60,
                      headers={"Content-Type": f"multipart/form-data; boundary={b}"})
    assert verdict(r, srv)["malware"] is True


# --- /v2/scan-chunked ---

def test_chunked_eicar_in_pieces(srv):
    body = verdict(scan_chunked(srv, pieces(harness.EICAR, 5)), srv)
    assert body["malware"] is True and "eicar" in body["reason"].lower(), body


def test_chunked_eicar_content_length(srv):
    r = scan_chunked(srv, harness.EICAR)
    assert r.request.headers.get("Content-Length") == str(len(harness.EICAR))
    body = verdict(r, srv)
    assert body["malware"] is True, body


def test_chunked_clean_both_framings(srv):
    for data in (CLEAN, pieces(CLEAN, 16)):
        body = verdict(scan_chunked(srv, data), srv)
        assert body["malware"] is False and body["reason"] is None, body


def test_chunked_empty_body_is_clean(srv):
    for data in (b"", iter([])):
        body = verdict(scan_chunked(srv, data), srv)
        assert body["malware"] is False and body["reason"] is None, body


def test_chunked_eicar_inside_larger_file(srv):
    data = os.urandom(100_000) + harness.EICAR + os.urandom(1000)
    body = verdict(scan_chunked(srv, pieces(data, 4096)), srv)
    assert body["malware"] is True, body


# --- /scan (deprecated) ---

def test_legacy_scan_eicar(srv):
    r = requests.post(srv.url + "/scan", files={"file": ("eicar", harness.EICAR)},
                      auth=harness.auth(), timeout=30)
    assert (r.status_code, r.text) == (200, "NOTOK"), ctx(r, srv)


def test_legacy_scan_clean(srv):
    r = requests.post(srv.url + "/scan", files={"file": ("clean", CLEAN)}, auth=harness.auth(),
                      timeout=30)
    assert (r.status_code, r.text) == (200, "OK"), ctx(r, srv)


def test_legacy_scan_two_files(srv):
    r = requests.post(srv.url + "/scan", files=[("a", ("a", CLEAN)), ("b", ("b", CLEAN))],
                      auth=harness.auth(), timeout=30)
    assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)


# --- archives and large bodies ---

def test_encrypted_zip(srv, tmp_path):
    (tmp_path / "secret.txt").write_bytes(CLEAN)
    subprocess.run(["zip", "-q", "-P", "secret", str(tmp_path / "enc.zip"), "secret.txt"],
                   cwd=tmp_path, check=True)
    data = (tmp_path / "enc.zip").read_bytes()
    for r in (scan(srv, {"file": ("enc.zip", data)}), scan_chunked(srv, data)):
        body = verdict(r, srv)
        assert body["malware"] is True and body["reason"] == "Heuristics.Encrypted.Zip", body


def test_zip_with_eicar(srv, tmp_path):
    (tmp_path / "eicar.com").write_bytes(harness.EICAR)
    subprocess.run(["zip", "-q", str(tmp_path / "e.zip"), "eicar.com"], cwd=tmp_path, check=True)
    body = verdict(scan_chunked(srv, (tmp_path / "e.zip").read_bytes()), srv)
    assert body["malware"] is True, body


def test_large_random_body_chunked_is_clean(start):
    s = start(env={"SPILL_THRESHOLD": "65536"})
    data = os.urandom(20 * 1024 * 1024)
    body = verdict(scan_chunked(s, pieces(data, 256 * 1024)), s)
    assert body["malware"] is False and body["reason"] is None, body


def test_eicar_at_end_of_3mib_file(start):
    s = start(env={"SPILL_THRESHOLD": "65536"})
    data = os.urandom(3 * 1024 * 1024) + harness.EICAR
    for r in (scan_chunked(s, data), scan_chunked(s, pieces(data, 100_000)),
              scan(s, {"file": ("big.bin", data)})):
        body = verdict(r, s)
        assert body["malware"] is True, body


def test_eicar_at_end_of_3mib_file_in_memory(start):
    """The same with the default SPILL_THRESHOLD (2 MiB): the body moves from memory to a file."""
    s = start()
    data = os.urandom(3 * 1024 * 1024) + harness.EICAR
    body = verdict(scan_chunked(s, pieces(data, 100_000)), s)
    assert body["malware"] is True, body
    small = os.urandom(1024 * 1024) + harness.EICAR
    body = verdict(scan_chunked(s, small), s)
    assert body["malware"] is True, body


def test_concurrent_scans(srv):
    from concurrent.futures import ThreadPoolExecutor
    items = [harness.EICAR if i % 2 else CLEAN for i in range(16)]
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda d: scan_chunked(srv, d), items))
    for data, r in zip(items, results):
        assert verdict(r, srv)["malware"] is (data == harness.EICAR)
