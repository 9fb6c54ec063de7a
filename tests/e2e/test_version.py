"""/check_version and /check_warning: the loaded daily database version against the third field of
the TXT record a real dnsmasq serves on loopback."""
import json

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
