"""driver.py -- runs the clamrest-against-clamd benchmark (bench/run-bench) and writes bench/results.md.

Both services run on 127.0.0.1 on free ports, with the same signature folder and a tmpfs temporary
folder when /dev/shm exists: first the small test database of scripts/make-testdb, then a large
synthetic one from bench/gen-large-db. clamrest is loaded by wrk (bench/wrk/*.lua), clamd by
build/bench/clamd-client over INSTREAM. Settings come from the environment (see bench/README.md).
"""
import datetime
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CLAMD = "/usr/sbin/clamd"
CLIENT = ROOT / "build" / "bench" / "clamd-client"
RAW = ROOT / "build" / "bench" / "raw-engine"
REAL_DB = ROOT / "build" / "bench" / "db-real"     # bench/gen-real-db output, kept between runs
MIX_MAX_FILE = 2 << 20                  # bytes: mix files stay below SPILL_THRESHOLD (in memory)
SAMPLE_SIZE = 5 << 20                   # bytes of the random payload
DB_VERSION = 27000                      # version of the small test database
READY_TIMEOUT = 300.0                   # seconds a service may take to load a database
POLL = 0.01                             # seconds between readiness probes
STOP_TIMEOUT = 30.0                     # seconds a service gets to exit after SIGTERM
WRK_TIMEOUT = "30s"                     # per request: a queued 5 MiB scan at c=64 waits long
ROW_SLACK = 120.0                       # seconds a load run may overrun its duration
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# Settings of clamrest a run may override from the environment; the rest are its defaults.
CLAMREST_PASSTHROUGH = ("SCAN_THREADS", "SCAN_QUEUE", "IO_THREADS", "SPILL_THRESHOLD",
                        "MAX_CONNECTIONS", "DB_CHECK_INTERVAL", "MEMBER_CACHE")

# Workloads: name shown, wrk script, clamd-client payload (None: no clamd row), and for the stamped
# rows the stamp mode and the text every answer must contain. Every body but EICAR carries a stamp
# with a nonce new per row and run, so no clean-file cache (libclamav's in clamd, clamrest's
# SCAN_CACHE) ever answers; EICAR is malware, which neither caches.
WORKLOADS = {
    "eicar-chunked": ("EICAR, /v2/scan-chunked", "eicar-chunked.lua", "eicar", None),
    "eicar-multipart": ("EICAR, /v2/scan multipart", "eicar-multipart.lua", "eicar", None),
    "clean": ("clean 100 B text, unique, /v2/scan-chunked", "stamped.lua", "clean",
              ("head", '"malware":false')),
    "mix": ("real files (mix), unique, /v2/scan-chunked", "stamped.lua", "mix",
            ("tail", '"malware":')),
    "random": ("5 MiB random, unique, /v2/scan-chunked", "stamped.lua", "random",
               ("head", '"malware":false')),
    "check": ("GET /check", "check.lua", None, None),
}
# v3 against v2 (issue 15): the same scan through each API, on one clamrest, interleaved round by
# round; the measure is server CPU per request. (label, wrk script, [(variant, BENCH_PATH)]).
V3_ROWS = [
    ("EICAR, one file, multipart", "v3-eicar-multipart.lua",
     [("v2", "/v2/scan"), ("v3", "/v3/scan"), ("v3 all_matches", "/v3/scan?all_matches=true")]),
    ("5 MiB random, one file, chunked", "v3-random-5mib.lua",
     [("v2", "/v2/scan-chunked"), ("v3", "/v3/scan-chunked"),
      ("v3 all_matches", "/v3/scan-chunked?all_matches=true")]),
]
V3_TARGET = 1.05        # v3 of one file (all_matches off) may cost at most 5% more CPU than v2
CLAMD_WORKLOADS = {
    "eicar": ("EICAR, INSTREAM", ["-x", "FOUND"]),
    "clean": ("clean text, INSTREAM", ["-x", "OK", "-v"]),
    "mix": ("real files, INSTREAM", ["-t"]),
    "random": ("5 MiB random, INSTREAM", ["-x", "OK", "-v"]),
}
# raw-engine rows: workload -> stamp mode (the same bodies, scanned in-process).
RAW_ROWS = {"eicar-chunked": "exact", "clean": "head", "mix": "tail", "random": "head"}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        v = lo - 1
    if not lo <= v <= hi:
        sys.exit(f"bench: {name}: '{raw}' is not a whole number from {lo} to {hi}")
    return v


def env_list(name, default):
    raw = os.environ.get(name, default)
    try:
        vals = [int(x) for x in raw.replace(",", " ").split()]
    except ValueError:
        vals = []
    if not vals or any(not 1 <= v <= 1000 for v in vals):
        sys.exit(f"bench: {name}: '{raw}' is not a list of concurrencies from 1 to 1000")
    return vals


