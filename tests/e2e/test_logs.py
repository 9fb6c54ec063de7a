"""Logs: every stdout and stderr line is one JSON object; each request gets one access line at the
level docs/OPERATIONS.md states, with the reason of a failure, its id (http.request.id, also returned as
X-Request-Id), the client address (behind TRUSTED_PROXIES from X-Forwarded-For), and for scans the
file name, body size, User-Agent, SHA-256, verdict and signature. Start-up errors are JSON too."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

import harness

GEN_ID = re.compile(r"[0-9a-f]{32}")
LEVELS_OUT = ("DEBUG", "INFO")
LEVELS_ERR = ("WARNING", "ERROR", "CRITICAL")


def lines(srv):
    """Every line of srv's stdout and stderr parsed as JSON, each with its stream in "_stream";
    fails on a line that is not one JSON object, or on a level written to the wrong stream."""
    out = []
    for name, levels in (("stdout", LEVELS_OUT), ("stderr", LEVELS_ERR)):
        for raw in (srv.dir / name).read_bytes().splitlines():
            if not raw.endswith(b"}"):      # a line still being written (one write(2) each)
                continue
            o = json.loads(raw.decode("utf-8"))  # strict: a line that is not JSON fails here
            assert isinstance(o, dict), raw
            assert o["log.level"] in levels, (name, o)
            assert isinstance(o["message"], str) and o["message"], o
            o["_stream"] = name
            out.append(o)
    return out


def access(srv, rid, timeout=10):
    """The access line of the request whose id is rid (waits for it)."""
    found = []

    def seen():
        found[:] = [o for o in lines(srv) if o.get("http.request.id") == rid and "url.path" in o]
        return found
    assert harness.wait_until(seen, timeout * harness.TIME_FACTOR), srv.logs()
    assert len(found) == 1, found
    return found[0]


def rid_of(r):
    rid = r.headers.get("X-Request-Id")
    assert rid, (r.status_code, dict(r.headers))
    return rid


def check(a, status, level, error=None, method=None, path=None):
    assert a["http.response.status_code"] == status, a
    assert a["log.level"] == level, a
    if error is None:
        assert "error.message" not in a, a
    else:
        assert error in a.get("error.message", ""), a
    if method:
        assert a["http.request.method"] == method, a
    if path:
        assert a["url.path"] == path, a
    assert a["source.ip"] == "127.0.0.1", a
    assert isinstance(a["event.duration"], int) and a["event.duration"] >= 0, a


# --- levels and reasons, one request each ---

@pytest.fixture(scope="module")
def dsrv():
    """A server logging at DEBUG, with a small MAX_CONTENT_LENGTH."""
    srv = harness.Clamrest(env={"LOGGING_LEVEL": "DEBUG", "MAX_CONTENT_LENGTH": "100000"})
    yield srv
    assert srv.stop() == 0, srv.logs()
    lines(srv)
    srv.cleanup()


@pytest.mark.parametrize("path,status,level,error", [
    ("/check", 200, "DEBUG", None),
    ("/metrics", 200, "DEBUG", None),
    ("/version", 200, "DEBUG", None),
    ("/check_version", 500, "ERROR", "DNS"),       # no DNS server: the reason says so
    ("/nope", 404, "WARNING", "no such route"),
])
def test_get_levels(dsrv, path, status, level, error):
    r = requests.get(dsrv.url + path, timeout=10)
    assert r.status_code == status, r.text
    check(access(dsrv, rid_of(r)), status, level, error, "GET", path)


def test_405_308_and_options(dsrv):
    r = requests.post(dsrv.url + "/check", timeout=10)
    check(access(dsrv, rid_of(r)), 405, "WARNING", "method not allowed", "POST", "/check")
    r = requests.post(dsrv.url + "/v2//scan", data=b"x", allow_redirects=False, timeout=10)
    assert r.status_code == 308, r.status_code
    check(access(dsrv, rid_of(r)), 308, "INFO", None, "POST", "/v2//scan")
    r = requests.options(dsrv.url + "/v2//scan", allow_redirects=False, timeout=10)
    check(access(dsrv, rid_of(r)), 308, "DEBUG", None, "OPTIONS", "/v2//scan")
    r = requests.options(dsrv.url + "/v2/scan", timeout=10)
    check(access(dsrv, rid_of(r)), 200, "DEBUG", None, "OPTIONS", "/v2/scan")


def test_scan_clean_and_malware_fields(dsrv):
    data = os.urandom(5000)
    # The name as sent, nothing decoded (a quoted-string's backslashes stay), JSON-escaped in the log.
    name = 'we\\"ird{x:1}\u00e9 \U0001F600.bin'
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="' +
            name.encode() + b'"\r\n\r\n' + data + b"\r\n--b0undary--\r\n")
    r = requests.post(dsrv.url + "/v2/scan", data=body, auth=harness.auth(),
                      headers={"User-Agent": 'agent "x"/1.0',
                               "Content-Type": "multipart/form-data; boundary=b0undary"}, timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is False, r.text
    a = access(dsrv, rid_of(r))
    check(a, 200, "INFO", None, "POST", "/v2/scan")
    assert a["labels.verdict"] == "clean" and "labels.signature" not in a, a
    assert a["file.name"] == name, a
    assert a["file.hash.sha256"] == hashlib.sha256(data).hexdigest(), a
    assert a["http.request.body.bytes"] == len(body), a
    assert a["user_agent.original"] == 'agent "x"/1.0', a
    assert a["labels.user"] == "app1", a
    r = requests.post(dsrv.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(),
                      timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is True, r.text
    a = access(dsrv, rid_of(r))
    check(a, 200, "INFO", None, "POST", "/v2/scan-chunked")
    assert a["labels.verdict"] == "malware" and a["labels.signature"] == r.json()["reason"], a
    assert "file.name" not in a, a
    assert a["file.hash.sha256"] == hashlib.sha256(harness.EICAR).hexdigest(), a
    assert a["http.request.body.bytes"] == len(harness.EICAR), a


def test_scan_refusals(dsrv):
    url = dsrv.url + "/v2/scan"
    cases = [
        (requests.post(url, files={"file": ("f", b"x")}, timeout=10), 401, "no Authorization"),
        (requests.post(url, files={"file": ("f", b"x")}, auth=("app1", "wrong"), timeout=10), 401,
         "wrong password"),
        (requests.post(url, data=b"x" * 200_000, auth=harness.auth(), timeout=10), 413,
         "MAX_CONTENT_LENGTH"),
        (requests.post(url, data=b"plain", auth=harness.auth(), timeout=10,
                       headers={"Content-Type": "text/plain"}), 400, "multipart/form-data"),
        (requests.post(url, files=[("a", ("a", b"1")), ("b", ("b", b"2"))], auth=harness.auth(),
                       timeout=10), 400, "more than one file part"),
        (requests.post(url, data=b"--b\r\nno headers here\r\n\r\nx\r\n--b--\r\n", auth=harness.auth(),
                       headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=10),
         400, "malformed multipart"),
    ]
    for r, status, why in cases:
        assert r.status_code == status, (status, r.status_code, r.text)
        check(access(dsrv, rid_of(r)), status, "WARNING", why, "POST", "/v2/scan")


def test_bad_content_length_answered_by_us_has_id(dsrv):
    """libmicrohttpd refuses such a head itself; our raw answer still carries X-Request-Id."""
    raw = harness.raw_request(dsrv.port, b"POST /v2/scan HTTP/1.1\r\nHost: x\r\nX-Request-Id: cl-bad-1"
                              b"\r\nContent-Length: abc\r\n\r\n")
    assert harness.status_of(raw) == 400, raw
    assert b"\r\nX-Request-Id: cl-bad-1\r\n" in raw, raw
    assert harness.wait_until(lambda: any(o.get("http.request.id") == "cl-bad-1" and
                                          o["log.level"] == "WARNING" for o in lines(dsrv)), 5)
    # Framing refused from the head (Content-Length and Transfer-Encoding): ours, with the id.
    raw = harness.raw_request(dsrv.port, b"POST /v2/scan HTTP/1.1\r\nHost: x\r\nX-Request-Id: te-cl-1"
                              b"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert harness.status_of(raw) == 400 and b"\r\nX-Request-Id: te-cl-1\r\n" in raw, raw
    check(access(dsrv, "te-cl-1"), 400, "WARNING", "ambiguous body framing", "POST", "/v2/scan")


# --- request ids ---

def fresh_hex(n):
    return os.urandom(n // 2).hex()


@pytest.mark.parametrize("case", ["x-request-id", "traceparent", "b3", "bad-x-request-id",
                                  "zero-traceparent", "none"])
def test_request_id_precedence(dsrv, case):
    """X-Request-Id, else traceparent's trace-id, else X-B3-TraceId, else a generated id; an invalid
    one is skipped for the next."""
    rid, tid, b3 = "req-" + fresh_hex(8), fresh_hex(32), fresh_hex(32)
    tp = f"00-{tid}-00f067aa0ba902b7-01"
    headers, want = {
        "x-request-id": ({"X-Request-Id": rid, "traceparent": tp, "X-B3-TraceId": b3}, rid),
        "traceparent": ({"traceparent": tp, "X-B3-TraceId": b3}, tid),
        "b3": ({"X-B3-TraceId": b3}, b3),
        "bad-x-request-id": ({"X-Request-Id": 'bad"id', "traceparent": tp}, tid),
        "zero-traceparent": ({"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                              "X-B3-TraceId": b3}, b3),
        "none": ({}, None),
    }[case]
    r = requests.get(dsrv.url + "/check", headers=headers, timeout=10)
    got = rid_of(r)
    if want is None:
        assert GEN_ID.fullmatch(got), got
    else:
        assert got == want, (headers, got)
    assert access(dsrv, got)["http.request.id"] == got


@pytest.mark.parametrize("hostile", [
    b'a"b', b"a\\nb", b"a\x01b", b"x" * 129, b"caf\xc3\xa9", b"a b", b'{"x":1}', b"\xff\xfe",
    b"a\x0bb",
])
def test_hostile_request_id_replaced(dsrv, hostile):
    head = b"GET /check HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: " + hostile + b"\r\n\r\n"
    raw = harness.raw_request(dsrv.port, head)
    assert harness.status_of(raw) == 200, raw
    m = re.search(rb"\r\nX-Request-Id: ([^\r\n]*)\r\n", raw)
    assert m and GEN_ID.fullmatch(m.group(1).decode()), raw
    access(dsrv, m.group(1).decode())
    assert hostile.decode("utf-8", "replace") not in dsrv.logs() or len(hostile) < 4


def test_newline_in_request_id_header(dsrv):
    """A header line folded or split by a bare LF never becomes part of an id."""
    head = (b"GET /check HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: evil\n"
            b"injected: 1\r\n\r\n")
    raw = harness.raw_request(dsrv.port, head)
    m = re.search(rb"\r\nX-Request-Id: ([^\r\n]*)\r\n", raw)
    if harness.status_of(raw) == 200:
        assert m and re.fullmatch(rb"[A-Za-z0-9._:/+=@-]{1,128}", m.group(1)), raw
        assert b"injected" not in m.group(1), raw


def test_id_on_every_answer_and_every_line(start, tmp_path):
    """503 (no database yet), 401, 404 all return X-Request-Id; a request's other lines (a store
    failure's ERROR line) carry the same id as its access line."""
    srv = start(env={"DB_WAIT": "1", "LOGGING_LEVEL": "DEBUG"}, db_version=None, wait=False)
    assert harness.wait_until(lambda: b"DB_WAIT" in (srv.dir / "stdout").read_bytes(), 10), srv.logs()
    r = requests.get(srv.url + "/check", timeout=10)
    assert r.status_code == 503
    check(access(srv, rid_of(r)), 503, "ERROR", "no signature database")
    r = requests.post(srv.url + "/v2/scan-chunked", data=b"x", auth=harness.auth(), timeout=10)
    assert r.status_code == 503
    check(access(srv, rid_of(r)), 503, "ERROR", "no signature database")
    r = requests.post(srv.url + "/v2/scan-chunked", data=b"x", timeout=10)
    assert r.status_code == 401 and rid_of(r)
    r = requests.get(srv.url + "/x", timeout=10)
    assert r.status_code == 404 and rid_of(r)

    body_dir = tmp_path / "bodies"
    body_dir.mkdir()
    srv2 = start(env={"TMPDIR": str(body_dir), "SPILL_THRESHOLD": "0", "BODY_DISK": "1000000"})
    shutil.rmtree(body_dir)          # uploads can no longer be stored: 500 with the reason
    r = requests.post(srv2.url + "/v2/scan-chunked", data=b"hello", auth=harness.auth(),
                      headers={"X-Request-Id": "store-fail-1"}, timeout=10)
    assert r.status_code == 500 and r.headers["X-Request-Id"] == "store-fail-1", r.text
    a = access(srv2, "store-fail-1")
    check(a, 500, "ERROR", "cannot store the upload")
    assert a["_stream"] == "stderr", a
    same = [o for o in lines(srv2) if o.get("http.request.id") == "store-fail-1"]
    assert len(same) >= 2 and any("TMPDIR" in o["message"] for o in same), same
    body_dir.mkdir()


