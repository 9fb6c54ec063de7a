"""Basic authentication of the scan endpoints (401 + WWW-Authenticate), users from APPLICATION_USERS."""
import base64

import pytest
import requests

import harness

SCAN_PATHS = ["/v2/scan", "/v2/scan-chunked", "/scan"]


@pytest.fixture(scope="module")
def srv(start_module):
    return start_module()


def post(srv, path, headers=None, auth=None):
    if path == "/v2/scan-chunked":
        kw = {"data": harness.EICAR}
    else:
        kw = {"files": {"file": ("eicar", harness.EICAR)}}
    return requests.post(srv.url + path, headers=headers or {}, auth=auth, timeout=30, **kw)


def assert_401(r, what):
    c = f"{what}: {r.status_code} {dict(r.headers)} {r.text!r}"
    assert r.status_code == 401, c
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic "), c
    assert "malware" not in r.text, c


def b64(s):
    return base64.b64encode(s).decode()


BAD_HEADERS = {
    "wrong password": harness.basic("app1", "wrong"),
    "empty password": harness.basic("app1", ""),
    "unknown user": harness.basic("nobody", harness.DEMO_PASSWORD),
    "empty user": harness.basic("", harness.DEMO_PASSWORD),
    "password case": harness.basic("app1", harness.DEMO_PASSWORD.upper()),
    "user case": harness.basic("APP1", harness.DEMO_PASSWORD),
    "password prefix": harness.basic("app1", harness.DEMO_PASSWORD[:-1]),
    "password + suffix": harness.basic("app1", harness.DEMO_PASSWORD + "x"),
    "not base64": "Basic !!!not-base64!!!",
    "no colon": "Basic " + b64(b"app1" + harness.DEMO_PASSWORD.encode()),
    "scheme only": "Basic",
    "scheme and space": "Basic ",
    "bearer": "Bearer " + b64(b"app1:" + harness.DEMO_PASSWORD.encode()),
    "digest": "Digest username=\"app1\"",
    "truncated base64": harness.basic()[:-3],
    "huge": "Basic " + b64(b"app1:" + b"x" * 5000),
    "nul in password": "Basic " + b64(b"app1:" + harness.DEMO_PASSWORD.encode() + b"\x00x"),
}


@pytest.mark.parametrize("path", SCAN_PATHS)
def test_missing_auth(srv, path):
    assert_401(post(srv, path), f"POST {path} without Authorization")


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
@pytest.mark.parametrize("path", SCAN_PATHS)
def test_bad_auth(srv, path, case):
    assert_401(post(srv, path, headers={"Authorization": BAD_HEADERS[case]}), f"POST {path} {case}")


@pytest.mark.parametrize("path", SCAN_PATHS)
def test_good_auth(srv, path):
    r = post(srv, path, auth=harness.auth())
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.text == "NOTOK" if path == "/scan" else r.json()["malware"] is True, r.text


def test_401_with_expect_100_continue(srv):
    """The 401 comes instead of a 100 Continue: the body is never asked for."""
    with harness.HttpConn(srv.port, timeout=5) as c:
        c.send(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
               b"Content-Length: 1000000\r\n\r\n")
        resp = c.response()
        assert resp is not None and resp[0] == 401, resp
        assert resp[1].get("www-authenticate", "").startswith("Basic "), resp


def test_scheme_is_case_insensitive(srv):
    for scheme in ("basic", "BASIC"):
        h = scheme + harness.basic()[len("Basic"):]
        r = post(srv, "/v2/scan-chunked", headers={"Authorization": h})
        assert r.status_code == 200, (h, r.status_code, r.text)


def test_401_on_keepalive_connection_then_good_request(srv):
    """A refused scan does not break the next requests on a fresh or reused connection."""
    with requests.Session() as s:
        r = s.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, timeout=30)
        assert_401(r, "no auth in a session")
        r = s.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(), timeout=30)
        assert r.status_code == 200 and r.json()["malware"] is True, (r.status_code, r.text)


USERS = {"alice": "alice-pw-1", "bob": "b0b:with:colons", "carol": "pässwörd ünïcode"}


def users_env(sep_after_first, sep_after_second):
    h = {u: harness.hash_password(p) for u, p in USERS.items()}
    return (f"alice::{h['alice']}{sep_after_first}bob::{h['bob']}{sep_after_second}"
            f"carol::{h['carol']}")


@pytest.mark.parametrize("seps", [("\n", "\n"), ("\\n", "\\n"), ("\n", "\\n"), ("\r\n", "\\n")],
                         ids=["newlines", "backslash-n", "mixed", "crlf-and-backslash-n"])
def test_multiple_users(start, seps):
    s = start(env={"APPLICATION_USERS": users_env(*seps)})
    for user, pw in USERS.items():
        r = requests.post(s.url + "/v2/scan-chunked", data=harness.EICAR, timeout=30,
                          headers={"Authorization": "Basic " + b64(f"{user}:{pw}".encode())})
        assert r.status_code == 200 and r.json()["malware"] is True, (user, r.status_code, r.text,
                                                                      s.logs())
    # A user with another user's password, and the demo user (not configured here).
    for user, pw in (("alice", USERS["bob"]), ("bob", USERS["alice"]), ("carol", "x"),
                     ("app1", harness.DEMO_PASSWORD)):
        r = requests.post(s.url + "/v2/scan-chunked", data=harness.EICAR, timeout=30,
                          headers={"Authorization": "Basic " + b64(f"{user}:{pw}".encode())})
        assert_401(r, f"{user} with a wrong password")


def test_no_users_refuses_every_scan(start):
    s = start(env={"APPLICATION_USERS": ""})
    assert_401(post(s, "/v2/scan-chunked", auth=harness.auth()), "no users configured")
    r = requests.get(s.url + "/check", timeout=10)
    assert (r.status_code, r.text) == (200, "Service OK")
