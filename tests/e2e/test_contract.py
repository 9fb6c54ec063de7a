"""Drop-in contract with dit-clamav-rest (upstream): every route answered as upstream's Flask and
Werkzeug answer it, byte for byte where it matters to a client.

UPSTREAM holds upstream's answers as data (from its clamav_rest.py under Flask 3 / Werkzeug 3, and the
answers quoted in issue 10); each is compared with ours on status, Content-Type family, Allow,
WWW-Authenticate and the JSON body (types, key order, final newline). Where we differ on purpose the
row says so, and the difference must be one docs/COMPATIBILITY.md lists.
"""
import io
import json
import random
import re
import socket

import pytest
import requests

import harness

VERSION = "1.0.0"           # upstream's version.py, and ours
DB = 27401                  # the versions quoted in the issue
ALLOW_GET = "GET, HEAD, OPTIONS"
ALLOW_POST = "POST, OPTIONS"
WWW_AUTH = 'Basic realm="Authentication Required"'
CD_FILE = b'Content-Disposition: form-data; name="file"; filename="a.bin"'

# Our text answers are text/plain; upstream's Flask sends every str answer as text/html
# (docs/COMPATIBILITY.md: "text/plain error bodies"). Nothing else may differ.
DOCUMENTED = {("ctype", "text/html", "text/plain")}


def multipart(content, boundary=b"b0undary", eol=b"\r\n", disposition=CD_FILE):
    return (b"--" + boundary + eol + disposition + eol + eol + content + eol +
            b"--" + boundary + b"--" + eol)


MP_CT = "multipart/form-data; boundary=b0undary"

# (method, path, request kwargs, upstream's answer). In the answer: status, ctype (media type),
# allow, www (WWW-Authenticate), body (bytes, exact), json (a dict in key order: the JSON body must
# be it, with these types and this key order, and end in a newline), json_types (key -> type, for
# values that vary: times, signature names).
UPSTREAM = [
    ("GET", "/", {}, dict(status=200, ctype="text/html", body=b"Service OK")),
    ("GET", "/check", {}, dict(status=200, ctype="text/html", body=b"Service OK")),
    ("HEAD", "/check", {}, dict(status=200, ctype="text/html", body=b"")),
    ("GET", "/check_version", {}, dict(status=200, ctype="application/json", json={
        "clamd-actual": str(DB), "clamd-required": str(DB), "outdated": False, "service": VERSION})),
    ("GET", "//check_version", {}, dict(status=200, ctype="application/json", json={
        "clamd-actual": str(DB), "clamd-required": str(DB), "outdated": False, "service": VERSION})),
    ("GET", "/check_warning", {}, dict(status=200, ctype="text/html", body=str(DB).encode())),
    *[("OPTIONS", p, {}, dict(status=200, ctype="text/html", allow=ALLOW_GET, body=b""))
      for p in ("/", "/check", "/check_version", "/check_warning")],
    *[("OPTIONS", p, {}, dict(status=200, ctype="text/html", allow=ALLOW_POST, body=b""))
      for p in ("/v2/scan", "/v2/scan-chunked", "/scan")],
    ("POST", "/check", {}, dict(status=405, ctype="text/html", allow=ALLOW_GET)),
    ("DELETE", "/check_version", {}, dict(status=405, ctype="text/html", allow=ALLOW_GET)),
    ("GET", "/v2/scan", {}, dict(status=405, ctype="text/html", allow=ALLOW_POST)),
    ("PUT", "/scan", {}, dict(status=405, ctype="text/html", allow=ALLOW_POST)),
    ("POST", "/v2/scan", dict(auth=None), dict(status=401, ctype="text/html", www=WWW_AUTH,
                                               body=b"Unauthorized Access")),
    ("POST", "/v2/scan-chunked", dict(auth=("app1", "wrong")),
     dict(status=401, ctype="text/html", www=WWW_AUTH, body=b"Unauthorized Access")),
    ("POST", "/scan", dict(auth=None), dict(status=401, ctype="text/html", www=WWW_AUTH)),
    ("POST", "/v2/scan", dict(files={"file": ("e.com", harness.EICAR)}),
     dict(status=200, ctype="application/json", json={"malware": True, "reason": "", "time": 0.0},
          json_types={"reason": str, "time": float})),
    ("POST", "//v2/scan", dict(files={"file": ("c.txt", b"clean\n")}),
     dict(status=200, ctype="application/json", json={"malware": False, "reason": None, "time": 0.0},
          json_types={"time": float})),
    ("POST", "/v2/scan-chunked", dict(data=harness.EICAR),
     dict(status=200, ctype="application/json", json={"malware": True, "reason": "", "time": 0.0},
          json_types={"reason": str, "time": float})),
    ("POST", "/scan", dict(files={"file": ("e.com", harness.EICAR)}),
     dict(status=200, ctype="text/html", body=b"NOTOK")),
    ("POST", "/v2/scan", dict(files=[("a", ("a", b"1")), ("b", ("b", b"2"))]),
     dict(status=400, ctype="text/html", body=b"Provide a single file")),
    # Bare LF line ends and an attachment part: Werkzeug reads them, so upstream scans them.
    ("POST", "/v2/scan", dict(data=multipart(harness.EICAR, eol=b"\n", disposition=(
        b'Content-Disposition: attachment; name="file"; filename="e.com"')),
        headers={"Content-Type": MP_CT}),
     dict(status=200, ctype="application/json", json={"malware": True, "reason": "", "time": 0.0},
          json_types={"reason": str, "time": float})),
    ("GET", "/no/such/path", {}, dict(status=404, ctype="text/html")),
    ("GET", "/check/", {}, dict(status=404, ctype="text/html")),
]


