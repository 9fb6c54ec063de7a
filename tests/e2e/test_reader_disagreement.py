"""Reader disagreement (issue 20, item 6): archives that different readers read differently, and the
issue's families as regression files. The property: a file from which ANY installed reader (Python's
zipfile/tarfile/gzip/bz2/lzma, bsdtar on the file and on a pipe, 7z, unzip, GNU tar) extracts EICAR
is never answered clean by clamrest -- malware of any name or an error -- on /v2/scan,
/v2/scan-chunked, /scan and /v3/scan, cold and then all four again (a clean answer is never cached).

The server runs with default settings and an EICAR-only database. The generated samples come from
disagree.py (seed DISAGREE_SEED, default 20; DISAGREE_COUNT samples, default 44: `make test` runs
these; `make disagree-long SEED=.. COUNT=..` runs more); the corpus and the readers' findings are
cached under build/disagree/. A sample no reader gets EICAR out of is dropped
(test_generator_yield says how many). Each regression test first checks that an ordinary reader
finds EICAR in its file (the test would otherwise prove nothing).
"""
import io
import zipfile

import pytest

import disagree
import harness

pytestmark = pytest.mark.corpus

ENDPOINTS = ("v2", "chunked", "legacy", "v3")
SAMPLES = disagree.corpus()
HITS = [(s, f) for s, f in SAMPLES if f]


@pytest.fixture(scope="module")
def srv(start_module, tmp_path_factory):
    db = disagree.eicar_only_db(tmp_path_factory.mktemp("eicar-only"))
    return start_module(env={"CLAMAV_DB_DIR": str(db), "DB_CHECK_INTERVAL": "0"})


def send(srv, data, how, name="sample.bin"):
    """"clean", "malware:<reason>" or "error:<status>" of one endpoint."""
    r = harness.send_to(srv, how, data, name, piece=1 << 20, tries=40, pause=0.25)
    if r.status_code != 200:
        return f"error:{r.status_code}:{r.text[:100]}"
    if how == "legacy":
        text = r.text.strip()
        assert text in ("OK", "NOTOK"), f"/scan answered {text!r}"
        return "clean" if text == "OK" else "malware:NOTOK"
    body = r.json()
    if how == "v3":
        reasons = [m["signature"] for f in body["files"] for m in f["matches"]]
        return f"malware:{','.join(reasons)}" if body["malware"] else "clean"
    return f"malware:{body['reason']}" if body["malware"] else "clean"


def never_clean(srv, data, what, name="sample.bin"):
    """Every endpoint, cold, then every endpoint again: no answer may be clean."""
    got = [(round_, how, send(srv, data, how, name)) for round_ in ("cold", "again") for how in ENDPOINTS]
    print(f"{what}: {got}")
    clean = [f"{how} ({round_})" for round_, how, a in got if a == "clean"]
    assert not clean, f"FALSE CLEAN of {what} via {', '.join(clean)}\nall answers: {got}"


# --- The generator ---

@pytest.mark.parametrize("sample,found", HITS, ids=[s.name for s, _ in HITS])
def test_generated_never_clean(srv, sample, found):
    never_clean(srv, sample.data, f"{sample.name} ({len(sample.data)} bytes; {sample.recipe}; "
                                  f"EICAR via {sorted(found)})", name=sample.name)


def test_generator_yield():
    """Most samples give EICAR to some reader (a generator whose output nobody can read tests
    nothing); the dropped ones are listed."""
    dropped = [f"{s.name} [{s.recipe}]" for s, f in SAMPLES if not f]
    print(f"{len(HITS)} of {len(SAMPLES)} samples kept; dropped (no reader finds EICAR): {dropped}")
    assert len(HITS) >= 0.8 * len(SAMPLES), dropped
    assert {s.cls for s, _ in HITS} == set(disagree.CLASSES), "a class no reader can read"


def test_generator_is_reproducible():
    """The same seed gives the same bytes (7z's and gcab's output included: times are pinned)."""
    n = 2 * len(disagree.CLASSES)
    first = [(s.name, s.data) for s in disagree.Generator(disagree.DEFAULT_SEED).samples(n)]
    again = [(s.name, s.data) for s in disagree.Generator(disagree.DEFAULT_SEED).samples(n)]
    assert first == again
    assert len({d for _, d in first}) == n


def test_oracle_tells_eicar_from_clean():
    """The oracle finds EICAR where it is and nowhere else (else the drop count would lie)."""
    clean = disagree.build_zip([disagree.Entry(b"a.txt", b"hello " * 100)])
    bad = disagree.build_zip([disagree.Entry(b"a.txt", b"hello " * 100),
                              disagree.Entry(b"e.com", disagree.EICAR)])
    assert disagree.findings(clean) == {}
    found = disagree.findings(bad)
    assert "zipfile" in found and "unzip" in found, found


def test_never_clean_sees_a_clean_answer(srv):
    """The check itself fails on a clean answer (a test that cannot fail proves nothing)."""
    with pytest.raises(AssertionError, match="FALSE CLEAN"):
        never_clean(srv, disagree.build_zip([disagree.Entry(b"a.txt", b"harmless " * 50)]), "a clean zip")


# --- The issue's families: regression files ---

def regression(name):
    try:
        return disagree.regression_file(name)
    except FileNotFoundError as e:
        pytest.skip(str(e))


def readers_find(data, readers=None, depth=disagree.DEPTH):
    found = disagree.findings(data, depth, readers)
    assert found, "no ordinary reader finds EICAR in the file: the test would prove nothing"
    return found


SMALL = [n for n in disagree.REGRESSION if not n.startswith("html41mib")]


@pytest.mark.parametrize("name", SMALL)
def test_issue20_family_never_clean(srv, name):
    data = regression(name).read_bytes()
    found = readers_find(data)
    what = disagree.REGRESSION[name][2]
    never_clean(srv, data, f"{name} ({len(data)} bytes; {what}; EICAR via {sorted(found)})", name=name)


def test_issue20_encrypted_local_bit_python_decrypts():
    """The file is what the issue says: Python's zipfile decrypts EICAR with the password, and the
    local header's encryption bit is clear while the central directory's is set."""
    data = regression("crypt_local_bit_clear.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info, = z.infolist()
        assert info.flag_bits & 1
        assert z.read(info, pwd=disagree.PASSWORD) == disagree.EICAR
    assert data[6] & 1 == 0


def test_issue20_pbzip2_is_multistream():
    data = regression("pbzip2_log.bz2").read_bytes()
    assert data.count(b"BZh9") >= 4 and len(data) > 100000
    assert disagree.EICAR in __import__("bz2").decompress(data)[-100:]


def test_issue20_html_41mib_zip_never_clean(srv):
    path = regression("html41mib_zip.html")
    data = path.read_bytes()
    assert data.startswith(b"<html>") and len(data) > 41 << 20
    readers_find(data, ["zipfile", "unzip"], depth=1)
    never_clean(srv, data, "41 MiB HTML + zip", name="page.html")


def test_issue20_html_41mib_zip_gzipped_never_clean(srv):
    data = regression("html41mib_zip.html.gz").read_bytes()
    assert len(data) < 200 << 10
    readers_find(data, ["gzip", "zipfile"], depth=2)
    never_clean(srv, data, f"41 MiB HTML + zip, gzipped ({len(data)} bytes)", name="page.html.gz")
