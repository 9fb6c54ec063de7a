"""Bursts are queued, not refused: a finished upload waits for a scan thread while it can still be
answered within SCAN_QUEUE_TIMEOUT and its body fits BODY_MEMORY/BODY_DISK; only beyond that is the
answer 503 with a Retry-After from the measured scan rate. Issue 10, item 8."""
import os
import threading
import time

import pytest
import requests

import harness

MiB = 1024 * 1024
BOUNDARY = "burstboundary7d1e"
BODY_MEMORY = 256 * MiB      # the default
# What the burst may add to the idle RSS besides BODY_MEMORY's bodies: libmicrohttpd's 64 KiB buffer
# per connection, the request and multipart state, libclamav's working memory for the two scans
# running, allocator slack. Measured: 300 x 2 MiB peaked 4.7 MiB over BODY_MEMORY (about 16 KiB a
# connection); bounded here at 128 KiB a connection.
SLACK_PER_CONN = 128 * 1024


def burst(srv, n, size, timeout=120):
    """n concurrent multipart uploads of size bytes to /v2/scan, each its own connection, all
    started at once (each body unique, so SCAN_CACHE answers none). Returns (statuses with
    Retry-After, seconds, peak RSS)."""
    blob = os.urandom(size)
    pid = srv.proc.pid
    results = [None] * n
    peak = [harness.rss(pid)]
    done = threading.Event()
    gate = threading.Barrier(n + 1)

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], harness.rss(pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.02)

    def one(i):
        pre = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"f{i}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        post = f"\r\n--{BOUNDARY}--\r\n".encode()
        head = (f"POST /v2/scan HTTP/1.1\r\nHost: t\r\nAuthorization: {harness.basic()}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {len(pre) + size + len(post)}\r\n\r\n").encode()
        try:
            with harness.HttpConn(srv.port, timeout=timeout) as c:
                gate.wait(timeout=60)
                c.send(head + pre + b"%015d|" % i)
                c.send(memoryview(blob)[16:])
                c.send(post)
                status, headers, body = c.response()
                results[i] = (status, headers.get("retry-after"), body[:80])
        except Exception as e:  # noqa: BLE001 -- reported with the rest
            results[i] = ("error", None, repr(e).encode())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    sampler = threading.Thread(target=sample)
    sampler.start()
    gate.wait(timeout=60)
    t0 = time.monotonic()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    done.set()
    sampler.join()
    return results, seconds, peak[0]


def check_burst(start, n, size):
    srv = start(env={"MAX_CONNECTIONS": "1000"})   # every other setting at its default
    # The client's password is checked once first, as any client that has worked with the service
    # before: a cold burst of one new password from one address meets AUTH_FAIL_BURST (429), the
    # brute-force guard, which is not what this test is about.
    assert requests.get(srv.url + "/check", timeout=5).status_code == 200
    r = requests.post(srv.url + "/v2/scan", files={"file": ("w", b"warm")}, auth=harness.auth(),
                      timeout=30)
    assert r.status_code == 200, r.text
    time.sleep(0.5)
    idle = harness.rss(srv.proc.pid)
    results, seconds, peak = burst(srv, n, size)
    statuses = {}
    for st, _, _ in results:
        statuses[st] = statuses.get(st, 0) + 1
    report = (f"{n} x {size / MiB:.0f} MiB: {statuses} in {seconds:.1f} s; RSS idle {idle / MiB:.1f} "
              f"MiB, peak {peak / MiB:.1f} MiB (+{(peak - idle) / MiB:.1f} MiB)")
    print(report)
    bad = [r for r in results if r[0] != 200]
    assert not bad, f"{report}; first refusals: {bad[:3]}"
    assert all(b'"malware":false' in r[2] for r in results), results[:3]
    assert harness.metric(srv, 'clamrest_load_shed_total{protocol="http"}') == 0, report
    why_not = harness.instrumented(srv)
    if why_not:
        pytest.skip(f"RSS bound not checked: {why_not} ({report})")
    assert peak - idle < BODY_MEMORY + n * SLACK_PER_CONN, report
    r = requests.post(srv.url + "/v2/scan", files={"file": ("e", harness.EICAR)}, auth=harness.auth(),
                      timeout=30)
    assert r.status_code == 200 and r.json()["malware"] is True


def test_burst_200_uploads_of_1_mib_all_answered(start):
    check_burst(start, 200, MiB)


def test_burst_300_uploads_of_2_mib_all_answered(start):
    check_burst(start, 300, 2 * MiB)


def scan_chunked(srv, data, timeout=120):
    t0 = time.monotonic()
    r = harness.scan_chunked(srv, data, timeout=timeout)
    return r, time.monotonic() - t0


