"""Production features: /metrics in the Prometheus format, hash-password, native TLS."""
import subprocess
import time

import requests
from passlib.hash import pbkdf2_sha256
from prometheus_client.parser import text_string_to_metric_families

import harness


def families(srv):
    r = requests.get(srv.url + "/metrics", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample(fams, family, name=None, **labels):
    for s in fams[family].samples:
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no {family} {name} {labels}")


def test_metrics_parse_and_count(server):
    checks_before = sample(families(server), "clamrest_http_requests", route="/check", code="200")
    requests.get(server.url + "/check")
    requests.post(server.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth())
    requests.post(server.url + "/v2/scan-chunked", data=b"clean", auth=harness.auth())
    requests.post(server.url + "/v2/scan-chunked", data=b"x", auth=("app1", "wrong"))
    fams = families(server)
    for name in ("clamrest_http_requests", "clamrest_scans", "clamrest_scan_duration_seconds",
                 "clamrest_scanned_bytes", "clamrest_scans_queued", "clamrest_scans_running", "clamrest_scan_rate",
                 "clamrest_load_shed", "clamrest_auth_failures", "clamrest_database_version",
                 "clamrest_database_build_time_seconds", "clamrest_database_reloads",
                 "clamrest_uptime_seconds"):
        assert name in fams, (name, sorted(fams))
    assert fams["clamrest_scan_duration_seconds"].type == "histogram"
    assert sample(fams, "clamrest_http_requests", route="/check", code="200") == checks_before + 1
    assert sample(fams, "clamrest_http_requests", route="/metrics", code="200") >= 1
    assert sample(fams, "clamrest_http_requests", route="/v2/scan-chunked", code="200") == 2
    assert sample(fams, "clamrest_http_requests", route="/v2/scan-chunked", code="401") == 1
    assert sample(fams, "clamrest_scans", verdict="malware") == 1
    assert sample(fams, "clamrest_scans", verdict="clean") == 1
    assert sample(fams, "clamrest_scan_duration_seconds", "clamrest_scan_duration_seconds_count") == 2
    assert sample(fams, "clamrest_scanned_bytes") == len(harness.EICAR) + 5
    assert sample(fams, "clamrest_auth_failures") == 1
    assert sample(fams, "clamrest_database_version") == 27000
    assert sample(fams, "clamrest_database_build_time_seconds") > 1.7e9
    assert sample(fams, "clamrest_uptime_seconds") > 0


def test_hash_password_is_accepted_by_passlib_and_the_server(start):
    out = subprocess.run([harness.BIN, "hash-password"], input=b"s3cret pass\n",
                         capture_output=True, check=True, timeout=30).stdout.decode().strip()
    assert out.startswith("$pbkdf2-sha256$29000$"), out
    assert pbkdf2_sha256.verify("s3cret pass", out)
    assert not pbkdf2_sha256.verify("s3cret pas", out)
    srv = start(env={"APPLICATION_USERS": "ops::" + out})
    r = requests.post(srv.url + "/v2/scan-chunked", data=b"x", auth=("ops", "s3cret pass"))
    assert r.status_code == 200, r.text


def test_hash_password_refuses_an_empty_password():
    p = subprocess.run([harness.BIN, "hash-password"], input=b"\n", capture_output=True, timeout=30)
    assert p.returncode == 1 and p.stdout == b"", p


def make_cert(dirpath):
    key, cert = dirpath / "key.pem", dirpath / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls(start, tmp_path):
    cert, key = make_cert(tmp_path)
    srv = start(env={"TLS_CERT": str(cert), "TLS_KEY": str(key)}, wait=False)
    url = f"https://127.0.0.1:{srv.port}"

    def ready():
        p = subprocess.run(["curl", "-s", "--cacert", str(cert), url + "/check"], capture_output=True)
        return p.stdout == b"Service OK"

    assert harness.wait_until(ready, 20), srv.logs()
    p = subprocess.run(["curl", "-s", "--cacert", str(cert), "-u", "app1:" + harness.DEMO_PASSWORD,
                        "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                        url + "/v2/scan-chunked"], input=harness.EICAR, capture_output=True, check=True)
    assert b'"malware":true' in p.stdout, p
    # Plain HTTP on the TLS port is no answer; an unknown CA is refused by the client.
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url + "/check"],
                       capture_output=True)
    assert p.returncode != 0, p


def test_tls_needs_a_matching_pair(tmp_path):
    cert, _ = make_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, key2 = make_cert(other)
    p = subprocess.run([harness.BIN, "--port", str(harness.free_port()), "--host", "127.0.0.1",
                        "--tls-cert", str(cert), "--tls-key", str(key2), "--db-dir", "/nonexistent"],
                       capture_output=True, timeout=30)
    assert p.returncode == 2, p
    assert b"TLS" in p.stderr, p.stderr


def test_hash_password_prompts_without_echo_on_a_terminal():
    import os
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(harness.BIN, [harness.BIN, "hash-password"])

    def read_until(pred, timeout=10):
        got = b""
        end = time.monotonic() + timeout
        while not pred(got) and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                got += chunk
        return got

    try:
        seen = read_until(lambda b: b"Password: " in b)
        assert b"Password: " in seen, seen
        os.write(fd, b"TopSecret42\n")
        seen += read_until(lambda b: b"$pbkdf2-sha256$" in b and b.endswith(b"\n"))
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    assert b"TopSecret42" not in seen, seen
    line = [x for x in seen.split(b"\n") if x.strip().startswith(b"$pbkdf2-sha256$")]
    assert line and pbkdf2_sha256.verify("TopSecret42", line[0].strip().decode()), seen