def ctype_family(value):
    return (value or "").split(";")[0].strip().lower()


def differs(field, upstream, ours):
    """ours may differ from upstream only as documented."""
    return upstream != ours and (field, upstream, ours) not in DOCUMENTED


def check_json(text, want, types, ctx):
    assert text.endswith("\n") and not text.endswith("\n\n"), ctx
    # Flask writes compact JSON with sorted keys: no space after ':' or ','.
    assert re.fullmatch(r'\{("[^"]+":(".*?"|true|false|null|[0-9.e+-]+),?)+\}\n', text), ctx
    got = json.loads(text, object_pairs_hook=list)
    assert [k for k, _ in got] == list(want), ctx
    assert [k for k, _ in got] == sorted(k for k, _ in got), ctx
    for k, v in got:
        if k in types:
            assert type(v) is types[k], ctx
        else:
            assert v == want[k] and type(v) is type(want[k]), ctx
    if "time" in want:
        # The float as Python writes it (repr), so a byte-for-byte reader sees Flask's form.
        raw = re.search(r'"time":([^,}]+)', text).group(1)
        assert repr(float(raw)) == raw, ctx


@pytest.fixture(scope="module")
def upstream_like(start_module):
    """A server whose database and published version are 27401, as in the issue's quote."""
    d = harness.Dnsmasq(DB)
    try:
        assert harness.dns_ready(d, timeout=10 * harness.TIME_FACTOR), "dnsmasq does not answer"
        srv = start_module(db_version=DB, env={"CLAMAV_DNS_SERVER": d.server})
        assert harness.wait_until(lambda: "error" not in requests.get(
            srv.url + "/check_version", timeout=5).json(), timeout=15)
        yield srv
    finally:
        d.stop()


@pytest.mark.parametrize("method,path,kw,want", UPSTREAM,
                         ids=[f"{m} {p} {w['status']}" for m, p, _, w in UPSTREAM])
def test_answer_as_upstream(upstream_like, method, path, kw, want):
    kw = dict(kw)
    kw.setdefault("auth", harness.auth())
    r = requests.request(method, upstream_like.url + path, timeout=30, allow_redirects=False, **kw)
    ctx = f"{method} {path} -> {r.status_code} {dict(r.headers)} {r.content[:300]!r}"
    assert r.status_code == want["status"], ctx
    assert not differs("ctype", want["ctype"], ctype_family(r.headers.get("Content-Type"))), ctx
    assert r.headers.get("Allow") == want.get("allow"), ctx
    assert r.headers.get("WWW-Authenticate") == want.get("www"), ctx
    if "body" in want:
        assert r.content == want["body"], ctx
    if "json" in want:
        check_json(r.text, want["json"], want.get("json_types", {}), ctx)


