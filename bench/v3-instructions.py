#!/usr/bin/python3
"""v3-instructions.py -- user-space instructions per request of the same EICAR multipart scan
through /v2/scan, /v3/scan and /v3/scan?all_matches=true, counted by valgrind's callgrind: exact,
where the CPU time of make bench's v3 rows moves 20% from round to round on a shared machine.
Kernel time (sockets, wakeups) is not counted. Usage: bench/v3-instructions.py [BIN [N]].
"""
import http.client, os, subprocess, sys, tempfile, time, base64, socket, re
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else ROOT + "/build/clamrest"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 500
paths = ["/v2/scan", "/v3/scan", "/v3/scan?all_matches=true"]
EICAR = open(ROOT + "/client-examples/eicar.txt", "rb").read()
users = [l.split("=", 1)[1].strip("'") for l in open(ROOT + "/scripts/demo.env").read().splitlines() if l.startswith("APPLICATION_USERS=")][0]
auth = "Basic " + base64.b64encode(b"app1:letmein").decode()
b = "----x"
body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"eicar.com\"\r\n\r\n").encode() + EICAR + f"\r\n--{b}--\r\n".encode()
def run(path, n):
    w = tempfile.mkdtemp()
    subprocess.run(["sh", ROOT + "/scripts/make-testdb", w + "/db", "27000"], check=True, capture_output=True)
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(PATH="/usr/bin:/bin", HOST="127.0.0.1", PORT=str(port), APPLICATION_USERS=users, CLAMAV_DB_DIR=w + "/db",
               CLAMAV_DNS_SERVER="127.0.0.1:9", TMPDIR="/dev/shm", LOGGING_LEVEL="WARNING", SCAN_THREADS="1", IO_THREADS="1")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={w}/cg", BIN], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(w + "/err", "w"))
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/check")
            if c.getresponse().status == 200: break
        except OSError: pass
        time.sleep(0.1)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        c.request("POST", path, body=body, headers={"Authorization": auth, "Content-Type": f"multipart/form-data; boundary={b}"})
        r = c.getresponse(); d = r.read(); assert r.status == 200 and b'"malware":true' in d, d
    p.terminate(); p.wait()
    m = re.search(r"summary: (\d+)", open(w + "/cg").read())
    subprocess.run(["rm", "-rf", w])
    return int(m.group(1))
base = run("/v2/scan", 1)
for path in paths:
    tot = run(path, N + 1)
    print(f"{path}: {(tot - base) / N:,.0f} instructions per request (callgrind, {N} requests)", flush=True)