class Settings:
    def __init__(self):
        self.db = os.environ.get("BENCH_DB", "toy")
        if self.db not in ("toy", "real"):
            sys.exit("bench: BENCH_DB: toy or real")
        real = self.db == "real"
        self.seconds = env_int("BENCH_TIME", 8 if real else 4, 1, 600)
        self.conc = env_list("BENCH_CONC", "1 4" if real else "1 4 64")
        self.large_conc = env_list("BENCH_LARGE_CONC", "1 4 64")
        self.large = env_int("BENCH_LARGE", 0, 0, 1) if not real else 0
        self.starts = env_int("BENCH_STARTS", 1 if real else 3, 1, 20)
        self.raw_seconds = env_int("BENCH_RAW_TIME", 8 if real else 3, 1, 600)
        self.hashes = env_int("BENCH_LARGE_HASHES", 1_000_000, 0, 100_000_000)
        self.bodies = env_int("BENCH_LARGE_BODIES", 50_000, 0, 10_000_000)
        self.clamd_threads = env_int("BENCH_CLAMD_THREADS", 64, 1, 1024)
        self.clamd_queue = env_int("BENCH_CLAMD_QUEUE", 4 * self.clamd_threads, 2, 100_000)
        self.clamrest = os.environ.get("CLAMREST_BIN", str(ROOT / "build" / "clamrest"))
        self.out = pathlib.Path(os.environ.get("BENCH_OUT", str(
            ROOT / "bench" / ("results-real.md" if real else "results.md"))))
        self.v3 = env_int("BENCH_V3", 1, 0, 2)     # 0: no v3 rows; 2: only them
        self.v3_rounds = env_int("BENCH_V3_ROUNDS", 3, 1, 50)
        self.v3_conc = env_int("BENCH_V3_CONC", 4, 1, 256)
        self.v3_scans = os.environ.get("BENCH_V3_SCANS", "eicar random").replace(",", " ").split()
        self.rows = os.environ.get("BENCH_ROWS", "").replace(",", " ").split()  # []: every row
        if any(r not in WORKLOADS for r in self.rows):
            sys.exit(f"bench: BENCH_ROWS: rows are {' '.join(WORKLOADS)}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def demo_users():
    for line in (ROOT / "scripts" / "demo.env").read_text().splitlines():
        if line.startswith("APPLICATION_USERS="):
            return line.split("=", 1)[1].strip("'")
    sys.exit("bench: no APPLICATION_USERS in scripts/demo.env")


class Service:
    """A server process of ours: started, probed until ready, measured, stopped."""

    def __init__(self, name, argv, env, logpath, probe):
        self.name = name
        self.logpath = logpath
        self.probe = probe
        self.logf = open(logpath, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, stdout=self.logf, stderr=subprocess.STDOUT)
        try:
            self.ready_s = self.wait_ready()
        except BaseException:
            self.stop()
            raise
        self.rss_kib = rss_kib(self.proc.pid)

    def wait_ready(self):
        end = self.t0 + READY_TIMEOUT
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.logpath}:\n{self.tail()}")
            if self.probe():
                return time.monotonic() - self.t0
            time.sleep(POLL)
        raise RuntimeError(f"{self.name} not ready after {READY_TIMEOUT:.0f} s:\n{self.tail()}")

    def alive(self):
        return self.proc.poll() is None

    def tail(self):
        self.logf.flush()
        return "\n".join(pathlib.Path(self.logpath).read_text(errors="replace").splitlines()[-15:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def http_check(port):
    """True once GET /check answers 200 (clamrest answers 503 while it loads)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /check HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def clamd_ping(port):
    """True once clamd answers PING with PONG (it listens only after the database is in)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"zPING\0")
            return s.recv(16).rstrip(b"\0\n") == b"PONG"
    except OSError:
        return False


def start_clamrest(cfg, work, db, tmp, tag):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "APPLICATION_USERS": demo_users(),
        "CLAMAV_DB_DIR": str(db),
        "CLAMAV_DNS_SERVER": "127.0.0.1:9",     # nothing answers: no lookups leave the machine
        "TMPDIR": str(tmp),
        "LOGGING_LEVEL": "WARNING",             # INFO writes a line per scan
    }
    for var in CLAMREST_PASSTHROUGH:
        if os.environ.get(var):
            env[var] = os.environ[var]
    svc = Service("clamrest", [cfg.clamrest], env, work / f"clamrest-{tag}.log",
                  lambda: http_check(port))
    svc.port = port
    return svc


