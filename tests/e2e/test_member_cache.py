"""The member cache (MEMBER_CACHE, src/scanner_members.c; issue 26 item 2): archive members of
complete clean scans are remembered by the SHA-256 of their bytes and of their place (the types of
the layers above them, the scan mode, the database load), and skipped in later uploads. Attacked
first: a member once cut short is never remembered; a container-dependent signature is not fooled
by the member's clean verdict in another container; a reload forgets; the verdict-integrity cases
answer the same with the cache warm (each twice, after clean twins of them filled the cache); an
archive of identical clean members plus EICAR is still found. Then its benefit: the same files in
two different uploads."""
import gzip
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests

import adversarial
import harness

EICAR = harness.EICAR
TAIL_MARK = b"clamrest-member-cache-tail-marker"
TAIL_SIG = "Clamrest.Test.MemberTail"
SEVENZ_MARK = b"clamrest-member-cache-only-in-7z"
SEVENZ_SIG = "Clamrest.Test.Only7z"
RELOAD_MARK = b"clamrest-member-cache-reload-marker"
RELOAD_SIG = "Clamrest.Test.AfterReload"


def sigs_db(path):
    """The test database plus our signatures: a body signature for the tail marker, and a logical
    signature matching SEVENZ_MARK only in a member of a 7z (Container:CL_TYPE_7Z)."""
    harness.make_db(path)
    (path / "member.ndb").write_text(f"{TAIL_SIG}:0:*:{TAIL_MARK.hex()}\n")
    (path / "member.ldb").write_text(
        f"{SEVENZ_SIG};Engine:81-255,Container:CL_TYPE_7Z,Target:0;0;{SEVENZ_MARK.hex()}\n")
    return path


@pytest.fixture(scope="module")
def db():
    d = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-mcache-db-"))
    yield sigs_db(d / "db")
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def servers(db):
    """servers(**env) -> the one server with those settings and our database."""
    started = harness.servers_by_settings()
    get = next(started)
    yield lambda **env: get(db=db, **env)
    for _ in started:
        pass


def scan(srv, data, name="sample.bin"):
    """(malware, reason) of /v2/scan."""
    r = harness.send_to(srv, "v2", data, name)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["malware"], body["reason"]


def zip_of(members):
    return adversarial.zip_deflate(members)


def tgz_of(members):
    return gzip.compress(adversarial.tar(members), mtime=0)


def sevenz_of(members):
    with tempfile.TemporaryDirectory() as d:
        names = []
        for name, data in members:
            (pathlib.Path(d) / name).write_bytes(data)
            names.append(name)
        subprocess.run(["7z", "a", "-bd", "-y", "out.7z", *names], cwd=d, check=True,
                       stdout=subprocess.DEVNULL)
        return (pathlib.Path(d) / "out.7z").read_bytes()


def hits(srv):
    return harness.metric(srv, "clamrest_member_cache_hits_total")


# --- (1) a member once cut short is never remembered ---

def tail_member():
    """M: a zip whose one member is 3 MB of zeros, then the tail marker: only a complete scan of
    M's member finds it."""
    return zip_of([("inner.bin", b"\0" * 3_000_000 + TAIL_MARK)])


@pytest.mark.parametrize("settings", [{}, {"ALERT_EXCEEDS_MAX": "no"}], ids=["alert", "cut_clean"])
def test_cut_member_not_remembered_scan_size(servers, settings):
    """MAX_SCAN_SIZE 5 MB: a 2.5 MB filler before M leaves too little for M's member: cut
    (answered as the limit, or clean with ALERT_EXCEEDS_MAX=no). M alone afterwards must be found."""
    srv = servers(MAX_CONTENT_LENGTH="1000000", MAX_SCAN_SIZE="5000000", MAX_FILE_SIZE="5000000",
                  **settings)
    m = tail_member()
    cut = zip_of([("filler.bin", b"\1" * 2_500_000), ("m.zip", m)])
    malware, reason = scan(srv, cut)
    if not settings:
        assert malware and "Limits.Exceeded" in reason, reason
    for stamp in (b"a", b"b"):      # two uploads: neither may be answered from a remembered M
        malware, reason = scan(srv, zip_of([("stamp.txt", stamp * 10), ("m.zip", m)]))
        assert malware and reason == TAIL_SIG + ".UNOFFICIAL", (stamp, reason)


def test_cut_member_not_remembered_max_files(servers):
    """MAX_FILES 8: M (a zip of 4 clean members, then the marked one) as the last of several
    members is cut by the file count; M alone must be found."""
    srv = servers(MAX_FILES="8")
    m = zip_of([(f"c{i}.txt", b"clean member %d " % i * 8) for i in range(4)] +
               [("bad.bin", b"x" * 100 + TAIL_MARK)])
    cut = zip_of([(f"f{i}.txt", b"filler %d " % i * 8) for i in range(4)] + [("m.zip", m)])
    malware, reason = scan(srv, cut)
    assert malware, reason
    malware, reason = scan(srv, zip_of([("m.zip", m)]))
    assert malware and reason == TAIL_SIG + ".UNOFFICIAL", reason


