"""test_startup_errors -- a start that fails says which setting and the system's own reason: a port
in use (strerror), a certificate GnuTLS refuses (its reason), libclamav's folder (SCAN_TMPDIR, not
TMPDIR), and the placeholder the Kubernetes Secret ships (refused, with how to make a hash)."""
import os
import pathlib
import re
import socket
import subprocess
import tempfile

import harness

# A real database: it loads first (before any thread), so the errors under test come after it.
DB = pathlib.Path(tempfile.mkdtemp(prefix="clamrest-startup-db-"))
harness.make_db(DB)

SECRET = harness.ROOT / "deploy" / "kubernetes" / "secret.yaml"


def run(env=None, args=()):
    """Exit code and stderr of a start meant to fail (it must fail within the timeout)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOST": "127.0.0.1",
            "PORT": str(harness.free_port()), "CLAMAV_TXT_URI": "", "CLAMAV_DB_DIR": str(DB)}
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if var in os.environ:
            base[var] = os.environ[var]
    base.update(env or {})
    p = subprocess.run([harness.BIN, *args], env=base, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


def make_cert(dirpath):
    key, cert = dirpath / "key.pem", dirpath / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_port_in_use_gives_strerror():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, err = run({"PORT": str(port)})
    assert rc == 2, err
    assert f"PORT: cannot listen on 127.0.0.1:{port}" in err, err
    assert "Address already in use" in err, err


def test_unreadable_certificate_gives_gnutls_reason(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    rc, err = run({"TLS_CERT": str(junk), "TLS_KEY": str(junk)})
    assert rc == 2, err
    assert "TLS_CERT, TLS_KEY" in err and "GnuTLS failed to setup x509 certificate/key: " in err, err
    assert "PORT" not in err, err


def test_mismatched_key_gives_gnutls_reason(tmp_path):
    cert, _ = make_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, key = make_cert(other)
    rc, err = run({"TLS_CERT": str(cert), "TLS_KEY": str(key)})
    assert rc == 2, err
    # GnuTLS's own words follow its prefix; no guess such as "not a matching PEM pair".
    m = re.search(r"GnuTLS failed to setup x509 certificate/key: ([^;\n]+)", err)
    assert m and m.group(1).strip(), err
    assert "matching PEM pair" not in err, err


def test_scan_tmpdir_errors_name_scan_tmpdir(tmp_path):
    """A SCAN_TMPDIR that passes the start checks but cannot hold libclamav's folder (its path
    would be too long) is reported as SCAN_TMPDIR, not TMPDIR."""
    deep, want = tmp_path, 4090     # PATH_MAX is 4096; "/clamrest.<pid>" no longer fits
    while len(str(deep)) < want:
        deep = deep / ("d" * min(200, max(1, want - len(str(deep)) - 1)))
    os.makedirs(deep, exist_ok=True)
    db = harness.make_db(tmp_path / "db")
    rc, err = run({"SCAN_TMPDIR": str(deep), "CLAMAV_DB_DIR": str(db), "TMPDIR": str(tmp_path)})
    assert rc == 2, err
    assert "SCAN_TMPDIR: " in err and "TMPDIR: path" not in err.replace("SCAN_TMPDIR", ""), err


def test_kubernetes_secret_placeholder_is_refused():
    text = SECRET.read_text()
    m = re.search(r"APPLICATION_USERS: \|-\n((?:    .*\n?)+)", text)
    assert m, text
    value = "\n".join(line.strip() for line in m.group(1).splitlines())
    assert value == "CHANGE-ME", value
    rc, err = run({"APPLICATION_USERS": value})
    assert rc == 2, err
    assert "APPLICATION_USERS: still the placeholder CHANGE-ME" in err, err
    assert "clamrest hash-password" in err, err


def test_placeholder_among_real_users_is_refused():
    rc, err = run({"APPLICATION_USERS": harness.demo_users() + "\nCHANGE-ME"})
    assert rc == 2 and "placeholder" in err, err
