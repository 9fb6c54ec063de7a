"""No upload is held in anonymous memory while it is scanned (issue 26, item 1): a body spilled to its
file is scanned through clamrest's read-only mapping of that file, whose pages belong to the page
cache, for every endpoint and whether or not the digest is already known. libclamav's own map of a
descriptor would copy every page it reads into an anonymous mapping (256 MiB per 256 MiB upload).

Measured as the peak of RssAnon (anonymous resident memory, not the page cache) sampled while the
scans run, against the idle value before them."""
import concurrent.futures
import os
import threading
import time

import pytest

import harness

MiB = 1024 * 1024
BIG = 256 * MiB


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


class Peak:
    """Samples RssAnon of pid every 10 ms in a thread until stopped; .peak is the largest seen."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_anon(self.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.01)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    """BIG bytes that no signature matches and libclamav types as plain data: random, from a seed."""
    path = tmp_path_factory.mktemp("mem") / "big.bin"
    rnd = __import__("random").Random(26)
    with open(path, "wb") as f:
        for _ in range(BIG // MiB):
            f.write(rnd.randbytes(MiB))
    return path


def post(srv, route, path):
    with open(path, "rb") as f:
        if route in ("/v3/scan", "/v2/scan"):
            return harness.scan_multipart(srv, {"file": ("big.bin", f)}, route, timeout=600)
        assert route == "/v2/scan-chunked", route
        return harness.scan_chunked(srv, f, timeout=600)


def idle_anon(srv):
    time.sleep(0.5)
    return rss_anon(srv.proc.pid)


@pytest.mark.parametrize("route", ["/v2/scan-chunked", "/v2/scan", "/v3/scan"])
def test_one_large_upload_is_not_copied_into_memory(start, body, route):
    """256 MiB through each endpoint: RssAnon grows by less than 64 MiB (it grew by 256 MiB when
    libclamav read the spilled file through its descriptor map)."""
    srv = start(env={"SCAN_CACHE": "0"})
    why_not = harness.instrumented(srv)
    if why_not:
        pytest.skip(f"RssAnon says nothing here: {why_not}")
    before = idle_anon(srv)
    with Peak(srv.proc.pid) as p:
        r = post(srv, route, body)
    assert r.status_code == 200, r.text
    grew = (p.peak - before) / MiB
    print(f"{route}: RssAnon idle {before / MiB:.1f} MiB, peak {p.peak / MiB:.1f} MiB (+{grew:.1f})")
    assert grew < 64, f"{route}: RssAnon grew by {grew:.1f} MiB while a 256 MiB upload was scanned"


@pytest.mark.slow
def test_four_large_uploads_at_once_stay_small(start, body):
    """4 concurrent 256 MiB uploads (2 scan threads): RssAnon grows by less than 128 MiB."""
    srv = start(env={"SCAN_CACHE": "0", "SCAN_THREADS": "2"})
    why_not = harness.instrumented(srv)
    if why_not:
        pytest.skip(f"RssAnon says nothing here: {why_not}")
    before = idle_anon(srv)
    with Peak(srv.proc.pid) as p, concurrent.futures.ThreadPoolExecutor(4) as ex:
        answers = list(ex.map(lambda _: post(srv, "/v2/scan-chunked", body), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    grew = (p.peak - before) / MiB
    print(f"4 x 256 MiB: RssAnon idle {before / MiB:.1f} MiB, peak {p.peak / MiB:.1f} MiB (+{grew:.1f})")
    assert grew < 128, f"RssAnon grew by {grew:.1f} MiB with 4 concurrent 256 MiB uploads"
