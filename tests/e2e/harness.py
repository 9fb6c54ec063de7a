"""harness -- starts the real clamrest binary (and a loopback dnsmasq) for end-to-end tests.

Every service runs on 127.0.0.1 on a free port and is stopped by the test that started it.
"""
import atexit
import base64
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLAMREST_BIN", str(ROOT / "build" / "clamrest"))
DEMO_PASSWORD = "letmein"
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
TXT_NAME = "current.cvd.clamrest.test"


def demo_users():
    """APPLICATION_USERS of scripts/demo.env (app1 / letmein)."""
    for line in (ROOT / "scripts" / "demo.env").read_text().splitlines():
        if line.startswith("APPLICATION_USERS="):
            return line.split("=", 1)[1].strip("'")
    raise RuntimeError("no APPLICATION_USERS in scripts/demo.env")


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_db(path, version=27000):
    """A signature database (daily.cud at the given version) in path, via scripts/make-testdb."""
    subprocess.run(["sh", str(ROOT / "scripts" / "make-testdb"), str(path), str(version)], check=True)
    return path


def wait_until(pred, timeout=20.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


class Dnsmasq:
    """dnsmasq on 127.0.0.1:<free udp port> answering the ClamAV version TXT record."""

    def __init__(self, version, name=TXT_NAME, ttl=60):
        self.dir = tempfile.mkdtemp(prefix="clamrest-dns-")
        txt = f"0.103.1:59:{version}:1616707740:0:63:49191:333"
        # dnsmasq listens on UDP and TCP: a port free for UDP may be taken on the TCP side by
        # another test's server (or taken again between free_port and dnsmasq's bind), and then
        # dnsmasq exits at once. A new port, up to five times (a CI run lost a module so).
        for _ in range(5):
            self.port = free_port(socket.SOCK_DGRAM)
            self.proc = subprocess.Popen(
                ["/usr/sbin/dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                 f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                 f"--local-ttl={ttl}", f"--txt-record={name},{txt}",
                 f"--pid-file={self.dir}/pid"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Ready when it answers the record (a server that asks before that waits a whole
            # retry), or gone (its port was taken).
            wait_until(lambda: self.proc.poll() is not None or dns_ready(self, name, timeout=0.2),
                       timeout=10, step=0.05)
            if self.proc.poll() is None:
                break
        self.server = f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


_LIVE = set()


@atexit.register
def _kill_leftovers():
    """No server outlives the test run, whatever a test did."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Clamrest:
    """The real binary on a free port; env overrides the test defaults."""

    def __init__(self, env=None, db_version=27000, wait=True, args=()):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-e2e-"))
        self.tmpdir = self.dir / "tmp"
        self.tmpdir.mkdir()
        self.db = self.dir / "db"
        if db_version is not None:
            make_db(self.db, db_version)
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "APPLICATION_USERS": demo_users(),
            "CLAMAV_DB_DIR": str(self.db),
            "CLAMAV_TXT_URI": TXT_NAME,
            "CLAMAV_DNS_SERVER": "127.0.0.1:9",
            "TMPDIR": str(self.tmpdir),
            "SCAN_TMPDIR": str(self.tmpdir),
            "SCAN_THREADS": "2",
            "DB_CHECK_INTERVAL": "1",
            "LOGGING_LEVEL": "INFO",
        }
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "CLAMREST_REAL_BIN"):
            if var in os.environ:
                self.env[var] = os.environ[var]
        self.env.update(env or {})
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = open(self.dir / "stdout", "wb")
        self.err = open(self.dir / "stderr", "wb")
        self.proc = subprocess.Popen([BIN, *args], env=self.env, stdout=self.out, stderr=self.err)
        _LIVE.add(self.proc)
        if wait and not wait_until(self.ready):
            self.stop()
            raise RuntimeError("clamrest did not become ready:\n" + self.logs())

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"clamrest exited with {self.proc.returncode}:\n" + self.logs())
        try:
            return requests.get(self.url + "/check", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def logs(self):
        for f in (self.out, self.err):
            if not f.closed:
                f.flush()
        return ((self.dir / "stdout").read_text(errors="replace") +
                (self.dir / "stderr").read_text(errors="replace"))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """Stops the server; returns its exit code (a sanitizer report makes it non-zero)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _LIVE.discard(self.proc)
        self.out.close()
        self.err.close()
        return self.proc.returncode

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def auth(user="app1", password=DEMO_PASSWORD):
    return (user, password)


def basic(user="app1", password=DEMO_PASSWORD):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def read_answer(s, read_all=True):
    """What the server sends on s until it closes (or, read_all false, a whole head is in), and
    whether the socket's timeout ran out first. A reset ends the reading like a close."""
    chunks = []
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
            if not read_all and b"\r\n\r\n" in b"".join(chunks):
                break
    except socket.timeout:
        return b"".join(chunks), True
    except OSError:
        pass
    return b"".join(chunks), False


def raw_request(port, data, timeout=5.0, read_all=True):
    """Sends raw bytes, returns what the server answered before closing or the timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_answer(s, read_all)[0]


# --- Helpers of the endpoint tests (health, scan, auth, http, version, config, corpus). ---

def hash_password(password, rounds=1000):
    """An APPLICATION_USERS hash for password (passlib's pbkdf2_sha256; few rounds: fast tests)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # passlib imports crypt
        from passlib.hash import pbkdf2_sha256
    return pbkdf2_sha256.using(rounds=rounds).hash(password)


class HttpConn:
    """One raw keep-alive connection: send bytes, read whole responses (several may be pipelined)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _more(self):
        b = self.sock.recv(65536)
        if not b:
            raise ConnectionError(f"connection closed in the middle of a response: {self.buf[:200]!r}")
        self.buf += b

    def response(self, head_only=False):
        """(status, {lower-case header: value}, body) of the next response; None when the server
        closed (or reset) the connection before sending one."""
        try:
            while b"\r\n\r\n" not in self.buf:
                b = self.sock.recv(65536)
                if not b:
                    if self.buf:
                        raise ConnectionError(f"connection closed inside the headers: {self.buf!r}")
                    return None
                self.buf += b
        except ConnectionResetError:
            if self.buf:
                raise
            return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._more()
            body, self.buf = self.buf[:n], self.buf[n:]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._more()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                n = int(size_line.split(b";")[0], 16)
                if n == 0:
                    while b"\r\n" not in self.buf:  # no trailers expected
                        self._more()
                    self.buf = self.buf.split(b"\r\n", 1)[1]
                    break
                while len(self.buf) < n + 2:
                    self._more()
                body += self.buf[:n]
                self.buf = self.buf[n + 2:]
        else:
            body = self.buf
            while True:
                b = self.sock.recv(65536)
                if not b:
                    break
                body += b
            self.buf = b""
        return status, headers, body

    def closed_by_server(self, timeout=3.0):
        """True when the server closes (or resets) the connection within timeout with nothing more
        to read; False when it stays open; raises when it sends more bytes."""
        self.sock.settimeout(timeout)
        try:
            b = self.buf or self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if b:
            raise AssertionError(f"unexpected bytes after the answer: {b[:300]!r}")
        return True


def status_of(raw):
    """The status code of the first response in raw bytes, or None when there is none."""
    if not raw.startswith(b"HTTP/"):
        return None
    return int(raw.split(b"\r\n", 1)[0].split(b" ", 2)[1])


def json_lines(text):
    """The lines of text that are JSON objects (parsed), and those that are not."""
    import json
    objs, other = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        (objs if isinstance(o, dict) else other).append(o if isinstance(o, dict) else line)
    return objs, other


def stdout_of(srv):
    return (srv.dir / "stdout").read_text(errors="replace")


def stderr_of(srv):
    return (srv.dir / "stderr").read_text(errors="replace")


def tmp_leftovers(srv):
    """What srv left in its TMPDIR besides its own empty clamrest.<pid> folder (a list of paths)."""
    own = f"clamrest.{srv.proc.pid}"
    left = []
    for p in sorted(srv.tmpdir.rglob("*")):
        rel = p.relative_to(srv.tmpdir)
        if str(rel) == own and p.is_dir():
            continue
        left.append(str(rel))
    return left


# Timing bounds in tests are multiplied by this: the server under valgrind (CLAMREST_SLOW=1) is slow.
TIME_FACTOR = 20.0 if os.environ.get("CLAMREST_SLOW") else 1.0


def dns_ready(d, name=TXT_NAME, timeout=10.0):
    """Waits until the Dnsmasq d answers a TXT query for name (any answer); True when it does."""
    import struct
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack(">HH", 16, 1)

    def answered():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", d.port))
                return s.recv(4096)[:2] == b"\x42\x42"
            except OSError:
                return False

    return wait_until(answered, timeout)


def metric(srv, name, default=None):
    """The value of an unlabelled metric from srv's /metrics; default (or a failure) when absent."""
    text = requests.get(srv.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    if default is not None:
        return default
    raise AssertionError(f"{name} not in /metrics:\n{text}")


def metric_sum(srv, name, **labels):
    """The sum of the series of metric name (its exact sample name, e.g. clamrest_scans_total) from
    srv's /metrics whose labels include the given ones, e.g. metric_sum(srv, "clamrest_scans_total",
    protocol="icap"); fails when no series matches."""
    text = requests.get(srv.url + "/metrics", timeout=5).text
    total, found = 0.0, False
    for line in text.splitlines():
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if m is None or m.group(1) != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == str(v) for k, v in labels.items()):
            total += float(m.group(3))
            found = True
    if not found:
        raise AssertionError(f"no {name} {labels} in /metrics:\n{text}")
    return total


def servers_by_settings():
    """A module fixture's body (`yield from`): yields get(db=None, **env) -> a started server with
    those settings, one per distinct (db, env); at the end stops them all and fails when one exited
    badly or a sanitizer reported."""
    started = {}

    def get(db=None, **env):
        key = (db, tuple(sorted(env.items())))
        if key not in started:
            if db is not None:
                env = dict(env, CLAMAV_DB_DIR=str(db))
            started[key] = Clamrest(env=env)
        return started[key]

    yield get
    failures = []
    for srv in started.values():       # all told at once: under ASan each exit takes ~0.5 s
        if srv.proc.poll() is None:
            srv.proc.send_signal(signal.SIGTERM)
    for srv in started.values():
        rc = srv.stop()
        logs = srv.logs()
        srv.cleanup()
        if rc not in (0, None) or "runtime error" in logs or "AddressSanitizer" in logs:
            failures.append(logs)
    assert not failures, failures[0]


def rss(pid):
    """Resident memory of process pid, in bytes (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def instrumented(srv):
    """Why RSS says nothing about the allocator here (ASan's quarantine, valgrind), or None."""
    if os.environ.get("CLAMREST_SLOW"):
        return "the server runs under valgrind"
    with open(f"/proc/{srv.proc.pid}/maps") as f:
        if "libasan" in f.read():
            return "the server is built with AddressSanitizer, whose allocator keeps freed memory"
    return None


def post_retry(url, tries=20, pause=0.2, **kw):
    """POST with the demo credentials, retrying a 503 (scan queue full) up to `tries` times."""
    for _ in range(tries):
        r = requests.post(url, auth=auth(), timeout=300, **kw)
        if r.status_code != 503:
            return r
        time.sleep(pause)
    return r


# --- Sending scans with the demo credentials: one version each, shared by the test files ---

def scan_chunked(srv, data, timeout=30, **kw):
    """POST data to srv's /v2/scan-chunked: bytes go with a Content-Length, an iterator of pieces
    chunked (one chunk a piece)."""
    return requests.post(srv.url + "/v2/scan-chunked", data=data, auth=auth(), timeout=timeout, **kw)


def scan_multipart(srv, files, route="/v2/scan", timeout=60, **kw):
    """POST files (requests' files=, e.g. {"file": ("name", bytes)}) as multipart/form-data to route
    (/v2/scan, /scan, /v3/scan...)."""
    return requests.post(srv.url + route, files=files, auth=auth(), timeout=timeout, **kw)


def send_to(srv, how, data, name="sample.bin", piece=None, tries=20, pause=0.2):
    """The answer of one endpoint for one sample, a 503 retried as post_retry does: how is "v2"
    (/v2/scan), "chunked" (/v2/scan-chunked, chunked framing: the sample in one chunk, or in chunks
    of `piece` bytes), "v3" (/v3/scan) or "legacy" (/scan)."""
    if how == "v2":
        return post_retry(srv.url + "/v2/scan", tries, pause, files={"file": (name, data)})
    if how == "chunked":
        pieces = [data] if piece is None else [data[i:i + piece] for i in range(0, len(data), piece)]
        return post_retry(srv.url + "/v2/scan-chunked", tries, pause, data=iter(pieces))
    if how == "v3":
        return post_retry(srv.url + "/v3/scan", tries, pause, files=[("file", (name, data))])
    assert how == "legacy", how
    return post_retry(srv.url + "/scan", tries, pause, files={"file": (name, data)})


def library_file(srv):
    """The libclamav file the server runs (its clamrest_build_info metric)."""
    text = requests.get(srv.url + "/metrics", timeout=5).text
    m = re.search(r'clamrest_build_info\{[^}]*libclamav_file="([^"]*)"', text)
    assert m, text[:500]
    return m.group(1)


def runs_series(srv):
    """True when the server runs our patched libclamav (third_party/libclamav), not Debian's."""
    return not library_file(srv).startswith(("/usr/lib/", "/lib/"))
