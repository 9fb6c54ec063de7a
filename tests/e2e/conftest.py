"""conftest -- pytest fixtures around harness.Clamrest and harness.Dnsmasq."""
import pytest

import harness


def _stop_all(servers):
    """Stops every server first (none is left running when one fails), then checks each."""
    results = []
    for srv in servers:
        rc = srv.stop()
        results.append((rc, srv.logs()))
        srv.cleanup()
    for rc, logs in results:
        assert "runtime error" not in logs and "AddressSanitizer" not in logs, logs
        assert rc in (0, None), f"clamrest exited with {rc}:\n{logs}"


def _servers():
    """A start(**kw) function and the list of servers it started."""
    started = []

    def _start(**kw):
        srv = harness.Clamrest(**kw)
        started.append(srv)
        return srv

    return _start, started


@pytest.fixture
def start():
    """start(env=..., db_version=...) -> a running Clamrest; stopped, checked and removed after."""
    _start, started = _servers()
    yield _start
    _stop_all(started)


@pytest.fixture
def dns():
    started = []

    def _dns(version, **kw):
        d = harness.Dnsmasq(version, **kw)
        started.append(d)
        return d

    yield _dns
    for d in started:
        d.stop()


@pytest.fixture
def server(start):
    """A default server: test database version 27000, no reachable DNS."""
    return start()


@pytest.fixture(scope="module")
def start_module():
    """Like start, but the servers live for the whole test module (one server for many tests)."""
    _start, started = _servers()
    yield _start
    _stop_all(started)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes (issue 9's 2 GiB cases); `make e2e` leaves "
                            "it out, `pytest -m slow` runs it")
    config.addinivalue_line("markers", "client_side: tests of the Locust suite, the browser and Squid; the server "
                            "only answers requests the rest of the suite sends too, so the "
                            "sanitizer run (`make asan-test`) leaves them out")
    config.addinivalue_line("markers", "timing: wall-clock behaviour (answer times during password floods, "
                            "bomb parts taking turns with other clients, a drain held past 10 s); their code "
                            "paths run in other tests too, so the sanitizer run (`make asan-test`), which "
                            "changes speed, not what they check, leaves them out")
    config.addinivalue_line("markers", "corpus: many files whose scanning is libclamav's and libarchive's "
                            "work, through the same server code as test_reader.py's cases; the "
                            "sanitizer run (`make asan-test`) leaves them out")
