"""RELOAD_MODE=low-memory: the old engine is freed before the new one loads; meanwhile scans and
/check answer 503 with Retry-After, never a verdict without an engine; afterwards scans work."""
import os
import signal
import subprocess
import sys
import threading
import time

import requests

import harness

# Hash signatures added to the toy database so a load takes a measurable while (about 0.5 s here);
# the window of a reload is then wide enough for the scanning threads to land in it.
EXTRA_HASHES = 300_000


def slow_db(srv):
    subprocess.run([sys.executable, str(harness.ROOT / "bench" / "gen-large-db"), str(srv.db),
                    str(EXTRA_HASHES), "0"], check=True, stdout=subprocess.DEVNULL)


def reload_changed(srv, n):
    """Changes the database (a signature of its own) and reloads it: the n-th successful reload."""
    touch = srv.db / "touch.ndb"
    touch.write_text(f"Clamrest.Touch-{n}:0:*:636c616d72657374746f756368{n:02x}\n")
    # libclamav's cl_statchkdir compares whole-second mtimes: two writes within one second look
    # unchanged (SIGUSR2 only checks the folder). Give each write its own second.
    stamp = time.time() + 10 * n
    os.utime(touch, (stamp, stamp))
    srv.signal(signal.SIGUSR2)
    assert harness.wait_until(
        lambda: harness.metric(srv, 'clamrest_database_reloads_total{result="success"}') == n,
        60 * harness.TIME_FACTOR), srv.logs()


def test_low_memory_reload_answers_503_never_a_verdict(start):
    srv = start(env={"RELOAD_MODE": "low-memory", "DB_CHECK_INTERVAL": "0", "SCAN_THREADS": "2"})
    slow_db(srv)
    srv.signal(signal.SIGUSR2)      # loads the larger database (a reload, low-memory)
    assert harness.wait_until(
        lambda: harness.metric(srv, 'clamrest_database_reloads_total{result="success"}') == 1,
        60 * harness.TIME_FACTOR), srv.logs()
    stop = threading.Event()
    seen = {"verdict": 0, "busy": 0, "check503": 0}
    wrong = []

    def scanner(evil):
        s = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            body = harness.EICAR if evil else b"clean text %d %f" % (i, time.time())
            r = s.post(srv.url + "/v2/scan-chunked", data=body, auth=harness.auth(), timeout=30)
            if r.status_code == 503:
                if not r.headers.get("Retry-After", "").isdigit():
                    wrong.append(("503 without Retry-After", r.headers))
                seen["busy"] += 1
            elif r.status_code != 200 or r.json()["malware"] is not evil:
                wrong.append((r.status_code, r.text))
            else:
                seen["verdict"] += 1

    def checker():
        s = requests.Session()
        while not stop.is_set():
            if s.get(srv.url + "/check", timeout=10).status_code == 503:
                seen["check503"] += 1
            time.sleep(0.005)

    threads = [threading.Thread(target=scanner, args=(k % 2 == 0,)) for k in range(4)]
    threads.append(threading.Thread(target=checker))
    for t in threads:
        t.start()
    try:
        for n in (2, 3):
            time.sleep(0.3)
            reload_changed(srv, n)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert wrong == [], wrong[:5]
    assert seen["busy"] > 0 and seen["check503"] > 0, seen     # the window was seen...
    assert seen["verdict"] > 0, seen                            # ...and scans worked around it
    logs = srv.logs()
    assert "RELOAD_MODE=low-memory" in logs, logs
    # /check's 503 lines name the reload, not DB_WAIT's first wait (the database was loaded before).
    checks = [line for line in logs.splitlines() if '"url.path":"/check"' in line and " 503" in line]
    assert checks and all("reloading (RELOAD_MODE=low-memory)" in line for line in checks), checks[:3]
    # After the reload every scan is answered again.
    r = requests.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(), timeout=30)
    assert r.status_code == 200 and r.json()["malware"] is True, r.text
    assert requests.get(srv.url + "/check", timeout=5).status_code == 200


def test_concurrent_reload_never_refuses(start):
    srv = start(env={"DB_CHECK_INTERVAL": "0", "SCAN_THREADS": "2"})
    slow_db(srv)
    statuses = []
    stop = threading.Event()

    def checker():
        s = requests.Session()
        while not stop.is_set():
            statuses.append(s.get(srv.url + "/check", timeout=10).status_code)
            time.sleep(0.005)

    t = threading.Thread(target=checker)
    t.start()
    try:
        srv.signal(signal.SIGUSR2)
        assert harness.wait_until(
            lambda: harness.metric(srv, 'clamrest_database_reloads_total{result="success"}') == 1,
            60 * harness.TIME_FACTOR), srv.logs()
    finally:
        stop.set()
        t.join()
    assert statuses and set(statuses) == {200}, statuses


def test_reload_mode_rejects_unknown_value():
    srv = harness.Clamrest(env={"RELOAD_MODE": "lazy"}, wait=False)
    try:
        assert srv.proc.wait(10) == 2
        assert "RELOAD_MODE" in srv.logs()
    finally:
        srv.stop()
        srv.cleanup()


def test_start_listens_only_once_loaded(tmp_path):
    """The database loads before any thread exists (glibc then skips stdio's per-call locks, which
    made text databases load twice as slow): nothing listens until the engine is ready, so /check
    is never 503 during a start without DB_WAIT; the first answer is 200."""
    db = tmp_path / "db"
    harness.make_db(db)
    subprocess.run([sys.executable, str(harness.ROOT / "bench" / "gen-large-db"), str(db),
                    str(EXTRA_HASHES), "0"], check=True, stdout=subprocess.DEVNULL)
    srv = harness.Clamrest(env={"CLAMAV_DB_DIR": str(db)}, wait=False)
    statuses = []
    try:
        deadline = time.monotonic() + 60 * harness.TIME_FACTOR
        while time.monotonic() < deadline:
            try:
                code = requests.get(srv.url + "/check", timeout=5).status_code
            except requests.ConnectionError:
                assert srv.proc.poll() is None, srv.logs()
                time.sleep(0.01)
                continue
            statuses.append(code)
            if code == 200:
                break
        assert statuses and statuses[0] == 200, (statuses[:5], srv.logs())
    finally:
        srv.stop()
        srv.cleanup()
