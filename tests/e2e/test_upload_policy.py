"""test_upload_policy -- the upload policy (issue 24, docs/POLICY.md): ALLOW_TYPES, DENY_TYPES,
POLICY_DEPTH, BLOCK_EXTENSION_MISMATCH, POLICY_MODE and POLICY_FILE against real files (Debian's
clamav-testfiles, the system's ELF binaries and PDFs) and files written here (images, OLE2 and OOXML
documents with and without a VBA project, scripts), alone and inside zip, 7z, tar.gz and encrypted
zips. Each attack is a test: nesting, the clean cache, another user's policy, type names, a file
libclamav could not look into. A policy never turns malware clean: the engine's name stays."""
import os
import pathlib
import shutil
import signal
import subprocess

import pytest
import requests

import harness
import policy_samples as S

CORPUS = pathlib.Path("/usr/share/clamav-testfiles")
ELF = pathlib.Path("/bin/true").read_bytes()
EICAR_NDB = ("Eicar-Test-Signature:0:*:58354f2150254041505b345c505a58353428505e2937434329377d244549"
             "4341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a\n")


def corpus(name):
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} missing (apt-get install clamav-testfiles)")
    return path.read_bytes()


def real_pdf():
    for p in sorted(pathlib.Path("/usr/share/doc").glob("*/*.pdf")):
        if p.stat().st_size < 2 * 1024 * 1024:
            return p.read_bytes()
    return corpus("clam.pdf")   # a PDF with a PE inside: only where no other is at hand


@pytest.fixture(scope="module")
def eicar_db(tmp_path_factory):
    """A database of EICAR alone: the clamav-testfiles' executables are then clean to the engine,
    so what blocks them is the policy."""
    d = tmp_path_factory.mktemp("eicar-db")
    (d / "eicar.ndb").write_text(EICAR_NDB)
    return d


@pytest.fixture(scope="module")
def servers(eicar_db):
    """servers(real_db=False, **env) -> a server with those settings (one per distinct env)."""
    pool = harness.servers_by_settings()
    get = next(pool)
    yield lambda real_db=False, **env: get(None if real_db else eicar_db, **env)
    next(pool, None)        # stops them, and fails on a bad exit


def v2(srv, data, name="upload.bin", auth=None):
    """(malware, reason) of /v2/scan with a named file part."""
    r = requests.post(srv.url + "/v2/scan", files={"file": (name, data)}, auth=auth or harness.auth(),
                      timeout=60)
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return r.json()["malware"], r.json()["reason"]