def test_scan_error_500_has_reason(start, tmp_path):
    """A scan that libclamav cannot finish: 500, ERROR, error.message with its reason."""
    scan_tmp = tmp_path / "scan"
    scan_tmp.mkdir()
    srv = start(env={"SCAN_TMPDIR": str(scan_tmp)})
    own = [p for p in scan_tmp.iterdir()]
    (tmp_path / "e.txt").write_bytes(b"hello " * 1000)
    subprocess.run(["zip", "-q", "-j", str(tmp_path / "e.zip"), str(tmp_path / "e.txt")], check=True)
    for p in own:
        shutil.rmtree(p)
    (scan_tmp / own[0].name).write_bytes(b"not a folder")   # libclamav cannot make its files
    r = requests.post(srv.url + "/v2/scan-chunked", data=(tmp_path / "e.zip").read_bytes(),
                      auth=harness.auth(), timeout=30)
    (scan_tmp / own[0].name).unlink()
    if r.status_code != 500:
        pytest.skip(f"libclamav scanned without its temporary folder: {r.status_code} {r.text}")
    a = access(srv, rid_of(r))
    check(a, 500, "ERROR", "scan failed")
    assert a["labels.verdict"] == "error" and "labels.signature" not in a, a


# --- cuts by the connection guard and by SHUTDOWN_GRACE ---

