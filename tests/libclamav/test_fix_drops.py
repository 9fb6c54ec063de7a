"""test_fix_drops -- libclamav's silent drops (issue 20, item 2) that our fix patches
(third_party/libclamav/011*.patch) close: each regression file holds EICAR that an ordinary reader
finds (Python's bz2/tarfile/zipfile; GNU tar), Debian's stock libclamav answers it clean, the
patched library detects it. Plus: the same payload in an ordinary container is detected by both (the
file tests the drop, not the payload), and ordinary files of the same formats (GNU tar in every
format, pbzip2, bzip2, HTML, clamav-testfiles) answer exactly as with the stock library.

The libraries: LIBCLAMAV_PATCHED (the whole series, `make libclamav-diff` sets it) and, when set,
LIBCLAMAV_FIXES (the fix patches alone); the stock one is Debian's libclamav12 (pkg-config). The
harness is tests/libclamav/scanloop.c (clamrest's scan options, libclamav's default limits).
Regression files are generated (tests/libclamav/drops.py, seeded). docs/libclamav-quirks.md lists
each drop and its patch.
"""
import bz2
import io
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tarfile
import zipfile
import zlib

import pytest

import cbuild

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent.parent
sys.path.insert(0, str(HERE))
import drops  # noqa: E402

PATCHED = os.environ.get("LIBCLAMAV_PATCHED")
FIXES = os.environ.get("LIBCLAMAV_FIXES")
TESTFILES = pathlib.Path("/usr/share/clamav-testfiles")

pytestmark = pytest.mark.skipif(not PATCHED, reason="LIBCLAMAV_PATCHED not set (make libclamav-diff)")


def build_scanloop(out, prefix):
    return cbuild.harness(out, "scanloop.c", prefix)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    t = tmp_path_factory.mktemp("fix-drops")
    fixed = {"patched": build_scanloop(t / "scanloop-patched", PATCHED)}
    if FIXES:
        fixed["fixes"] = build_scanloop(t / "scanloop-fixes", FIXES)
    db = t / "db"
    subprocess.run(["sh", str(TOP / "scripts" / "make-testdb"), str(db)], check=True)
    return {"dir": t, "stock": build_scanloop(t / "scanloop-stock", None), "fixed": fixed, "db": db}


