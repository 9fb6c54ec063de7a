"""test_log_format -- logs a person can read (issue 22.2): LOG_FORMAT=text gives one line per request
with time, level, status, method, path, verdict, signature, duration and request id; start-up lines
give sizes with units and the scan policy as fields (JSON: an object, not an escaped string in
message); no message nests parentheses; every 4xx access line says why (error.message)."""
import json
import re
import subprocess

import requests

import harness

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S")
UNITS = re.compile(r"\d+\.\d (KiB|MiB|GiB|TiB)")


def max_depth(text):
    depth = worst = 0
    for c in text:
        depth += c == "("
        worst = max(worst, depth)
        depth -= c == ")"
    return worst


def json_lines(srv):
    return [json.loads(l) for l in srv.logs().splitlines() if l.startswith("{")]


def access_text(srv, rid):
    found = []

    def seen():
        found[:] = [l for l in srv.logs().splitlines() if f" id={rid}" in l]
        return found
    assert harness.wait_until(seen), srv.logs()
    return found[0]


def test_text_format(start):
    srv = start(env={"LOG_FORMAT": "text"})
    r = requests.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(), timeout=10)
    assert r.status_code == 200
    line = access_text(srv, r.headers["X-Request-Id"])
    assert re.match(r"^\S+Z INFO +200 POST /v2/scan-chunked malware Eicar-Test-Signature\S* "
                    r"\d+\.\dms id=[0-9a-f]{32} ", line), line
    r = requests.post(srv.url + "/v2/scan-chunked", data=b"x", auth=("app1", "a wrong one"), timeout=10)
    line = access_text(srv, r.headers["X-Request-Id"])
    assert re.match(r"^\S+Z WARNING 401 POST /v2/scan-chunked - - \d+\.\dms id=\S+ "
                    r'error="unknown user or wrong password" user=app1 ip=127\.0\.0\.1', line), line
    srv.stop()
    text = srv.logs()
    for l in text.splitlines():
        assert TEXT_LINE.match(l), l
        assert max_depth(l) <= 1, l
    assert not any(l.lstrip().startswith("{") for l in text.splitlines()), text
    assert UNITS.search(next(l for l in text.splitlines() if "BODY_DISK" in l)), text
    policy = next(l for l in text.splitlines() if " scan policy " in l)
    assert " scan_archive=true " in policy and " detect_pua=false " in policy, policy
    assert '\\"' not in policy, policy


def test_json_start_up_lines(start):
    srv = start()
    lines = json_lines(srv)
    for l in lines:
        assert max_depth(l["message"]) <= 1, l
    body = next(l["message"] for l in lines if "BODY_DISK" in l["message"])
    assert UNITS.search(body), body
    policy = [l for l in lines if l["message"] == "scan policy"]
    assert len(policy) == 1 and policy[0]["clamrest.policy"]["scan_archive"] is True, lines


def test_every_4xx_access_line_says_why(start):
    srv = start(env={"MAX_FILES_PER_REQUEST": "2", "MAX_CONTENT_LENGTH": "1000"})
    auth = harness.auth()
    ids = []
    for method, path, kw in (
        ("POST", "/v3/scan", {"files": [("file", (f"f{i}", b"x")) for i in range(4)], "auth": auth}),
        ("POST", "/v3/scan", {"data": b"x", "headers": {"Content-Type": "text/plain"}, "auth": auth}),
        ("POST", "/v2/scan", {"data": b"x", "auth": auth}),
        ("POST", "/v2/scan-chunked", {"data": b"x" * 2000, "auth": auth}),
        ("POST", "/v2/scan-chunked", {"data": b"x"}),
        ("PUT", "/v2/scan", {"data": b"x", "auth": auth}),
        ("GET", "/nope", {}),
    ):
        r = requests.request(method, srv.url + path, timeout=10, **kw)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        ids.append(r.headers["X-Request-Id"])

    def lines_for():
        got = {l.get("http.request.id"): l for l in json_lines(srv) if "url.path" in l}
        return got if all(i in got for i in ids) else None
    assert harness.wait_until(lines_for), srv.logs()
    got = lines_for()
    for i in ids:
        assert got[i].get("error.message"), got[i]
    assert "too many files" in got[ids[0]]["error.message"], got[ids[0]]


def test_bad_log_format_is_refused(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LOG_FORMAT": "xml", "CLAMAV_DB_DIR": str(tmp_path)}
    out = subprocess.run([harness.BIN], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out
    assert "LOG_FORMAT" in out.stderr, out.stderr
