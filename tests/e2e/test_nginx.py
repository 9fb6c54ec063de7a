"""test_nginx -- deploy/nginx/clamrest.conf, as shipped, balancing two real clamrest instances.

Debian's nginx runs on 127.0.0.1 from a temporary prefix. The shipped file is included unchanged
but for its upstream "server" lines, its "listen" lines and client_max_body_size (small, so the 413
page can be tested without a 1 GiB upload).
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests

import harness

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONF = harness.ROOT / "deploy" / "nginx" / "clamrest.conf"
TEST_BODY_LIMIT = "4m"

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (make deps)")


def render(upstreams, port, body_limit=TEST_BODY_LIMIT):
    """The shipped config with the test's upstreams, listen address and body limit."""
    text = CONF.read_text()
    out, in_upstream, servers_done = [], False, False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("upstream clamrest"):
            in_upstream = True
        elif in_upstream and s == "}":
            in_upstream = False
        if in_upstream and re.match(r"server\s+\S+:\d+", s):
            if not servers_done:
                params = s.rstrip(";").split()[2:]
                for u in upstreams:
                    out.append("    server " + " ".join([u, *params]) + ";")
                servers_done = True
            continue
        if re.match(r"listen\s+\[::\]", s):
            continue
        if re.match(r"listen\s+\d+;", s):
            out.append(f"    listen 127.0.0.1:{port};")
            continue
        if s.startswith("client_max_body_size"):
            out.append(f"    client_max_body_size {body_limit};")
            continue
        out.append(line)
    assert servers_done, "no upstream server lines found in " + str(CONF)
    return "\n".join(out) + "\n"


