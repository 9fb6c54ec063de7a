"""test_icap_squid -- Debian's Squid with clamrest as its ICAP service (RESPMOD for downloads, REQMOD for
uploads) in front of a local nginx, all three on free ports of 127.0.0.1 with their own folders:
downloading EICAR through the proxy is blocked with our page, a clean file passes byte-identical, a POST
of EICAR is blocked, gzip-encoded EICAR is blocked (issue 25)."""
import gzip
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile

import pytest
import requests

import harness
from icapc import EICAR

SQUID = shutil.which("squid") or "/usr/sbin/squid"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = [
    pytest.mark.client_side,        # Squid's ICAP requests are test_icap.py's and c-icap-client's kinds
    pytest.mark.skipif(not os.path.exists(SQUID), reason="squid is not installed (make deps)"),
    pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (make deps)"),
]


class Origin:
    """nginx serving the test files: /eicar.com, /clean.bin, /gz/eicar (gzip-encoded), POST /upload."""

    def __init__(self, root):
        self.dir = root / "nginx"
        (self.dir / "www" / "gz").mkdir(parents=True)
        (self.dir / "www" / "eicar.com").write_bytes(EICAR)
        self.clean = os.urandom(60000)
        (self.dir / "www" / "clean.bin").write_bytes(self.clean)
        self.big = os.urandom(3 << 20)
        (self.dir / "www" / "big.bin").write_bytes(self.big)
        (self.dir / "www" / "big-paced.bin").write_bytes(self.big)
        (self.dir / "www" / "gz" / "eicar").write_bytes(gzip.compress(b"padding\n" * 100 + EICAR))
        self.port = harness.free_port()
        temps = "\n".join(f"    {k}_temp_path {self.dir}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\nevents {{ worker_connections 64; }}\nhttp {{\n"
            f"    access_log {self.dir}/access.log;\n{temps}\n"
            "    default_type application/octet-stream;\n"
            f"    server {{\n        listen 127.0.0.1:{self.port};\n        root {self.dir}/www;\n"
            "        client_max_body_size 100m;\n"
            "        location /gz/ { add_header Content-Encoding gzip; }\n"
            "        location = /big-paced.bin { limit_rate 4m; }\n"
            "        location = /upload { client_body_buffer_size 1m; return 200 \"stored\\n\"; }\n"
            "    }\n}\n")
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-e", str(self.dir / "error.log"),
             "-g", f"daemon off; pid {self.dir}/nginx.pid;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        assert harness.wait_until(self._up, timeout=10), (self.dir / "error.log").read_text()

    def _up(self):
        try:
            return requests.get(self.url + "/eicar.com", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(10)


class Squid:
    """Squid on a free port, RESPMOD and REQMOD to clamrest's ICAP port, nothing cached."""

    def __init__(self, root, icap_port):
        self.dir = root / "squid"
        self.dir.mkdir()
        os.chmod(root, 0o755)
        os.chmod(self.dir, 0o777)      # squid drops to the user proxy: its logs and pid go here
        self.port = harness.free_port()
        user = "cache_effective_user proxy\n" if os.geteuid() == 0 else ""
        (self.dir / "squid.conf").write_text(
            f"http_port 127.0.0.1:{self.port}\n{user}"
            f"pid_filename {self.dir}/squid.pid\ncache_log {self.dir}/cache.log\n"
            f"access_log stdio:{self.dir}/access.log\ncoredump_dir {self.dir}\n"
            "cache deny all\ncache_mem 8 MB\nshutdown_lifetime 1 seconds\npinger_enable off\n"
            "netdb_filename none\nlogfile_rotate 0\n"
            "http_access allow localhost\nhttp_access deny all\n"
            "icap_enable on\nicap_send_client_ip on\nicap_preview_enable on\nicap_preview_size 1024\n"
            f"icap_service clamrest_resp respmod_precache icap://127.0.0.1:{icap_port}/avscan bypass=0\n"
            f"icap_service clamrest_req reqmod_precache icap://127.0.0.1:{icap_port}/squidclamav bypass=0\n"
            "adaptation_access clamrest_resp allow all\nadaptation_access clamrest_req allow all\n")
        check = subprocess.run([SQUID, "-k", "parse", "-f", str(self.dir / "squid.conf")], capture_output=True,
                               text=True)
        if check.returncode != 0:
            pytest.skip("squid refuses the test configuration: " + check.stderr[-500:])
        self.proc = subprocess.Popen([SQUID, "-N", "-f", str(self.dir / "squid.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.proxies = {"http": f"http://127.0.0.1:{self.port}"}
        if not harness.wait_until(self._up, timeout=30):
            log = self.log()
            self.stop()
            pytest.skip("squid does not run as this user here: " + log[-800:])

    def _up(self):
        if self.proc.poll() is not None:
            return False
        try:
            requests.get("http://127.0.0.1:1/", proxies=self.proxies, timeout=1)
            return True
        except requests.RequestException as e:
            return "ProxyError" not in type(e).__name__ and "Connection refused" not in str(e)

    def log(self):
        p = self.dir / "cache.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def stack(start_module):
    root = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-squid-"))
    icap_port = harness.free_port()
    srv = start_module(env={"ICAP_PORT": str(icap_port)})
    origin = Origin(root)
    squid = None
    try:
        squid = Squid(root, icap_port)
        yield squid, origin, srv
    finally:
        if squid is not None:
            squid.stop()
        origin.stop()
        shutil.rmtree(root, ignore_errors=True)


def get(squid, url, **kw):
    return requests.get(url, proxies=squid.proxies, timeout=30, **kw)


def test_eicar_download_is_blocked_with_our_page(stack):
    squid, origin, srv = stack
    r = get(squid, origin.url + "/eicar.com")
    assert r.status_code == 403, (r.status_code, r.text[:500], squid.log()[-2000:])
    assert "This content was blocked" in r.text and "Eicar" in r.text
    assert r.headers.get("X-Infection-Found", "").startswith("Type=0; Resolution=2; Threat=Eicar")


def test_clean_download_is_byte_identical(stack):
    squid, origin, srv = stack
    r = get(squid, origin.url + "/clean.bin")
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.content == origin.clean


@pytest.mark.xfail(reason="Squid 5.7 (Debian 12) stalls a RESPMOD whose origin fills its 64 KiB virgin body pipe at "
                   "once (loopback): its read of the origin is not armed again (Squid bug 5352, fixed upstream in "
                   "2025). Debian's c-icap + virus_scan stalls the same on a 3.4 MB text file it scans (docs/ICAP.md)",
                   strict=False, raises=requests.exceptions.ReadTimeout)
def test_big_clean_download_is_byte_identical(stack):
    squid, origin, srv = stack
    r = requests.get(origin.url + "/big.bin", proxies=squid.proxies, timeout=4)   # ~0.1 s when it passes
    assert r.status_code == 200 and r.content == origin.big


def test_big_clean_download_from_a_paced_origin_is_byte_identical(stack):
    """3 MiB sent by the origin at 4 MB/s (a network, not loopback): Squid streams it through
    clamrest's RESPMOD (preview, 100 Continue, the rest, the verdict, the echo) and the client gets
    every byte."""
    squid, origin, srv = stack
    r = requests.get(origin.url + "/big-paced.bin", proxies=squid.proxies, timeout=60)
    assert r.status_code == 200, (r.status_code, r.text[:300], squid.log()[-2000:])
    assert r.content == origin.big


def test_eicar_upload_is_blocked(stack):
    squid, origin, srv = stack
    r = requests.post(origin.url + "/upload", data=b"form-data-ish\n" + EICAR, proxies=squid.proxies, timeout=30)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert "This content was blocked" in r.text
    r = requests.post(origin.url + "/upload", data=os.urandom(200000), proxies=squid.proxies, timeout=30)
    assert r.status_code == 200 and r.text == "stored\n"


def test_gzip_encoded_eicar_is_blocked(stack):
    squid, origin, srv = stack
    r = get(squid, origin.url + "/gz/eicar", headers={"Accept-Encoding": "gzip"}, stream=True)
    raw = r.raw.read()
    assert r.status_code == 403, (r.status_code, raw[:300])
    assert b"This content was blocked" in raw


def test_client_address_in_the_access_line(stack):
    squid, origin, srv = stack
    get(squid, origin.url + "/eicar.com")
    assert harness.wait_until(lambda: '"client.ip":"127.0.0.1"' in srv.logs(), timeout=5), srv.logs()[-2000:]
