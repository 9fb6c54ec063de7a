"""test_libclamav_diff -- our libclamav patch series keeps every verdict but the ones its fix
patches change on purpose.

Three builds of the same source (Debian's clamav 1.4.6) run the same harness (scanloop.c, clamrest's
scan options), which answers per file: verdict, signature name, and the number of libclamav errors
and warnings logged during that scan (clamrest turns a scan with a libclamav error into 500):

  patched  LIBCLAMAV_PATCHED: every patch of third_party/libclamav (scripts/build-libclamav)
  fixes    LIBCLAMAV_FIXES: the fix patches only, 01NN-*.patch (scripts/build-libclamav --fixes)
  system   Debian's libclamav12 (pkg-config libclamav), no patch

and the test asserts: patched == fixes on everything (a speed patch never changes an answer), and
fixes == system everywhere except on the fix cases (fix_cases.py: each fix patch's regression files,
which must give the fixed answer with both of our builds and another one, a crash or a memory error
with Debian's, and the (database, file) pairs of the corpora below where Debian's library hits the
bug the fix removes). To add a fix patch's cases, append to FIX_CASES in fix_cases.py.

Corpora: every file of clamav-testfiles; the verdict-integrity corpus (tests/e2e/adversarial.py, cases
up to CASE_MAX bytes); a seeded generated corpus (random and text files, slices of the corpus, EICAR in
files and in zip archives, ELF and PDF files from the system); and the engine corpus (gen_files.py:
PE/ELF/Mach-O files whole, without sections, with a cut section table and truncated; several of them
in one scan (zip, tar, nested, appended to another executable) and executables whose relative-offset
patterns are reached thousands of times; files aimed at macro groups, byte-compare, YARA,
identical-byte signatures, zero runs, Boyer-Moore patterns at the edges of files and of the scan
windows, OLE2 files with long and broken directory, mini-stream and SBAT chains). Databases: the toy database
(scripts/make-testdb); seeded synthetic NDB+LDB databases (gen_db.py), one with the logical-signature
count of the issue's real-size database; the engine databases (gen_db.py --engine: macro
subsignatures of all 32 groups, every offset kind on PE/ELF/Mach-O targets, YARA rules, byte-compare,
identical-byte signatures, plain-byte signatures of libclamav's Boyer-Moore matcher (3-5 bytes, one
hash slot, identical bytes, long ones alone: eng-bm, eng-bmlong), the issue-20 macro signatures); hash
signatures of the engine corpus and clamav-testfiles (gen_db.py --hash: .hdb/.hsb with sizes and '*',
an MD5 under two names, PE section .mdb/.msb, decoys sharing sizes, 40k random ones: eng-hash); and the whole real-size database of make
bench-real (bench/gen-real-db, 7.55M signatures) with the toy and planted signatures, over
clamav-testfiles.

LIBCLAMAV_PATCHED and LIBCLAMAV_FIXES are the prefixes printed by scripts/build-libclamav
(`make libclamav-diff` sets both); without LIBCLAMAV_PATCHED the tests are skipped, without
LIBCLAMAV_FIXES the comparisons that need it are. DIFF_NDB/DIFF_LDB change the size of the large
database, DIFF_SEED (`make libclamav-diff-long` runs several) the seed of every generated file and
database. LIBCLAMAV_ASAN (`make libclamav-asan` sets it) is the prefix of `scripts/build-libclamav
--asan`: the patched library built with ASan+UBSan; test_sanitized_library then scans the corpora
with it.
"""
import fnmatch
import hashlib
import io
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

import cbuild

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent.parent
sys.path.insert(0, str(HERE))
import fix_cases  # noqa: E402  (tests/libclamav is not a package)

