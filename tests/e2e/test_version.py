"""/check_version and /check_warning: the loaded daily database version against the third field of
the TXT record a real dnsmasq serves on loopback."""
import io
import json
import socket
import subprocess
import tarfile
import time

import pytest
import requests

import harness


def ready_dns(dns, version, name=harness.TXT_NAME):
    """A dnsmasq that answers; a new one when the first dies at start (its free UDP port may be
    taken on the TCP side by another test's server)."""
    for _ in range(3):
        d = dns(version, name=name)
        if harness.dns_ready(d, name, timeout=5 * harness.TIME_FACTOR):
            return d
        exited = d.proc.poll()
        d.stop()
    raise AssertionError(f"dnsmasq does not answer on 127.0.0.1:{d.port} (exit status {exited})")


def version_server(start, dns, local, remote, name=harness.TXT_NAME):
    """A server with daily database version `local`, asking a dnsmasq publishing `remote` under name."""
    d = ready_dns(dns, remote, name)
    return start(db_version=local, env={"CLAMAV_DNS_SERVER": d.server,
                                        "CLAMAV_TXT_URI": harness.TXT_NAME})


def get_json(srv, path):
    r = requests.get(srv.url + path, timeout=15)
    ctx = f"GET {path} -> {r.status_code} {r.headers} {r.text!r}\nserver logs:\n{srv.logs()}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), ctx
    try:
        body = json.loads(r.text)
    except ValueError:
        raise AssertionError("not JSON: " + ctx)
    return r.status_code, body, ctx


@pytest.mark.parametrize("local,remote,status,outdated", [
    (27000, 27000, 200, False),
    (31234, 31234, 200, False),     # the loaded version is read from the database, not a constant
    (27000, 27001, 200, False),     # one behind is tolerated
    (27001, 27000, 200, False),     # one ahead too
    (27000, 27002, 500, True),
    (27000, 27100, 500, True),
    (27002, 27000, 500, True),
])
def test_check_version(start, dns, local, remote, status, outdated):
    srv = version_server(start, dns, local, remote)
    code, body, ctx = get_json(srv, "/check_version")
    assert code == status, ctx
    assert set(body) == {"service", "clamd-actual", "clamd-required", "outdated"}, ctx
    assert body["service"] == "1.0.0", ctx
    # Strings, as upstream reads them from clamd and DNS (its own tests compare with "1010101").
    assert body["clamd-actual"] == str(local), ctx
    assert body["clamd-required"] == str(remote), ctx
    assert body["outdated"] is outdated, ctx


def test_check_version_repeated_uses_the_same_answer(start, dns):
    srv = version_server(start, dns, 27000, 27000)
    for _ in range(3):
        code, body, ctx = get_json(srv, "/check_version")
        assert code == 200 and body["clamd-required"] == "27000" and body["outdated"] is False, ctx


def test_check_version_dns_unreachable(start):
    # The default harness server asks 127.0.0.1:9, where nothing listens.
    srv = start()
    code, body, ctx = get_json(srv, "/check_version")
    assert code == 500, ctx
    assert set(body) == {"service", "error"}, ctx
    assert isinstance(body["service"], str) and body["service"], ctx
    assert isinstance(body["error"], str) and body["error"], ctx


def test_check_version_name_unknown(start, dns):
    d = ready_dns(dns, 27000, name="other.clamrest.test")
    srv = start(env={"CLAMAV_DNS_SERVER": d.server, "CLAMAV_TXT_URI": harness.TXT_NAME})
    code, body, ctx = get_json(srv, "/check_version")
    assert code == 500, ctx
    assert set(body) == {"service", "error"}, ctx
    assert isinstance(body["error"], str) and body["error"], ctx


@pytest.mark.parametrize("local,remote", [(27000, 27000), (31234, 31234)])
def test_check_warning_equal(start, dns, local, remote):
    srv = version_server(start, dns, local, remote)
    r = requests.get(srv.url + "/check_warning", timeout=15)
    assert (r.status_code, r.text) == (200, str(remote)), (r.status_code, r.text, srv.logs())