def test_member_of_detected_upload_not_remembered(servers):
    """An upload that found something remembers none of its members: M's clean-looking parts
    beside EICAR are not skipped later, and EICAR beside them is found every time."""
    srv = servers()
    clean = [(f"doc{i}.txt", b"the same clean text %d\n" % i * 50) for i in range(5)]
    for _ in range(2):
        malware, reason = scan(srv, zip_of(clean + [("eicar.com", EICAR)]))
        assert malware and "eicar" in reason.lower(), reason


# --- (2) a logical signature that depends on the container ---

def test_container_dependent_signature(servers):
    """M (a text holding SEVENZ_MARK) is clean in a zip, and remembered there; inside a 7z the
    .ldb's Container:CL_TYPE_7Z matches it: the zip's verdict must not answer for the 7z."""
    srv = servers()
    m = [("m.txt", b"some text " * 20 + SEVENZ_MARK + b" more text" * 20)]
    assert scan(srv, zip_of(m + [("a.txt", b"first zip " * 30)])) == (False, None)
    before = hits(srv)
    assert scan(srv, zip_of(m + [("b.txt", b"second zip " * 30)])) == (False, None)
    assert hits(srv) > before, "M should be remembered in its zip"
    malware, reason = scan(srv, sevenz_of(m))
    assert malware and reason == SEVENZ_SIG + ".UNOFFICIAL", reason


# --- (3) a reload forgets ---

def test_reload_forgets(db):
    """M remembered clean; a new signature for M arrives (reload): M in another upload is found."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-mcache-reload-"))
    sigs_db(d / "db")
    srv = harness.Clamrest(env={"CLAMAV_DB_DIR": str(d / "db"), "DB_CHECK_INTERVAL": "0"})
    try:
        m = ("m.txt", b"innocent until reloaded " * 10 + RELOAD_MARK)
        assert scan(srv, zip_of([m, ("a.txt", b"one " * 40)])) == (False, None)
        before = hits(srv)
        assert scan(srv, zip_of([m, ("b.txt", b"two " * 40)])) == (False, None)
        assert hits(srv) > before
        assert harness.metric(srv, "clamrest_member_cache_entries") > 0
        sig = d / "db" / "reload.ndb"
        sig.write_text(f"{RELOAD_SIG}:0:*:{RELOAD_MARK.hex()}\n")
        stamp = time.time() + 10
        os.utime(sig, (stamp, stamp))
        srv.signal(signal.SIGUSR2)
        assert harness.wait_until(lambda: harness.metric(
            srv, 'clamrest_database_reloads_total{result="success"}') == 1, 60), srv.logs()
        assert harness.metric(srv, "clamrest_member_cache_entries") == 0
        malware, reason = scan(srv, zip_of([m, ("c.txt", b"three " * 40)]))
        assert malware and reason == RELOAD_SIG + ".UNOFFICIAL", reason
    finally:
        rc = srv.stop()
        logs = srv.logs()
        srv.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    assert rc == 0 and "AddressSanitizer" not in logs and "runtime error" not in logs, logs


# --- (4) the verdict-integrity cases with the cache warm ---

# make test warms one limit group; MEMBER_CACHE_GROUPS=dec,mib,split (make member-cache-long) all.
GROUPS = tuple(os.environ.get("MEMBER_CACHE_GROUPS", "split").split(","))


def clean_twins():
    """The same cases built with a harmless string of EICAR's length in its place: the same
    fillers, members and nesting, clean; scanned first, they fill the member cache."""
    real = adversarial.EICAR
    adversarial.EICAR = b"Y" * len(real)
    try:
        return {c.name: c.data for c in adversarial.Generator(adversarial.Generator().seed)
                .cases(GROUPS)}
    finally:
        adversarial.EICAR = real


@pytest.mark.corpus
def test_verdict_integrity_warm(servers):
    cases = adversarial.cached_cases(adversarial.Generator(), groups=GROUPS)
    twins = clean_twins()
    bad = []
    warmed = 0
    for c in cases:
        srv = servers(**adversarial.GROUPS[c.group], DB_CHECK_INTERVAL="0")
        twin = twins.get(c.name)
        if twin is not None and twin != c.data:
            scan(srv, twin, "twin.bin")
            warmed += 1
        for i in range(2):      # twice: the second with the case's own members warm
            malware, reason = scan(srv, c.data)
            if not malware:
                bad.append(f"{c.name} (send {i + 1}): FALSE CLEAN")
            elif c.expect == "eicar" and "eicar" not in reason.lower():
                bad.append(f"{c.name} (send {i + 1}): {reason}, expected EICAR")
    assert warmed > len(cases) // 2
    assert not bad, "\n".join(bad)
    assert sum(hits(servers(**adversarial.GROUPS[g], DB_CHECK_INTERVAL="0")) for g in GROUPS) > 0


# --- (5) counted; identical members; the benefit ---

def test_identical_members_then_eicar(servers):
    """N identical clean members and EICAR: the repeats are hits (libclamav's own cache would
    remember them too), EICAR is found; the metrics count them."""
    srv = servers()
    same = b"identical clean member\n" * 40
    assert scan(srv, zip_of([("warm/a.txt", same), ("warm/z.txt", b"z" * 99)])) == (False, None)
    before = hits(srv)
    members = [(f"m{i:02d}.txt", same) for i in range(20)]
    malware, reason = scan(srv, zip_of(members + [("eicar.com", EICAR)]))
    assert malware and "eicar" in reason.lower(), reason
    assert hits(srv) >= before + 20
    assert harness.metric(srv, "clamrest_member_cache_misses_total") > 0
    malware, reason = scan(srv, tgz_of(members + [("x/eicar.com", EICAR)]))
    assert malware and "eicar" in reason.lower(), reason


def test_off_with_zero(servers):
    srv = servers(MEMBER_CACHE="0")
    members = [("a.txt", b"aaaa " * 50), ("b.txt", b"bbbb " * 50)]
    for stamp in (b"1", b"2"):
        assert scan(srv, zip_of(members + [("s.txt", stamp * 9)])) == (False, None)
    assert hits(srv) == 0 and harness.metric(srv, "clamrest_member_cache_entries") == 0


def test_off_with_a_file_policy(servers):
    """An upload policy needs every layer's type: no member is skipped."""
    srv = servers(DENY_TYPES="CL_TYPE_MSEXE")
    members = [("a.txt", b"policy aaaa " * 50), ("b.txt", b"policy bbbb " * 50)]
    for stamp in (b"1", b"2"):
        assert scan(srv, zip_of(members + [("s.txt", stamp * 9)])) == (False, None)
    assert hits(srv) == 0