def chunked(srv, data):
    r = harness.scan_chunked(srv, data, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["malware"], r.json()["reason"]


def v3(srv, data, name="upload.bin"):
    """The one file of a /v3/scan answer (and the answer)."""
    r = harness.scan_multipart(srv, {"file": (name, data)}, route="/v3/scan")
    assert r.status_code == 200, r.text
    return r.json()["files"][0], r.json()


def blocked(srv, data, reason, name="upload.bin"):
    assert v2(srv, data, name) == (True, reason)


def allowed(srv, data, name="upload.bin"):
    assert v2(srv, data, name) == (False, None)


def policy_metric(srv, rule, family="blocked"):
    text = requests.get(srv.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('clamrest_policy_%s_total{rule="%s"} ' % (family, rule)):
            return float(line.split()[1])
    raise AssertionError(text)


# --- Defaults: nothing changes. ---

def test_no_policy_changes_nothing(servers):
    srv = servers()
    allowed(srv, ELF, "invoice.pdf")
    allowed(srv, corpus("clam.ea06.exe"))
    f, top = v3(srv, ELF)
    assert "policy" not in f and "layers" not in f and "policy_blocked" not in top
    assert f["type"] == "CL_TYPE_ELF"


def test_bad_settings_stop_the_start(eicar_db, tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": str(harness.free_port()),
           "CLAMAV_TXT_URI": "", "CLAMAV_DB_DIR": str(eicar_db)}
    for bad, word in (({"DENY_TYPES": "CL_TYPE_NOPE"}, "CL_TYPE_NOPE"),
                      ({"ALLOW_TYPES": "pictures"}, "pictures"),
                      ({"POLICY_DEPTH": "deep"}, "POLICY_DEPTH"),
                      ({"POLICY_MODE": "warn"}, "POLICY_MODE"),
                      ({"POLICY_FILE": str(tmp_path / "missing")}, "POLICY_FILE")):
        p = subprocess.run([harness.BIN], env={**env, **bad}, capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and word in p.stderr, (bad, p.returncode, p.stderr[-500:])


# --- executables ---

EXECUTABLES = ["clam.ea05.exe", "clam.ea06.exe", "clam-nsis.exe", "clam-upx.exe", "clam_ISmsi_int.exe"]


@pytest.mark.parametrize("name", EXECUTABLES)
def test_executables_denied_pe(servers, name):
    srv = servers(DENY_TYPES="executables")
    assert v2(servers(), corpus(name)) == (False, None)     # clean to this database's engine
    blocked(srv, corpus(name), "Policy.Type.MSEXE")


def test_executables_denied_elf_and_type_names(servers):
    for deny in ("executables", "CL_TYPE_ELF", "cl_type_elf", "ELF", "CL_TYPE_MSEXE, CL_TYPE_ELF"):
        blocked(servers(DENY_TYPES=deny), ELF, "Policy.Type.ELF")
    allowed(servers(DENY_TYPES="CL_TYPE_MSEXE"), ELF)
    srv = servers(DENY_TYPES="executables")
    for data in (real_pdf(), S.png(), S.TEXT, S.ooxml()):
        allowed(srv, data)


@pytest.mark.parametrize("data,type_", [(S.MACHO, "MACHO"), (S.LNK, "LNK"), (S.JAVA_CLASS, "JAVA"),
                                        (S.PYC, "PYTHON_COMPILED")])
def test_executables_group_holds_every_executable_type(servers, data, type_):
    """The group is what libclamav calls executables, not PE and ELF only; inside a zip too."""
    srv = servers(DENY_TYPES="executables")
    blocked(srv, data, f"Policy.Type.{type_}")
    blocked(srv, S.zip_of({"payload": data}), f"Policy.Type.{type_}")
    allowed(servers(DENY_TYPES="archives"), data)


def test_nesting_does_not_evade(servers, tmp_path):
    """The executable inside zip, 7z, tar.gz, a zip in a zip, an OLE2 document, a mail: found."""
    srv = servers(DENY_TYPES="executables")
    cases = {
        "zip": S.zip_of({"true": ELF}),
        "zip in zip": S.zip_of({"inner.zip": S.zip_of({"docs/true": ELF})}),
        "tar.gz": S.targz_of({"bin/true": ELF}),
        "7z": S.sevenz_of({"true": ELF}, tmp_path),
    }
    for what, data in cases.items():
        assert v2(srv, data) == (True, "Policy.Type.ELF"), what
    for name in ("clam.zip", "clam.7z", "clam.tar.gz", "clam.exe.bz2", "clam.ole.doc", "clam.pdf",
                 "clam.exe.mbox.base64", "clam.cab", "clam.exe.rtf", "clam.ppt"):
        assert v2(srv, corpus(name)) == (True, "Policy.Type.MSEXE"), name
    f, top = v3(srv, cases["zip in zip"], "outer.zip")
    assert f["malware"] is False and top["malware"] is False and top["policy_blocked"] is True
    assert f["policy"]["blocked"] is True and f["policy"]["rule"] == "deny"
    assert f["policy"]["type"] == "CL_TYPE_ELF"
    assert f["policy"]["path"] == ["outer.zip", "inner.zip", "true"]   # libclamav names members by base name
    assert {"type": "CL_TYPE_ELF", "depth": 2} .items() <= next(
        lay for lay in f["layers"] if lay["type"] == "CL_TYPE_ELF").items()


def test_policy_depth(servers):
    one = S.zip_of({"true": ELF})
    two = S.zip_of({"inner.zip": one})
    top = servers(DENY_TYPES="executables", POLICY_DEPTH="0")
    allowed(top, one)
    allowed(top, two)
    blocked(top, ELF, "Policy.Type.ELF")
    d1 = servers(DENY_TYPES="executables", POLICY_DEPTH="1")
    blocked(d1, one, "Policy.Type.ELF")
    allowed(d1, two)
    blocked(servers(DENY_TYPES="executables", POLICY_DEPTH="2"), two, "Policy.Type.ELF")


def test_clean_cache_does_not_evade(servers, tmp_path):
    """The same bytes answered from the clean cache are judged again, with the layers kept in the
    cache entry; a cache filled by a user without a policy serves one with a policy too."""
    users = harness.demo_users() + "\n" + "app2::" + harness.hash_password("pw2")
    path = tmp_path / "policies.ini"
    path.write_text("[no-exe]\ndeny = executables\nusers = app2\n")
    srv = servers(APPLICATION_USERS=users, POLICY_FILE=str(path))
    data = S.zip_of({"tool/true": ELF, "readme.txt": S.TEXT})
    hits0 = harness.metric(srv, "clamrest_scan_cache_hits_total")
    assert v2(srv, data) == (False, None)                 # app1: no policy, cache filled
    assert v2(srv, data, auth=("app2", "pw2")) == (True, "Policy.Type.ELF")
    assert v2(srv, data, auth=("app2", "pw2")) == (True, "Policy.Type.ELF")
    assert harness.metric(srv, "clamrest_scan_cache_hits_total") >= hits0 + 2
    g = servers(DENY_TYPES="executables")
    for _ in range(3):
        blocked(g, data, "Policy.Type.ELF")


# --- office-macros ---

def test_office_macros(servers, tmp_path):
    srv = servers(DENY_TYPES="office-macros")
    blocked(srv, S.ole2(vba=True), "Policy.Macros.MSOLE2", "report.doc")
    blocked(srv, S.ooxml(vba=True), "Policy.Macros.MSOLE2", "report.docm")
    blocked(srv, S.zip_of({"q3/report.docm": S.ooxml(vba=True)}), "Policy.Macros.MSOLE2")
    blocked(srv, S.sevenz_of({"report.docm": S.ooxml(vba=True)}, tmp_path), "Policy.Macros.MSOLE2")
    for data in (S.ole2(vba=False), S.ooxml(), S.ooxml(image=True), corpus("clam.ole.doc"),
                 real_pdf(), ELF):
        allowed(srv, data)
    f, _ = v3(srv, S.ooxml(vba=True), "report.docm")
    assert f["policy"]["path"] == ["report.docm", "vbaProject.bin"]
    assert any(lay["macros"] for lay in f["layers"])
    assert policy_metric(srv, "macros") >= 4


def test_documents_without_macros_recipe(servers):
    srv = servers(ALLOW_TYPES="documents, images", DENY_TYPES="office-macros, executables, scripts")
    for data in (real_pdf(), S.ooxml(), S.ooxml(image=True), S.ole2(vba=False), S.TEXT, S.png()):
        allowed(srv, data)
    blocked(srv, S.ooxml(vba=True), "Policy.Macros.MSOLE2")
    blocked(srv, ELF, "Policy.Type.ELF")
    blocked(srv, corpus("clam.pdf"), "Policy.Type.MSEXE")       # a PDF carrying a PE
    blocked(srv, S.zip_of({"a.pdf": real_pdf()}), "Policy.Type.ZIP")
    blocked(srv, S.SHELL, "Policy.Type.SCRIPT", "run.sh")


# --- scripts ---

def test_scripts(servers):
    srv = servers(DENY_TYPES="scripts")
    blocked(srv, S.SHELL, "Policy.Type.SCRIPT", "notes.txt")      # a #! line, whatever the name
    blocked(srv, S.PYTHON, "Policy.Type.SCRIPT")
    blocked(srv, S.JS, "Policy.Type.SCRIPT", "invoice.js")      # text named as a script
    blocked(srv, S.zip_of({"setup/install.sh": S.SHELL}), "Policy.Type.SCRIPT")
    blocked(srv, S.zip_of({"x.vbs": b"CreateObject(\"WScript.Shell\").Run \"calc\"\r\n"}),
            "Policy.Type.SCRIPT")
    blocked(srv, corpus("clam.exe.html"), "Policy.Type.HTML")
    blocked(srv, b"<html><body><script>alert(1)</script></body></html>\n", "Policy.Type.HTML")
    assert chunked(srv, S.JS) == (False, None)           # no name, no #!: text
    for data in (S.TEXT, real_pdf(), S.png()):
        allowed(srv, data, "data.csv")


# --- archives ---

def test_archives(servers, tmp_path):
    """Archives refused at any depth; an OOXML document is not an archive (the zip libclamav finds
    again inside it is its own bytes), nor is a PDF."""
    srv = servers(DENY_TYPES="archives")
    blocked(srv, S.zip_of({"a.txt": S.TEXT}), "Policy.Type.ZIP")
    blocked(srv, S.targz_of({"a.txt": S.TEXT}), "Policy.Type.GZ")
    blocked(srv, S.sevenz_of({"a.txt": S.TEXT}, tmp_path), "Policy.Type.7Z")
    for name, t in (("clam.cab", "MSCAB"), ("clam.arj", "ARJ"), ("clam.exe.bz2", "BZ"),
                    ("clam.newc.cpio", "CPIO_NEWC"), ("clam.exe.szdd", "MSSZDD")):
        blocked(srv, corpus(name), f"Policy.Type.{t}")
    blocked(srv, S.zip_of({"doc.docx": S.ooxml()}), "Policy.Type.ZIP")
    for data in (S.ooxml(), S.ooxml(vba=True, image=True), real_pdf(), S.png(), ELF):
        allowed(srv, data)


# --- images only ---

def test_images_only(servers, tmp_path):
    srv = servers(ALLOW_TYPES="images")
    for data, name in ((S.png(), "a.png"), (S.gif(), "a.gif"), (S.jpeg(), "a.jpg")):
        allowed(srv, data, name)
    blocked(srv, real_pdf(), "Policy.Type.PDF")
    blocked(srv, ELF, "Policy.Type.ELF", "photo.png")
    blocked(srv, S.TEXT, "Policy.Type.TEXT_ASCII")
    blocked(srv, S.zip_of({"a.png": S.png()}), "Policy.Type.ZIP")
    blocked(srv, corpus("clam.exe.html"), "Policy.Type.HTML")
    # archives of images only: allowed when archives are too, judged inside
    both = servers(ALLOW_TYPES="images, archives")
    allowed(both, S.zip_of({"a.png": S.png(), "b.gif": S.gif()}))
    allowed(both, S.targz_of({"a.jpg": S.jpeg()}))
    blocked(both, S.zip_of({"a.png": S.png(), "x": ELF}), "Policy.Type.ELF")


# --- extension mismatch ---

def test_extension_mismatch(servers):
    srv = servers(BLOCK_EXTENSION_MISMATCH="yes")
    blocked(srv, corpus("clam.ea06.exe"), "Policy.ExtensionMismatch.pdf.MSEXE", "invoice.pdf")
    blocked(srv, ELF, "Policy.ExtensionMismatch.jpg.ELF", "Photo.JPG")
    blocked(srv, S.png(), "Policy.ExtensionMismatch.pdf.PNG", "scan.pdf")
    blocked(srv, S.ooxml(vba=True), "Policy.ExtensionMismatch.txt.OOXML_WORD", "notes.txt")
    for data, name in ((real_pdf(), "invoice.pdf"), (S.png(), "a.png"), (S.jpeg(), "a.jpeg"),
                       (S.ooxml(), "a.docx"), (S.ooxml(vba=True), "a.docm"), (S.ole2(False), "a.doc"),
                       (S.zip_of({"a": b"abcdefgh"}), "a.zip"), (S.TEXT, "a.csv"),
                       (ELF, "true"), (ELF, "true.unknownext"), (corpus("clam.ea06.exe"), "x.exe")):
        allowed(srv, data, name)
    # A chunked body has no name: not judged.
    assert chunked(srv, ELF) == (False, None)
    f, _ = v3(srv, ELF, "invoice.pdf")
    assert f["policy"]["rule"] == "extension" and f["policy"]["type"] == "CL_TYPE_ELF"
    assert policy_metric(srv, "extension") >= 4


# --- report mode, malware first, encrypted, limits ---

def test_report_mode_never_blocks(servers):
    srv = servers(DENY_TYPES="executables", POLICY_MODE="report")
    allowed(srv, ELF)
    f, top = v3(srv, S.zip_of({"true": ELF}), "a.zip")
    assert f["policy"] == {"blocked": False, "mode": "report", "name": "global",
                           "path": ["a.zip", "true"], "reason": "Policy.Type.ELF", "rule": "deny",
                           "type": "CL_TYPE_ELF"}
    assert top["policy_blocked"] is False and top["malware"] is False
    assert "would block (POLICY_MODE=report)" in srv.logs()
    assert policy_metric(srv, "deny") == 0
    # What enforcing would block is counted: the ELF, then the zip holding it.
    assert policy_metric(srv, "deny", "reported") == 2


def test_malware_wins(servers):
    srv = servers(real_db=True, DENY_TYPES="executables", BLOCK_EXTENSION_MISMATCH="yes")
    assert v2(srv, corpus("clam.exe"), "invoice.pdf") == (True, "ClamAV-Test-File.UNOFFICIAL")
    assert v2(srv, corpus("clam.zip")) == (True, "ClamAV-Test-File.UNOFFICIAL")
    malware, reason = v2(srv, harness.EICAR, "a.png")
    assert malware and reason.startswith("Eicar"), reason
    f, top = v3(srv, corpus("clam.exe"), "invoice.pdf")
    assert f["malware"] is True and top["malware"] is True
    assert f["matches"][0]["signature"] == "ClamAV-Test-File.UNOFFICIAL"
    assert f["policy"]["blocked"] is True
    r = requests.post(srv.url + "/scan", files={"file": ("a.txt", ELF)}, auth=harness.auth(), timeout=30)
    assert r.text == "NOTOK"
    r = requests.post(srv.url + "/scan", files={"file": ("a.txt", S.TEXT)}, auth=harness.auth(),
                      timeout=30)
    assert r.text == "OK"


def test_encrypted_archive(servers, tmp_path):
    """An encrypted member cannot be judged: with the engine's own alert (the default) the answer
    is malware; with it off, a policy that looks inside blocks it (Policy.Encrypted), one that
    looks at the upload alone does not."""
    data = S.zip_of({"true": ELF}, password="secret", tmp=tmp_path)
    malware, reason = v2(servers(DENY_TYPES="executables"), data)
    assert malware and reason.startswith("Heuristics.Encrypted"), reason
    off = servers(DENY_TYPES="executables", ALERT_ENCRYPTED_ARCHIVE="no")
    blocked(off, data, "Policy.Encrypted.ZIP")
    allowed(servers(DENY_TYPES="executables", ALERT_ENCRYPTED_ARCHIVE="no", POLICY_DEPTH="0"), data)
    allowed(servers(ALERT_ENCRYPTED_ARCHIVE="no"), data)
    blocked(servers(ALLOW_TYPES="archives", ALERT_ENCRYPTED_ARCHIVE="no"), data, "Policy.Encrypted.ZIP")


def test_encrypted_7z(servers, tmp_path):
    """The same with 7z: its names encrypted too (-mhe), or only its contents."""
    if shutil.which("7z") is None:
        pytest.skip("7z is not installed (apt-get install p7zip-full)")
    (tmp_path / "true").write_bytes(ELF)
    off = servers(DENY_TYPES="executables", ALERT_ENCRYPTED_ARCHIVE="no")
    for flags in (["-mhe=on"], []):
        out = tmp_path / ("h.7z" if flags else "c.7z")
        subprocess.run(["7z", "a", "-bd", "-psecret", *flags, str(out), str(tmp_path / "true")],
                       check=True, stdout=subprocess.DEVNULL)
        malware, reason = v2(off, out.read_bytes())
        assert (malware, reason) == (True, "Policy.Encrypted.7Z"), flags


def test_limits_still_answer_not_clean(servers):
    """A file nested past MAX_RECURSION: the existing rule answers it (not clean), policy or not."""
    data = ELF
    for i in range(6):
        data = S.zip_of({f"l{i}.zip" if i else "true": data})
    malware, reason = v2(servers(DENY_TYPES="executables", MAX_RECURSION="3"), data)
    assert malware and "Limits" in reason, reason


# --- per user: POLICY_FILE ---

def test_policy_file_per_user_and_reload(servers, tmp_path):
    users = "\n".join([harness.demo_users(), "app2::" + harness.hash_password("pw2"),
                       "app3::" + harness.hash_password("pw3")])
    path = tmp_path / "policies.ini"
    path.write_text("# two applications\n[images-only]\nallow = images\nusers = app2\n\n"
                    "[no-macros]\ndeny = office-macros, executables\nmode = enforce\n"
                    "block_extension_mismatch = yes\nusers = app3\n")
    srv = harness.Clamrest(env={"APPLICATION_USERS": users, "POLICY_FILE": str(path),
                                "DENY_TYPES": "scripts"})
    try:
        app2, app3 = ("app2", "pw2"), ("app3", "pw3")
        assert v2(srv, S.png(), "a.png", auth=app2) == (False, None)
        assert v2(srv, real_pdf(), "a.pdf", auth=app2) == (True, "Policy.Type.PDF")
        assert v2(srv, real_pdf(), "a.pdf", auth=app3) == (False, None)
        assert v2(srv, S.ooxml(vba=True), "a.docm", auth=app3) == (True, "Policy.Macros.MSOLE2")
        assert v2(srv, ELF, "a.pdf", auth=app3) == (True, "Policy.ExtensionMismatch.pdf.ELF")
        assert v2(srv, S.SHELL, "a.sh") == (True, "Policy.Type.SCRIPT")      # app1: the global one
        assert v2(srv, S.SHELL, "a.sh", auth=app2) == (True, "Policy.Type.SCRIPT")
        assert v2(srv, S.TEXT, "a.csv", auth=app2) == (True, "Policy.Type.TEXT_ASCII")
        f, _ = v3(srv, real_pdf(), "a.pdf")
        assert f["policy"]["name"] == "global"
        # Reload on SIGHUP: app2 now takes PDFs; a file that does not parse keeps the last one.
        path.write_text("[docs]\nallow = documents\nusers = app2\n")
        srv.signal(signal.SIGHUP)
        assert harness.wait_until(lambda: v2(srv, real_pdf(), "a.pdf", auth=app2) == (False, None), 10)
        assert v2(srv, S.ooxml(vba=True), "a.docm", auth=app3) == (False, None)   # app3: global now
        path.write_text("[docs]\nallow = pictures\nusers = app2\n")
        srv.signal(signal.SIGHUP)
        assert harness.wait_until(lambda: "pictures" in srv.logs(), 10)
        assert v2(srv, real_pdf(), "a.pdf", auth=app2) == (False, None)
    finally:
        srv.stop()
        srv.cleanup()


def test_policy_metric_and_log(servers):
    srv = servers(DENY_TYPES="CL_TYPE_ELF")
    before = policy_metric(srv, "deny")
    blocked(srv, ELF, "Policy.Type.ELF")
    assert policy_metric(srv, "deny") == before + 1
    assert "upload policy global: rule deny blocks (Policy.Type.ELF, CL_TYPE_ELF, at depth 0)" in srv.logs()


def test_empty_and_tiny_uploads(servers):
    """Nothing seen in an empty upload: nothing to deny, but not of an allowed type either."""
    allowed(servers(DENY_TYPES="executables"), b"", "empty.bin")
    allowed(servers(DENY_TYPES="executables"), b"abc", "tiny.txt")
    assert v2(servers(ALLOW_TYPES="images"), b"", "a.png") == (True, "Policy.Unjudged")


def test_cache_entry_from_before_the_policy(tmp_path):
    """A clean-cache entry made while no policy was in force has no layers: the next upload of the
    same bytes under a policy (POLICY_FILE read again) is scanned again, not let through."""
    path = tmp_path / "policies.ini"
    path.write_text("# nothing yet\n")
    srv = harness.Clamrest(env={"POLICY_FILE": str(path)})
    try:
        data = S.zip_of({"bin/true": ELF})
        assert v2(srv, data) == (False, None)
        assert v2(srv, data) == (False, None)       # now from the cache
        path.write_text("[strict]\ndeny = executables\nusers = app1\n")
        srv.signal(signal.SIGHUP)
        assert harness.wait_until(lambda: v2(srv, data) == (True, "Policy.Type.ELF"), 10)
    finally:
        srv.stop()
        srv.cleanup()


def test_v3_policy_answer_matches_openapi(servers):
    import test_openapi
    srv = servers(DENY_TYPES="executables, office-macros", BLOCK_EXTENSION_MISMATCH="yes")
    files = [("a", ("outer.zip", S.zip_of({"inner.zip": S.zip_of({"true": ELF})}))),
             ("b", ("a.docm", S.ooxml(vba=True))), ("c", ("a.png", S.png())),
             ("d", ("invoice.pdf", ELF)), ("e", ("empty", b""))]
    r = requests.post(srv.url + "/v3/scan", files=files, auth=harness.auth(), timeout=60)
    test_openapi.check_response(r, "/v3/scan", "post")
    got = [f["policy"]["reason"] for f in r.json()["files"]]
    assert got == ["Policy.Type.ELF", "Policy.Macros.MSOLE2", None,
                   "Policy.ExtensionMismatch.pdf.ELF", None]
    r = requests.post(srv.url + "/v3/scan-chunked", data=ELF, auth=harness.auth(), timeout=60)
    test_openapi.check_response(r, "/v3/scan-chunked", "post")
    assert r.json()["files"][0]["policy"]["rule"] == "deny"


def test_cache_keeps_verdict_with_bounded_paths(servers):
    """A clean-cache entry keeps 512 bytes of paths at most: a long member name is dropped from
    the cached answer's path, never the block."""
    srv = servers(DENY_TYPES="executables")
    long_name = "d" * 300 + "/" + "x" * 250 + ".bin"
    data = S.zip_of({long_name: ELF, "readme.txt": S.TEXT})
    first, _ = v3(srv, data, "long.zip")
    second, _ = v3(srv, data, "long.zip")
    assert first["policy"]["blocked"] and second["policy"]["blocked"]
    assert len(first["policy"]["path"]) == 2 and len(first["policy"]["path"][1]) > 200
    assert second["policy"]["path"] in (["long.zip"], first["policy"]["path"])
    assert v2(srv, data) == (True, "Policy.Type.ELF")


def test_policy_file_read_again_when_it_changes(tmp_path):
    """Like the database folder, POLICY_FILE is looked at every DB_CHECK_INTERVAL (1 s here): a
    change takes effect without a signal."""
    path = tmp_path / "policies.ini"
    path.write_text("[a]\nallow = images\nusers = app1\n")
    srv = harness.Clamrest(env={"POLICY_FILE": str(path), "DB_CHECK_INTERVAL": "1"})
    try:
        assert v2(srv, real_pdf(), "a.pdf") == (True, "Policy.Type.PDF")
        tmp = tmp_path / "new.ini"
        tmp.write_text("[a]\nallow = images, documents\nusers = app1\n")
        tmp.replace(path)
        assert harness.wait_until(lambda: v2(srv, real_pdf(), "a.pdf") == (False, None), 10)
        assert "POLICY_FILE" in srv.logs() and "read: 1 policies" in srv.logs()
    finally:
        srv.stop()
        srv.cleanup()