class Nginx:
    def __init__(self, upstreams):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-nginx-"))
        self.port = harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.dir / "clamrest.conf").write_text(render(upstreams, self.port))
        temps = "\n".join(f"    {k}_temp_path {self.dir}/{k};"
                          for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(
            f"{user}worker_processes 2;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            f"    access_log {self.dir}/access.log;\n"
            f"{temps}\n"
            f"    include {self.dir}/clamrest.conf;\n"
            "}\n")
        self.cmd = [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e",
                    str(self.dir / "error.log"), "-g",
                    f"daemon off; pid {self.dir}/nginx.pid; error_log {self.dir}/error.log info;"]
        test = subprocess.run(self.cmd + ["-t"], capture_output=True, text=True)
        assert test.returncode == 0, test.stderr + self.error_log()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not harness.wait_until(self._up, timeout=10):
            self.stop()
            raise RuntimeError("nginx did not start:\n" + self.error_log())

    def _up(self):
        assert self.proc.poll() is None, "nginx exited:\n" + self.error_log()
        try:
            requests.get(self.url + "/nginx-probe", timeout=1)
            return True
        except requests.RequestException:
            return False

    def error_log(self):
        p = self.dir / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def stack():
    """Two clamrest instances behind nginx: yields (nginx, [instance, instance])."""
    backends, proxy = [], None
    try:
        backends = [harness.Clamrest() for _ in range(2)]
        proxy = Nginx([f"127.0.0.1:{b.port}" for b in backends])
        yield proxy, backends
    finally:
        if proxy is not None:
            proxy.stop()
        logs = []
        for b in backends:  # every instance is stopped before any check can fail
            b.stop()
            logs.append(b.logs())
            b.cleanup()
        for log in logs:
            assert "runtime error" not in log and "AddressSanitizer" not in log, log


def scan(session, url, endpoint, payload, malware):
    """One scan through the balancer; returns None when the answer is right, else what went wrong."""
    try:
        if endpoint == "/v2/scan-chunked":
            # No empty piece: requests would send it as a (second) last chunk.
            pieces = [p for p in (payload[:1000], payload[1000:]) if p]
            r = session.post(url + endpoint, data=iter(pieces),
                             auth=harness.auth(), timeout=30)
        else:
            r = session.post(url + endpoint, files={"file": ("sample.bin", payload)},
                             auth=harness.auth(), timeout=30)
    except requests.RequestException as e:
        return f"{endpoint}: {e!r}"
    if r.status_code != 200:
        return f"{endpoint}: {r.status_code} {r.text[:200]!r}"
    if endpoint == "/scan":
        return None if r.text == ("NOTOK" if malware else "OK") else f"/scan: {r.text!r}"
    body = r.json()
    if body["malware"] is not malware or (body["reason"] is None) is malware:
        return f"{endpoint}: {body}"
    return None


def samples():
    clean = os.urandom(1500).replace(b"X5O", b"xxx")
    big_clean = os.urandom(1536 * 1024).replace(b"X5O", b"xxx")  # beyond client_body_buffer_size
    return [(harness.EICAR, True), (clean, False), (b"padding " * 300 + harness.EICAR, True),
            (big_clean, False)]


def test_shipped_config_passes_nginx_t():
    """nginx -t accepts the file as it ships (inside a minimal http block)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-nginx-t-"))
    try:
        temps = "\n".join(f"{k}_temp_path {d}/{k};" for k in ("client_body", "proxy", "fastcgi",
                                                               "uwsgi", "scgi"))
        (d / "nginx.conf").write_text(f"events {{}}\nhttp {{\n{temps}\ninclude {CONF};\n}}\n")
        r = subprocess.run([NGINX, "-t", "-p", str(d), "-c", str(d / "nginx.conf"), "-e",
                            str(d / "error.log"), "-g", f"pid {d}/pid; error_log {d}/error.log;"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_scans_and_errors_pass_through(stack):
    proxy, _ = stack
    s = requests.Session()
    r = s.get(proxy.url + "/check", timeout=5)
    assert (r.status_code, r.text) == (200, "Service OK")
    for payload, malware in samples():
        for endpoint in ("/v2/scan", "/v2/scan-chunked", "/scan"):
            assert scan(s, proxy.url, endpoint, payload, malware) is None
    # Content-Length uploads to the streamed endpoint too.
    r = s.post(proxy.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(), timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is True
    # clamrest's own errors reach the client unchanged and are not retried.
    r = s.post(proxy.url + "/v2/scan", files={"file": ("a", b"abc")}, timeout=10)
    assert r.status_code == 401 and r.text == "Unauthorized Access"
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Authentication Required"'
    r = s.get(proxy.url + "/v2/scan", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "POST, OPTIONS"
    r = s.post(proxy.url + "/v2/scan", data=b"not multipart", auth=harness.auth(), timeout=10)
    assert (r.status_code, r.text) == (400, "Provide a single file")
    r = s.get(proxy.url + "/nothing-here", timeout=5)
    assert r.status_code == 404


def test_big_streamed_upload(stack):
    """A chunked upload larger than client_body_buffer_size streams through; EICAR at its end."""
    proxy, _ = stack
    chunk = b"\0" * 65536

    def body():
        for _ in range(48):  # 3 MiB
            yield chunk
        yield harness.EICAR

    r = requests.post(proxy.url + "/v2/scan-chunked", data=body(), auth=harness.auth(), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["malware"] is True
    # nginx streamed it: it did not buffer the body to a file first (it does for /v2/scan).
    r = requests.post(proxy.url + "/v2/scan", files={"file": ("big", b"".join(body()))},
                      auth=harness.auth(), timeout=30)
    assert r.status_code == 200 and r.json()["malware"] is True
    buffered = [line for line in proxy.error_log().splitlines() if "buffered to a temporary file" in line]
    assert any('"POST /v2/scan HTTP' in line for line in buffered), proxy.error_log()[-2000:]
    assert not any("/v2/scan-chunked" in line for line in buffered), buffered


def test_too_large_is_refused_by_nginx_like_clamrest(stack):
    proxy, _ = stack
    r = requests.post(proxy.url + "/v2/scan", files={"file": ("big", b"\0" * (5 * 1024 * 1024))},
                      auth=harness.auth(), timeout=30)
    assert (r.status_code, r.text) == (413, "File Too Large")


def test_refused_big_upload_leaves_instances_in_rotation(stack):
    """A big upload with a wrong password must not take the instances out of rotation for others."""
    proxy, _ = stack
    big = b"\0" * (3 * 1024 * 1024)
    for _ in range(2):
        r = requests.post(proxy.url + "/v2/scan", files={"file": ("big", big)},
                          auth=("app1", "wrong"), timeout=30)
        assert r.status_code in (401, 502)
    assert scan(requests.Session(), proxy.url, "/v2/scan", harness.EICAR, True) is None


def test_refused_big_upload_gets_401_through_nginx(stack):
    proxy, _ = stack
    big = b"\0" * (3 * 1024 * 1024)
    for auth in (None, ("nobody", "x"), ("app1", "wrong")) * 2:
        r = requests.post(proxy.url + "/v2/scan", files={"file": ("big", big)}, auth=auth, timeout=30)
        assert (r.status_code, r.text) == (401, "Unauthorized Access")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_instance_stopped_mid_run_loses_no_scan(stack, sig):
    """Four clients scan in a loop; one instance goes away; every scan still gets its right verdict.

    /v2/scan-chunked is left out on purpose: nginx streams its body (proxy_request_buffering off)
    and so cannot send it again to another instance -- see deploy/nginx/clamrest.conf.
    """
    proxy, backends = stack
    stop = threading.Event()
    failures, done, lock = [], [0, 0], threading.Lock()  # done: before, after the signal
    signalled = threading.Event()
    cases = samples()

    def client(n):
        s = requests.Session()
        i = n
        while not stop.is_set():
            payload, malware = cases[i % len(cases)]
            endpoint = ("/v2/scan", "/scan")[(i // len(cases)) % 2]
            err = scan(s, proxy.url, endpoint, payload, malware)
            with lock:
                if err:
                    failures.append(err)
                done[1 if signalled.is_set() else 0] += 1
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    backends[0].signal(sig)
    signalled.set()
    backends[0].proc.wait(30)
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join(60)
    print("scans before/after the signal:", done, "retried:", proxy.error_log().count("upstream:"))
    assert not failures, f"{len(failures)} failed scans, e.g. {failures[:5]}\n{proxy.error_log()[-3000:]}"
    least = 2 if harness.TIME_FACTOR > 1 else 20  # under valgrind scans are ~50x slower
    assert done[0] > least and done[1] > least, done
    assert backends[1].proc.poll() is None
    if sig == signal.SIGTERM:
        assert backends[0].proc.returncode == 0, backends[0].logs()


def test_client_address_and_request_id_through_nginx():
    """The shipped config appends the peer to X-Forwarded-For and passes X-Request-Id both ways:
    behind it, with TRUSTED_PROXIES naming nginx, the access line has the client's address (here the
    test's own 127.0.0.1 is trusted too, so the walk goes on to the address the test wrote)."""
    backend = harness.Clamrest(env={"TRUSTED_PROXIES": "127.0.0.1"})
    proxy = None
    try:
        proxy = Nginx([f"127.0.0.1:{backend.port}"])
        r = requests.post(proxy.url + "/v2/scan-chunked", data=b"clean", auth=harness.auth(),
                          headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "via-nginx-1"},
                          timeout=10)
        assert r.status_code == 200 and r.headers.get("X-Request-Id") == "via-nginx-1", r.headers

        def line():
            objs, _ = harness.json_lines(harness.stdout_of(backend))
            return [o for o in objs if o.get("http.request.id") == "via-nginx-1" and "url.path" in o]
        assert harness.wait_until(line, 10), backend.logs()
        assert line()[0]["source.ip"] == "203.0.113.9", line()
    finally:
        if proxy is not None:
            proxy.stop()
        backend.stop()
        backend.cleanup()