def bash_docs():
    root = pathlib.Path("/usr/share/doc/bash")
    if not root.is_dir():
        pytest.skip("no /usr/share/doc/bash")
    return [(str(p.relative_to(root.parent)), p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()]


def test_benefit_bash_docs(servers):
    """A tar.gz of /usr/share/doc/bash with two different stamps: two uploads; the second's
    members come from the member cache."""
    srv = servers()
    docs = bash_docs()
    assert scan(srv, tgz_of([("stamp", b"first upload")] + docs)) == (False, None)
    before = hits(srv)
    assert scan(srv, tgz_of([("stamp", b"second upload")] + docs)) == (False, None)
    assert hits(srv) - before >= len(docs), (hits(srv), before, len(docs))


# --- members the second reader hands back (a .deb's: libclamav does not open ar archives) ---

def ar_of(members):
    out = [b"!<arch>\n"]
    for name, data in members:
        out.append(b"%-16s%-12d%-6d%-6d%-8o%-10d`\n" % (name.encode() + b"/", 1577836800, 0, 0,
                                                       0o644, len(data)))
        out.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def test_second_reader_members_remembered(servers):
    """A .deb-shaped ar archive: its members are scanned as the second reader hands them back;
    the same data.tar.gz in another package (another stamp) is a hit."""
    srv = servers()
    data = tgz_of([(f"usr/share/doc/p/f{i}.txt", b"package file %d\n" % i * 40) for i in range(8)])
    for stamp in (b"1.0", b"1.1"):
        deb = ar_of([("debian-binary", b"2.0\n"), ("control.tar.gz",
                     tgz_of([("control", b"Package: p\nVersion: " + stamp + b"\n")])),
                     ("data.tar.gz", data)])
        if stamp == b"1.1":
            before = hits(srv)
        assert scan(srv, deb) == (False, None)
    assert hits(srv) > before
    malware, reason = scan(srv, ar_of([("debian-binary", b"2.0\n"), ("data.tar.gz", data),
                                       ("eicar.com", EICAR)]))
    assert malware and "eicar" in reason.lower(), reason


def test_second_reader_member_cut_not_remembered(servers):
    """The scan-size attack with the members in an ar archive (the second reader's path), answered
    clean when cut (ALERT_EXCEEDS_MAX=no): M alone in another ar must be found."""
    srv = servers(MAX_CONTENT_LENGTH="3000000", MAX_SCAN_SIZE="5000000", MAX_FILE_SIZE="5000000",
                  ALERT_EXCEEDS_MAX="no")
    m = tail_member()
    scan(srv, ar_of([("filler.bin", b"\1" * 2_500_000), ("m.zip", m)]))
    malware, reason = scan(srv, ar_of([("stamp.txt", b"s" * 10), ("m.zip", m)]))
    assert malware and reason == TAIL_SIG + ".UNOFFICIAL", reason
