"""HTTP behaviour: 404/405, 413 limits, request-smuggling framing, keep-alive, access logs and
temporary files."""
import base64
import json
import os
import re
import socket
import time

import pytest
import requests

import harness

LIMIT = 65536
AUTH = harness.basic().encode()


@pytest.fixture(scope="module")
def srv(start_module):
    return start_module()


@pytest.fixture(scope="module")
def small(start_module):
    """A server with MAX_CONTENT_LENGTH=64 KiB and SPILL_THRESHOLD=16 KiB."""
    return start_module(env={"MAX_CONTENT_LENGTH": str(LIMIT), "SPILL_THRESHOLD": "16384"})


def ctx(r):
    return f"{r.request.method} {r.request.url} -> {r.status_code} {dict(r.headers)} {r.text[:300]!r}"


def pieces(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def chunked(data, size=4096):
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces(data, size))
    return out + b"0\r\n\r\n"


def post_head(path, extra=b"", auth=True):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + (b"Authorization: " + AUTH + b"\r\n" if auth else b"") + extra + b"\r\n")


# --- 404 / 405 ---

@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/v2/scan", "POST, OPTIONS"),
    ("GET", "/v2/scan-chunked", "POST, OPTIONS"),
    ("GET", "/scan", "POST, OPTIONS"),
    ("HEAD", "/v2/scan", "POST, OPTIONS"),
    ("PUT", "/v2/scan", "POST, OPTIONS"),
    ("DELETE", "/v2/scan-chunked", "POST, OPTIONS"),
    ("POST", "/check", "GET, HEAD, OPTIONS"),
    ("POST", "/", "GET, HEAD, OPTIONS"),
    ("POST", "/check_version", "GET, HEAD, OPTIONS"),
    ("PUT", "/check_warning", "GET, HEAD, OPTIONS"),
    ("DELETE", "/check", "GET, HEAD, OPTIONS"),
])
def test_405(srv, method, path, allow):
    r = requests.request(method, srv.url + path, auth=harness.auth(), timeout=10)
    assert r.status_code == 405, ctx(r)
    got = [m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()]
    assert sorted(got) == sorted(m.strip() for m in allow.split(",")), ctx(r)


@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("GET", "/v2"), ("GET", "/check/"), ("GET", "/CHECK"), ("GET", "/v2/scan/"),
    ("POST", "/v2/scan2"), ("POST", "/v1/scan"), ("POST", "/nope"), ("GET", "/favicon.ico"),
])
def test_404(srv, method, path):
    r = requests.request(method, srv.url + path, auth=harness.auth(), timeout=10)
    assert r.status_code == 404, ctx(r)
    # The server goes on answering.
    assert requests.get(srv.url + "/check", timeout=10).status_code == 200


