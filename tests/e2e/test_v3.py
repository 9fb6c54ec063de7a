"""test_v3 -- POST /v3/scan and /v3/scan-chunked (issue 15): several files per request, every match
and where in the archive it was found, sha256 and libclamav's type, all_matches, JSON errors.

One server (MAX_CONTENT_LENGTH and MAX_SCAN_SIZE of 1 MiB, MAX_FILES_PER_REQUEST 4) with the test
database plus a second body signature on EICAR serves most tests; the errors that need other
settings start their own.
"""
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import zipfile

import pytest
import requests

import harness

MiB = 1024 * 1024
EICAR = harness.EICAR
# A second .ndb signature on EICAR (its tail): with all_matches, EICAR matches both body signatures.
SECOND_SIG = "Clamrest.Test.EICAR-Tail"
SECOND_NDB = f"{SECOND_SIG}:0:*:{b'EICAR-STANDARD-ANTIVIRUS-TEST-FILE'.hex()}\n"
FILES_MAX = 4


@pytest.fixture(scope="module")
def srv(start_module, tmp_path_factory):
    db = harness.make_db(tmp_path_factory.mktemp("v3db"))
    (db / "second.ndb").write_text(SECOND_NDB)
    return start_module(env={"CLAMAV_DB_DIR": str(db), "MAX_CONTENT_LENGTH": str(MiB),
                             "MAX_SCAN_SIZE": str(MiB), "MAX_FILES_PER_REQUEST": str(FILES_MAX)})


def post(srv, files, query="", **kw):
    return harness.scan_multipart(srv, files, "/v3/scan" + query, **kw)


