"""Uploads in progress cannot exhaust memory (BODY_MEMORY) or the temporary folder (BODY_DISK); a
failing temporary folder is the server's 500, not the client's 400; multipart parts that readers
classify differently are refused, never skipped unscanned; client bytes that are not UTF-8 never
break a log line. Issue 9, items 3, 4, 8 and 10."""
import base64
import contextlib
import json
import os
import re
import socket
import subprocess
import time

import pytest
import requests

import harness

MiB = 1024 * 1024
# What one connection with an upload in progress costs besides its body bytes: libmicrohttpd's
# 64 KiB connection buffer (SERVER_CONN_MEMORY), the request and multipart state (about 10 KiB),
# allocator slack. Measured about 58 KiB; bounded here (and in docs/DESIGN.md) at 256 KiB.
CONN_OVERHEAD = 256 * 1024
HELD = 2_097_000          # bytes per upload: just under SPILL_THRESHOLD, so old code kept it in memory
BURST = 120               # connections per round
BODY_MEMORY = 32 * MiB


def hold_upload(port, sent, length, route="/v2/scan-chunked", data=None):
    """A connection with `sent` body bytes of a `length`-byte upload sent, left open."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"POST {route} HTTP/1.1\r\nHost: t\r\nAuthorization: {harness.basic()}\r\n"
               f"Content-Length: {length}\r\n\r\n").encode())
    s.sendall(data if data is not None else b"\0" * sent)
    return s


@contextlib.contextmanager
def tmpfs(path, size, ro=False):
    """A tmpfs of `size` mounted on path for the test (we are root); skips when mount is refused."""
    path.mkdir(exist_ok=True)
    opts = f"size={size}" + (",ro" if ro else "")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): {p.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def used(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


# --- Item 8: memory of uploads in progress is bounded, and given back after a burst. ---

def test_memory_burst_is_bounded_and_given_back(start):
    """Two rounds of BURST connections, each HELD bytes into an upload, held, then closed. glibc
    keeps a burst's buffers in its heap from the second round on unless the mmap threshold is
    fixed, so one round would not show it."""
    srv = start(env={"BODY_MEMORY": str(BODY_MEMORY), "MAX_CONNECTIONS": "1000"})
    pid = srv.proc.pid
    why_not = harness.instrumented(srv)
    time.sleep(0.3)
    before = harness.rss(pid)
    report = []
    for rnd in range(2):
        socks = [hold_upload(srv.port, HELD, HELD + 1000) for _ in range(BURST)]
        try:
            # Every byte sent is read by the server: memory and disk together hold them all
            # (old binaries have no such gauges: they get a fixed while).
            harness.wait_until(lambda: harness.metric(srv, "clamrest_body_memory_bytes", 0) +
                               harness.metric(srv, "clamrest_body_disk_bytes", 0) >= BURST * HELD,
                               15 if harness.metric(srv, "clamrest_body_memory_bytes", -1) >= 0 else 2)
            time.sleep(0.5)
            during = harness.rss(pid)
            held_mem = harness.metric(srv, "clamrest_body_memory_bytes", -1)
        finally:
            for s in socks:
                s.close()
        harness.wait_until(lambda: harness.metric(srv, "clamrest_body_memory_bytes", 0) == 0 and
                           harness.metric(srv, "clamrest_body_disk_bytes", 0) == 0, 10)
        time.sleep(1.0)
        after = harness.rss(pid)
        report.append(f"round {rnd + 1}: before {before / MiB:.1f} MiB, during {during / MiB:.1f} "
                      f"MiB (bodies in memory {held_mem / MiB:.1f} MiB), after {after / MiB:.1f} MiB")
        if not why_not:
            assert during - before < BODY_MEMORY + BURST * CONN_OVERHEAD, report
            assert after - before < 16 * MiB, report
        assert 0 <= held_mem <= BODY_MEMORY, report
    print("\n".join(report))
    r = harness.scan_chunked(srv, harness.EICAR)
    assert r.status_code == 200 and r.json()["malware"] is True
    if why_not:
        pytest.skip(f"RSS bounds not checked: {why_not} ({report})")


# --- Item 3 (disk): bytes of uploads in progress in TMPDIR are bounded by BODY_DISK. ---

def test_disk_budget_spent_answers_503_and_recovers(start):
    srv = start(env={"BODY_DISK": str(MiB), "SPILL_THRESHOLD": "65536"})
    holder = hold_upload(srv.port, 800_000, 1_000_000)
    try:
        assert harness.wait_until(lambda: harness.metric(srv, "clamrest_body_disk_bytes", 0) >= 800_000, 10), \
            srv.logs()[-2000:]
        r = harness.scan_chunked(srv, os.urandom(600_000))
        assert r.status_code == 503, (r.status_code, r.text)
        assert r.headers.get("Retry-After"), r.headers
        r = harness.scan_multipart(srv, {"file": ("f.bin", os.urandom(600_000))}, timeout=30)
        assert r.status_code == 503, (r.status_code, r.text)
        r = harness.scan_chunked(srv, harness.EICAR)          # small: in memory, no disk needed
        assert r.status_code == 200 and r.json()["malware"] is True, r.text
    finally:
        holder.close()
    assert harness.wait_until(lambda: harness.metric(srv, "clamrest_body_disk_bytes") == 0, 10)
    assert harness.metric(srv, 'clamrest_load_shed_total{protocol="http"}') >= 2
    r = harness.scan_chunked(srv, os.urandom(600_000))
    assert r.status_code == 200 and r.json()["malware"] is False, r.text
    warn = [o for o in harness.json_lines(harness.stderr_of(srv))[0] if "BODY_DISK" in o["message"]]
    assert warn, harness.stderr_of(srv)
    assert harness.tmp_leftovers(srv) == []


def test_body_disk_defaults_to_half_the_free_space(start, tmp_path):
    """A 4 MiB TMPDIR: BODY_DISK is 2 MiB, so a 3 MB upload (which would fit the disk) is 503."""
    with tmpfs(tmp_path / "small", "4m") as small:
        srv = start(env={"TMPDIR": str(small), "SPILL_THRESHOLD": "65536"})
        r = harness.scan_chunked(srv, os.urandom(1_500_000))
        assert r.status_code == 200 and r.json()["malware"] is False, r.text
        r = harness.scan_chunked(srv, os.urandom(3_000_000))
        assert r.status_code == 503, (r.status_code, r.text)
        srv.stop()
        assert used(small) == 0


@pytest.mark.parametrize("route", ["/v2/scan-chunked", "/v2/scan", "/scan"])
def test_spill_failure_is_500_json_not_400(start, tmp_path, route):
    """TMPDIR fills up under a 6 MB upload (BODY_DISK set above its size): 500 with the reason as
    JSON, errno in the log, nothing scanned, nothing left on the disk; the service goes on."""
    with tmpfs(tmp_path / "small", "4m") as small:
        srv = start(env={"TMPDIR": str(small), "BODY_DISK": str(64 * MiB),
                         "SPILL_THRESHOLD": "65536"})
        big = os.urandom(6_000_000)
        if route == "/v2/scan-chunked":
            r = harness.scan_chunked(srv, big)
        else:
            r = harness.scan_multipart(srv, {"file": ("f.bin", big)}, route=route, timeout=30)
        assert r.status_code == 500, (r.status_code, r.text[:300])
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        assert "No space left on device" in r.json()["error"], r.text
        assert harness.metric(srv, 'clamrest_scans_total{protocol="http",verdict="clean"}') == 0
        assert harness.metric(srv, 'clamrest_store_failures_total{protocol="http"}') == 1
        errors = [o for o in harness.json_lines(harness.stderr_of(srv))[0]
                  if "No space left on device" in o["message"] and "TMPDIR" in o["message"]]
        assert errors, harness.stderr_of(srv)
        assert harness.wait_until(lambda: used(small) == 0, 5), used(small)
        r = harness.scan_chunked(srv, os.urandom(500_000))
        assert r.status_code == 200 and r.json()["malware"] is False, r.text
        srv.stop()


# --- Item 4: parts a strict reader would skip are counted, or the request is refused. ---

BOUNDARY = "b0undary4"


def part(headers, content):
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"


def multipart_raw(srv, body, route="/v2/scan"):
    return requests.post(srv.url + route, data=body + f"--{BOUNDARY}--\r\n".encode(),
                         headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                         auth=harness.auth(), timeout=30)


@pytest.fixture(scope="module")
def mp_server(start_module):
    """One server for the multipart tests."""
    return start_module()


CLEAN_FILE = part('Content-Disposition: form-data; name="file"; filename="clean.txt"', b"clean")
EICAR_B64 = base64.b64encode(harness.EICAR)


@pytest.mark.parametrize("body,why", [
    (CLEAN_FILE + part('Content-Disposition: attachment; filename="eicar.com"', harness.EICAR),
     "an attachment part with a filename is a second file"),
    (CLEAN_FILE + part('Content-Disposition: inline; filename="eicar.com"', harness.EICAR),
     "an inline part with a filename is a second file"),
    (part('Content-Disposition: form-data; name="file"; filename="e.txt"\r\n'
          'Content-Transfer-Encoding: base64', EICAR_B64),
     "base64 content would be scanned as text"),
    (part('Content-Disposition: form-data; name="file"; filename="e.txt"\r\n'
          'Content-Transfer-Encoding: quoted-printable', b"X5O=21P"),
     "quoted-printable content would be scanned as text"),
    (CLEAN_FILE + part("Content-Type: application/octet-stream", harness.EICAR),
     "a part without Content-Disposition"),
    (part('Content-Disposition: form-data; name="a";\r\n filename="eicar.com"', harness.EICAR),
     "a folded header (Werkzeug joins it: a file)"),
], ids=["attachment", "inline", "base64", "quoted-printable", "no-disposition", "folded"])
@pytest.mark.parametrize("route", ["/v2/scan", "/scan"])
def test_parts_never_skipped_unscanned(mp_server, body, why, route):
    srv = mp_server
    r = multipart_raw(srv, body, route)
    assert r.status_code == 400, f"{why}: {r.status_code} {r.text!r}"


def test_attachment_file_alone_is_scanned(mp_server):
    srv = mp_server
    r = multipart_raw(srv, part('Content-Disposition: attachment; filename="eicar.com"', harness.EICAR))
    assert r.status_code == 200 and r.json()["malware"] is True, r.text
    r = multipart_raw(srv, part('Content-Disposition: form-data; name="file"; filename="e"\r\n'
                                "Content-Transfer-Encoding: binary", harness.EICAR))
    assert r.status_code == 200 and r.json()["malware"] is True, r.text


# --- Item 10: client bytes that are not UTF-8 are escaped in the log. ---

def test_invalid_utf8_user_and_trace_id_give_json_lines(start):
    srv = start()
    bad_auth = b"Basic " + base64.b64encode(b"j\xf6rg\xff:nope")
    head = (b"POST /v2/scan-chunked HTTP/1.1\r\nHost: t\r\nAuthorization: " + bad_auth +
            b"\r\nX-B3-Traceid: tr\xff\xfe\xc3\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    raw = harness.raw_request(srv.port, head, timeout=5)
    assert harness.status_of(raw) == 401, raw[:200]
    good = (b"POST /v2/scan-chunked HTTP/1.1\r\nHost: t\r\nAuthorization: " +
            harness.basic().encode() + b"\r\nX-B3-Traceid: ok\xe9\r\nUser-Agent: ag\xe9nt\r\nConnection: close\r\n"
            b"Content-Length: " +
            str(len(harness.EICAR)).encode() + b"\r\n\r\n" + harness.EICAR)
    raw = harness.raw_request(srv.port, good, timeout=5)
    assert harness.status_of(raw) == 200, raw[:200]
    srv.stop()
    lines = []
    for name in ("stdout", "stderr"):
        for line in (srv.dir / name).read_bytes().splitlines():
            if line.startswith(b"{"):
                lines.append(json.loads(line.decode("utf-8")))   # strict: raises on bad UTF-8
    users = [o.get("labels.user") for o in lines if o.get("http.response.status_code") == 401]
    agents = [o.get("user_agent.original") for o in lines if "user_agent.original" in o]
    assert "j\ufffdrg\ufffd" in users, lines
    assert "ag\ufffdnt" in agents, lines
    # A trace id that is not hex is not taken: the requests get generated ids.
    ids = [o.get("http.request.id") for o in lines if "url.path" in o]
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), lines