@pytest.mark.parametrize("local,remote", [(27000, 27001), (27001, 27000), (27000, 27005)])
def test_check_warning_outdated(start, dns, local, remote):
    srv = version_server(start, dns, local, remote)
    r = requests.get(srv.url + "/check_warning", timeout=15)
    want = f"Outdated local_version: {local} remote_version: {remote}"
    assert (r.status_code, r.text) == (500, want), (r.status_code, r.text, srv.logs())


def test_check_warning_dns_unreachable(start):
    srv = start()
    r = requests.get(srv.url + "/check_warning", timeout=15)
    assert r.status_code == 500, (r.status_code, r.text)
    assert r.text and not r.text.isdigit(), r.text


@pytest.mark.parametrize("path", ["/check_version", "/check_warning"])
def test_version_endpoints_need_no_auth(start, dns, path):
    srv = version_server(start, dns, 27000, 27000)
    for headers in ({}, {"Authorization": "Basic !!!garbage"}):
        r = requests.get(srv.url + path, headers=headers, timeout=15)
        assert r.status_code == 200, (headers, r.status_code, r.text)
        assert "WWW-Authenticate" not in r.headers, r.headers


@pytest.mark.parametrize("path", ["/check_version", "/check_warning"])
def test_version_endpoints_head(start, dns, path):
    srv = version_server(start, dns, 27000, 27000)
    r = requests.head(srv.url + path, timeout=15)
    assert r.status_code == 200 and r.content == b"", (r.status_code, r.headers, r.content)


# --- GET /version, DB_MAX_AGE and an empty CLAMAV_TXT_URI (issue 13) ---

CVD_HEADER = 512  # bytes of a CVD/CUD header: "ClamAV-VDB:" and 8 colon-separated fields, space padded


def _set_stime(header, stime):
    """A "ClamAV-VDB:..." header line with its last field, the build time, replaced."""
    fields = header.rstrip(b" \n").split(b":")
    assert fields[0] == b"ClamAV-VDB" and len(fields) == 9, fields
    fields[8] = str(stime).encode()
    return b":".join(fields)


def db_built_at(path, version, stime):
    """A test database in path whose build time is stime (Unix seconds).

    sigtool writes the time it runs into two places: the 512-byte CVD header and the first line of
    daily.info inside the tarball; libclamav refuses the file ("Corrupted CVD header") unless they
    agree, and takes the build time from there. An unsigned .cud carries no signature over either,
    so the test rewrites both instead of faking sigtool's clock (Debian has no faketime here)."""
    harness.make_db(path, version)
    cud = path / "daily.cud"
    data = cud.read_bytes()
    old = tarfile.open(fileobj=io.BytesIO(data[CVD_HEADER:]), mode="r:gz")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as new:
        for m in old.getmembers():
            body = old.extractfile(m).read()
            if m.name == "daily.info":
                first, rest = body.split(b"\n", 1)
                body = _set_stime(first, stime) + b"\n" + rest
                m.size = len(body)
            new.addfile(m, io.BytesIO(body))
    head = _set_stime(data[:CVD_HEADER], stime)
    assert len(head) <= CVD_HEADER
    cud.write_bytes(head.ljust(CVD_HEADER, b" ") + out.getvalue())
    return path


def aged_server(start, tmp_path, age, env, version=27000):
    now = int(time.time())
    db = db_built_at(tmp_path / "db", version, now - age)
    return start(db_version=None, env={"CLAMAV_DB_DIR": str(db), **env}), now - age


