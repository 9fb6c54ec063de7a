"""Server CPU per request of two clamrest binaries, interleaved rounds in one run (the noise of a
shared machine cancels in the ratio): v2 multipart, v2 chunked and v3 chunked scans of 1 kB-200 kB
random bodies, the clean cache off, the test database.

  /usr/bin/python3 bench/compare-cpu.py OLD_BINARY NEW_BINARY
"""
import os, sys, time, random, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness, requests

BINS = {"old": sys.argv[1], "new": sys.argv[2]}
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

rng = random.Random(1)
files = [rng.randbytes(rng.choice([1000, 20000, 200000])) for _ in range(50)]
srvs = {}
for k, b in BINS.items():
    harness.BIN = b
    srvs[k] = harness.Clamrest(env={"SCAN_CACHE": "0"})
res = {k: [] for k in BINS}
N = 150
auth = harness.auth()
for rnd in range(4):
    for k in (("old", "new") if rnd % 2 == 0 else ("new", "old")):
        s = srvs[k]; sess = requests.Session()
        c0 = cpu(s.proc.pid)
        for i in range(N):
            d = files[i % len(files)]
            path = ["/v2/scan-chunked", "/v3/scan-chunked"][i % 2]
            r = sess.post(s.url + path, data=d, auth=auth, headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 200, (k, path, r.status_code, r.text)
            r = sess.post(s.url + "/v2/scan", files={"file": ("f", d)}, auth=auth)
            assert r.status_code == 200, (k, r.status_code, r.text)
        res[k].append((cpu(s.proc.pid) - c0) / (2 * N) * 1000)
for k in BINS:
    print(k, "ms CPU/request per round:", [round(x, 3) for x in res[k]], "median", round(statistics.median(res[k]), 3))
print("new/old", round(statistics.median(res["new"]) / statistics.median(res["old"]), 3))
for s in srvs.values():
    s.stop(); s.cleanup()