def test_query_string_is_not_part_of_the_path(srv):
    r = requests.get(srv.url + "/check?x=1", timeout=10)
    assert (r.status_code, r.text) == (200, "Service OK"), ctx(r)
    r = requests.post(srv.url + "/v2/scan-chunked?x=1", data=harness.EICAR, auth=harness.auth(),
                      timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is True, ctx(r)


# --- 413 ---

def test_413_content_length_answered_before_the_body(small):
    """Only the headers are sent: the 413 must come at once, not after a body that never comes."""
    t0 = time.monotonic()
    with harness.HttpConn(small.port, timeout=5) as c:
        c.send(post_head("/v2/scan-chunked", b"Content-Length: 1073741824\r\n"))
        resp = c.response()
        took = time.monotonic() - t0
        assert resp is not None, "no answer to a Content-Length over the limit"
        status, headers, body = resp
        assert (status, body) == (413, b"File Too Large"), resp
        assert took < 3 * harness.TIME_FACTOR, f"413 took {took:.1f} s"
        assert c.closed_by_server(5), "the connection stays open after the 413 (the body would be read)"


def test_413_with_expect_100_continue(small):
    """curl's way: Expect: 100-continue over the limit gets the 413 instead of a 100 Continue."""
    with harness.HttpConn(small.port, timeout=5) as c:
        c.send(post_head("/v2/scan-chunked", b"Expect: 100-continue\r\nContent-Length: %d\r\n" % (LIMIT + 1)))
        resp = c.response()
        assert resp is not None and (resp[0], resp[2]) == (413, b"File Too Large"), resp
    with harness.HttpConn(small.port, timeout=5) as c:
        c.send(post_head("/v2/scan-chunked", b"Expect: 100-continue\r\nContent-Length: 68\r\n"))
        resp = c.response()
        assert resp is not None and resp[0] == 100, resp
        c.send(harness.EICAR)
        resp = c.response()
        assert resp is not None and resp[0] == 200 and json.loads(resp[2])["malware"] is True, resp


@pytest.mark.parametrize("path", ["/v2/scan", "/scan"])
def test_413_content_length_multipart_headers_only(small, path):
    b = b"bnd"
    with harness.HttpConn(small.port, timeout=5) as c:
        c.send(post_head(path, b"Content-Type: multipart/form-data; boundary=bnd\r\n"
                         b"Content-Length: %d\r\n" % (LIMIT + 1)))
        c.send(b"--" + b + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n")
        resp = c.response()
        assert resp is not None and resp[0] == 413 and resp[2] == b"File Too Large", resp


def test_413_exact_limit_is_accepted(small):
    data = b"A" * (LIMIT - len(harness.EICAR)) + harness.EICAR
    assert len(data) == LIMIT
    for body in (data, pieces(data, 5000)):
        r = requests.post(small.url + "/v2/scan-chunked", data=body, auth=harness.auth(), timeout=30)
        assert r.status_code == 200 and r.json()["malware"] is True, ctx(r)
    r = requests.post(small.url + "/v2/scan-chunked", data=data + b"A", auth=harness.auth(),
                      timeout=30)
    assert (r.status_code, r.text) == (413, "File Too Large"), ctx(r)


def test_413_multipart_requests(small):
    r = requests.post(small.url + "/v2/scan", files={"file": ("big", os.urandom(LIMIT + 10))},
                      auth=harness.auth(), timeout=30)
    assert (r.status_code, r.text) == (413, "File Too Large"), ctx(r)


def test_413_multipart_chunked(small):
    b = "bnd"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n".encode()
            + os.urandom(2 * LIMIT) + f"\r\n--{b}--\r\n".encode())
    r = requests.post(small.url + "/v2/scan", data=pieces(body, 8192), auth=harness.auth(),
                      headers={"Content-Type": f"multipart/form-data; boundary={b}"}, timeout=30)
    assert (r.status_code, r.text) == (413, "File Too Large"), ctx(r)


def test_413_chunked_at_end_of_body(small):
    with harness.HttpConn(small.port, timeout=10) as c:
        c.send(post_head("/v2/scan-chunked", b"Transfer-Encoding: chunked\r\n"))
        c.send(chunked(os.urandom(3 * LIMIT))[:-5])  # all but the last chunk
        c.send(b"0\r\n\r\n")
        resp = c.response()
        assert resp is not None, "no answer to a chunked body over the limit"
        assert (resp[0], resp[2]) == (413, b"File Too Large"), resp
        assert c.closed_by_server(5)
    r = requests.post(small.url + "/v2/scan-chunked", data=pieces(os.urandom(3 * LIMIT), 10000),
                      auth=harness.auth(), timeout=30)
    assert (r.status_code, r.text) == (413, "File Too Large"), ctx(r)


def test_413_chunked_far_past_limit_closes(small):
    """~20 MiB streamed against a 64 KiB limit: a 413 or a closed connection, never a scan."""
    block = os.urandom(1024 * 1024)

    def body():
        for _ in range(20):
            yield block

    t0 = time.monotonic()
    try:
        r = requests.post(small.url + "/v2/scan-chunked", data=body(), auth=harness.auth(),
                          timeout=30)
    except requests.ConnectionError as e:
        outcome = f"closed: {e!r}"[:200]
    else:
        assert (r.status_code, r.text) == (413, "File Too Large"), ctx(r)
        outcome = "413"
    assert time.monotonic() - t0 < 20 * harness.TIME_FACTOR, outcome
    # The raw view: the server stops reading once the body runs 16 MiB past the limit.
    with harness.HttpConn(small.port, timeout=10) as c:
        c.send(post_head("/v2/scan-chunked", b"Transfer-Encoding: chunked\r\n"))
        # What the kernel may buffer on the way (client send + server receive buffers).
        buffered = max_sysctl("tcp_wmem") + max_sysctl("tcp_rmem") + 2 * 1024 * 1024
        bound = LIMIT + 16 * 1024 * 1024 + buffered
        sent, chunk = 0, b"%x\r\n%s\r\n" % (len(block), block)
        try:
            while sent < bound + 8 * 1024 * 1024:
                c.send(chunk)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent <= bound, f"the server took {sent} bytes against a {LIMIT} limit without closing"
        try:
            resp = c.response()
        except (ConnectionError, socket.timeout) as e:
            resp = None
            assert not isinstance(e, socket.timeout), "the server neither answered nor closed"
        assert resp is None or resp[0] == 413, resp
    assert requests.get(small.url + "/check", timeout=10).status_code == 200


def max_sysctl(name):
    try:
        with open(f"/proc/sys/net/ipv4/{name}") as f:
            return int(f.read().split()[-1])
    except OSError:
        return 32 * 1024 * 1024


# --- framing (request smuggling) ---

SMUGGLE = {
    "two content-lengths": b"Content-Length: 68\r\nContent-Length: 68\r\n",
    "two different content-lengths": b"Content-Length: 5\r\nContent-Length: 68\r\n",
    "content-length and chunked": b"Content-Length: 68\r\nTransfer-Encoding: chunked\r\n",
    "chunked and content-length": b"Transfer-Encoding: chunked\r\nContent-Length: 68\r\n",
    "te gzip": b"Transfer-Encoding: gzip\r\nContent-Length: 68\r\n",
    "te gzip alone": b"Transfer-Encoding: gzip\r\n",
    "te chunked, gzip": b"Transfer-Encoding: chunked, gzip\r\n",
    "te identity": b"Transfer-Encoding: identity\r\n",
    "two te": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
}


@pytest.mark.parametrize("case", sorted(SMUGGLE))
@pytest.mark.parametrize("path", ["/v2/scan-chunked", "/v2/scan"])
def test_smuggling_framing_400(srv, case, path):
    extra = SMUGGLE[case]
    if path == "/v2/scan":
        extra += b"Content-Type: multipart/form-data; boundary=bnd\r\n"
    body = harness.EICAR if b"chunked" not in extra else chunked(harness.EICAR)
    follow = b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with harness.HttpConn(srv.port, timeout=5) as c:
        c.send(post_head(path, extra) + body + follow)
        resp = c.response()
        assert resp is not None, f"{case}: no answer"
        assert resp[0] == 400, f"{case}: {resp}"
        # Nothing after it is taken as a request: the connection is closed, not reused.
        try:
            nxt = c.response()
        except ConnectionError:
            nxt = None
        assert nxt is None, f"{case}: the connection was reused after a 400: {nxt}"


@pytest.mark.parametrize("case", ["two content-lengths", "two different content-lengths",
                                  "content-length and chunked", "te gzip alone", "te chunked, gzip"])
@pytest.mark.parametrize("path", ["/check", "/check_version"])
def test_smuggling_framing_400_on_get_routes(srv, case, path):
    """The framing checks are not limited to the scan routes: a GET with ambiguous framing is
    refused with 400 too, and its connection is closed rather than reused."""
    extra = SMUGGLE[case]
    body = b"0\r\n\r\n" if b"chunked" in extra else b""
    if b"Content-Length: 68" in extra and b"chunked" not in extra:
        body = b"x" * 68
    follow = b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    req = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n" + body
    with harness.HttpConn(srv.port, timeout=5) as c:
        c.send(req + follow)
        try:
            resp = c.response()
        except ConnectionError as e:
            raise AssertionError(f"GET {path} {case}: the connection broke without an answer: {e}")
        assert resp is not None, f"GET {path} {case}: connection closed without any answer"
        assert resp[0] == 400, f"GET {path} {case}: {resp}"
        try:
            nxt = c.response()
        except ConnectionError:
            nxt = None
        assert nxt is None, f"GET {path} {case}: the connection was reused after the answer: {nxt}"


@pytest.mark.parametrize("path", ["/nope", "/check"])
def test_smuggling_framing_other_routes_close(srv, path):
    """A POST with ambiguous framing to a 404 or 405 route: whatever the status, never reused."""
    req = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with harness.HttpConn(srv.port, timeout=5) as c:
        c.send(req + b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        resp = c.response()
        assert resp is not None and resp[0] in (400, 404, 405), resp
        try:
            nxt = c.response()
        except ConnectionError:
            nxt = None
        assert nxt is None, f"the connection was reused: {nxt}"


@pytest.mark.parametrize("folded", [b"Transfer-Encoding:\r\n chunked\r\n",
                                    b"Transfer-Encoding: \r\n\tchunked\r\n",
                                    b"Content-Length:\r\n 68\r\n"],
                         ids=["te-fold-space", "te-fold-tab", "cl-fold"])
def test_obs_fold_framing_header(srv, folded):
    """RFC 9112 5.2: a folded header line is refused (400) or unfolded. Either way the EICAR body is
    never taken for an empty, clean upload, and its bytes are never parsed as a next request."""
    body = chunked(harness.EICAR, 20) if b"chunked" in folded else harness.EICAR
    with harness.HttpConn(srv.port, timeout=5) as c:
        c.send(post_head("/v2/scan-chunked", folded) + body
               + b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        resp = c.response()
        assert resp is not None, "no answer"
        if resp[0] == 400:
            return
        assert resp[0] == 200 and json.loads(resp[2])["malware"] is True, \
            f"folded {folded!r}: the EICAR body was not what got scanned: {resp}"
        nxt = c.response()
        assert nxt is not None and (nxt[0], nxt[2]) == (200, b"Service OK"), \
            f"the body was parsed as a next request: {nxt}"


def test_get_with_a_body_is_answered(srv):
    """A GET carrying a (pointless but legal) Content-Length body gets an HTTP answer, not a
    silently dropped connection."""
    with harness.HttpConn(srv.port, timeout=5) as c:
        c.send(b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello")
        try:
            resp = c.response()
        except ConnectionError as e:
            resp = f"broken connection: {e}"
        assert resp is not None and not isinstance(resp, str), \
            f"GET /check with a 5-byte body: no answer at all ({resp})"
        assert resp[0] in (200, 400), resp
        if resp[0] == 200:
            assert resp[2] == b"Service OK", resp


def test_smuggling_raw_request_status_line(srv):
    raw = harness.raw_request(srv.port, post_head("/v2/scan-chunked",
                              b"Content-Length: 68\r\nTransfer-Encoding: chunked\r\n") + chunked(harness.EICAR))
    assert raw.startswith(b"HTTP/1.1 400 "), raw
    assert raw.count(b"HTTP/1.1 ") == 1, raw


# --- keep-alive ---

def test_keepalive_consecutive_gets_raw(srv):
    with harness.HttpConn(srv.port) as c:
        for i in range(3):
            c.send(b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            resp = c.response()
            assert resp is not None and resp[0] == 200 and resp[2] == b"Service OK", (i, resp)
        c.send(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        resp = c.response(head_only=True)
        assert resp is not None and resp[0] == 200, resp
        c.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        resp = c.response()
        assert resp is not None and resp[2] == b"Service OK", resp


def test_keepalive_pipelined_gets_raw(srv):
    with harness.HttpConn(srv.port) as c:
        c.send(b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 3)
        for i in range(3):
            resp = c.response()
            assert resp is not None and (resp[0], resp[2]) == (200, b"Service OK"), (i, resp)


def test_keepalive_scans_raw(srv):
    with harness.HttpConn(srv.port, timeout=10) as c:
        for i, (data, malware) in enumerate([(harness.EICAR, True), (b"clean", False),
                                             (harness.EICAR, True)]):
            if i == 1:
                c.send(post_head("/v2/scan-chunked", b"Transfer-Encoding: chunked\r\n") + chunked(data, 2))
            else:
                c.send(post_head("/v2/scan-chunked", b"Content-Length: %d\r\n" % len(data)) + data)
            resp = c.response()
            assert resp is not None and resp[0] == 200, (i, resp)
            assert json.loads(resp[2])["malware"] is malware, (i, resp)
        c.send(b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        resp = c.response()
        assert resp is not None and resp[2] == b"Service OK", resp


def test_keepalive_pipelined_scans_raw(srv):
    req = post_head("/v2/scan-chunked", b"Content-Length: %d\r\n" % len(harness.EICAR)) + harness.EICAR
    with harness.HttpConn(srv.port, timeout=10) as c:
        c.send(req + req + b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for i in range(2):
            resp = c.response()
            assert resp is not None and resp[0] == 200 and json.loads(resp[2])["malware"], (i, resp)
        resp = c.response()
        assert resp is not None and resp[2] == b"Service OK", resp


def test_keepalive_session_reuses_connection(srv):
    with requests.Session() as s:
        for _ in range(3):
            assert s.get(srv.url + "/check", timeout=10).status_code == 200
        for data in (harness.EICAR, b"clean", harness.EICAR):
            r = s.post(srv.url + "/v2/scan-chunked", data=data, auth=harness.auth(), timeout=10)
            assert r.status_code == 200, ctx(r)
        for _ in range(2):
            r = s.post(srv.url + "/v2/scan", files={"file": ("f", harness.EICAR)},
                       auth=harness.auth(), timeout=10)
            assert r.status_code == 200 and r.json()["malware"] is True, ctx(r)
        pool = s.get_adapter(srv.url).poolmanager.connection_from_url(srv.url)
        assert pool.num_connections == 1, f"{pool.num_connections} connections for 8 requests"


def test_keepalive_after_single_file_400(srv):
    """A multipart body with two files is read to its end, answered 400, and the connection may go on."""
    with requests.Session() as s:
        r = s.post(srv.url + "/v2/scan", files=[("a", ("a", b"1")), ("b", ("b", b"2"))],
                   auth=harness.auth(), timeout=10)
        assert (r.status_code, r.text) == (400, "Provide a single file"), ctx(r)
        r = s.get(srv.url + "/check", timeout=10)
        assert r.status_code == 200, ctx(r)


# --- access logs ---

@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_access_log_fields(start, level):
    s = start(env={"LOGGING_LEVEL": level})
    trace = "463ac35c9f6413ad48485a3953bb6124"
    r = requests.post(s.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(),
                      headers={"X-B3-Traceid": trace}, timeout=10)
    assert r.headers["X-Request-Id"] == trace, ctx(r)
    assert r.status_code == 200, ctx(r)
    bad_pw = "Sup3r-S3cret-Passw0rd"
    r = requests.post(s.url + "/v2/scan-chunked", data=harness.EICAR, auth=("app1", bad_pw),
                      timeout=10)
    assert r.status_code == 401, ctx(r)

    def lines():
        objs, other = harness.json_lines(harness.stdout_of(s) + harness.stderr_of(s))
        assert not other, f"log lines that are not JSON objects: {other}"
        return objs

    assert harness.wait_until(lambda: any(o.get("http.response.status_code") == 401 for o in lines())
                              and any(o.get("http.response.status_code") == 200 for o in lines()),
                              5), s.logs()
    objs = lines()
    for o in objs:
        assert isinstance(o.get("@timestamp"), str), o
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)", o["@timestamp"]), o
        assert o.get("log.level") in ("DEBUG", "INFO", "WARNING", "ERROR"), o
        assert isinstance(o.get("message"), str) and o["message"], o
    scans = [o for o in objs if o.get("http.request.id") == trace and "url.path" in o]
    assert len(scans) == 1, objs
    a = scans[0]
    assert a["http.request.method"] == "POST", a
    assert a["url.path"] == "/v2/scan-chunked", a
    assert a["http.response.status_code"] == 200, a
    assert isinstance(a["event.duration"], (int, float)) and a["event.duration"] >= 0, a
    assert a["labels.user"] == "app1", a
    assert a["source.ip"] == "127.0.0.1", a
    assert a["log.level"] == "INFO", a
    denied = [o for o in objs if o.get("http.response.status_code") == 401]
    assert len(denied) == 1, objs
    logs = s.logs()
    for secret in (harness.DEMO_PASSWORD, bad_pw, harness.basic()[6:], harness.basic("app1", bad_pw)[6:]):
        assert secret not in logs, f"{secret!r} appears in the logs:\n{logs}"


def test_access_log_escapes_untrusted_values(start):
    """User names and User-Agents come from the client: the log lines stay one valid JSON object
    each. (A trace id that is not hex is not taken: see test_logs.py.)"""
    s = start()
    user = 'ev"il\\us\ter\n{"x"}\x01\u00e9'  # no colon: it ends the user
    agent = 'ag"ent\\x'
    r = requests.post(s.url + "/v2/scan-chunked", data=b"clean", timeout=10,
                      headers={"Authorization": "Basic " + base64.b64encode(
                          (user + ":pw").encode()).decode(), "User-Agent": agent})
    assert r.status_code == 401, ctx(r)
    assert harness.wait_until(lambda: "user_agent.original" in harness.stderr_of(s), 5), s.logs()
    objs, other = harness.json_lines(harness.stderr_of(s))
    assert not other, f"stderr lines that are not JSON objects: {other}"
    hits = [o for o in objs if o.get("http.response.status_code") == 401]
    assert len(hits) == 1, objs
    assert hits[0].get("user_agent.original") == agent, hits[0]
    assert hits[0].get("labels.user") in (None, user), hits[0]


# --- temporary files ---

def fds_in(srv, folder):
    """The server's open file descriptors that point into folder."""
    out = []
    for fd in os.listdir(f"/proc/{srv.proc.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{srv.proc.pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            out.append(target)
    return out


def test_tmpdir_clean_after_scans(start, tmp_path):
    s = start(env={"SPILL_THRESHOLD": "65536"})
    own = s.tmpdir / f"clamrest.{s.proc.pid}"
    assert own.is_dir(), sorted(os.listdir(s.tmpdir))
    (tmp_path / "eicar.com").write_bytes(harness.EICAR)
    os.system(f"cd {tmp_path} && zip -q e.zip eicar.com && zip -q -P pw enc.zip eicar.com")
    big = os.urandom(1024 * 1024) + harness.EICAR
    bodies = [(harness.EICAR, True), (b"small clean", False), (big, True), (os.urandom(300_000), False),
              ((tmp_path / "e.zip").read_bytes(), True), ((tmp_path / "enc.zip").read_bytes(), True)]
    for data, malware in bodies:
        for r in (requests.post(s.url + "/v2/scan-chunked", data=data, auth=harness.auth(), timeout=30),
                  requests.post(s.url + "/v2/scan-chunked", data=pieces(data, 20000),
                                auth=harness.auth(), timeout=30),
                  requests.post(s.url + "/v2/scan", files={"file": ("f", data)}, auth=harness.auth(),
                                timeout=30)):
            assert r.status_code == 200 and r.json()["malware"] is malware, ctx(r)
    assert harness.tmp_leftovers(s) == [], harness.tmp_leftovers(s)
    assert harness.wait_until(lambda: fds_in(s, s.tmpdir) == [], 3), fds_in(s, s.tmpdir)
    assert s.stop() == 0, s.logs()
    assert os.listdir(s.tmpdir) == [], os.listdir(s.tmpdir)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_tmpdir_clean_after_aborted_upload(start, framing):
    s = start(env={"SPILL_THRESHOLD": "65536"})
    with harness.HttpConn(s.port) as c:
        if framing == "content-length":
            c.send(post_head("/v2/scan-chunked", b"Content-Length: %d\r\n" % (10 * 1024 * 1024)))
            c.send(os.urandom(1024 * 1024))
        else:
            c.send(post_head("/v2/scan-chunked", b"Transfer-Encoding: chunked\r\n"))
            c.send(chunked(os.urandom(1024 * 1024), 65536)[:-5])
        time.sleep(0.2)
    # The aborted request is logged (status 499) once the server has noticed.
    assert harness.wait_until(lambda: '"url.path":"/v2/scan-chunked"' in harness.stderr_of(s),
                              10 * harness.TIME_FACTOR), s.logs()
    assert harness.wait_until(lambda: fds_in(s, s.tmpdir) == [], 5), \
        f"open files left in TMPDIR: {fds_in(s, s.tmpdir)}"
    assert harness.tmp_leftovers(s) == [], harness.tmp_leftovers(s)
    r = requests.post(s.url + "/v2/scan-chunked", data=os.urandom(200_000) + harness.EICAR,
                      auth=harness.auth(), timeout=30)
    assert r.status_code == 200 and r.json()["malware"] is True, ctx(r)
    assert s.stop() == 0, s.logs()
    assert os.listdir(s.tmpdir) == [], os.listdir(s.tmpdir)
