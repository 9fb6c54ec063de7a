"""The second reader opens libarchive only with the bidders that may take a layer (reader_bidders,
src/reader_sig.c): a hand-written test looser than each of libarchive's bidders, so that the many
layers that are not archives cost no open. If it were ever narrower than libarchive, an archive
libarchive reads would not be read, and its members not checked: a false clean. The property is
checked by the reader's fuzz target on every input and on every member it extracts (fuzz_reader.c,
fuzz_bidders: libarchive with all of the reader's formats and filters, none held back, takes the
bytes as format F => reader_bidders lets F, or a filter, bid). Here it runs over the adversarial
suites' archives (the verdict-integrity cases, the reader-disagreement samples and regression
files), clamav-testfiles and the fuzz corpus, through the replay build of that target.
"""
import pathlib
import subprocess

import pytest

import adversarial
import disagree
import harness

# A corpus run: the sanitizer run leaves it out (its replay of the fuzz corpus checks the same
# property under ASan, in make replay; here ~23 s under ASan for the same logic).
pytestmark = pytest.mark.corpus

REPLAY = pathlib.Path(harness.BIN).parent / "replay" / "fuzz_reader"


def write_all(folder, items):
    folder.mkdir()
    for i, data in enumerate(items):
        (folder / f"{i:05d}.bin").write_bytes(data)
    return len(items)


def test_bidders_let_every_format_libarchive_takes_bid(tmp_path):
    if not REPLAY.exists():
        pytest.skip(f"{REPLAY} is not built (make replay; make test builds it first)")
    n = write_all(tmp_path / "verdict", [c.data for c in adversarial.cached_cases(adversarial.Generator())])
    n += write_all(tmp_path / "disagree", [s.data for s, _ in disagree.corpus()])
    n += write_all(tmp_path / "regression", [disagree.regression_file(name).read_bytes()
                                             for name in disagree.REGRESSION if not name.startswith("html41mib")])
    dirs = [tmp_path / "verdict", tmp_path / "disagree", tmp_path / "regression",
            harness.ROOT / "fuzz" / "corpus" / "fuzz_reader", harness.ROOT / "fuzz" / "regression" / "fuzz_reader"]
    testfiles = pathlib.Path("/usr/share/clamav-testfiles")
    if testfiles.is_dir():
        dirs.append(testfiles)
        n += sum(1 for p in testfiles.iterdir() if p.is_file())
    r = subprocess.run([str(REPLAY), *map(str, dirs)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    replayed = int(r.stdout.split()[1])
    assert replayed >= n > 300, (replayed, n)
