"""soak -- mixed load against the real binary for SOAK_TIME seconds (default 600).

Passes when no request got a wrong answer and the server's RSS at the end is within 10% of its RSS
after the first minute (or after a sixth of the run, for short runs). Run: make soak [SOAK_TIME=600].
"""
import os
import random
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "e2e"))
import harness  # noqa: E402

DURATION = float(os.environ.get("SOAK_TIME", "600"))
WARMUP = min(60.0, DURATION / 6)
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "6"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def one_request(s, url, rnd):
    """Sends one request of a random kind; returns None when the answer is right, else a reason."""
    kind = rnd.choice(["eicar", "clean", "big", "multipart", "legacy", "badauth", "check",
                       "version", "metrics"])
    if kind == "eicar":
        r = s.post(url + "/v2/scan-chunked", data=iter([harness.EICAR[:20], harness.EICAR[20:]]),
                   auth=harness.auth(), timeout=60)
        ok = r.status_code == 200 and r.json()["malware"] is True
    elif kind == "clean":
        r = s.post(url + "/v2/scan-chunked", data=b"clean %f" % rnd.random(), auth=harness.auth(),
                   timeout=60)
        ok = r.status_code == 200 and r.json()["malware"] is False
    elif kind == "big":
        body = os.urandom(16) + b"\0" * rnd.randint(1, 6 * 1024 * 1024)
        r = s.post(url + "/v2/scan-chunked", data=body, auth=harness.auth(), timeout=60)
        ok = r.status_code == 200 and r.json()["malware"] is False
    elif kind == "multipart":
        r = s.post(url + "/v2/scan", files={"file": ("e.txt", harness.EICAR)}, auth=harness.auth(),
                   timeout=60)
        ok = r.status_code == 200 and r.json()["malware"] is True
    elif kind == "legacy":
        r = s.post(url + "/scan", files={"file": ("c.txt", b"clean")}, auth=harness.auth(), timeout=60)
        ok = r.status_code == 200 and r.text == "OK"
    elif kind == "badauth":
        r = s.post(url + "/v2/scan-chunked", data=b"x", auth=("app1", "wrong%d" % rnd.randint(0, 9)),
                   timeout=60)
        ok = r.status_code == 401
    elif kind == "check":
        r = s.get(url + "/check", timeout=10)
        ok = r.status_code == 200 and r.text == "Service OK"
    elif kind == "version":
        r = s.get(url + "/check_version", timeout=10)
        ok = r.status_code == 500 and "error" in r.json()
    else:
        r = s.get(url + "/metrics", timeout=10)
        ok = r.status_code == 200 and "clamrest_uptime_seconds" in r.text
    return None if ok else f"{kind}: {r.status_code} {r.text[:200]}"


def main():
    srv = harness.Clamrest(env={"LOGGING_LEVEL": "WARNING", "SCAN_QUEUE": "256",
                                "SPILL_THRESHOLD": "2097152"})
    failures, counts = [], [0] * CLIENTS
    stop = threading.Event()

    def client(i):
        rnd = random.Random(i)
        s = requests.Session()
        while not stop.is_set():
            try:
                why = one_request(s, srv.url, rnd)
            except requests.RequestException as e:
                why = f"exception: {e}"
            if why:
                failures.append(why)
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        time.sleep(WARMUP)
        rss_warm = rss_kib(srv.proc.pid)
        time.sleep(max(0.0, DURATION - (time.monotonic() - t0)))
        rss_end = rss_kib(srv.proc.pid)
    finally:
        stop.set()
        for t in threads:
            t.join()
        rc = srv.stop()
    total = sum(counts)
    growth = (rss_end - rss_warm) / rss_warm
    print(f"soak: {DURATION:.0f} s, {CLIENTS} clients, {total} requests "
          f"({total / DURATION:.0f}/s), {len(failures)} failures, "
          f"RSS after {WARMUP:.0f} s {rss_warm} KiB, at the end {rss_end} KiB ({growth:+.1%}), "
          f"exit code {rc}")
    for f in failures[:20]:
        print("  failure:", f)
    ok = not failures and growth <= 0.10 and rc == 0
    if not ok:
        print(srv.logs()[-4000:])
    srv.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