def scan(binary, db, files):
    """{file name: 'CLEAN' | 'VIRUS <name>' | 'ERROR <n>'}, followed by ' msg E/W' (libclamav's
    errors and warnings during the scan, scanloop.c) unless there were none."""
    r = subprocess.run([str(binary), str(db)] + [str(f) for f in files], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    out = {}
    for line in r.stdout.splitlines():
        path, *rest = line.split("\t")
        answer = " ".join(rest)
        out[pathlib.Path(path).name] = answer[:-len(" msg 0/0")] if answer.endswith(" msg 0/0") else answer
    assert len(out) == len(files), r.stdout
    return out


def write(folder, name, data):
    p = folder / name
    p.write_bytes(data)
    return p


# --- the readers that say what each regression file holds -----------------------------------------

def gunzip_first(data):
    """The first gzip member of data (what follows it is ignored, as gzip -d warns and ignores)."""
    return zlib.decompressobj(31).decompress(data) if data[:2] == b"\x1f\x8b" else data


def eicar_in_tar(data):
    return any(drops.EICAR in gunzip_first(v) for v in drops.python_tar_members(data).values())


def eicar_in_zip_anywhere(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:    # a zip behind a prefix, as unzip reads it
        return any(z.read(n) == drops.EICAR for n in z.namelist())


def drop_cases():
    """name -> (bytes, reader check, what the fixed library answers)."""
    bz, _ = drops.bzip2_multistream()
    cases = {"bzip2-multistream.bz2": (bz, lambda d: drops.EICAR in bz2.decompress(d), "Eicar"),
             "html-41MiB-zip.html": (drops.html_large(), eicar_in_zip_anywhere, "Eicar")}
    for name, build in drops.TAR_CASES.items():
        cases[name + ".tar"] = (build(), eicar_in_tar, "Eicar")
    return cases


CASES = drop_cases()


@pytest.fixture(scope="module")
def drop_files(env):
    folder = env["dir"] / "drops"
    folder.mkdir()
    return [write(folder, name, data) for name, (data, _, _) in CASES.items()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_reader_finds_eicar(name):
    """Each regression file holds EICAR for an ordinary reader: the drop is libclamav's."""
    data, reader, _ = CASES[name]
    assert reader(data), name


def test_gnu_tar_reads_tar_cases(tmp_path):
    """GNU tar reads each tar case as Python does (the header encodings are GNU tar's own)."""
    if shutil.which("tar") is None:
        pytest.skip("no GNU tar")
    for name, build in drops.TAR_CASES.items():
        if name == "tar-nameless-member":
            continue        # GNU tar names it "." and refuses to write it over the folder
        p = write(tmp_path, name + ".tar", build())
        members = subprocess.run(["tar", "-tf", str(p)], capture_output=True, text=True).stdout.split()
        assert len(members) == 1, (name, members)
        got = subprocess.run(["tar", "-xOf", str(p), members[0]], capture_output=True).stdout
        assert drops.EICAR in gunzip_first(got), name


def test_stock_drops_and_fixed_detects(env, drop_files):
    """The regression: Debian's libclamav answers every file clean (the drop), ours detects it."""
    stock = scan(env["stock"], env["db"], drop_files)
    assert stock == {p.name: "CLEAN" for p in drop_files}, stock
    for kind, binary in env["fixed"].items():
        got = scan(binary, env["db"], drop_files)
        missed = {n: v for n, v in got.items() if not (v.startswith("VIRUS") and CASES[n][2] in v)}
        assert not missed, (kind, missed)


def test_controls_detected_by_both(env):
    """The same payloads in ordinary containers: both libraries detect them, so a clean answer
    above is the drop and nothing else."""
    folder = env["dir"] / "controls"
    folder.mkdir()
    _, raw = drops.bzip2_multistream()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        gz = drops.gz_eicar()
        ti = tarfile.TarInfo("ok.gz")
        ti.size = len(gz)
        t.addfile(ti, io.BytesIO(gz))
    files = [write(folder, "single-stream.bz2", bz2.compress(raw)),
             write(folder, "first-stream.bz2", bz2.compress(drops.EICAR) + bz2.compress(raw[:1000])),
             write(folder, "plain.tar", buf.getvalue()),
             write(folder, "plain.zip", drops.zip_eicar())]
    for binary in [env["stock"], *env["fixed"].values()]:
        got = scan(binary, env["db"], files)
        assert all(v.startswith("VIRUS") and "Eicar" in v for v in got.values()), (binary, got)


def test_html_past_normalisation_limit(env):
    """HTML larger than MaxHTMLNormalize (40 MiB) with nothing in it: stock answers clean without
    looking; ours answers the cut (Heuristics.Limits.Exceeded.MaxHTMLNormalize, as every other
    limit with the exceeds-max heuristic on). Under the limit both answer clean."""
    folder = env["dir"] / "html"
    folder.mkdir()
    big = write(folder, "big.html", drops.html_large(payload=b""))
    small = write(folder, "small.html", drops.html_large(size=1 << 20, payload=b""))
    assert scan(env["stock"], env["db"], [big, small]) == {"big.html": "CLEAN", "small.html": "CLEAN"}
    for binary in env["fixed"].values():
        assert scan(binary, env["db"], [big, small]) == {
            "big.html": "VIRUS Heuristics.Limits.Exceeded.MaxHTMLNormalize", "small.html": "CLEAN"}


def ordinary_files(folder):
    """Real files of the formats the fixes touch, written by their usual tools: GNU tar in every
    format (sparse files, long names, PAX records included), pbzip2 and bzip2, HTML, Python's
    tarfile; the payload is system documentation and binaries."""
    folder.mkdir()
    rng = random.Random(0x6c636472)
    src = folder / "src"
    (src / ("long-" + "n" * 150)).mkdir(parents=True)
    docs = sorted(pathlib.Path("/usr/share/doc").glob("*/copyright"))
    for p in rng.sample(docs, min(60, len(docs))):
        shutil.copy(p, src / (p.parent.name + ".txt"))
    shutil.copy("/bin/ls", src / ("long-" + "n" * 150) / "ls")
    with open(src / "sparse.bin", "wb") as f:        # holes: GNU tar writes sparse members
        for i in range(8):
            f.seek(i * 65536)
            f.write(rng.randbytes(700))
    out = []
    for fmt in ("gnu", "oldgnu", "pax", "ustar", "posix", "v7"):
        p = folder / f"sys-{fmt}.tar"
        args = ["tar", f"--format={fmt}", "-cf", str(p), "-C", str(src)]
        if fmt in ("gnu", "oldgnu", "pax", "posix"):
            args.insert(1, "--sparse")
        if fmt in ("ustar", "v7"):           # no long names in these
            args += [n.name for n in src.iterdir() if len(n.name) < 99]
        else:
            args.append(".")
        if subprocess.run(args, capture_output=True).returncode == 0:
            out.append(p)
    assert len(out) >= 4, out
    text = b"".join(p.read_bytes() for p in sorted(src.glob("*.txt")))
    out.append(write(folder, "docs.bz2", bz2.compress(text)))
    if shutil.which("pbzip2"):
        big = text * (3_000_000 // max(1, len(text)) + 1)
        out.append(write(folder, "docs-pbzip2.bz2",
                         subprocess.run(["pbzip2", "-c", "-b9"], input=big, capture_output=True,
                                        check=True).stdout))
    out.append(write(folder, "sys-pbzip-like.bz2", b"".join(bz2.compress(text[i:i + 50000])
                                                             for i in range(0, len(text), 50000))))
    for p in [p for p in sorted(pathlib.Path("/usr/share/doc").rglob("*.html")) if p.is_file()][:30]:
        out.append(write(folder, "doc-" + p.parent.name + "-" + p.name, p.read_bytes()))
    return out


def test_no_answer_changes_on_ordinary_files(env):
    """No false alarm added: clamav-testfiles and ordinary files of the formats touched answer
    the same with every library (and none of the ordinary files is called malware)."""
    files = ordinary_files(env["dir"] / "ordinary")
    testfiles = sorted(TESTFILES.iterdir()) if TESTFILES.is_dir() else []
    stock = scan(env["stock"], env["db"], files + testfiles)
    assert all(stock[p.name] == "CLEAN" for p in files), stock
    for kind, binary in env["fixed"].items():
        got = scan(binary, env["db"], files + testfiles)
        diff = {n: (stock[n], got[n]) for n in stock if stock[n] != got[n]}
        assert not diff, (kind, diff)


# --- patch 0113: the layers an application is told about -----------------------------------------

def build_layers(out, prefix):
    return cbuild.harness(out, "layers.c", prefix)


def layer_violations(lines):
    """Layers announced out of order: an INSPECT at level L while L layers are not open (its parent
    never announced), a POST with no layer open, layers left open at the end."""
    depth, bad = 0, []
    for line in lines:
        word, *rest = line.split()
        if word == "INSPECT":
            if int(rest[0]) != depth:
                bad.append(f"{line} with {depth} open")
            depth = int(rest[0]) + 1
        elif word == "POST":
            if depth == 0:
                bad.append("POST with none open")
            depth = max(0, depth - 1)
    if depth != 0:
        bad.append(f"{depth} left open")
    return bad


def test_embedded_layers_get_the_callbacks(env, tmp_path):
    """A zip behind a prefix and a 7z holding a stored zip: libclamav scans the embedded zip as a
    layer. Stock: that layer gets no callback, its members come one level below any layer open;
    patched: it is announced (LAYER_ATTRIBUTES_EMBEDDED, 0x8) and closed like every layer."""
    files = [write(tmp_path, "zip-prefix.bin", drops.zip_behind_prefix())]
    (tmp_path / "7").mkdir()
    sz = drops.seven_zip_stored_zip_and_bzip2(tmp_path / "7")
    if sz is not None:
        files.append(write(tmp_path, "stored-zip.7z", sz))
    stock = build_layers(tmp_path / "layers-stock", None)
    fixed = {k: build_layers(tmp_path / f"layers-{k}", p)
             for k, p in (("patched", PATCHED), ("fixes", FIXES)) if p}
    for f in files:
        out = subprocess.run([str(stock), str(env["db"]), str(f)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
        assert layer_violations(out), (f.name, out)
        for kind, binary in fixed.items():
            out = subprocess.run([str(binary), str(env["db"]), str(f)], capture_output=True,
                                 text=True, check=True).stdout.splitlines()
            assert not layer_violations(out), (kind, f.name, layer_violations(out), out)
            assert any(line.startswith("INSPECT 1 CL_TYPE_ZIP 8") for line in out), (kind, out)