def test_slow_body_cut_logged_with_reason(start):
    srv = start(env={"REQUEST_TIMEOUT": "1", "MIN_UPLOAD_RATE": "100000"})
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-1\r\nAuthorization: "
                  + harness.basic().encode() + b"\r\nContent-Length: 1000000\r\n\r\n")
        end = time.monotonic() + 6 * harness.TIME_FACTOR
        try:
            while time.monotonic() < end:
                s.sendall(b"a" * 10)
                time.sleep(0.2)
        except OSError:
            pass
    a = access(srv, "slow-1")
    check(a, 499, "WARNING", "MIN_UPLOAD_RATE", "POST", "/v2/scan-chunked")


def test_shutdown_grace_cut_logged_and_counted(start):
    srv = start(env={"SHUTDOWN_GRACE": "1", "REQUEST_TIMEOUT": "60", "MIN_UPLOAD_RATE": "0"})
    assert harness.metric(srv, 'clamrest_connections_cut_total{protocol="http",reason="shutdown_grace"}') == 0
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nX-Request-Id: grace-1\r\nAuthorization: "
                  + harness.basic().encode() + b"\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 1000)
        time.sleep(0.3)
        srv.signal(signal.SIGTERM)
        assert srv.proc.wait(20 * harness.TIME_FACTOR) == 0, srv.logs()
    a = access(srv, "grace-1")
    check(a, 499, "WARNING", "SHUTDOWN_GRACE", "POST", "/v2/scan-chunked")
    assert any("SHUTDOWN_GRACE" in o["message"] and o["log.level"] == "WARNING"
               for o in lines(srv)), srv.logs()


