"""test_notice -- every library the clamrest binary links is named in NOTICE with its licence (issue
21: "a notice of the third-party components ... and libarchive or a prefilter library if they
come"): a new dependency without its NOTICE entry fails here, naming it."""
import re
import subprocess

import harness

# The soname's stem, as readelf shows it, and the name NOTICE gives the component.
COMPONENTS = {"libclamav": "libclamav", "libmicrohttpd": "libmicrohttpd", "libcares": "c-ares",
              "libcrypto": "OpenSSL", "libssl": "OpenSSL", "libarchive": "libarchive", "libz": "zlib",
              "libbrotlidec": "Brotli", "libbrotlicommon": "Brotli"}
SYSTEM = {"libc", "libm", "libresolv", "libpthread", "libdl", "librt", "ld-linux-x86-64",
          "libasan", "libubsan", "libgcc_s", "libstdc++"}       # the C library and the sanitizers' runtime


def needed(binary):
    out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    return [line.split("[")[1].split("]")[0] for line in out.splitlines() if "(NEEDED)" in line]


def test_every_linked_library_is_in_notice():
    notice = (harness.ROOT / "NOTICE").read_text()
    libs = needed(harness.BIN)
    assert any(s.startswith("libclamav.so") for s in libs), libs
    for soname in libs:
        stem = soname.split(".so")[0]
        if stem in SYSTEM:
            continue
        assert stem in COMPONENTS, f"{soname}: a new library; name it in NOTICE and in COMPONENTS here"
        # An entry of its own: a line that starts with the component's name.
        assert re.search(rf"^{re.escape(COMPONENTS[stem])}\b", notice, re.M), \
            f"{soname} ({COMPONENTS[stem]}) has no entry in NOTICE"