def test_version_endpoint(start, tmp_path):
    srv, built = aged_server(start, tmp_path, 3600, {})
    r = requests.get(srv.url + "/version", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["clamrest"] == "1.0.0" and body["clamav"].startswith("1."), body
    assert body["database_version"] == 27000 and body["database_signatures"] >= 3, body
    assert body["database_build_time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(built))
    # Written as the other answers: sorted keys, compact, a final newline.
    assert r.text == json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"
    assert requests.head(srv.url + "/version", timeout=10).status_code == 200
    assert requests.post(srv.url + "/version", timeout=10).status_code == 405


def quiet_dns():
    """A UDP socket that counts what it is sent and never answers: a DNS server to prove no query."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    return s


def received(s):
    n = 0
    while True:
        try:
            s.recvfrom(4096)
        except socket.timeout:
            return n
        n += 1


@pytest.mark.parametrize("age,max_age,outdated", [
    (5 * 86400, "3d", True),
    (5 * 86400, "7d", False),
    (2 * 3600, "1h", True),
    (2 * 3600, "3h", False),
    (600, "300", True),
    (600, "900s", False),
])
def test_db_max_age_with_empty_txt_uri(start, tmp_path, age, max_age, outdated):
    dnsq = quiet_dns()
    try:
        srv, _ = aged_server(start, tmp_path, age, {
            "DB_MAX_AGE": max_age, "CLAMAV_TXT_URI": "",
            "CLAMAV_DNS_SERVER": "127.0.0.1:%d" % dnsq.getsockname()[1]})
        code, body, ctx = get_json(srv, "/check_version")
        assert code == (500 if outdated else 200), ctx
        assert body["outdated"] is outdated, ctx
        assert body["clamd-actual"] == body["clamd-required"] == "27000", ctx
        r = requests.get(srv.url + "/check_warning", timeout=10)
        assert r.status_code == (500 if outdated else 200), r.text
        assert ("DB_MAX_AGE" in r.text) is outdated, r.text
        if not outdated:
            assert r.text == "27000"
        assert received(dnsq) == 0, "DNS was asked although CLAMAV_TXT_URI is empty"
    finally:
        dnsq.close()


def test_db_max_age_with_dns_comparison(start, dns, tmp_path):
    """The age also counts when the TXT record says the version is current."""
    d = ready_dns(dns, 27000)
    env = {"CLAMAV_DNS_SERVER": d.server, "CLAMAV_TXT_URI": harness.TXT_NAME, "DB_MAX_AGE": "1d"}
    srv, _ = aged_server(start, tmp_path, 2 * 86400, env)
    assert harness.wait_until(lambda: "error" not in requests.get(
        srv.url + "/check_version", timeout=5).json(), timeout=15)
    code, body, ctx = get_json(srv, "/check_version")
    assert (code, body["outdated"], body["clamd-required"]) == (500, True, "27000"), ctx


def test_empty_txt_uri_without_max_age_is_current(start):
    srv = start(env={"CLAMAV_TXT_URI": ""})
    code, body, ctx = get_json(srv, "/check_version")
    assert (code, body["outdated"]) == (200, False), ctx
    assert body["clamd-actual"] == body["clamd-required"] == "27000", ctx


def test_empty_txt_uri_flag_is_accepted(start):
    srv = start(args=("--txt-uri", ""))
    code, body, ctx = get_json(srv, "/check_version")
    assert code == 200 and body["outdated"] is False, ctx


@pytest.mark.parametrize("value", ["2w", "-1d", "1.5h", "3651d", "h"])
def test_db_max_age_refuses_bad_values(value):
    r = subprocess.run([harness.BIN, "--db-max-age", value, "--help"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "DB_MAX_AGE" in r.stderr, (r.returncode, r.stderr)


def test_bad_txt_uri_names_the_setting(tmp_path):
    db = harness.make_db(tmp_path / "db")    # the database loads first; the DNS client after
    r = subprocess.run([harness.BIN, "--txt-uri", "a" * 2000, "--db-dir", str(db),
                        "--host", "127.0.0.1", "--port", str(harness.free_port())],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "CLAMAV_TXT_URI" in r.stderr, (r.returncode, r.stderr)
