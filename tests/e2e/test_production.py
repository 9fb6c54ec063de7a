"""Production features: /metrics in the Prometheus format, hash-password, native TLS."""
import os
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
    assert sample(fams, "clamrest_scans", protocol="http", verdict="malware") == 1
    assert sample(fams, "clamrest_scans", protocol="http", verdict="clean") == 1
    assert sample(fams, "clamrest_scan_duration_seconds", "clamrest_scan_duration_seconds_count",
                  protocol="http") == 2
    assert sample(fams, "clamrest_scanned_bytes", protocol="http") == len(harness.EICAR) + 5
    # No ICAP here: its series are there, at zero.
    for verdict in ("clean", "malware", "limits_exceeded", "error"):
        assert sample(fams, "clamrest_scans", protocol="icap", verdict=verdict) == 0
    assert sample(fams, "clamrest_scan_duration_seconds", "clamrest_scan_duration_seconds_count",
                  protocol="icap") == 0
    assert sample(fams, "clamrest_scanned_bytes", protocol="icap") == 0
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
    db = harness.make_db(tmp_path / "db")    # the database loads first; the TLS check comes after
    p = subprocess.run([harness.BIN, "--port", str(harness.free_port()), "--host", "127.0.0.1",
                        "--tls-cert", str(cert), "--tls-key", str(key2), "--db-dir", str(db)],
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


def raw_metrics(srv):
    r = requests.get(srv.url + "/metrics", timeout=5)
    assert r.status_code == 200, r.text
    return r.text


def abort_upload(srv):
    """A scan upload whose client goes away before its body is whole."""
    import socket
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
              + __import__("base64").b64encode(f"app1:{harness.DEMO_PASSWORD}".encode())
              + b"\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
    time.sleep(0.3)
    s.close()


def test_metrics_issue13_families(server):
    """Request duration by route and status class, body sizes, build info, process_*, the database
    age, client aborts under code="aborted", scan buckets up to MAX_SCAN_TIME (120 s default)."""
    requests.get(server.url + "/check")
    requests.post(server.url + "/v2/scan-chunked", data=b"clean" * 1000, auth=harness.auth())
    requests.post(server.url + "/v2/scan-chunked", data=b"x", auth=("app1", "wrong"))
    abort_upload(server)
    assert harness.wait_until(lambda: 'code="aborted"' in raw_metrics(server), 10), raw_metrics(server)
    fams = families(server)
    dur = "clamrest_http_request_duration_seconds"
    assert fams[dur].type == "histogram"
    assert sample(fams, dur, dur + "_count", route="/check", status_class="2xx") >= 1
    assert sample(fams, dur, dur + "_count", route="/v2/scan-chunked", status_class="2xx") == 1
    assert sample(fams, dur, dur + "_count", route="/v2/scan-chunked", status_class="4xx") == 1
    assert sample(fams, dur, dur + "_count", route="/v2/scan-chunked", status_class="aborted") == 1
    # The aborted upload was held about 0.3 s before its client left.
    assert sample(fams, dur, dur + "_bucket", route="/v2/scan-chunked", status_class="aborted",
                  le="0.1") == 0
    assert sample(fams, "clamrest_http_requests", route="/v2/scan-chunked", code="aborted") == 1
    assert not any(s.labels.get("code") == "other" for s in fams["clamrest_http_requests"].samples)
    body = "clamrest_http_request_body_bytes"
    assert fams[body].type == "histogram"
    assert sample(fams, body, body + "_count") == 3
    assert sample(fams, body, body + "_sum") == 5000 + 1 + 1000
    assert sample(fams, body, body + "_bucket", le="1024") == 2
    assert sample(fams, body, body + "_bucket", le="16384") == 3
    info = [s for s in fams["clamrest_build_info"].samples]
    assert len(info) == 1 and info[0].value == 1, info
    assert info[0].labels["version"] == "1.0.0" and info[0].labels["libclamav"].startswith("1."), info
    # Both libraries say 1.4.6: the file tells the patched build from Debian's, as ldd resolves it.
    ldd = subprocess.run(["ldd", harness.BIN], capture_output=True, text=True, check=True).stdout
    lib = next(x for x in ldd.splitlines() if "libclamav.so" in x).split("=>")[1].split("(")[0].strip()
    assert os.path.realpath(info[0].labels["libclamav_file"]) == os.path.realpath(lib), (info, lib)
    labels = info[0].labels
    patched = labels["libclamav_patched"] == "true"
    assert labels["libclamav_patched"] in ("true", "false"), labels
    assert f"(libclamav {labels['libclamav']} from {labels['libclamav_file']}, " + \
        ("patched)" if patched else "Debian's, unpatched)") in server.logs()
    # The patched build is the one with scripts/build-libclamav's description next to it.
    assert patched == ("patch: " in (lambda f: open(f).read() if os.path.exists(f) else "")(
        os.path.join(os.path.dirname(labels["libclamav_file"]), "clamrest-libclamav.txt")))
    now = time.time()
    build = sample(fams, "clamrest_database_build_time_seconds")
    assert abs(sample(fams, "clamrest_database_age_seconds") - (now - build)) < 5
    assert sample(fams, "clamrest_database_folder_ok") == 1
    assert sample(fams, "clamrest_database_folder_unusable") == 0
    start = sample(fams, "process_start_time_seconds")
    assert now - 120 < start <= now + 1, (start, now)
    assert sample(fams, "process_cpu_seconds") > 0
    assert sample(fams, "process_resident_memory_bytes") > 1 << 20
    fds = sample(fams, "process_open_fds")
    assert 3 <= fds <= sample(fams, "process_max_fds")
    for protocol in ("http", "icap"):
        les = [s.labels["le"] for s in fams["clamrest_scan_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["protocol"] == protocol]
        assert les[-2:] == ["120", "+Inf"], (protocol, les)
        assert "10" in les and "0.0001" in les


def test_scan_buckets_follow_max_scan_time(start):
    srv = start(env={"MAX_SCAN_TIME": "300000"})
    fams = families(srv)
    for protocol in ("http", "icap"):
        les = [s.labels["le"] for s in fams["clamrest_scan_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["protocol"] == protocol]
        assert les[-4:] == ["100", "250", "300", "+Inf"], (protocol, les)


def test_database_folder_empty_or_missing_is_an_event(start):
    """The watcher (DB_CHECK_INTERVAL 1 s) sets clamrest_database_folder_ok to 0 and logs one warning
    when CLAMAV_DB_DIR is emptied or goes away, and back to 1 (one info line) when it returns."""
    import json
    import shutil
    srv = start()
    aside = srv.dir / "aside"
    shutil.move(str(srv.db), str(aside))
    srv.db.mkdir()

    def folder_ok():
        return harness.metric(srv, "clamrest_database_folder_ok")

    assert harness.wait_until(lambda: folder_ok() == 0, 10), srv.logs()
    assert harness.metric(srv, "clamrest_database_folder_unusable_total") == 1
    srv.db.rmdir()
    time.sleep(2.5)		# two more looks: still one event
    assert folder_ok() == 0
    assert harness.metric(srv, "clamrest_database_folder_unusable_total") == 1
    # Still serving the database loaded before.
    r = requests.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth())
    assert r.status_code == 200 and r.json()["malware"] is True, r.text
    shutil.move(str(aside), str(srv.db))
    assert harness.wait_until(lambda: folder_ok() == 1, 10), srv.logs()
    lines = [json.loads(x) for x in srv.logs().splitlines() if x.startswith("{")]
    warn = [x for x in lines if "CLAMAV_DB_DIR" in x.get("message", "")
            and x.get("log.level") == "WARNING"]
    assert len(warn) == 1 and "is empty" in warn[0]["message"], warn
    again = [x for x in lines if "can be read again" in x.get("message", "")]
    assert len(again) == 1, lines


CONVENTION_UNITS_BAD = {"milliseconds", "ms", "microseconds", "us", "nanoseconds", "ns", "minutes",
                        "hours", "days", "kb", "mb", "gb", "kib", "mib", "gib", "kilobytes",
                        "megabytes", "percent", "bits"}


def convention_problems(text):
    """Why the families of an exposition break Prometheus naming conventions: []."""
    import re
    problems, helps, types = [], {}, {}
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) (.*)", line)
        if not m:
            continue
        seen = helps if m.group(1) == "HELP" else types
        if m.group(2) in seen:
            problems.append(f"second {m.group(1)} for {m.group(2)}")
        seen[m.group(2)] = m.group(3)
    if set(helps) != set(types):
        problems.append(f"HELP and TYPE differ: {set(helps) ^ set(types)}")
    for name, typ in types.items():
        base = name
        if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name):
            problems.append(f"{name}: not snake_case")
        if not (name.startswith("clamrest_") or name.startswith("process_")):
            problems.append(f"{name}: neither clamrest_ nor process_")
        if typ == "counter":
            if not name.endswith("_total"):
                problems.append(f"{name}: counter without _total")
            base = name[:-len("_total")]
        elif name.endswith("_total"):
            problems.append(f"{name}: _total on a {typ}")
        words = base.split("_")
        for i, w in enumerate(words):
            if w in CONVENTION_UNITS_BAD:
                problems.append(f"{name}: {w} is not a base unit")
            if w in ("seconds", "bytes") and i != len(words) - 1:
                problems.append(f"{name}: unit {w} is not the suffix")
    return problems


def test_metric_names_follow_prometheus_conventions(server):
    bad = ("# HELP clamrest_scans x\n# TYPE clamrest_scans counter\n"
           "# HELP clamrest_took_ms x\n# TYPE clamrest_took_ms gauge\n"
           "# HELP clamrest_bytes_seen_total x\n# TYPE clamrest_bytes_seen_total counter\n"
           "# HELP http_requests_total x\n# TYPE http_requests_total counter\n"
           "# HELP clamrest_fooBar x\n# TYPE clamrest_fooBar gauge\n"
           "# HELP clamrest_queue_total x\n# TYPE clamrest_queue_total gauge\n"
           "# TYPE clamrest_queue_total gauge\n")
    found = convention_problems(bad)
    for name in ("clamrest_scans:", "clamrest_took_ms:", "clamrest_bytes_seen_total:", "http_requests_total:",
                 "clamrest_fooBar:", "clamrest_queue_total: _total", "second TYPE for clamrest_queue_total"):
        assert any(p.startswith(name) for p in found), (name, found)
    requests.post(server.url + "/v2/scan-chunked", data=b"x", auth=harness.auth())
    assert convention_problems(raw_metrics(server)) == []