def clamd_conf(cfg, work, db, tmp, port, tag):
    path = work / f"clamd-{tag}.conf"
    path.write_text(
        "# Written by bench/driver.py: clamd on loopback for the benchmark.\n"
        "Foreground yes\n"
        f"TCPSocket {port}\n"
        "TCPAddr 127.0.0.1\n"
        f"DatabaseDirectory {db}\n"
        f"TemporaryDirectory {tmp}\n"
        f"LogFile {work}/clamd-{tag}.clamd-log\n"
        f"PidFile {work}/clamd-{tag}.pid\n"
        f"MaxThreads {cfg.clamd_threads}\n"
        f"MaxQueue {cfg.clamd_queue}\n"
        "StreamMaxLength 64M\n"
        "SelfCheck 3600\n")
    return path


def start_clamd(cfg, work, db, tmp, tag):
    port = free_port()
    conf = clamd_conf(cfg, work, db, tmp, port, tag)
    svc = Service("clamd", [CLAMD, "-c", str(conf)], dict(os.environ), work / f"clamd-{tag}.out",
                  lambda: clamd_ping(port))
    svc.port = port
    return svc


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return None
    scale = {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[m.group(2)]
    return float(m.group(1)) * scale


def parse_bench_line(out):
    """The key=value line both clients print; None when there is none."""
    for line in out.splitlines():
        if line.startswith("BENCH "):
            return {k: float(v) for k, v in (kv.split("=", 1) for kv in line.split()[1:])}
    return None


def parse_wrk_text(out):
    """Falls back on wrk's own --latency report when the script printed no BENCH line."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if not (rps and p50 and p99):
        return None
    return {"rps": float(rps.group(1)), "p50_us": to_us(p50.group(1)),
            "p99_us": to_us(p99.group(1)), "failed": float(non2xx.group(1)) if non2xx else 0}


def run_load(argv, env, logpath, seconds):
    with open(logpath, "ab") as f:
        f.write(("$ " + " ".join(argv) + "\n").encode())
    try:
        out = subprocess.run(argv, env=env, capture_output=True, text=True,
                             timeout=seconds + ROW_SLACK)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    with open(logpath, "a") as f:
        f.write(out.stdout + out.stderr + "\n")
    return out.stdout, out.stderr.strip()


def checked(res, failed_key):
    res["bad"] = int(res.get(failed_key, 0))
    if res.get("requests", 1) == 0 or res.get("rps", 0) <= 0:
        return {"error": "no request answered correctly within the run (raise BENCH_TIME)"}
    return res


def row_seconds(cfg, kind):
    """A row's length: 5 MiB scans against the real-size database take seconds each, and a run
    counts only the requests that end within it."""
    return max(cfg.seconds, 20) if cfg.db == "real" and kind == "random" else cfg.seconds


def wrk_row(cfg, svc, work, kind, conc, files):
    _, script, _, stamped = WORKLOADS[kind]
    argv = [WRK, "-c", str(conc), "-t", str(min(conc, 2)), "-d", f"{row_seconds(cfg, kind)}s",
            "--latency",
            "--timeout", WRK_TIMEOUT, "-s", str(ROOT / "bench" / "wrk" / script),
            f"http://127.0.0.1:{svc.port}/"]
    env = dict(os.environ, BENCH_NONCE=secrets.token_hex(4))
    if stamped:
        peer = WORKLOADS[kind][2]
        env.update(BENCH_FILE=str(files[peer]) if peer != "mix" else "@" + str(files["mix"]),
                   BENCH_STAMP=stamped[0], BENCH_EXPECT=stamped[1])
    out, err = run_load(argv, env, work / "wrk.log", row_seconds(cfg, kind))
    res = (parse_bench_line(out) or parse_wrk_text(out)) if out else None
    if res is None:
        return {"error": f"wrk gave no result: {err or out}"[:300]}
    return checked(res, "failed")


def clamd_row(cfg, svc, work, kind, conc, files):
    _, opts = CLAMD_WORKLOADS[kind]
    payload = str(files[kind]) if kind != "mix" else "@" + str(files["mix"])
    argv = [str(CLIENT), "-p", str(svc.port), "-c", str(conc), "-d", str(row_seconds(cfg, kind)),
            "-f", payload, "-N", secrets.token_hex(4), *opts]
    out, err = run_load(argv, dict(os.environ), work / "clamd-client.log", row_seconds(cfg, kind))
    res = parse_bench_line(out) if out else None
    if res is None:
        return {"error": f"clamd-client gave no result: {err or out}"[:300]}
    return checked(res, "errors")


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_rows(cfg, svc, work, rowfn, kinds, concs, tag, results):
    for kind in kinds:
        for conc in concs:
            if not svc.alive():
                raise RuntimeError(f"{svc.name} died; see {svc.logpath}:\n{svc.tail()}")
            cpu0 = cpu_seconds(svc.proc.pid)
            res = rowfn(cfg, svc, work, kind, conc, FILES)
            # Server CPU per answer: steadier than req/s when the load generator, the server and
            # other users share the cores.
            if "error" not in res and res.get("requests"):
                res["cpu_us"] = (cpu_seconds(svc.proc.pid) - cpu0) * 1e6 / res["requests"]
            results[(tag, svc.name, kind, conc)] = res
            if "error" in res:
                log(f"{svc.name} {kind} c={conc}: FAILED: {res['error']}")
            else:
                log(f"{svc.name} {tag} {kind} c={conc}: {res['rps']:.1f} req/s, "
                    f"p50 {res['p50_us'] / 1000:.2f} ms, p99 {res['p99_us'] / 1000:.2f} ms"
                    + (f", {res['bad']} failed requests" if res["bad"] else ""))


FILES = {}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def measure_starts(cfg, start, tag):
    """Starts the service BENCH_STARTS times; the last one stays up for the load rows. The start
    time and RSS reported are the medians: one start on a shared machine is noise."""
    ready, rss = [], []
    for i in range(cfg.starts):
        svc = start()
        ready.append(svc.ready_s)
        rss.append(svc.rss_kib)
        log(f"{svc.name} ({tag}) ready in {svc.ready_s:.2f} s, RSS {svc.rss_kib / 1024:.1f} MiB")
        if i == cfg.starts - 1:
            return svc, {"ready_s": median(ready), "rss_kib": median(rss), "starts": ready}
        svc.stop()
    raise AssertionError("BENCH_STARTS is at least 1")


def bench_database(cfg, work, tmp, db, tag, concs, clamrest_kinds, results, facts):
    clamd_kinds = [k for k in CLAMD_WORKLOADS
                   if any(WORKLOADS[w][2] == k for w in clamrest_kinds)]
    svc, facts[(tag, "clamrest")] = measure_starts(
        cfg, lambda: start_clamrest(cfg, work, db, tmp, tag), tag)
    try:
        run_rows(cfg, svc, work, wrk_row, clamrest_kinds, concs, tag, results)
    finally:
        svc.stop()
    svc, facts[(tag, "clamd")] = measure_starts(
        cfg, lambda: start_clamd(cfg, work, db, tmp, tag), tag)
    try:
        run_rows(cfg, svc, work, clamd_row, clamd_kinds, concs, tag, results)
    finally:
        svc.stop()
    raw_rows(cfg, db, tag, results, facts)


def mix_files(work):
    """Real files of the kinds users upload, the same on every Debian machine with the bench's
    packages: ClamAV's test files (PE, packed PE, office, PDF, archives: detected with both DBs),
    PDFs and compressed changelogs from /usr/share/doc, ELF programs, Debian packages from the apt
    cache, a tar.gz made here. Each below MIX_MAX_FILE."""
    picks = []

    def take(paths, n):
        got = [p for p in sorted(paths) if p.is_file() and 0 < p.stat().st_size <= MIX_MAX_FILE]
        picks.extend(got[:n])

    # clam.tnef is left out: TNEF with bytes appended makes libclamav warn, which clamrest answers
    # with 500 (a warning during a scan is never clean), so the stamp would spoil that file.
    take([p for p in pathlib.Path("/usr/share/clamav-testfiles").glob("*")
          if p.suffix != ".tnef"], 60)
    take(pathlib.Path("/usr/share/doc").glob("*/*.pdf"), 5)
    take(pathlib.Path("/usr/share/doc").glob("*/changelog.Debian.gz"), 10)
    take(pathlib.Path("/usr/bin").glob("[a-m]*"), 10)
    take(pathlib.Path("/var/cache/apt/archives").glob("*.deb"), 10)
    tgz = work / "doc.tar.gz"
    subprocess.run(["tar", "-czf", str(tgz), "-C", "/usr/share/doc", "dpkg", "apt", "bash"],
                   check=False, stderr=subprocess.DEVNULL)
    take([tgz], 1)
    lst = work / "mix.list"
    lst.write_text("".join(f"{p}\n" for p in picks))
    MIX_INFO["files"] = len(picks)
    MIX_INFO["bytes"] = sum(p.stat().st_size for p in picks)
    return lst


MIX_INFO = {}


def raw_rows(cfg, db, tag, results, facts):
    """The engine alone (bench/raw-engine.c, clamrest's engine options) on the same bodies: its
    load time and RSS, and CPU per scan per row."""
    rows = [f"{k}={mode}:" + ("@" + str(FILES["mix"]) if k == "mix" else
                              str(FILES[WORKLOADS[k][2]])) for k, mode in RAW_ROWS.items()
            if not cfg.rows or k in cfg.rows]
    argv = ["nice", str(RAW), "-s", str(cfg.raw_seconds), "-N", secrets.token_hex(4), str(db), *rows]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=READY_TIMEOUT + 600)
    for line in out.stdout.splitlines():
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        if "load_s" in kv:
            facts[(tag, "raw")] = {"ready_s": float(kv["load_s"]), "rss_kib": int(kv["rss_kib"])}
        elif "row" in kv:
            results[(tag, "raw", kv["row"])] = {k: float(v) for k, v in kv.items() if k != "row"}
    log(f"raw engine ({tag}): {out.stdout.strip()} {out.stderr.strip()[:300]}")


def reload_rows(db, tag, facts):
    """Peak RSS and unavailable window of one reload (bench/reload-test), each service and mode."""
    for svc, mode in (("clamrest", "concurrent"), ("clamrest", "low-memory"), ("clamd", "concurrent")):
        out = subprocess.run(["nice", sys.executable, str(ROOT / "bench" / "reload-test"), svc,
                              str(db), mode], capture_output=True, text=True,
                             timeout=3 * READY_TIMEOUT)
        for line in out.stdout.splitlines():
            if line.startswith("REL "):
                kv = dict(x.split("=", 1) for x in line.split()[1:])
                facts[(tag, "reload", svc, mode)] = kv
                log(f"reload {svc} {mode}: {line}")
        if out.returncode != 0:
            log(f"reload-test {svc} {mode} failed: {out.stderr.strip()[:300]}")


def make_real_db():
    """bench/gen-real-db into build/bench/db-real, again only when the generator changed."""
    gen = ROOT / "bench" / "gen-real-db"
    digest = hashlib.sha256(gen.read_bytes()).hexdigest()
    stamp = REAL_DB / ".generator-sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return REAL_DB
    t0 = time.monotonic()
    shutil.rmtree(REAL_DB, ignore_errors=True)
    subprocess.run(["nice", sys.executable, str(gen), str(REAL_DB)], check=True,
                   stdout=subprocess.DEVNULL)
    stamp.write_text(digest)
    os.sync()
    log(f"real-size database written in {time.monotonic() - t0:.1f} s")
    return REAL_DB


def bench_v3(cfg, work, tmp, db, v3res):
    """v3 against v2 on one clamrest (test DB): each row's variants run one after the other, round
    after round, so a change in the machine's load falls on all of them alike; v3res gets the CPU
    per request of every run."""
    svc = start_clamrest(cfg, work, db, tmp, "v3")
    try:
        for label, script, variants in V3_ROWS:
            if script.split("-")[1] not in cfg.v3_scans:
                continue
            # Round 0 warms up (page cache, clock speed, the allocator) and is not counted: the
            # first 5 MiB runs cost up to 5 times the CPU of the later ones.
            for rnd in range(cfg.v3_rounds + 1):
                # Each round starts with another variant: a machine getting faster or slower over
                # the run does not always favour the same one.
                k = rnd % len(variants)
                for variant, path in variants[k:] + variants[:k]:
                    argv = [WRK, "-c", str(cfg.v3_conc), "-t", str(min(cfg.v3_conc, 2)), "-d",
                            f"{cfg.seconds}s", "--latency", "--timeout", WRK_TIMEOUT, "-s",
                            str(ROOT / "bench" / "wrk" / script), f"http://127.0.0.1:{svc.port}/"]
                    env = dict(os.environ, BENCH_FILE=str(FILES["random"]), BENCH_PATH=path)
                    cpu0 = cpu_seconds(svc.proc.pid)
                    out, err = run_load(argv, env, work / "wrk-v3.log", cfg.seconds)
                    res = (parse_bench_line(out) or parse_wrk_text(out)) if out else None
                    if res is None or not res.get("requests") or int(res.get("failed", 0)):
                        raise RuntimeError(f"v3 row {label} {variant}: {res or err}")
                    cpu = (cpu_seconds(svc.proc.pid) - cpu0) * 1e6 / res["requests"]
                    if rnd == 0:
                        continue
                    v3res.setdefault((label, variant), []).append(cpu)
                    log(f"v3 {label} {variant} round {rnd}: {res['rps']:.1f} req/s, "
                        f"server CPU {cpu:.1f} us/req")
    finally:
        svc.stop()


def make_payloads(work):
    FILES["eicar"] = work / "eicar.com"
    FILES["eicar"].write_bytes(EICAR)
    FILES["clean"] = work / "clean.txt"
    FILES["clean"].write_bytes(b"0123456789abcdef: a clean text file of a hundred bytes, "
                               b"unique per request by its first 16.\n")
    FILES["mix"] = mix_files(work)
    FILES["random"] = work / "random-5mib.bin"
    subprocess.run(["sh", str(ROOT / "scripts" / "make-sample-file"), str(FILES["random"]),
                    str(SAMPLE_SIZE)], check=True)


def make_large_db(cfg, work):
    db = work / "db-large"
    t0 = time.monotonic()
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen-large-db"), str(db),
                    str(cfg.hashes), str(cfg.bodies)], check=True, stdout=subprocess.DEVNULL)
    os.sync()       # its write-back would otherwise run during the first load
    log(f"large database: {cfg.hashes} hash + {cfg.bodies} body signatures, "
        f"written in {time.monotonic() - t0:.1f} s")
    return db


# --- the report -------------------------------------------------------------------------------

def cpu_model():
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def fmt_rate(r):
    if r is None:
        return "—"
    if "error" in r:
        return "failed: " + " ".join(r["error"].replace("|", "/").split())
    s = f"{r['rps']:,.0f} req/s" if r["rps"] >= 100 else f"{r['rps']:,.1f} req/s" if r["rps"] >= 1 else f"{r['rps']:.3f} req/s"
    s += f"; p50 {fmt_ms(r['p50_us'])}; p99 {fmt_ms(r['p99_us'])}"
    if "cpu_us" in r:
        s += f"; server CPU {fmt_cpu(r['cpu_us'])}/req"
    if r["bad"]:
        s += f"; **{r['bad']} failed**"
    return s


def fmt_cpu(us):
    return f"{us:.0f} µs" if us < 1000 else fmt_ms(us)


def fmt_ms(us):
    ms = us / 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:,.0f} ms"


def verdict(ok):
    return "**met**" if ok else "**not met**"


def ratio(a, b):
    if not a or not b or "error" in a or "error" in b or b["rps"] <= 0:
        return None
    return a["rps"] / b["rps"]


class Report:
    def __init__(self, cfg, results, facts, v3res=None):
        self.v3res = v3res or {}
        self.cfg = cfg
        self.results = results
        self.facts = facts
        self.rows = []
        self.targets = []

    def target(self, name, ok, detail):
        self.targets.append((name, ok, detail))
        return f"{name}: {verdict(ok)}" if ok is not None else f"{name}: not measured"

    def scan_rows(self, tag, concs):
        for kind, (label, _, peer, _) in WORKLOADS.items():
            raw = self.results.get((tag, "raw", "eicar-chunked" if peer == "eicar" else kind))
            for c in concs:
                a = self.results.get((tag, "clamrest", kind, c))
                if a is None:
                    continue
                b = self.results.get((tag, "clamd", peer, c)) if peer else None
                r = ratio(a, b)
                rawcell, per = "—", "—"
                if raw and raw.get("scans"):
                    rawcell = f"{fmt_cpu(raw['cpu_us'])}/scan"
                    if "cpu_us" in a and raw["cpu_us"] > 0:
                        per = f"{a['cpu_us'] / raw['cpu_us']:.2f}x"
                self.rows.append([tag, label, str(c), fmt_rate(a), fmt_rate(b),
                                  f"{r:.2f}x" if r else "—", rawcell, per,
                                  self.scan_target(tag, kind, c, a, r)])

    def scan_target(self, tag, kind, c, a, r):
        if tag != "test" or "error" in a:
            return ""
        ok_rps = a["bad"] == 0
        if kind == "eicar-chunked" and c == 4:
            return self.target("EICAR c=4 ≥ 4x clamd", r is not None and r >= 4 and ok_rps,
                               f"{r or 0:.2f}x")
        if kind.startswith("eicar") and c == 64:
            return self.target(f"p99 < 5 ms at c=64 ({kind})", a["p99_us"] < 5000 and ok_rps,
                               fmt_ms(a["p99_us"]))
        if kind == "random":
            return self.target(f"5 MiB c={c} ≥ 1.25x clamd", r is not None and r >= 1.25 and ok_rps,
                               f"{r or 0:.2f}x")
        if kind == "check" and c == 64:
            return self.target("GET /check ≥ 80,000 req/s at c=64", a["rps"] >= 80000 and ok_rps,
                               f"{a['rps']:,.0f} req/s")
        return ""

    def reload_rows(self, tag):
        cells = {}
        for svc, mode in (("clamrest", "concurrent"), ("clamrest", "low-memory"),
                          ("clamd", "concurrent")):
            f = self.facts.get((tag, "reload", svc, mode))
            if f:
                cells[(svc, mode)] = (f"{int(f['rss_peak_kib']) / 1024:,.0f} MiB peak "
                                      f"({int(f['rss_ready_kib']) / 1024:,.0f} ready); reload "
                                      f"{float(f['reload_s']):.1f} s; unavailable "
                                      f"{float(f['unavailable_s']):.1f} s")
        for mode in ("concurrent", "low-memory"):
            a = cells.get(("clamrest", mode))
            if a:
                self.rows.append([tag, f"reload, RELOAD_MODE={mode}: RSS, duration, /check not 200",
                                  "—", a, cells.get(("clamd", "concurrent"), "—")
                                  if mode == "concurrent" else "—", "—", "—", "—", ""])

    def fact_rows(self):
        for tag in ("test", "large", "real"):
            a, b = self.facts.get((tag, "clamrest")), self.facts.get((tag, "clamd"))
            raw = self.facts.get((tag, "raw"))
            if not a:
                continue
            what = f"start to ready: load + compile (median of {self.cfg.starts})"
            t = ""
            if tag == "large":
                t = self.target("start to ready, large DB < 2 s", a["ready_s"] < 2,
                                f"{a['ready_s']:.2f} s")
            self.rows.append([tag, what, "—", f"{a['ready_s']:.2f} s",
                              f"{b['ready_s']:.2f} s" if b else "—",
                              f"{a['ready_s'] / b['ready_s']:.2f}x" if b else "—",
                              f"{raw['ready_s']:.2f} s (load + compile)" if raw else "—", "—", t])
            what = "idle RSS after load" if tag == "test" else "RSS after load"
            what += f" (median of {self.cfg.starts})"
            t = ""
            if tag == "test":
                t = self.target("idle RSS, test DB < 20 MiB", a["rss_kib"] < 20 * 1024,
                                f"{a['rss_kib'] / 1024:.1f} MiB")
            self.rows.append([tag, what, "—", f"{a['rss_kib'] / 1024:.1f} MiB",
                              f"{b['rss_kib'] / 1024:.1f} MiB" if b else "—",
                              f"{a['rss_kib'] / b['rss_kib']:.2f}x" if b else "—",
                              f"{raw['rss_kib'] / 1024:.1f} MiB" if raw else "—", "—", t])

    def v3_lines(self):
        """The v3-against-v2 table: median server CPU per request, and v3's ratio to v2."""
        if not self.v3res:
            return []
        lines = ["", f"v3 against v2 (issue 15): median server CPU per request of "
                 f"{self.cfg.v3_rounds} interleaved rounds, c={self.cfg.v3_conc}, test DB",
                 "", "| Scan | v2 | v3 | v3 ÷ v2 | v3 all_matches | all_matches ÷ v2 | Target |",
                 "|---|---|---|---|---|---|---|"]
        for label, _, _ in V3_ROWS:
            v2, v3 = self.v3res.get((label, "v2")), self.v3res.get((label, "v3"))
            am = self.v3res.get((label, "v3 all_matches"))
            if not (v2 and v3 and am):
                continue
            v2, v3, am = median(v2), median(v3), median(am)
            t = self.target(f"v3 one file CPU ≤ {V3_TARGET:.2f}x v2 ({label})", v3 / v2 <= V3_TARGET,
                            f"{v3 / v2:.3f}x")
            lines.append(f"| {label} | {fmt_cpu(v2)} | {fmt_cpu(v3)} | {v3 / v2:.3f}x | "
                         f"{fmt_cpu(am)} | {am / v2:.3f}x | {t} |")
        return lines

    def markdown(self, header):
        v3 = self.v3_lines()
        self.fact_rows()
        self.reload_rows("real")
        self.scan_rows("test", self.cfg.conc)
        self.scan_rows("real", self.cfg.conc)
        if self.cfg.large:
            self.scan_rows("large", self.cfg.large_conc)
        head = ["DB", "Measure", "C", "clamrest", "clamd", "clamrest ÷ clamd",
                "raw libclamav (same options)", "clamrest CPU ÷ raw", "Target"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += v3
        met = sum(1 for t in self.targets if t[1])
        summary = [f"Targets met: {met} of {len(self.targets)}."] if self.targets else []
        summary += [f"- {n}: {verdict(ok)} ({d})" for n, ok, d in self.targets]
        return "\n".join(header + [""] + lines + [""] + summary) + "\n"


def report_header(cfg, started, load_before, load_after, elapsed):
    clamd_ver = subprocess.run([CLAMD, "--version"], capture_output=True, text=True).stdout.strip()
    tmpfs = "tmpfs (/dev/shm)" if pathlib.Path("/dev/shm").is_dir() else "disk"
    return [
        "# clamrest against clamd",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}; run took {elapsed:.0f} s",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores; load average {load_before} before, "
        f"{load_after} after (the machine is shared: other load skews every row)",
        f"- Command: `make {'bench-real' if cfg.db == 'real' else 'bench'}` "
        f"(BENCH_TIME={cfg.seconds} s per row, "
        f"BENCH_CONC=\"{' '.join(map(str, cfg.conc))}\", "
        f"BENCH_LARGE_CONC=\"{' '.join(map(str, cfg.large_conc))}\", BENCH_STARTS={cfg.starts})",
        f"- Engines: libclamav in clamrest and {clamd_ver}; temporary files on {tmpfs}",
        f"- clamrest: defaults (SCAN_THREADS = IO_THREADS = cores), LOGGING_LEVEL=WARNING; "
        f"load from wrk -c C -t min(C,2), keep-alive",
        f"- clamd: MaxThreads {cfg.clamd_threads} (default 10; raised so 64 sessions are served), "
        f"MaxQueue {cfg.clamd_queue}, StreamMaxLength 64M; load from build/bench/clamd-client: "
        f"C threads, one IDSESSION each, INSTREAM in 64 KiB chunks",
        ("- DB: real = bench/gen-real-db (7,550,000 signatures shaped like main+daily: .hdb .hsb "
         ".mdb .msb .ndb .ldb, see bench/README.md)" if cfg.db == "real" else
         "- DB: test = scripts/make-testdb (EICAR)" + (
             f"; large = bench/gen-large-db ({cfg.hashes:,} .hdb + {cfg.bodies:,} .ndb)"
             if cfg.large else "")),
        f"- Mix: {MIX_INFO.get('files', 0)} real files, {MIX_INFO.get('bytes', 0) / 1048576:.1f} MiB "
        "(clamav-testfiles, PDFs and changelogs from /usr/share/doc, ELF from /usr/bin, .debs "
        "from the apt cache, a tar.gz), sent in turn, a 16-byte stamp appended to each.",
        f"- Raw libclamav: build/bench/raw-engine (bench/raw-engine.c), the same bodies scanned "
        f"from memory in one thread for {cfg.raw_seconds} s per row; CPU per scan.",
        "- Every body but EICAR is unique: a stamp with a nonce new per row and run (first 16 "
        "bytes, or appended for the mix), so no clean-file cache answers. "
        "p50/p99 are per-request latencies; \"failed\" counts errors, non-200 answers and wrong "
        "verdicts, which are left out of req/s. Server CPU/req is the service's user + system CPU "
        "time during the row divided by the requests answered: the steadier number when clients, "
        "servers and other users share the cores.",
    ]


def loadavg():
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def main():
    cfg = Settings()
    for tool in (WRK, CLAMD, str(CLIENT), cfg.clamrest):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} is missing (make deps all, then bench/run-bench)")
    started = datetime.datetime.now().astimezone()
    t0 = time.monotonic()
    load_before = loadavg()
    work = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-bench."))
    shm = pathlib.Path("/dev/shm")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-bench.", dir=shm if shm.is_dir() else work))
    results, facts, v3res = {}, {}, {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        make_payloads(work)
        if cfg.db == "real":
            db = make_real_db()
            bench_database(cfg, work, tmp, db, "real", cfg.conc,
                           [w for w in ("eicar-chunked", "clean", "mix", "random")
                            if not cfg.rows or w in cfg.rows], results, facts)
            reload_rows(db, "real", facts)
        else:
            db = work / "db-test"
            subprocess.run(["sh", str(ROOT / "scripts" / "make-testdb"), str(db),
                            str(DB_VERSION)], check=True)
            if cfg.v3:
                bench_v3(cfg, work, tmp, db, v3res)
            if cfg.v3 != 2:
                bench_database(cfg, work, tmp, db, "test", cfg.conc, cfg.rows or list(WORKLOADS),
                               results, facts)
        if cfg.large and cfg.v3 != 2:
            db = make_large_db(cfg, work)
            bench_database(cfg, work, tmp, db, "large", cfg.large_conc,
                           ["eicar-chunked", "eicar-multipart", "random"], results, facts)
    except RuntimeError as e:
        log(str(e))
        keep = ROOT / "build" / "bench" / "failed-run"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(work, keep, ignore=shutil.ignore_patterns("db-*", "*.bin"))
        log(f"logs kept in {keep}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    header = report_header(cfg, started, load_before, loadavg(), time.monotonic() - t0)
    text = Report(cfg, results, facts, v3res).markdown(header)
    cfg.out.write_text(text)
    raw = ROOT / "build" / "bench" / "results.json"
    raw.write_text(json.dumps({"results": [dict(zip(("db", "service", "workload", "c"), k), **v)
                                           for k, v in results.items()],
                               "startup": [dict(zip(("db", "service"), k), **v)
                                           for k, v in facts.items()],
                               "v3": [{"scan": k[0], "variant": k[1], "cpu_us": v}
                                      for k, v in v3res.items()]}, indent=1))
    print(text)
    log(f"written to {cfg.out} (raw numbers in {raw})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