PATCHED = os.environ.get("LIBCLAMAV_PATCHED")
FIXES = os.environ.get("LIBCLAMAV_FIXES")
ASAN = os.environ.get("LIBCLAMAV_ASAN")
TESTFILES = pathlib.Path("/usr/share/clamav-testfiles")
CASE_MAX = 4 << 20
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
BIG_NDB = int(os.environ.get("DIFF_NDB", "150000"))
BIG_LDB = int(os.environ.get("DIFF_LDB", "100000"))
SEED = int(os.environ.get("DIFF_SEED", "0"))
# make libclamav-diff-long: also the pairs too slow for make test (the adversarial corpus's
# decompression cases in all-matches mode write their members to disk: minutes).
LONG = bool(os.environ.get("DIFF_LONG"))
# PE files of clamav-testfiles that the engine corpus breaks in several ways (gen_files.py).
ENGINE_PE = ["clam.exe", "clam-upx.exe", "clam-petite.exe", "clam_IScab_ext.exe"]
ENGINE_DBS = ["eng-macro", "eng-offsets", "eng-yara", "eng-bcomp", "eng-same", "eng-bm", "eng-bmlong", "eng-all"]
ISSUE20_DB = ("Mac.G1:0:$1$:585858\n", "Mac.ChkA;Target:0;0>0&1=2;41414141;${6-6}1$\n"
              "Mac.ChkB;Target:0;0>0&1=1;41414141;${6-6}1$\n")

pytestmark = pytest.mark.skipif(not PATCHED, reason="LIBCLAMAV_PATCHED not set (make libclamav-diff)")
needs_fixes = pytest.mark.skipif(not FIXES, reason="LIBCLAMAV_FIXES not set (make libclamav-diff)")


def build_scanloop(out, prefix, sanitize=False):
    return cbuild.harness(out, "scanloop.c", prefix, sanitize)


def seeded_env():
    return {**os.environ, "DIFF_SEED": str(SEED)}


