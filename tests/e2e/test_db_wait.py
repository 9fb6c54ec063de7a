"""DB_WAIT: with it, clamrest starts without a signature database, answers 503 (and logs why), and
loads the first database to appear in CLAMAV_DB_DIR without a restart; without it, a missing or
empty folder still stops the start with exit code 2."""
import signal
import subprocess
import time

import pytest
import requests

import harness

LOAD_WITHIN = 15.0	# seconds after the database appears (the watcher looks every second)


def start_waiting(db_state, env=None):
    """clamrest with DB_WAIT=1 on a missing or an empty folder; returns once it listens."""
    srv = harness.Clamrest(env={"DB_WAIT": "1", "DB_CHECK_INTERVAL": "60", **(env or {})},
                           db_version=None, wait=False)
    if db_state == "empty":
        srv.db.mkdir()

    def listening():
        if srv.proc.poll() is not None:
            raise AssertionError(f"clamrest exited with {srv.proc.returncode}:\n{srv.logs()}")
        try:
            return requests.get(srv.url + "/check", timeout=1).status_code == 503
        except requests.RequestException:
            return False
    assert harness.wait_until(listening), srv.logs()
    return srv


def scan_eicar(srv):
    return harness.scan_multipart(srv, {"file": ("eicar.txt", harness.EICAR)}, timeout=10)


@pytest.mark.parametrize("db_state", ["missing", "empty"])
def test_db_wait_serves_503_then_loads_without_restart(db_state):
    srv = start_waiting(db_state)
    try:
        pid = srv.proc.pid
        time.sleep(1.5)		# the watcher has looked at the folder at least once
        r = requests.get(srv.url + "/check", timeout=5)
        assert r.status_code == 503, (r.status_code, r.text)
        assert scan_eicar(srv).status_code == 503
        version = requests.get(srv.url + "/check_version", timeout=5)
        assert "not loaded yet" in version.text, version.text
        logs = srv.logs()
        assert "no signature database yet" in logs and str(srv.db) in logs, logs
        assert "answer 503 until a signature database appears" in logs, logs

        harness.make_db(srv.db, 27042)
        t0 = time.monotonic()
        assert harness.wait_until(srv.ready, timeout=LOAD_WITHIN), srv.logs()
        print(f"ready {time.monotonic() - t0:.2f} s after the database appeared")
        r = scan_eicar(srv)
        assert r.status_code == 200 and r.json()["malware"] is True, r.text
        assert srv.proc.poll() is None and srv.proc.pid == pid	# the same process, no restart
        metrics = requests.get(srv.url + "/metrics", timeout=5).text
        assert "27042" in metrics, metrics
    finally:
        rc = srv.stop()
        srv.cleanup()
    assert rc == 0, rc


def test_db_wait_sigterm_while_waiting_exits_0():
    srv = start_waiting("empty")
    try:
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.proc.wait(10)
        took = time.monotonic() - t0
    finally:
        srv.stop()
        srv.cleanup()
    assert rc == 0 and took < 5, (rc, took)


def test_db_wait_sigusr2_looks_at_once():
    """A slow DB_CHECK_INTERVAL does not delay the first load: the folder is watched every second;
    SIGUSR2 while waiting is harmless."""
    srv = start_waiting("empty", env={"DB_CHECK_INTERVAL": "0"})
    try:
        srv.signal(signal.SIGUSR2)
        time.sleep(0.5)
        assert srv.proc.poll() is None
        harness.make_db(srv.db, 27043)
        assert harness.wait_until(srv.ready, timeout=LOAD_WITHIN), srv.logs()
    finally:
        assert srv.stop() == 0
        srv.cleanup()


@pytest.mark.parametrize("db_state", ["missing", "empty"])
def test_without_db_wait_no_database_exits_2(db_state):
    srv = harness.Clamrest(env={"DB_WAIT": "0"}, db_version=None, wait=False)
    if db_state == "empty":
        srv.db.mkdir()
    try:
        rc = srv.proc.wait(20)
    except subprocess.TimeoutExpired:
        srv.stop()
        raise
    finally:
        logs = srv.logs()
        srv.stop()
        srv.cleanup()
    assert rc == 2 and "CLAMAV_DB_DIR" in logs, (rc, logs)


@pytest.mark.parametrize("value", ["2", "yes", "-1"])
def test_db_wait_bad_value_exits_2(value):
    srv = harness.Clamrest(env={"DB_WAIT": value}, wait=False)
    try:
        rc = srv.proc.wait(20)
        logs = srv.logs()
    finally:
        srv.stop()
        srv.cleanup()
    assert rc == 2 and "DB_WAIT" in logs, (rc, logs)
