"""libclamav's silent drops (issue 20, item 2) through the real server: each regression file of
tests/libclamav/drops.py sent to /v2/scan, /v2/scan-chunked and /scan, then /v2/scan once more (a
cached answer must not be clean). docs/libclamav-quirks.md lists each quirk and our answer.

- Embedded SFX layers: a zip behind a prefix with one ordinary and one LZMA member, and a 7z holding
  a stored zip plus EICAR in BZip2. libclamav scans the embedded zip through a layer that got no
  callback, so clamrest's member count looked at the wrong layer and the answer was clean; with
  patch 0113 the embedded layer is a layer like any other: the second reader (libarchive) extracts
  the member libclamav cannot and EICAR is found, or the member is Heuristics.Unscanned.*; either
  is not clean (any malware answer passes).
- HTML: MAX_SCAN_SIZE sets libclamav's HTML normalisation limit (src/scanner.c engine_limits), HTML
  is raw-scanned (patch 0112: a zip appended to the markup is found), HTML past the limit is a cut
  scan answered Heuristics.Limits.Exceeded.* (so ALERT_EXCEEDS_MAX governs it).
- bzip2 streams after the first (0111) and tar header encodings (0114), through the server too.

These need the fix series: on a server built against Debian's libclamav (`make LIBCLAMAV=system`)
they are skipped with the reason (the library file the server names in clamrest_build_info).
"""
import gzip
import json
import pathlib
import random
import sys

import pytest

import harness

sys.path.insert(0, str(harness.ROOT / "tests" / "libclamav"))
import drops  # noqa: E402


def needs_series(srv):
    lib = harness.library_file(srv)
    if not harness.runs_series(srv):
        pytest.skip(f"needs libclamav with the fix series (third_party/libclamav/01*.patch); "
                    f"this server runs {lib}")


def send(srv, data, how, name):
    r = harness.send_to(srv, how, data, name)
    if r.status_code != 200:
        return f"error:{r.status_code}"
    if how == "legacy":
        return "clean" if r.text.strip() == "OK" else "malware:?"
    body = json.loads(r.text)
    return f"malware:{body['reason']}" if body["malware"] else "clean"


def answers(srv, data, name="sample.bin"):
    return [(how, send(srv, data, how, name)) for how in ("v2", "chunked", "legacy", "v2")]


def judge(got, want):
    """want: a prefix every JSON answer's reason must have ("" = any malware); /scan: NOTOK."""
    bad = [(how, a) for how, a in got
           if a == "clean" or (how != "legacy" and not a.startswith("malware:" + want))]
    assert not bad, f"{bad}; all answers: {got}"


@pytest.fixture(scope="module")
def server(start_module):
    return start_module()


# --- embedded SFX layers -------------------------------------------------------------------------

def test_zip_behind_prefix_with_ordinary_member(server):
    needs_series(server)
    judge(answers(server, drops.zip_behind_prefix()), "")


def test_7z_with_stored_zip_and_bzip2_member(server, tmp_path):
    needs_series(server)
    data = drops.seven_zip_stored_zip_and_bzip2(tmp_path)
    if data is None:
        pytest.skip("7z (p7zip-full) not installed")
    judge(answers(server, data), "")


def test_embedded_zip_members_still_scanned(server):
    """The embedded layer's members are scanned as before: EICAR in an ordinary member is found."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", b"hello " * 500)
        z.writestr("eicar.com", drops.EICAR)
    judge(answers(server, b"\x7fPREFIX" * 100 + buf.getvalue()), "Eicar")


# --- HTML ----------------------------------------------------------------------------------------

def test_html_with_appended_zip_gzipped(server):
    """The issue's file: 41 MiB of HTML with a zip holding EICAR appended, gzipped (a small
    upload). 41 MiB unpacked from 146 KB, normalised and raw-scanned, passes MAX_EXPANSION's
    64 MiB floor: a cut scan, never clean (the 200 KB page below shows the raw scan finds the zip)."""
    needs_series(server)
    data = gzip.compress(drops.html_large(), 6, mtime=0)
    assert len(data) < 1 << 20
    got = answers(server, data, "page.html.gz")
    judge([(h, a) for h, a in got if not a.startswith("malware:Heuristics.Limits.Exceeded.")], "Eicar")
    judge(got, "")


def test_html_with_appended_zip_small(server):
    """Under any limit too: libclamav's HTML normaliser never looks at an appended zip."""
    needs_series(server)
    judge(answers(server, drops.html_large(size=200_000), "page.html"), "Eicar")


def test_html_past_limit_is_a_cut_scan(start):
    """MAX_SCAN_SIZE is the HTML limit; HTML beyond it (here inside a gzip, within the upload
    limits) is answered as a cut scan, and ALERT_EXCEEDS_MAX=no answers it clean (logged)."""
    data = gzip.compress(drops.html_large(size=9 << 20, payload=b""), 6, mtime=0)
    env = {"MAX_CONTENT_LENGTH": "1048576", "MAX_SCAN_SIZE": str(8 << 20)}
    srv = start(env=env)
    judge(answers(srv, data, "big.html.gz"), "Heuristics.Limits.Exceeded.")
    quiet = start(env={**env, "ALERT_EXCEEDS_MAX": "no"})
    assert send(quiet, data, "v2", "big.html.gz") == "clean"


def test_html_within_limit_is_clean(server):
    """No false alarm: ordinary HTML (system documentation) answers clean."""
    pages = [p for p in sorted(pathlib.Path("/usr/share/doc").rglob("*.html")) if p.is_file()][:10]
    pages.append(None)
    for p in pages:
        data = p.read_bytes() if p else drops.html_large(size=3 << 20, payload=b"")
        assert send(server, data, "v2", "page.html") == "clean", p


# --- bzip2 and tar through the server ------------------------------------------------------------

def test_bzip2_multistream(server):
    needs_series(server)
    data, _ = drops.bzip2_multistream()
    judge(answers(server, data, "log.bz2"), "Eicar")


@pytest.mark.parametrize("case", sorted(drops.TAR_CASES))
def test_tar_header_encodings(server, case):
    needs_series(server)
    judge(answers(server, drops.TAR_CASES[case](), case + ".tar"), "Eicar")


def test_embedded_view_not_counted_as_scanned_bytes(start):
    """An embedded layer (patch 0113) is a view of its parent's bytes, not data unpacked: it does
    not count towards MAX_SCAN_SIZE. A clean 900 KB text with a PDF marker near its start, on a
    server whose MAX_SCAN_SIZE is its upload limit (1 MiB), is clean, not a cut scan."""
    srv = start(env={"MAX_CONTENT_LENGTH": "1048576", "MAX_SCAN_SIZE": "1048576"})
    data = b"notes\n%PDF-1.4\n" + drops.log_text(random.Random(5), 900_000)
    assert len(data) < 1 << 20
    assert send(srv, data, "v2", "notes.txt") == "clean"
