"""test_install -- `make install` puts the binary, the man page and the patched libclamav where the
binary finds them without the source tree: bin/clamrest looks in ../lib/clamrest first (rpath
$ORIGIN/../lib/clamrest), so an installed clamrest does not depend on build/ (deploy/README.md,
systemd). Runs for the default build (build/clamrest, LIBCLAMAV=patched) only: the sanitizer run
builds elsewhere with other flags."""
import os
import pathlib
import subprocess

import pytest

import harness

DEFAULT_BIN = harness.ROOT / "build" / "clamrest"

pytestmark = pytest.mark.skipif(pathlib.Path(harness.BIN).resolve() != DEFAULT_BIN.resolve(),
                                reason="not the default build")


def libclamav_of(binary, env=None):
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True, env=env).stdout
    line = next(x for x in out.splitlines() if "libclamav.so" in x)
    return pathlib.Path(os.path.normpath(line.split("=>")[1].split("(")[0].strip()))


def test_install_is_self_contained(tmp_path):
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-s", "-C", str(harness.ROOT), "install", f"DESTDIR={dest}", "PREFIX=/usr/local"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    binary = dest / "usr/local/bin/clamrest"
    libdir = dest / "usr/local/lib/clamrest"
    assert (dest / "usr/local/share/man/man8/clamrest.8").is_file()
    # The installed binary loads the installed library, not the one in build/.
    assert libclamav_of(binary) == libdir / "libclamav.so.12"
    # The library is the patched build (same file, stripped of its 100+ MB of debug information).
    built = libclamav_of(DEFAULT_BIN).resolve()
    assert "/build/libclamav-" in str(built), built
    installed = (libdir / "libclamav.so.12").resolve()
    assert installed.name == built.name and installed.stat().st_size < built.stat().st_size / 2
    # And it runs from there.
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("clamrest "), out
    # Stripped, and no rpath into the build tree: only the installed library's folder.
    dyn = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    paths = [x.split("[")[1].rstrip("]") for x in dyn.splitlines() if "RUNPATH" in x or "RPATH" in x]
    assert paths == ["$ORIGIN/../lib/clamrest"], paths
    sections = subprocess.run(["readelf", "-S", str(binary)], capture_output=True, text=True, check=True).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections
    # The licence, the notice and the corresponding source of the patched library, with the library's
    # description that tells clamrest it is the patched build.
    doc = dest / "usr/local/share/doc/clamrest"
    assert "GNU GENERAL PUBLIC LICENSE" in (doc / "LICENSE").read_text()
    assert "libmicrohttpd" in (doc / "NOTICE").read_text()
    patches = sorted(p.name for p in (harness.ROOT / "third_party/libclamav").glob("*.patch"))
    assert patches and all((doc / "libclamav-source" / p).is_file() for p in patches)
    assert "sha256 " in (doc / "libclamav-source/README").read_text()
    assert "patch: " in (libdir / "clamrest-libclamav.txt").read_text()


def test_patched_build_says_so(server):
    """The default build runs the patched library: /version and clamrest_build_info say so, and the
    start-up line."""
    import requests
    assert requests.get(server.url + "/version", timeout=5).json()["libclamav_patched"] is True
    m = requests.get(server.url + "/metrics", auth=harness.auth(), timeout=5).text
    assert 'libclamav_patched="true"' in m
    assert ", patched)" in server.logs() and "not clamrest's patched build" not in server.logs()