def test_outdated_version_as_upstream(start, dns):
    """Issue: versions are strings, keys sorted, service is the version; 500 when outdated."""
    d = dns(DB + 4)
    assert harness.dns_ready(d, timeout=10 * harness.TIME_FACTOR)
    srv = start(db_version=DB, env={"CLAMAV_DNS_SERVER": d.server})
    # The first lookup may still be on its way.
    assert harness.wait_until(
        lambda: "error" not in requests.get(srv.url + "/check_version", timeout=5).json(), timeout=15)
    r = requests.get(srv.url + "/check_version", timeout=30)
    assert (r.status_code, r.text) == (500, '{"clamd-actual":"27401","clamd-required":"27405",'
                                            '"outdated":true,"service":"1.0.0"}\n')


def test_version_error_as_upstream(server):
    """No DNS answer: upstream's {"error": ..., "service": ...} with sorted keys and a newline."""
    r = requests.get(server.url + "/check_version", timeout=30)
    assert r.status_code == 500
    assert re.fullmatch(r'\{"error":"[^"]+","service":"1\.0\.0"\}\n', r.text), r.text


def test_redirect_inner_slashes_as_werkzeug(upstream_like):
    """/v2//scan-chunked: 308 to the merged path, absolute as Werkzeug builds it; the client
    follows it with the same method and body."""
    url = upstream_like.url
    r = requests.post(url + "/v2//scan-chunked", data=harness.EICAR, auth=harness.auth(),
                      allow_redirects=False, timeout=30)
    assert r.status_code == 308, r.text
    assert r.headers["Location"] == url + "/v2/scan-chunked"
    for path, method in (("/check//", "GET"), ("/v2//scan", "OPTIONS"), ("/check_version//", "GET")):
        r = requests.request(method, url + path, allow_redirects=False, timeout=30)
        if path.endswith("//"):
            assert r.status_code == 404, path     # "/check/" names no route
        else:
            assert (r.status_code, r.headers.get("Location")) == (308, url + "/v2/scan"), path
    # A method the merged path does not take: 405, as Werkzeug (it never redirects those).
    r = requests.get(url + "/v2//scan", allow_redirects=False, timeout=30)
    assert (r.status_code, r.headers.get("Allow")) == (405, ALLOW_POST)
    # Followed by a client: the scan is done at the merged path.
    r = requests.post(url + "/v2//scan-chunked", data=harness.EICAR, auth=harness.auth(), timeout=30)
    assert r.status_code == 200 and r.json()["malware"] is True
    # Without a Host header (HTTP/1.0), the path alone.
    raw = harness.raw_request(upstream_like.port, b"GET /check//version HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 404"), raw[:100]
    raw = harness.raw_request(upstream_like.port, b"GET /v2//scan HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 405"), raw[:100]
    raw = harness.raw_request(upstream_like.port, b"OPTIONS //v2//scan HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 308") and b"\r\nLocation: /v2/scan\r\n" in raw, raw[:300]


