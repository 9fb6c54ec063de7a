"""test_dos_auth -- credential flooding: PBKDF2 stays off the HTTP threads, failures are throttled.

64 keep-alive connections (a separate process, tests/e2e/flood_auth.py) send scans with random
wrong passwords while this process measures GET /check and scans of a client whose password is
already cached. Before the fix, PBKDF2 (29,000 rounds) ran on libmicrohttpd's I/O threads and
/check took seconds under such a flood.
"""
import json
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest
import requests

import harness

FLOOD = pathlib.Path(__file__).with_name("flood_auth.py")
CONNECTIONS = 64
FLOOD_SECONDS = 8
CHECK_MEDIAN_MAX = 0.050	# seconds, the target
WORST_MAX = 2.0			# seconds, for /check and for a cached client's scan (1.3 s seen under ASan
				# with other builds on the 2 cores; the median carries the target)
QUIET = {"LOGGING_LEVEL": "WARNING"}	# no access line per flooded request


def scan(url, auth=harness.auth(), timeout=5):
    """(status, seconds, text, headers) of one EICAR scan on a new connection."""
    t0 = time.monotonic()
    try:
        r = requests.post(url + "/v2/scan-chunked", data=harness.EICAR, auth=auth, timeout=timeout)
        return r.status_code, time.monotonic() - t0, r.text, r.headers
    except requests.RequestException as e:
        return None, time.monotonic() - t0, str(e), {}


def scan_from(port, source, user, password):
    """The status of an EICAR scan sent from the loopback address source."""
    with socket.socket() as s:
        s.settimeout(10)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Authorization: " + harness.basic(user, password).encode() +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(harness.EICAR) + harness.EICAR)
        head = s.recv(65536)
    return int(head.split()[1])


class Probe:
    """Measures GET /check and cached-password scans in two threads until stopped."""

    def __init__(self, url):
        self.url = url
        self.checks, self.scans = [], []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._check), threading.Thread(target=self._scan)]

    def _check(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                ok = requests.get(self.url + "/check", timeout=5).status_code == 200
            except requests.RequestException:
                ok = False
            self.checks.append((ok, time.monotonic() - t0))
            self.stop.wait(0.05)

    def _scan(self):
        while not self.stop.is_set():
            self.scans.append(scan(self.url))
            self.stop.wait(0.1)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def report(self):
        lat = [s for _, s in self.checks]
        return (f"/check: n={len(lat)} median={statistics.median(lat) * 1000:.1f} ms "
                f"max={max(lat) * 1000:.0f} ms failed={sum(1 for ok, _ in self.checks if not ok)}; "
                f"scans: n={len(self.scans)} max={max(s[1] for s in self.scans) * 1000:.0f} ms "
                f"statuses={sorted(set(s[0] for s in self.scans), key=str)}")

    def assert_fast(self, logs):
        report = self.report()
        print(report)
        lat = [s for _, s in self.checks]
        assert statistics.median(lat) < CHECK_MEDIAN_MAX, report
        assert max(lat) < WORST_MAX, report
        assert all(ok for ok, _ in self.checks), report
        assert len(lat) >= 20 and len(self.scans) >= 10, report
        for status, seconds, text, headers in self.scans:
            assert status == 200 and '"malware":true' in text, (status, text, report, logs[-2000:])
            assert seconds < WORST_MAX, report


def flood(port, seconds=FLOOD_SECONDS, sources=1):
    return subprocess.Popen([sys.executable, str(FLOOD), str(port), str(CONNECTIONS), str(seconds),
                             str(sources)], stdout=subprocess.PIPE, text=True)


def flood_result(proc):
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    stats = json.loads(out)
    stats["status"] = {int(k): v for k, v in stats["status"].items()}
    print("flood:", stats)
    return stats


def metric(url, name):
    text = requests.get(url + "/metrics", timeout=5).text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


BOB_PASSWORD = "bob-secret"


def two_users():
    """app1 (the demo user) and bob, both at passlib's 29,000 rounds."""
    return harness.demo_users() + "\nbob::" + harness.hash_password(BOB_PASSWORD, rounds=29000)


@pytest.mark.timing
def test_flood_from_one_address_is_throttled(start):
    """One address floods: after AUTH_FAIL_BURST failed checks it gets 429 + Retry-After without
    a PBKDF2; /check and a cached client on the same address stay fast and never see 429."""
    srv = start(env={**QUIET, "APPLICATION_USERS": two_users()})
    first = scan(srv.url)		# puts the right password in the cache
    assert first[0] == 200, first
    proc = flood(srv.port)
    with Probe(srv.url) as probe:
        proc_wait = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < proc_wait:
            time.sleep(0.2)
    stats = flood_result(proc)
    logs = srv.logs()
    probe.assert_fast(logs)
    assert stats["status"].get(429, 0) > 0, stats
    assert stats["no_retry_after"] == 0, stats
    # PBKDF2 ran AUTH_FAIL_BURST (20) times, then about once a second (AUTH_FAIL_RATE 60).
    assert stats["status"].get(401, 0) <= 20 + FLOOD_SECONDS + 5, stats
    assert metric(srv.url, "clamrest_auth_throttled_total") > 0
    assert "used up its failed password checks" in logs and "127.0.0.1" in logs, logs[-2000:]
    # Right after the flood the address is still throttled for new passwords, not for the cached one.
    r = requests.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, timeout=5,
                      auth=("app1", "yet-another-guess"))
    assert r.status_code == 429 and r.headers.get("Retry-After") == "1", (r.status_code, r.headers)
    assert "WWW-Authenticate" not in r.headers, r.headers
    assert scan(srv.url)[0] == 200
    # A right password not yet cached waits with its address (documented); from another address
    # it is checked at once.
    assert scan_from(srv.port, "127.0.0.1", "bob", BOB_PASSWORD) == 429
    assert scan_from(srv.port, "127.0.0.2", "bob", BOB_PASSWORD) == 200
    assert scan_from(srv.port, "127.0.0.1", "bob", BOB_PASSWORD) == 200