def test_version_route_metric(dsrv):
    before = harness.metric(dsrv, 'clamrest_http_requests_total{route="/version",code="200"}', 0)
    assert requests.get(dsrv.url + "/version", timeout=10).status_code == 200
    after = harness.metric(dsrv, 'clamrest_http_requests_total{route="/version",code="200"}')
    assert after == before + 1


# --- client address behind trusted proxies ---

def xff_request(srv, xff, password=harness.DEMO_PASSWORD, rid=None):
    headers = {"X-Forwarded-For": xff} if xff is not None else {}
    r = requests.post(srv.url + "/v2/scan-chunked", data=b"x", auth=("app1", password),
                      headers=headers, timeout=10)
    return r, access(srv, rid_of(r))


def test_xff_ignored_without_trusted_proxies(start):
    srv = start(env={"AUTH_FAIL_BURST": "1", "AUTH_FAIL_RATE": "1"})
    r, a = xff_request(srv, "203.0.113.9", "wrong1")
    assert r.status_code == 401 and a["source.ip"] == "127.0.0.1", a
    # A new forged address does not get a fresh bucket: the peer's is spent.
    r, a = xff_request(srv, "203.0.113.10", "wrong2")
    assert r.status_code == 429 and a["source.ip"] == "127.0.0.1", a
    check(a, 429, "WARNING", "AUTH_FAIL_BURST")