def test_options_needs_no_auth_and_haproxy_check(upstream_like):
    """HAProxy's default `option httpchk`: OPTIONS / HTTP/1.0, must be 200."""
    raw = harness.raw_request(upstream_like.port, b"OPTIONS / HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), raw
    assert b"\r\nAllow: GET, HEAD, OPTIONS" in head and body == b"", raw
    raw = harness.raw_request(upstream_like.port, b"OPTIONS /v2/scan HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200") and b"\r\nAllow: POST, OPTIONS" in raw, raw


# --- One answer per request (issue 10, item 6) ---------------------------------------------------

MALFORMED = [
    # (request, the status of the one answer, or None when closing without one is right)
    (b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    (b"GET /check HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    (b"GET /check HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /scan HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"GET /check HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400),
    (b"GET /check HTTP/1.1\r\nHost: x\r\nContent-Length: 3 3\r\n\r\n", 400),
    (b"POST /v2/scan HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413),
    (b"GET /check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: abc\r\n\r\n"
     b"0\r\n\r\n", 400),
    (b"GET /check HTTP/1.1\r\nHost: x\r\nBadHeaderNoColon\r\n\r\n", 400),
    (b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " + harness.basic().encode() +
     b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", None),
    (b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " + harness.basic().encode() +
     b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nbadfooter\r\n\r\n", 400),
    (b"GET /check HTTP/2.5\r\nHost: x\r\n\r\n", 505),
    (b"GET /check\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", None),
    (b"GET /check HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100)
                                                      for i in range(400)) + b"\r\n", 431),
    (b"POST /v2/scan HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 401),
    (b"DELETE /check HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /", 405),
    (b"OPTIONS //v2//scan-chunked HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
]


@pytest.mark.parametrize("req,status", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_one_answer_then_close(upstream_like, req, status):
    raw = harness.raw_request(upstream_like.port, req, timeout=5)
    heads = re.findall(rb"HTTP/1\.[01] (\d\d\d)", raw)
    assert len(heads) <= 1, raw[:600]
    if status is not None:
        assert heads == [str(status).encode()], raw[:600]


def test_one_answer_pipelined(upstream_like):
    """A good request, then one with a Content-Length that is not a number: two answers, one each,
    then the connection is closed (nothing after the bad request is read as a request)."""
    raw = harness.raw_request(upstream_like.port,
                              b"GET /check HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GET /check HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
                              b"GET /check HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert re.findall(rb"HTTP/1\.[01] (\d\d\d)", raw) == [b"200", b"400"], raw


# --- Multipart as Werkzeug reads it, refused where readers differ (issue 10, item 5) ---------------

def upload(srv, body, boundary="b0undary"):
    return requests.post(srv.url + "/v2/scan", data=body, auth=harness.auth(), timeout=30,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_lf_multipart_scanned(upstream_like):
    clean = b"clean\r\nline\r--b0undar\nx--b0undary\n"
    for eol in (b"\n", b"\r\n"):
        for disp in (CD_FILE, b'Content-Disposition: attachment; name="file"; filename="a.bin"',
                     b'Content-Disposition: inline; filename="a.bin"'):
            r = upload(upstream_like, multipart(harness.EICAR, eol=eol, disposition=disp))
            assert r.status_code == 200 and r.json()["malware"] is True, (eol, disp, r.text)
            r = upload(upstream_like, multipart(clean, eol=eol, disposition=disp))
            assert r.status_code == 200 and r.json()["malware"] is False, (eol, disp, r.text)


# Werkzeug finds the file holding EICAR behind a delimiter a strict reader does not see (or the
# reverse): each must be refused, never answered clean.
AMBIGUOUS = [
    b"\n--b0undary\r\n" + CD_FILE + b"\r\n\r\n" + harness.EICAR + b"\r\n--b0undary\r\n" + CD_FILE +
    b"\r\n\r\nclean\r\n--b0undary--\r\n",
    b"--b0undary\r\n" + CD_FILE + b"\r\n\r\nclean\n--b0undary\r\n" + CD_FILE + b"\r\n\r\n" +
    harness.EICAR + b"\r\n--b0undary--\r\n",
    b"--b0undary\r\n" + CD_FILE + b"\r\n\r\nclean\r--b0undary\r\n" + CD_FILE + b"\r\n\r\n" +
    harness.EICAR + b"\r\n--b0undary--\r\n",
    b"--b0undary\r\n" + CD_FILE + b"\r\n\r\n--b0undary\r\n" + CD_FILE + b"\r\n\r\n" +
    harness.EICAR + b"\r\n--b0undary--\r\n",
    b"--b0undary\r\n" + CD_FILE + b"\n\r\n" + harness.EICAR + b"\r\n--b0undary--\r\n",
    b"junk--b0undary\r\n" + CD_FILE + b"\r\n\r\n" + harness.EICAR + b"\r\n--b0undary--\r\n",
]


@pytest.mark.parametrize("body", AMBIGUOUS, ids=[str(i) for i in range(len(AMBIGUOUS))])
def test_ambiguous_multipart_refused(upstream_like, body):
    r = upload(upstream_like, body)
    assert r.status_code == 400, r.text


def werkzeug_files(body, boundary):
    """The files upstream's Werkzeug (Debian's 2.2) reads from body, or None when it refuses it."""
    from werkzeug.formparser import parse_form_data
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
               "wsgi.input": io.BytesIO(body)}
    try:
        _, _, files = parse_form_data(environ, silent=False)
    except Exception:       # noqa: BLE001 - any refusal
        return None
    return [f.read() for _, f in files.items(multi=True)]


def random_body(rng, boundary):
    """A body with one line end for its structure (now and then another one), a field part and a
    file part, content mixing EICAR with line ends and near-delimiters."""
    b = boundary.encode()
    eol = rng.choice([b"\r\n", b"\n"])

    def e():
        return rng.choice([b"\r\n", b"\n", b"\r"]) if rng.random() < 0.04 else eol

    pieces = [b"x", b"\r", b"\n", b"\r\n", b"--" + b, b"--" + b + b"--", b"--" + b[:-1], b" ",
              harness.EICAR, harness.EICAR, b"clean", CD_FILE]
    out = [rng.choice([b"", b"", b"", b"pre" + e(), e(), b"pre--" + b + e()])]
    parts = [CD_FILE, b'Content-Disposition: form-data; name="f"']
    if rng.random() < 0.5:
        parts.reverse()
    for i, disp in enumerate(parts[:rng.randint(1, 2)]):
        out.append((e() if i else b"") + b"--" + b + e() + disp + e() + e())
        n = rng.randint(0, 4)
        out.append(b"".join(rng.choice(pieces if rng.random() < 0.3 else pieces[8:11])
                            for _ in range(n)))
    out.append(e() + b"--" + b + b"--" + eol)
    return b"".join(out)


def test_never_clean_where_werkzeug_sees_malware(upstream_like):
    """Differential: for random bodies mixing line ends, near-delimiters and EICAR, whenever we
    answer clean, no file Werkzeug reads from the same bytes holds EICAR."""
    pytest.importorskip("werkzeug")
    rng = random.Random(10)
    seen = {"clean": 0, "malware": 0, "refused": 0}
    with requests.Session() as s:
        for i in range(400):
            body = random_body(rng, "b0undary")
            r = s.post(upstream_like.url + "/v2/scan", data=body, auth=harness.auth(), timeout=30,
                       headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
            if r.status_code != 200:
                seen["refused"] += 1
                continue
            malware = r.json()["malware"]
            seen["malware" if malware else "clean"] += 1
            if not malware:
                files = werkzeug_files(body, "b0undary") or []
                assert not any(harness.EICAR in f for f in files), (i, body)
    print(seen)
    assert min(seen.values()) > 10, seen   # the generator reaches every outcome


def test_logging_level_as_python(start):
    """Every level Python's logging takes by name, and a number; CRITICAL silences INFO."""
    for level in ("CRITICAL", "FATAL", "WARN", "NOTSET", "10", "50", "info"):
        srv = start(env={"LOGGING_LEVEL": level})
        assert requests.get(srv.url + "/check", timeout=10).status_code == 200
        if level in ("CRITICAL", "FATAL", "50"):
            srv.stop()
            assert harness.stdout_of(srv) == "", harness.stdout_of(srv)
    for bad in ("LOUD", "Level 10", "-1"):
        srv = harness.Clamrest(env={"LOGGING_LEVEL": bad}, wait=False)
        try:
            assert srv.proc.wait(20) == 2
            assert "LOGGING_LEVEL" in srv.logs()
        finally:
            srv.stop()
            srv.cleanup()
