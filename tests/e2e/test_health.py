"""Health endpoints: GET/HEAD / and /check answer 200 "Service OK" without authentication."""
import pytest
import requests

import harness


@pytest.fixture(scope="module")
def srv(start_module):
    return start_module()


@pytest.mark.parametrize("path", ["/", "/check"])
def test_health_get(srv, path):
    r = requests.get(srv.url + path, timeout=10)
    assert (r.status_code, r.text) == (200, "Service OK"), (r.status_code, r.headers, r.text)
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers


@pytest.mark.parametrize("path", ["/", "/check"])
def test_health_head(srv, path):
    r = requests.head(srv.url + path, timeout=10)
    assert r.status_code == 200, (r.status_code, r.headers, r.text)
    assert r.content == b"", r.content
    # HEAD announces the length GET would send ("Service OK").
    assert r.headers.get("Content-Length") == "10", r.headers


@pytest.mark.parametrize("path", ["/", "/check"])
def test_health_needs_no_auth_and_ignores_bad_auth(srv, path):
    for headers in ({}, {"Authorization": "Basic !!!garbage"},
                    {"Authorization": harness.basic("app1", "wrong")}):
        r = requests.get(srv.url + path, headers=headers, timeout=10)
        assert (r.status_code, r.text) == (200, "Service OK"), (headers, r.status_code, r.text)


def test_health_raw_http10_and_http11(srv):
    for req in (b"GET /check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /check HTTP/1.0\r\n\r\n"):
        raw = harness.raw_request(srv.port, req)
        assert harness.status_of(raw) == 200, (req, raw)
        assert raw.endswith(b"\r\n\r\nService OK"), (req, raw)


def test_health_repeated_on_one_session(srv):
    with requests.Session() as s:
        for _ in range(5):
            r = s.get(srv.url + "/check", timeout=10)
            assert (r.status_code, r.text) == (200, "Service OK")
        pool = s.get_adapter(srv.url).poolmanager.connection_from_url(srv.url)
        assert pool.num_connections == 1, f"{pool.num_connections} connections for 5 GETs"