def generated_corpus(folder, seeds):
    """Seeded files: random, text, corpus slices and mutations, EICAR placed, zips of some of them."""
    rng = random.Random(0x64696666 + SEED)
    folder.mkdir()
    files = []

    def put(name, data):
        p = folder / name
        p.write_bytes(data)
        files.append(p)

    for i in range(40):
        put(f"random-{i}", rng.randbytes(rng.choice([0, 1, 68, 500, 4096, 70000])))
    for i in range(20):
        words = [rng.choice(["virus", "clean", "scan", "<html>", "%PDF-1.4", "MZ", "\x7fELF", "PK"])
                 for _ in range(rng.randint(1, 400))]
        put(f"text-{i}.txt", " ".join(words).encode())
    for i, src in enumerate(sorted(seeds)[:40]):
        data = src.read_bytes()[: 1 << 20]
        if not data:
            continue
        at = rng.randrange(len(data))
        put(f"slice-{i}", data[at:at + rng.randint(16, 8192)])
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        put(f"mutated-{i}", bytes(mutated))
    for i in range(10):
        pad = rng.randbytes(rng.randint(0, 20000))
        put(f"eicar-{i}", pad[: len(pad) // 2] + EICAR + pad[len(pad) // 2:])
    for i in range(10):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as z:
            for k, p in enumerate(rng.sample(files, 3)):
                z.writestr(f"m{k}-{p.name}", p.read_bytes())
        put(f"zip-{i}.zip", buf.getvalue())
    for p in ["/usr/bin/true", "/usr/bin/env", "/usr/lib/x86_64-linux-gnu/libz.so.1"] + \
            sorted(str(x) for x in pathlib.Path("/usr/share/doc").glob("*/*.pdf"))[:3]:
        if os.path.isfile(p):
            put("system-" + os.path.basename(p), pathlib.Path(p).read_bytes())
    return files


def adversarial_corpus(folder):
    sys.path.insert(0, str(TOP / "tests" / "e2e"))
    import adversarial  # noqa: E402  (tests/e2e is not a package)

    folder.mkdir()
    out = []
    for c in adversarial.Generator().cases():
        if c.data is not None and len(c.data) <= CASE_MAX:
            p = folder / (c.name.replace("/", "_")[:100] + "-" + hashlib.sha1(c.data).hexdigest()[:8])
            p.write_bytes(c.data)
            out.append(p)
    return out


def engine_corpus(folder):
    pe = [str(TESTFILES / n) for n in ENGINE_PE if (TESTFILES / n).is_file()]
    subprocess.run([sys.executable, str(HERE / "gen_files.py"), str(folder)] + pe, check=True, env=seeded_env())
    return sorted(folder.iterdir())


def write_db(folder, files):
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    t = tmp_path_factory.mktemp("libclamav-diff")
    bins = {"system": build_scanloop(t / "scanloop-system", None),
            "patched": build_scanloop(t / "scanloop-patched", PATCHED)}
    if FIXES:
        bins["fixes"] = build_scanloop(t / "scanloop-fixes", FIXES)
    if ASAN:
        bins["asan"] = build_scanloop(t / "scanloop-asan", ASAN, sanitize=True)
    testfiles = sorted(TESTFILES.iterdir())
    corpus = {"testfiles": testfiles,
              "adversarial": adversarial_corpus(t / "adversarial"),
              "generated": generated_corpus(t / "generated", testfiles),
              "engine": engine_corpus(t / "engine")}
    dbs = {}
    toy = t / "db-toy"
    subprocess.run(["sh", str(TOP / "scripts" / "make-testdb"), str(toy)], check=True)
    dbs["toy"] = toy
    seeds = [str(p) for p in testfiles]
    for name, ndb, ldb in (("mid", 15000, 10000), ("big", BIG_NDB, BIG_LDB)):
        d = t / f"db-{name}"
        subprocess.run([sys.executable, str(HERE / "gen_db.py"), str(d), str(ndb), str(ldb)] + seeds, check=True,
                       env=seeded_env())
        dbs[name] = d
        only = t / f"db-{name}-ldb"
        only.mkdir()
        shutil.copy(d / "diff.ldb", only / "diff.ldb")
        dbs[f"{name}-ldb"] = only
    eng = t / "db-engine"
    subprocess.run([sys.executable, str(HERE / "gen_db.py"), "--engine", str(eng)], check=True, env=seeded_env())
    for name in ENGINE_DBS:
        dbs[name] = eng / name.split("-", 1)[1]
    dbs["issue20"] = write_db(t / "db-issue20", {"m.ndb": ISSUE20_DB[0], "m.ldb": ISSUE20_DB[1]})
    dbs["eng-hash"] = t / "db-hash"
    subprocess.run([sys.executable, str(HERE / "gen_db.py"), "--hash", str(dbs["eng-hash"])] +
                   [str(p) for p in corpus["engine"] + testfiles], check=True, env=seeded_env())
    return {"t": t, "bins": bins, "corpus": corpus, "dbs": dbs}


SANITIZER_ENV = {"ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1",
                 "LSAN_OPTIONS": f"suppressions={TOP}/tests/lsan.supp:print_suppressions=0",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def start(binary, db, files, wrapper=(), flags=()):
    return subprocess.Popen(list(wrapper) + [str(binary)] + list(flags) + [str(db)] + [str(f) for f in files],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **SANITIZER_ENV})


def finish(proc, what, timeout=1200):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}: {err[-2000:]}"
    return out.splitlines(), err


def scan(binary, db, files):
    return finish(start(binary, db, files), f"{binary} {db}")


def scan_all(env, db, files, libs, allmatch=False):
    """The answers of several libraries to the same files, run side by side (two cores): {lib: {path:
    answer}}; Debian's library ("system") gets only the files not left out for db (fix cases).
    allmatch: every signature that matches is named (scanloop -a)."""
    procs = {}
    got = {}
    for lib in libs:
        todo = [f for f in files if not stock_excluded(db, f)] if lib == "system" else files
        if not todo:
            got[lib], got[lib + "-stderr"] = {}, ""
            continue
        procs[lib] = (start(env["bins"][lib], env["dbs"][db], todo, flags=["-a"] if allmatch else []), todo)
    for lib, (proc, todo) in procs.items():
        lines, err = finish(proc, f"{lib} library, database {db}")
        assert len(lines) == len(todo), (lib, db, lines[-3:])
        got[lib] = dict(normalised(line, allmatch) for line in lines)
        got[lib + "-stderr"] = err
    return got


def normalised(line, allmatch):
    """(path, answer); all-matches names sorted: the order of the callbacks is not part of it."""
    path, answer = line.split("\t", 1)
    if allmatch and answer.startswith("VIRUS\t"):
        _, names, rest = answer.split("\t", 2)
        answer = "\t".join(("VIRUS", ",".join(sorted(names.split(","))), rest))
    return path, answer


def stock_excluded(db, path):
    name = pathlib.Path(path).name
    return any(fnmatch.fnmatch(db, d) and fnmatch.fnmatch(name, f)
               for case in fix_cases.FIX_CASES for d, f in case.stock_skip)


def diff(a, b):
    return [(k, a[k], b.get(k)) for k in a if a[k] != b.get(k)]


def test_libraries_are_the_ones_named(env):
    """Each harness loads the library it is meant to: ours from their prefixes, Debian's from
    /usr/lib; all say 1.4.6 (ours are built from the source of Debian's 1.4.6), so the file names
    tell them apart."""
    def loaded(lib):
        _, err = scan(env["bins"][lib], env["dbs"]["toy"], [TESTFILES / "clam.exe"])
        m = re.search(r"libclamav (\S+) \((.*)\), ", err)
        assert m, err
        return m.group(1), os.path.realpath(m.group(2))

    assert loaded("patched") == ("1.4.6", os.path.realpath(PATCHED + "/lib/libclamav.so.12"))
    if FIXES:
        assert loaded("fixes") == ("1.4.6", os.path.realpath(FIXES + "/lib/libclamav.so.12"))
        assert os.path.realpath(FIXES) != os.path.realpath(PATCHED)
    version, path = loaded("system")
    assert version == "1.4.6" and path.startswith("/usr/lib/"), path


# Databases with several NDB signatures of the same bytes (different offsets): which of them a
# first-match scan names depends on memory addresses, in Debian's library too (seen under valgrind
# and in 1 of 8 runs: Diff.Eng.Off.496 or .730 for the same Mach-O file), so they are compared in
# all-matches mode only, where the set of names is stable.
TIED_DBS = {"eng-offsets", "eng-same", "eng-all"}
# (database, corpus, mode) triples; the real-size database only with the smaller corpora (the
# unpatched library spends ~140 ms on every layer of every file with it). Mode "all": every
# matching signature is named (CL_SCAN_GENERAL_ALLMATCHES), not only the first.
# make test keeps one pair of each kind; the 150k-NDB and 100k-LDB databases ("big", "big-ldb",
# ~2.5 minutes) only in make libclamav-diff-long: the real-size database's test below loads more of
# both kinds of signature at once. The engine databases together in all-match mode ("eng-all") run on
# the generated corpus in make test (clamav-testfiles and the adversarial corpus, ~30 s more, in the
# long run); each engine database alone runs on the engine corpus in both modes.
PAIRS = [(db, c, "first") for db in ("toy", "mid") for c in ("testfiles", "adversarial", "generated", "engine")] + \
        [("mid-ldb", "testfiles", "first"), ("mid-ldb", "generated", "first")] + \
        ([("big", "testfiles", "first"), ("big-ldb", "testfiles", "first"), ("big-ldb", "generated", "first")]
         if LONG else []) + \
        [(db, "engine", m) for db in ENGINE_DBS for m in ("first", "all") if m == "all" or db not in TIED_DBS] + \
        [("eng-all", c, "all") for c in ("generated",) + (("testfiles", "adversarial") if LONG else ())] + \
        [("mid-ldb", "generated", "all")] + ([("mid", "generated", "all")] if LONG else []) + \
        [("eng-hash", c, m) for c in ("engine", "testfiles") for m in ("first", "all")]
# Databases for which a file of the corpus must be detected (the planted signatures, EICAR, the
# engine corpus's own patterns), so a harness that scanned nothing would not pass.
DETECTS = {"toy", "mid", "mid-ldb", "big", "big-ldb", "eng-hash"} | set(ENGINE_DBS)


@needs_fixes
@pytest.mark.parametrize("db,corpus,mode", PAIRS, ids=[f"{d}-{c}" + ("-allmatch" * (m == "all")) for d, c, m in PAIRS])
def test_same_answers(env, db, corpus, mode):
    """patched == fixes on every file; fixes == Debian's on every file but the fix cases. An answer
    is the verdict, the signature name(s) and the count of libclamav errors/warnings of the scan."""
    files = env["corpus"][corpus]
    assert files
    got = scan_all(env, db, files, ("patched", "fixes", "system"), allmatch=mode == "all")
    d = diff(got["fixes"], got["patched"])
    assert not d, f"speed patches change {len(d)} of {len(files)} answers, first (file, fixes, patched): {d[:5]}"
    d = diff(got["system"], got["fixes"])
    assert not d, f"fixes-only differs from Debian's on {len(d)} of {len(got['system'])} files, first " \
                  f"(file, Debian's, fixes): {d[:5]} (a fix case? see fix_cases.py)"
    answers = got["fixes"].values()
    if db in DETECTS and corpus != "adversarial":
        assert any("VIRUS\t" in a for a in answers), list(answers)[:5]
    if corpus == "engine" and db == "eng-all" and mode == "all":
        names = "\n".join(answers)
        for kind in ("Diff.Eng.Mac", "Diff.Eng.Off", "YARA.DiffYara", "Diff.Eng.BC", "Diff.Eng.Same", "Diff.Eng.BM.",
                     "Diff.Eng.BMLong.", "Mac.ChkA"):
            assert kind in names, kind
    if db.endswith("-ldb") and corpus == "generated":
        # Both paths of the patched evaluation are exercised: signatures found through a
        # subsignature match, and signatures true with no match (FileSize-limited "0=0|1").
        names = "\n".join(answers)
        assert "Diff.Planted.Ldb." in names and "Diff.Always." in names, names[:2000]


@needs_fixes
def test_engine_databases_reach_their_features(env):
    """Each engine database detects files of the engine corpus through the feature it is about (a
    database that loaded nothing, or aimed at nothing, would compare equal and prove nothing): many
    distinct signatures match (all-matches mode), and the macro signatures of every group 0-31
    match through their macro subsignature."""
    files = env["corpus"]["engine"]
    want = {"eng-macro": ("Diff.Eng.Mac", 64), "eng-offsets": ("Diff.Eng.Off", 100),
            "eng-yara": ("YARA.DiffYara", 8), "eng-bcomp": ("Diff.Eng.BC.", 8), "eng-same": ("Diff.Eng.Same", 6),
            "eng-bm": ("Diff.Eng.BM.", 70), "eng-bmlong": ("Diff.Eng.BMLong.", 10),
            "eng-hash": ("Diff.Eng.Hash.", 200)}
    for db, (prefix, least) in want.items():
        lines, err = finish(start(env["bins"]["fixes"], env["dbs"][db], files, flags=["-a"]), db)
        names = {n for x in lines if "\tVIRUS\t" in x for n in x.split("\t")[2].split(",")}
        hits = {n for n in names if n.startswith(prefix)}
        print(f"{db}: {len(hits)} distinct signatures matched over {len(files)} files")
        assert len(hits) >= least, (db, sorted(hits), err[-500:])
        if db == "eng-macro":
            groups = {int(n.split(".")[2][3:]) for n in hits if re.match(r"Diff\.Eng\.Mac\d+\.[0-3]\.", n)}
            assert groups == set(range(32)), sorted(set(range(32)) - groups)


@needs_fixes
def test_issue20_macro_check(env):
    """Issue 20's file: the end-of-scan macro check runs (stock: Mac.ChkA; 0001's self-initialised
    pointer skipped it: Mac.ChkB), in all three libraries, with no libclamav error."""
    f = env["t"] / "issue20-macro"
    f.write_bytes(b"AAAAzzXXXqqqqqqqqqqqAAAAqqqqqqqqqqqqqqqq")
    for lib in ("system", "fixes", "patched"):
        lines, _ = scan(env["bins"][lib], env["dbs"]["issue20"], [f])
        assert lines == [f"{f}\tVIRUS\tMac.ChkA.UNOFFICIAL\tmsg 0/0"], (lib, lines)


CASES = fix_cases.FIX_CASES


@needs_fixes
@pytest.mark.parametrize("case", CASES, ids=[c.patch for c in CASES])
def test_fix_case(env, case):
    """A fix patch's regression files: the fixed answer with both of our libraries (no libclamav
    error), and with Debian's another answer, a crash or a memory error (valgrind) on each file said
    to show the bug, the same answer on the controls."""
    assert list((TOP / "third_party" / "libclamav").glob(f"{case.patch}-*.patch")), case.patch
    d = env["t"] / f"fix-{case.patch}"
    db = write_db(d, case.db) if case.db else env["dbs"]["toy"]
    files = {}
    for name, data in case.files.items():
        files[name] = d / name
        files[name].write_bytes(data)
    for lib in ("fixes", "patched"):
        lines, _ = scan(env["bins"][lib], db, list(files.values()))
        got = dict(x.split("\t", 1) for x in lines)
        for name, want in case.fixed.items():
            assert got[str(files[name])] == want.replace(" ", "\t", 1) + "\tmsg 0/0", (lib, name, got)
    for name, path in files.items():
        proc = start(env["bins"]["system"], db, [path])
        out, err = proc.communicate(timeout=600)
        answer = out.strip().split("\t", 1)[-1].rsplit("\tmsg", 1)[0].replace("\t", " ")
        if name not in case.stock_differs:
            assert proc.returncode == 0 and answer == case.fixed[name], (name, proc.returncode, out, err[-500:])
            continue
        if proc.returncode != 0 or answer != case.fixed[name]:
            continue        # crashed, or answered otherwise: the file shows the bug
        vg = shutil.which("valgrind")
        assert vg, f"{name}: Debian's library answers as fixed; valgrind (scripts/install-deps) would tell more"
        proc = start(env["bins"]["system"], db, [path], wrapper=(vg, "-q", "--error-exitcode=99"))
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 99 and "Invalid read" in err, (name, proc.returncode, err[-2000:])


def test_small_scan_floor_removed(env):
    """A small clean file with the real-size LDB/NDB mix: the per-scan floor of the unpatched code
    (allocating and filling 768 bytes per logical signature, evaluating every expression) is gone.
    Against the fixes-only build when there is one (what the speed patches are measured against),
    else Debian's. A ratio, not a time: the machine is shared."""
    small = env["t"] / "random-small"
    small.write_bytes(random.Random(7).randbytes(68))
    base = "fixes" if FIXES else "system"
    cpu = {}
    for name in (base, "patched"):
        r = subprocess.run([str(env["bins"][name]), "-n", "20", str(env["dbs"]["big"]), str(small)],
                           capture_output=True, text=True, timeout=600, check=True)
        cpu[name] = float(r.stdout.split()[-1])
    print(f"cpu us per scan: {cpu}")
    assert cpu["patched"] * 5 < cpu[base], cpu


# The sanitized library is slow to load large databases (ASan on every allocation of the loader):
# the real-size logical signatures alone, and the full mix at the mid size.
ASAN_PAIRS = [(db, c) for db in ("toy", "mid") for c in ("testfiles", "adversarial", "generated", "engine")] + \
             [("big-ldb", "testfiles"), ("big-ldb", "generated")] + [(db, "engine") for db in ENGINE_DBS]


@needs_fixes
@pytest.mark.skipif(not ASAN, reason="LIBCLAMAV_ASAN not set (make libclamav-asan)")
@pytest.mark.parametrize("db,corpus", ASAN_PAIRS, ids=[f"{d}-{c}" for d, c in ASAN_PAIRS])
def test_sanitized_library(env, db, corpus):
    """The patched library built with ASan+UBSan scans every corpus without a report (UBSan halts,
    ASan and LeakSanitizer exit non-zero, which scan() refuses), with the fixes-only library's
    answers."""
    files = env["corpus"][corpus]
    got_a, err = scan(env["bins"]["asan"], env["dbs"][db], files)
    assert f"({ASAN}/lib/libclamav.so" in err, err[:500]	# the sanitized build is the one loaded
    assert "runtime error" not in err and "AddressSanitizer" not in err, err[-3000:]
    got_f, _ = scan(env["bins"]["fixes"], env["dbs"][db], files)
    d = [(f, a) for f, a in zip(got_f, got_a) if f != a]
    assert len(got_a) == len(files) and not d, d[:5]


def real_size_db(t):
    """bench/gen-real-db's database: make bench-real's copy when it is current (same generator),
    else a new one (about 15 s, 570 MB)."""
    gen = TOP / "bench" / "gen-real-db"
    kept = TOP / "build" / "bench" / "db-real"
    stamp = kept / ".generator-sha256"
    if stamp.is_file() and stamp.read_text() == hashlib.sha256(gen.read_bytes()).hexdigest():
        return kept
    subprocess.run([sys.executable, str(gen), str(t / "db-real")], check=True, stdout=subprocess.DEVNULL)
    return t / "db-real"


def count_dbs(folder):
    """Text databases that stress the signature count of cl_load (patch 0503): comments, CRLF, no
    final newline, a leading space, and files of seeded random line lengths whose 64 KiB block
    boundaries fall inside lines, on newlines and inside comments."""
    rnd = random.Random(SEED + 503)
    small = {"comment": "A:0:*:414243444546\n# comment text\nB:0:*:414243444547\n",
             "crlf": "A:0:*:414243444546\r\nB:0:*:414243444547\r\n",
             "nofinal": "A:0:*:414243444546\nB:0:*:414243444547",
             "space": " A:0:*:414243444546\n"}
    folder.mkdir()
    dirs = [write_db(folder / k, {"a.ndb": v}) for k, v in small.items()]
    big = folder / "big"
    big.mkdir()
    for f in range(3):
        lines = []
        for i in range(rnd.randrange(2000, 6000)):
            pick = rnd.random()
            if pick < 0.05:
                lines.append("#" + "c" * rnd.randrange(0, 300))
            else:
                lines.append(f"Count.{f}.{i}:0:*:" + "".join(rnd.choice("0123456789abcdef")
                                                             for _ in range(2 * rnd.randrange(4, 200))))
        eol = "\r\n" if f == 1 else "\n"
        (big / f"c{f}.ndb").write_text(eol.join(lines) + (eol if f != 2 else ""))
    return dirs + [big]


def test_load_progress_total_is_the_same(env):
    """Patch 0503 counts a text database's signatures by blocks: the total the load-progress
    callback is told is the stock count on every database of the test (quirks included: a comment
    line with text counts, and so does the end of a file that ends on a newline)."""
    t = env["t"]
    bins = {"system": cbuild.harness(t / "sigcount-system", "sigcount.c", None),
            "patched": cbuild.harness(t / "sigcount-patched", "sigcount.c", PATCHED)}
    if FIXES:
        bins["fixes"] = cbuild.harness(t / "sigcount-fixes", "sigcount.c", FIXES)
    dirs = count_dbs(t / "db-count") + [env["dbs"][k] for k in ("toy", "mid", "mid-ldb", "eng-all")]
    got = {lib: subprocess.run([str(b)] + [str(d) for d in dirs], capture_output=True, text=True,
                               check=True).stdout for lib, b in bins.items()}
    assert got["patched"] == got["system"], (got["patched"], got["system"])
    assert got.get("fixes", got["system"]) == got["system"]
    assert "total=5 loaded=2 rc=0" in got["patched"], got["patched"]     # the comment case
    assert got["patched"].count("rc=0") == len(dirs), got["patched"]


@needs_fixes
def test_same_answers_with_the_real_size_database(env, tmp_path_factory):
    """7.55M signatures shaped like main+daily (hashes of files and PE sections, body and logical
    signatures), plus the toy database (ClamAV-Test-File, EICAR) and the planted NDB/LDB
    signatures, so that the corpus is detected through every kind of matcher at once."""
    t = tmp_path_factory.mktemp("real")
    real = real_size_db(t)
    db = t / "db"
    db.mkdir()
    for f in sorted(real.glob("real.*")):
        (db / f.name).symlink_to(f)
    for src in (env["dbs"]["toy"], env["dbs"]["mid"]):
        for f in src.iterdir():
            (db / f.name).symlink_to(f)
    env["dbs"]["real"] = db
    files = env["corpus"]["testfiles"]
    got = scan_all(env, "real", files, ("patched", "fixes", "system"))
    err = got["patched-stderr"]
    sigs = int(re.search(r", (\d+) signatures", err).group(1))
    assert sigs > 7_500_000, err
    d = diff(got["fixes"], got["patched"])
    assert not d, f"{len(d)} of {len(files)} differ, first: {d[:5]}"
    d = diff(got["system"], got["fixes"])
    assert not d, f"{len(d)} of {len(files)} differ, first: {d[:5]}"
    assert sum("VIRUS\t" in a for a in got["fixes"].values()) > 20, got["fixes"]