def zip_bytes(members, method=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return b.getvalue()


def targz_bytes(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


def multipart(parts, boundary="v3b0undary"):
    """A multipart/form-data body from raw Content-Disposition values and contents."""
    out = b""
    for disposition, data in parts:
        out += (b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition +
                b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, f"multipart/form-data; boundary={boundary}"


def sha256sum(data, tmp_path):
    f = tmp_path / "sample"
    f.write_bytes(data)
    return subprocess.run(["sha256sum", str(f)], check=True, capture_output=True,
                          text=True).stdout.split()[0]


def check_shape(answer):
    """Every answer has the documented fields (docs/openapi.yaml checks the schema in detail)."""
    assert set(answer) == {"engine", "files", "malware", "time"}, answer
    assert answer["engine"]["libclamav"] and answer["engine"]["database"] == 27000, answer
    assert answer["malware"] == any(f["malware"] for f in answer["files"]), answer
    for f in answer["files"]:
        assert set(f) == {"limits_exceeded", "malware", "matches", "name", "sha256", "size", "time",
                          "type"}, f
        assert f["malware"] == bool(f["matches"]), f      # malware always says why; clean never
        assert isinstance(f["time"], float) and f["time"] >= 0, f


def test_several_files_mixed_clean_malicious_and_cut(srv, tmp_path):
    """Three files in one request: a clean one, EICAR, and a zip whose member passes the 1 MiB limits
    (cut, so malware with its Heuristics.Limits.Exceeded match, never clean). Every file gets its
    own verdict, size, sha256 (equal to sha256sum's) and type."""
    clean = b"nothing to see here, just text\n" * 10
    bomb = zip_bytes([("zeros.bin", bytes(3 * MiB))])
    r = post(srv, [("file", ("clean.txt", clean)), ("file", ("eicar.com", EICAR)),
                   ("file", ("big.zip", bomb))])
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", r.text
    assert r.text.endswith("}\n"), r.text
    a = r.json()
    check_shape(a)
    assert a["malware"] is True
    c, e, z = a["files"]
    assert (c["name"], c["malware"], c["limits_exceeded"], c["matches"]) == ("clean.txt", False, False, [])
    assert c["size"] == len(clean) and c["type"] == "CL_TYPE_TEXT_ASCII", c
    assert (e["name"], e["malware"], e["limits_exceeded"]) == ("eicar.com", True, False), e
    assert [m["path"] for m in e["matches"]] == [["eicar.com"]], e
    assert e["matches"][0]["signature"].startswith(("Eicar-Test-Signature", SECOND_SIG, "Win.Test.EICAR")), e
    assert z["malware"] is True and z["limits_exceeded"] is True and z["type"] == "CL_TYPE_ZIP", z
    assert any(m["signature"].startswith("Heuristics.Limits.Exceeded.") for m in z["matches"]), z
    for f, data in ((c, clean), (e, EICAR), (z, bomb)):
        assert f["sha256"] == hashlib.sha256(data).hexdigest() == sha256sum(data, tmp_path), f
        assert f["size"] == len(data)


def test_all_matches_reports_both_signatures(srv):
    """EICAR matches two .ndb signatures (and the database's hash one): all_matches=true reports each
    once, with its path; without it (and with all_matches=false) only the first is reported."""
    r = post(srv, [("file", ("eicar.com", EICAR))], "?all_matches=true")
    assert r.status_code == 200, r.text
    matches = r.json()["files"][0]["matches"]
    sigs = [m["signature"].removesuffix(".UNOFFICIAL") for m in matches]
    assert "Eicar-Test-Signature" in sigs and SECOND_SIG in sigs, matches
    assert len(sigs) == len(set(sigs)), matches
    assert all(m["path"] == ["eicar.com"] for m in matches), matches
    for query in ("", "?all_matches=false", "?all_matches=False"):
        r = post(srv, [("file", ("eicar.com", EICAR))], query)
        assert r.status_code == 200 and len(r.json()["files"][0]["matches"]) == 1, (query, r.text)


def test_path_two_levels_deep_zip_in_tar_gz(srv):
    """EICAR in a zip in a tar.gz: the match's path names the upload, the gzip layer (no name: its
    index "#0"), the tar member and the zip member, as libclamav's callbacks saw them (its zip
    reader, unzip.c, records only a member's base name: "dir/eicar.com" is "eicar.com")."""
    inner = zip_bytes([("readme.txt", b"hello " * 50), ("dir/eicar.com", EICAR)])
    outer = targz_bytes([("docs/inner.zip", inner), ("notes.txt", b"plain notes " * 20)])
    for query in ("", "?all_matches=true"):
        r = post(srv, [("file", ("outer.tar.gz", outer))], query)
        assert r.status_code == 200, r.text
        f = r.json()["files"][0]
        assert f["type"] == "CL_TYPE_GZ" and f["malware"] is True, f
        paths = [m["path"] for m in f["matches"]]
        assert ["outer.tar.gz", "#0", "docs/inner.zip", "eicar.com"] in paths, (query, paths)


def test_type_names(srv):
    """type is libclamav's name of the upload's type; a file of 5 bytes or fewer is not typed."""
    cases = [("a.zip", zip_bytes([("x.txt", b"hello zip member")]), "CL_TYPE_ZIP"),
             ("a.gz", gzip.compress(b"hello gzip " * 10), "CL_TYPE_GZ"),
             ("a.txt", b"just some text\n" * 4, "CL_TYPE_TEXT_ASCII"),
             ("tiny", b"abc", None)]
    r = post(srv, [("file", (n, d)) for n, d, _ in cases])
    assert r.status_code == 200, r.text
    assert [f["type"] for f in r.json()["files"]] == [t for _, _, t in cases], r.text


def test_chunked_v3(srv):
    """/v3/scan-chunked: the body (chunked here) is one file without a name; its path starts at "-"."""
    r = requests.post(srv.url + "/v3/scan-chunked?all_matches=true", data=iter([EICAR[:30], EICAR[30:]]),
                      auth=harness.auth(), timeout=30)
    assert r.status_code == 200, r.text
    a = r.json()
    check_shape(a)
    f = a["files"][0]
    assert f["name"] is None and f["size"] == len(EICAR) and f["malware"] is True, f
    assert f["sha256"] == hashlib.sha256(EICAR).hexdigest()
    assert all(m["path"] == ["-"] for m in f["matches"]) and len(f["matches"]) >= 2, f


def test_names_escaped_and_non_file_fields_ignored(srv):
    """File names with quotes, control characters and bytes that are not UTF-8 come back as valid
    JSON (invalid bytes as U+FFFD); a filename* (RFC 5987) wins over filename; a file part without a
    name is named by its field; form fields without a filename are ignored."""
    body, ctype = multipart([
        (b'form-data; name="comment"', b"a plain field, not a file"),
        (b'form-data; name="f1"; filename="q\\"uote\x01.txt"', EICAR),
        (b'form-data; name="f2"; filename="bad\xff\xfe.bin"', b"clean bytes here"),
        (b"form-data; name=\"f3\"; filename=\"plain.txt\"; filename*=UTF-8''caf%C3%A9.txt", b"clean text"),
        (b'form-data; name="f4"; filename=""', EICAR),
    ])
    r = requests.post(srv.url + "/v3/scan", data=body, headers={"Content-Type": ctype},
                      auth=harness.auth(), timeout=30)
    assert r.status_code == 200, r.text
    r.content.decode("ascii")               # ASCII only, as Flask's jsonify writes
    files = json.loads(r.content)["files"]
    assert [f["name"] for f in files] == ['q"uote\x01.txt', "bad\ufffd\ufffd.bin", "caf\u00e9.txt", ""]
    assert files[0]["matches"][0]["path"] == ['q"uote\x01.txt'], files[0]
    assert files[3]["matches"][0]["path"] == ["f4"], files[3]
    assert [f["malware"] for f in files] == [True, False, False, True]


def test_query_other_parameters_ignored(srv):
    r = post(srv, [("file", ("eicar.com", EICAR))], "?x=1&all_matches=TRUE&all_matches=false")
    assert r.status_code == 200 and len(r.json()["files"][0]["matches"]) >= 2, r.text
    r = post(srv, [("file", ("eicar.com", EICAR))], "?" + "&".join(f"p{i}=v" for i in range(3000)))
    assert r.status_code == 200 and len(r.json()["files"][0]["matches"]) == 1, r.text


def error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json", r.headers
    e = r.json()
    assert set(e) == {"error"} and e["error"], e
    return e["error"]


def test_errors_400_401_405_413(srv):
    one = [("file", ("eicar.com", EICAR))]
    assert "MAX_FILES_PER_REQUEST" in error(post(srv, one * (FILES_MAX + 1)), 400)
    assert post(srv, one * FILES_MAX).status_code == 200
    assert "no file" in error(post(srv, {"field": (None, "just a field")}), 400)
    assert "all_matches" in error(post(srv, one, "?all_matches=yes"), 400)
    assert "all_matches" in error(post(srv, one, "?all_matches"), 400)
    r = requests.post(srv.url + "/v3/scan", data=b"x", headers={"Content-Type": "text/plain"},
                      auth=harness.auth(), timeout=10)
    assert "multipart" in error(r, 400)
    r = requests.post(srv.url + "/v3/scan", files=one, auth=("app1", "wrong"), timeout=30)
    error(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Basic"), r.headers
    error(requests.post(srv.url + "/v3/scan", files=one, timeout=10), 401)
    r = requests.get(srv.url + "/v3/scan", auth=harness.auth(), timeout=10)
    error(r, 405)
    assert r.headers["Allow"] == "POST, OPTIONS"
    error(post(srv, [("file", ("big.bin", bytes(MiB + 1)))]), 413)
    error(requests.post(srv.url + "/v3/scan-chunked", data=iter([bytes(MiB), b"x"]), auth=harness.auth(),
                        timeout=30), 413)


def test_errors_503(start):
    """503 with Retry-After when the temporary-folder budget is spent, counted over every part of the
    request (each file alone fits in BODY_DISK, the two together do not); 503 while no database is
    loaded."""
    srv = start(env={"SPILL_THRESHOLD": "0", "BODY_DISK": "3000"})
    part = bytes(2000)
    assert post(srv, [("file", ("a.bin", part))]).status_code == 200
    r = post(srv, [("file", ("a.bin", part)), ("file", ("b.bin", part))])
    assert error(r, 503) == "Service Busy"
    assert int(r.headers["Retry-After"]) >= 1, r.headers
    assert harness.metric(srv, "clamrest_body_disk_bytes") == 0
    waiting = start(db_version=None, env={"DB_WAIT": "1"}, wait=False)
    assert harness.wait_until(lambda: _answers(waiting), 20), waiting.logs()
    assert error(post(waiting, [("file", ("a.bin", b"x"))]), 503) == "Service Unavailable"


def _answers(srv):
    try:
        return requests.get(srv.url + "/check", timeout=1).status_code == 503
    except requests.RequestException:
        return False


def test_v2_unchanged(srv):
    """v2 answers as before, byte for byte (tests/e2e/test_contract.py has the full contract)."""
    r = requests.post(srv.url + "/v2/scan?all_matches=true", files={"file": ("e", EICAR)},
                      auth=harness.auth(), timeout=30)
    assert r.status_code == 200
    assert r.text.startswith('{"malware":true,"reason":"') and r.text.endswith("}\n"), r.text
    assert set(r.json()) == {"malware", "reason", "time"}
    r = requests.post(srv.url + "/v2/scan", files=[("file", ("a", b"x")), ("file", ("b", b"y"))],
                      auth=harness.auth(), timeout=30)
    assert (r.status_code, r.text) == (400, "Provide a single file")
    r = requests.post(srv.url + "/v2/scan", files={"file": ("e", EICAR)}, auth=("app1", "bad"), timeout=30)
    assert (r.status_code, r.text) == (401, "Unauthorized Access")


def test_client_examples(srv, tmp_path):
    """client-examples/scan_v3.py and curl.sh's v3 calls work against the service."""
    nested = tmp_path / "outer.tar.gz"
    nested.write_bytes(targz_bytes([("docs/inner.zip", zip_bytes([("eicar.com", EICAR)]))]))
    clean = tmp_path / "clean.txt"
    clean.write_bytes(b"clean words " * 20)
    script = harness.ROOT / "client-examples" / "scan_v3.py"
    args = ["/usr/bin/python3", str(script), "--url", srv.url, "--all-matches"]
    r = subprocess.run(args + [str(clean), str(nested)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "> #0 > docs/inner.zip > eicar.com" in r.stdout and "CL_TYPE_GZ" in r.stdout, r.stdout
    r = subprocess.run(args + ["--chunked", str(clean)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and ": clean" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run(["sh", str(harness.ROOT / "client-examples" / "curl.sh")], capture_output=True,
                       text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "CLAMREST_URL": srv.url})
    assert r.returncode == 0, r.stderr
    assert '"path":["eicar.txt"]' in r.stdout and '"name":"README.md"' in r.stdout, r.stdout


def test_locust_v3_user_is_optional(srv):
    """perf/locustfile.py: V3User exists only with V3_USERS > 0, and its check accepts a real
    answer (and refuses a wrong one)."""
    lf = harness.ROOT / "perf" / "locustfile.py"
    env = {"PATH": "/usr/bin:/bin", "USER_FILE": str(lf)}
    out = subprocess.run(["/usr/bin/locust", "-f", str(lf), "--list"], env=env, cwd="/",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ScanUser" in out.stdout and "V3User" not in out.stdout, out
    out = subprocess.run(["/usr/bin/locust", "-f", str(lf), "--list"], env=dict(env, V3_USERS="1"),
                         cwd="/", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "V3User" in out.stdout, out
    answer = post(srv, [("file", ("eicar.com", EICAR)), ("file", ("lorem.txt", b"lorem ipsum " * 9))],
                  "?all_matches=true").text
    code = f"""
import importlib.util, json
spec = importlib.util.spec_from_file_location("lf", {str(lf)!r})
lf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lf)
a = json.loads({answer!r})
ok = lf.v3_scan_error(a, [("eicar.com", True), ("lorem.txt", False)], 10)
bad = lf.v3_scan_error(a, [("eicar.com", False), ("lorem.txt", False)], 10)
print(json.dumps([ok, bad is not None]))
"""
    out = subprocess.run(["/usr/bin/python3", "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout) == [None, True], (out.stdout, out.stderr)


def test_all_matches_keeps_the_limits(srv):
    """With all_matches a scan goes on past a match, and still meets the limits: EICAR and a member
    past MAX_SCAN_SIZE in one zip give the signature (at the member) and the limit, never clean."""
    z = zip_bytes([("eicar.com", EICAR), ("zeros.bin", bytes(3 * MiB))])
    r = post(srv, [("file", ("both.zip", z))], "?all_matches=true")
    assert r.status_code == 200, r.text
    f = r.json()["files"][0]
    assert f["malware"] is True and f["limits_exceeded"] is True, f
    sigs = {m["signature"].removesuffix(".UNOFFICIAL"): m["path"] for m in f["matches"]}
    assert sigs.get("Eicar-Test-Signature") == ["both.zip", "eicar.com"], f
    assert any(s.startswith("Heuristics.Limits.Exceeded.") for s in sigs), f


def test_all_matches_with_alert_exceeds_max_off_keeps_the_signature(start, tmp_path):
    """ALERT_EXCEEDS_MAX=no answers a cut scan by what was scanned: with all_matches the scan goes
    on past EICAR to a member at the size limits, and EICAR must still be the verdict, in v3 and
    v2 (scanner_verdict: a signature found is never turned clean by a limit)."""
    db = harness.make_db(tmp_path)
    s = start(env={"CLAMAV_DB_DIR": str(db), "MAX_CONTENT_LENGTH": str(MiB),
                   "MAX_SCAN_SIZE": str(MiB), "ALERT_EXCEEDS_MAX": "no"})
    # A member just under MAX_FILE_SIZE: libclamav may have cut it, scanner_inspect stops the scan.
    z = zip_bytes([("eicar.com", EICAR), ("zeros.bin", bytes(MiB - 1000))])
    r = post(s, [("file", ("both.zip", z))], "?all_matches=true")
    assert r.status_code == 200, r.text
    f = r.json()["files"][0]
    assert f["malware"] is True, f
    assert any(m["signature"].startswith("Eicar-Test-Signature") for m in f["matches"]), f
    v2 = requests.post(s.url + "/v2/scan", files={"file": ("both.zip", z)}, auth=harness.auth(),
                       timeout=60)
    assert v2.status_code == 200 and v2.json()["malware"] is True, v2.text