def slow_body(start, seconds=3.0):
    """Bytes that take about `seconds` to scan, sized from a 64 MiB random sample scanned on a server
    of its own, and made of that sample repeated. How fast the engine scans depends on the library
    (speed patch 0505 made random bytes ~1.8x faster: a fixed 192 MiB then ended before a queued
    scan met SCAN_QUEUE_TIMEOUT), on the machine, and on the bytes: libclamav takes most random
    samples for UTF-16BE text and scans them once, about one in six for binary data and scans those
    twice (~2.7x the time): a second random sample could take the other path."""
    probe = start(env={"SCAN_CACHE": "0", "SPILL_THRESHOLD": "1048576"})
    data, took, before = os.urandom(64 * MiB), [], 0
    for _ in range(3):   # the fastest of three: one scan alone can meet another process's burst
        r, _ = scan_chunked(probe, data)
        assert r.status_code == 200, r.text
        total = harness.metric(probe, 'clamrest_scan_duration_seconds_sum{protocol="http"}')
        took.append(total - before)
        before = total
    size = min(int(64 * MiB * seconds / max(min(took), 0.02)), 960 * MiB)
    return data * (size // len(data)) + data[:size % len(data)]


@pytest.mark.timing
def test_deadline_that_cannot_be_met_sheds_with_retry_after(start):
    """One scan thread busy with a long scan. A scan queued behind it waits SCAN_QUEUE_TIMEOUT,
    then is answered 503 (its connection resumed, never left hanging). Once a scan's time is
    measured, a scan predicted to wait longer than SCAN_QUEUE_TIMEOUT is refused at once, with a
    Retry-After of the predicted wait. /check stays up; afterwards scans are answered again."""
    # SCAN_CACHE 0: the same big upload is scanned twice, and must be slow both times (the digest
    # is computed while it arrives, so a cache hit would answer it at once).
    srv = start(env={"SCAN_THREADS": "1", "SCAN_QUEUE_TIMEOUT": "1", "SPILL_THRESHOLD": "1048576",
                     "SCAN_CACHE": "0"})
    big = slow_body(start)
    slow = {}

    def run_slow(key):
        slow[key] = scan_chunked(srv, big)

    def running_one():
        return harness.metric(srv, "clamrest_scans_running") == 1

    # 1: no scan measured yet: the upload is queued, and taken back after SCAN_QUEUE_TIMEOUT.
    t = threading.Thread(target=run_slow, args=(1,))
    t.start()
    assert harness.wait_until(running_one, 60), srv.logs()
    r, waited = scan_chunked(srv, harness.EICAR, timeout=60)
    assert r.status_code == 503 and r.text == "Service Busy", (r.status_code, r.text)
    assert int(r.headers["Retry-After"]) >= 1, r.headers
    assert waited >= 0.9, waited
    assert harness.metric(srv, 'clamrest_load_shed_total{protocol="http"}') == 1
    assert requests.get(srv.url + "/check", timeout=2).status_code == 200
    t.join()
    (r1, _), scan_s = slow[1], harness.metric(srv, 'clamrest_scan_duration_seconds_sum{protocol="http"}')
    assert r1.status_code == 200 and r1.json()["malware"] is False, r1.text
    # One job measured: the rate is its inverse. The job holds the scan and what follows it in the
    # scan thread (the spilled body's file given back: 0.07-0.17 s for a few hundred MiB), so
    # 1 / rate is the scan's time and a little more, never less.
    job_s = 1 / harness.metric(srv, "clamrest_scan_rate")
    assert scan_s * 0.99 <= job_s <= scan_s * 1.1 + 0.3, (job_s, scan_s)
    if scan_s <= 1.5:
        pytest.skip(f"the long scan took {scan_s:.2f} s: too fast to predict a wait past 1 s")

    # 2: the measured rate predicts a wait of scan_s seconds for the next scan: refused at once.
    t = threading.Thread(target=run_slow, args=(2,))
    t.start()
    assert harness.wait_until(running_one, 60), srv.logs()
    r, waited = scan_chunked(srv, harness.EICAR, timeout=60)
    assert r.status_code == 503, (r.status_code, r.text)
    assert int(r.headers["Retry-After"]) >= int(scan_s), (r.headers, scan_s)
    assert waited < 0.9, waited
    assert harness.metric(srv, 'clamrest_load_shed_total{protocol="http"}') == 2
    t.join()
    assert slow[2][0].status_code == 200, slow[2][0].text

    # 3: idle again: scans are answered.
    r, _ = scan_chunked(srv, harness.EICAR)
    assert r.status_code == 200 and r.json()["malware"] is True, r.text
