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