@pytest.mark.timing
def test_flood_from_many_addresses_is_shed(start):
    """64 addresses, each with its own full bucket: the verifier queue bounds the PBKDF2 work and
    sheds the rest with 503 + Retry-After, while /check and the cached client stay fast."""
    srv = start(env={**QUIET, "AUTH_QUEUE": "8"})
    assert scan(srv.url)[0] == 200
    proc = flood(srv.port, sources=CONNECTIONS)
    with Probe(srv.url) as probe:
        proc_wait = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < proc_wait:
            time.sleep(0.2)
    stats = flood_result(proc)
    probe.assert_fast(srv.logs())
    assert stats["status"].get(401, 0) > 0, stats
    assert stats["status"].get(503, 0) > 0, stats
    assert stats["no_retry_after"] == 0, stats
    assert metric(srv.url, 'clamrest_load_shed_total{protocol="http"}') > 0


@pytest.fixture(scope="module")
def users_srv(start_module):
    return start_module(env={"APPLICATION_USERS": two_users()})


def expect_head(user, password, length):
    return (b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Authorization: " + harness.basic(user, password).encode() +
            b"\r\nContent-Length: %d\r\n\r\n" % length)


def test_expect_100_continue_waits_for_the_check(users_srv):
    """A password not in the cache is checked on the verifier while the connection is suspended;
    "100 Continue" comes only after a right one, and a wrong one is answered 401 instead."""
    with harness.HttpConn(users_srv.port, timeout=10) as c:
        c.send(expect_head("bob", "not-bobs-" + str(time.monotonic()), len(harness.EICAR)))
        resp = c.response()
        assert resp is not None and resp[0] == 401, resp
    with harness.HttpConn(users_srv.port, timeout=10) as c:
        c.send(expect_head("bob", BOB_PASSWORD, len(harness.EICAR)))
        resp = c.response()
        assert resp is not None and resp[0] == 100, resp
        c.send(harness.EICAR)
        resp = c.response()
        assert resp is not None and resp[0] == 200 and b'"malware":true' in resp[2], resp


def test_body_sent_at_once_while_the_check_runs(users_srv):
    """Without Expect, the body may arrive while the connection is suspended; it is read after
    the check, and the connection lives on for the next request."""
    with harness.HttpConn(users_srv.port, timeout=10) as c:
        for pw in ("wrong-" + str(time.monotonic()), BOB_PASSWORD + "?"):
            c.send(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                   harness.basic("bob", pw).encode() +
                   b"\r\nContent-Length: %d\r\n\r\n" % len(harness.EICAR) + harness.EICAR)
            resp = c.response()
            assert resp is not None and resp[0] == 401, resp
        c.send(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " +
               harness.basic().encode() +
               b"\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(harness.EICAR) +
               harness.EICAR + b"\r\n0\r\n\r\n")
        resp = c.response()
        assert resp is not None and resp[0] == 200 and b'"malware":true' in resp[2], resp


def test_curl_large_upload_with_a_new_password(start, tmp_path):
    """curl sends Expect: 100-continue for a large body; the check of a new password runs first."""
    srv = start(env={"APPLICATION_USERS": two_users()})
    f = tmp_path / "big.bin"
    f.write_bytes(b"\0" * (3 * 1024 * 1024) + harness.EICAR)
    for user, pw, want in (("bob", "wrong", "401"), ("bob", BOB_PASSWORD, "200")):
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                              f"{user}:{pw}", "--data-binary", f"@{f}", "-H",
                              "Content-Type: application/octet-stream",
                              srv.url + "/v2/scan-chunked"],
                             capture_output=True, text=True, timeout=60)
        assert out.stdout == want, (user, pw, out.stdout, out.stderr, srv.logs()[-2000:])


def test_client_gone_while_checked(users_srv):
    """Clients that hang up while their password is checked leave nothing behind."""
    for i in range(20):
        with socket.create_connection(("127.0.0.1", users_srv.port), timeout=5) as s:
            s.sendall(expect_head("bob", f"gone-{i}-{time.monotonic()}", 100))
    for _ in range(3):
        r = requests.post(users_srv.url + "/v2/scan-chunked", data=harness.EICAR, timeout=10,
                          auth=("bob", BOB_PASSWORD))
        assert r.status_code == 200, (r.status_code, r.text)
    assert requests.get(users_srv.url + "/check", timeout=5).status_code == 200