def test_xff_behind_trusted_proxy(start):
    srv = start(env={"TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1, ::1", "AUTH_FAIL_BURST": "1",
                     "AUTH_FAIL_RATE": "1"})
    for xff, want in [("203.0.113.9", "203.0.113.9"),
                      ("6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
                      ("garbage, 203.0.113.9", "203.0.113.9"),
                      ("10.0.0.7, 10.1.2.3", "10.0.0.7"),
                      ("2001:db8::5", "2001:db8::5"),
                      ("203.0.113.9, junk", "127.0.0.1"),
                      ("", "127.0.0.1"),
                      (None, "127.0.0.1")]:
        r, a = xff_request(srv, xff)
        assert r.status_code == 200 and a["source.ip"] == want, (xff, a)
    # The throttle counts the client, not the proxy: one client's failures do not lock out another.
    r, _ = xff_request(srv, "198.51.100.1", "wrong1")
    assert r.status_code == 401
    r, a = xff_request(srv, "198.51.100.1", "wrong2")
    assert r.status_code == 429 and a["source.ip"] == "198.51.100.1", a
    r, a = xff_request(srv, "198.51.100.2", "wrong3")
    assert r.status_code == 401 and a["source.ip"] == "198.51.100.2", a


# --- start-up errors ---

def run_and_exit(env=None, args=(), timeout=20):
    srv = harness.Clamrest(env=env, args=args, wait=False)
    try:
        rc = srv.proc.wait(timeout)
        srv.stop()
        return rc, srv, lines(srv)
    finally:
        srv.cleanup()


def test_port_in_use_is_one_json_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        rc, srv, objs = run_and_exit(env={"PORT": str(busy.getsockname()[1])})
    fatal = [o for o in objs if o["log.level"] == "CRITICAL"]
    assert rc == 2 and len(fatal) == 1 and "PORT" in fatal[0]["message"], objs
    assert fatal[0]["_stream"] == "stderr"


@pytest.mark.parametrize("env,args,setting", [
    ({"CLAMAV_DB_DIR": "/nonexistent/db"}, (), "CLAMAV_DB_DIR"),
    ({}, ("--no-such-flag",), "--no-such-flag"),
    ({"LOGGING_LEVEL": "CRITICAL", "PORT": "0"}, (), "PORT"),
])
def test_start_errors_are_json(env, args, setting):
    rc, srv, objs = run_and_exit(env=env, args=args)
    fatal = [o for o in objs if o["log.level"] == "CRITICAL"]
    assert rc == 2 and len(fatal) == 1 and setting in fatal[0]["message"], objs


def test_help_and_version_stay_plain():
    for flag, want in (("--help", "usage: clamrest"), ("--version", "clamrest ")):
        p = subprocess.run([harness.BIN, flag], capture_output=True, text=True, timeout=20)
        assert p.returncode == 0 and p.stdout.startswith(want) and not p.stderr, p


def test_admission_503_has_reason(start):
    """A scan refused at admission (SCAN_QUEUE 0, the one scan thread busy): 503, ERROR, why."""
    import concurrent.futures
    srv = start(env={"SCAN_THREADS": "1", "SCAN_QUEUE": "0", "SCAN_CACHE": "0"})
    data = (harness.ROOT / "client-examples" / "5MiB.bin").read_bytes() \
        if (harness.ROOT / "client-examples" / "5MiB.bin").exists() else os.urandom(5 << 20)

    def one(_):
        return requests.post(srv.url + "/v2/scan-chunked", data=data, auth=harness.auth(), timeout=60)
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        answers = list(ex.map(one, range(12)))
    busy = [r for r in answers if r.status_code == 503]
    if not busy:
        pytest.skip("every scan found the thread free: nothing refused on this machine")
    a = access(srv, rid_of(busy[0]))
    check(a, 503, "ERROR", "SCAN_QUEUE")


def test_v3_access_lines(dsrv):
    """/v3: one access line per request with the request's verdict (malware when any file is), the
    id on the JSON answer and on its errors, and the reason of a refusal."""
    files = [("file", ("clean.txt", b"nothing to see")), ("file", ("eicar.com", harness.EICAR))]
    r = requests.post(dsrv.url + "/v3/scan", files=files, auth=harness.auth(), timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is True, r.text
    a = access(dsrv, rid_of(r))
    check(a, 200, "INFO", None, "POST", "/v3/scan")
    assert a["labels.verdict"] == "malware", a
    r = requests.post(dsrv.url + "/v3/scan", files=files[:1], auth=harness.auth(), timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is False, r.text
    assert access(dsrv, rid_of(r))["labels.verdict"] == "clean"
    r = requests.post(dsrv.url + "/v3/scan?all_matches=maybe", files=files, auth=harness.auth(),
                      timeout=10)
    assert r.status_code == 400 and "error" in r.json(), r.text
    check(access(dsrv, rid_of(r)), 400, "WARNING", "all_matches", "POST", "/v3/scan")
    r = requests.post(dsrv.url + "/v3/scan", files=files, timeout=10)
    assert r.status_code == 401 and r.json() == {"error": "Unauthorized Access"}, r.text
    check(access(dsrv, rid_of(r)), 401, "WARNING", "no Authorization", "POST", "/v3/scan")
