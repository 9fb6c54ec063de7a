"""Checks of the performance suite itself: its settings, its verdict rules and its sample files.

The suite's run against a real clamrest is `make perf-smoke`; these only keep the pieces it stands
on honest. Locust monkey-patches the interpreter it is imported into, so the locustfile is only ever
imported in a child process.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.client_side

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "perf" / "locustfile.py"
LOCUST = "/usr/bin/locust"
TIMEOUT = 60                    # seconds for any child process
SAMPLE_SIZE = 5242880           # bytes, as the Makefile and perf/run-perf make it
# sha256 of scripts/make-sample-file's 5 MiB: pinned, so the bytes stay the same everywhere.
SAMPLE_SHA256 = "ea3d189d9d741ff81e641ee26d81db5310ba61e5de10ede3676f2e01512c1eba"


def make_sample(path, size):
    subprocess.run(["sh", str(ROOT / "scripts" / "make-sample-file"), str(path), str(size)],
                   check=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    """A small USER_FILE, so the locustfile loads without client-examples/5MiB.bin."""
    path = tmp_path_factory.mktemp("perf") / "user.bin"
    make_sample(path, 1000)
    return path


def list_users(env_overrides, user_file):
    """Runs `locust --list` on the locustfile with the given settings from a foreign cwd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERF_", "CLAMD_"))}
    env.pop("REQUESTS_LOGGING", None)
    env["USER_FILE"] = str(user_file)
    env.update(env_overrides)
    return subprocess.run([LOCUST, "-f", str(LOCUSTFILE), "--list"], env=env, cwd="/",
                          capture_output=True, text=True, timeout=TIMEOUT)


def in_locustfile(code, user_file):
    """Runs code in a child interpreter that has imported the locustfile as `lf`; returns its
    stdout decoded as JSON."""
    prelude = f"""
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("lf", {str(LOCUSTFILE)!r})
        lf = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lf)
    """
    env = dict(os.environ, USER_FILE=str(user_file))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(prelude) + textwrap.dedent(code)],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_defaults_load_all_user_classes(user_file):
    done = list_users({}, user_file)
    assert done.returncode == 0, done.stderr
    for name in ("CheckUser", "UnauthorisedUser", "ScanUser"):
        assert name in done.stdout
    assert "ClamrestUser" not in done.stdout


@pytest.mark.parametrize("name, value", [
    ("CLAMD_RESPONSE_THRESHOLD", "fast"),
    ("CLAMD_RESPONSE_THRESHOLD", "0"),
    ("CLAMD_RESPONSE_THRESHOLD", "nan"),
    ("CLAMD_VERSION_THRESHOLD", "1.5"),
    ("CLAMD_VERSION_THRESHOLD", "-1"),
    ("REQUESTS_LOGGING", "maybe"),
    ("USER_FILE", "no/such/file.bin"),
])
def test_bad_setting_fails_at_start_naming_it(name, value, user_file):
    done = list_users({name: value}, user_file)
    assert done.returncode != 0, done.stdout
    assert name in done.stderr and "bad setting" in done.stderr, done.stderr


def test_settings_are_parsed_with_their_types(user_file):
    got = in_locustfile("""
        s = lf.settings_from_env({"PERF_USER": "u", "PERF_PWD": "p", "USER_FILE": "perf/locustfile.py",
                                  "CLAMD_RESPONSE_THRESHOLD": "0.5", "CLAMD_VERSION_THRESHOLD": "7",
                                  "REQUESTS_LOGGING": "TRUE"})
        d = lf.settings_from_env({})
        print(json.dumps([s.perf_user, s.perf_pwd, str(s.user_file), s.clamd_response_threshold,
                          s.clamd_version_threshold, s.requests_logging,
                          d.perf_user, d.perf_pwd, str(d.user_file.relative_to(lf.REPO_ROOT)),
                          d.clamd_response_threshold, d.clamd_version_threshold,
                          d.requests_logging]))
    """, user_file)
    assert got == ["u", "p", str(LOCUSTFILE), 0.5, 7, True,
                   "app1", "letmein", "client-examples/5MiB.bin", 0.01, 3, False]


def test_empty_locust_version_is_patched_for_workers(user_file):
    got = in_locustfile("""
        import locust.runners
        print(json.dumps(locust.runners.__version__))
    """, user_file)
    assert got, "a worker would announce an empty version and be rejected by its master"


SCAN_CASES = [
    # (answer, expect_malware, threshold, error expected)
    ({"malware": True, "reason": "Eicar-Test-Signature", "time": 0.001}, True, 0.01, False),
    ({"malware": False, "reason": None, "time": 0.001}, False, 0.01, False),
    ({"malware": False, "reason": None, "time": 0.02}, False, 0.01, True),     # too slow
    ({"malware": False, "reason": None, "time": 0.5}, False, 1.0, False),      # USER_DEFINED
    ({"malware": False, "reason": None, "time": 0.001}, True, 0.01, True),     # missed malware
    ({"malware": True, "reason": "X", "time": 0.001}, False, 0.01, True),      # false positive
    ({"malware": True, "reason": None, "time": 0.001}, True, 0.01, True),      # no reason
    ({"malware": False, "reason": "X", "time": 0.001}, False, 0.01, True),     # clean with reason
    ({"malware": False, "reason": None}, False, 0.01, True),                   # no time
    ({"reason": None, "time": 0.001}, False, 0.01, True),                      # no malware
    ({"malware": 0, "reason": None, "time": 0.001}, False, 0.01, True),        # not a boolean
    ({"malware": False, "reason": None, "time": "0.001"}, False, 0.01, True),  # not a number
]

VERSION_CASES = [
    # (status, answer, version threshold, error expected)
    (200, {"service": "1.0.0", "clamd-actual": "5", "clamd-required": "5", "outdated": False}, 3, False),
    (200, {"service": "1.0.0", "clamd-actual": "5", "clamd-required": "6", "outdated": False}, 3, False),
    (500, {"service": "1.0.0", "clamd-actual": "5", "clamd-required": "8", "outdated": True}, 3, False),
    (500, {"service": "1.0.0", "clamd-actual": "5", "clamd-required": "9", "outdated": True}, 3, True),
    (500, {"service": "1.0.0", "clamd-actual": "9", "clamd-required": "5", "outdated": True}, 3, True),
    (500, {"service": "1.0.0", "error": "no TXT record"}, 3, True),
    (500, {"service": "1.0.0", "clamd-actual": "5", "clamd-required": "5", "outdated": False}, 3, True),
    (200, {"service": "1.0.0", "clamd-actual": "5", "clamd-required": "9", "outdated": True}, 3, True),
    (200, {"service": "1.0.0", "clamd-actual": "5", "outdated": False}, 3, True),
    (200, None, 3, True),
    (503, {"service": "1.0.0", "clamd-actual": "5", "clamd-required": "5", "outdated": False}, 3, True),
    (200, {"service": "1.0.0", "clamd-actual": 5, "clamd-required": 5, "outdated": False}, 3, True),
    (200, {"service": "1.0.0", "clamd-actual": "5a", "clamd-required": "5", "outdated": False}, 3, True),
]


def test_scan_and_version_verdicts(user_file):
    got = in_locustfile(f"""
        scans = [lf.scan_error(*case) is not None for case in {[c[:3] for c in SCAN_CASES]!r}]
        versions = [lf.version_error(*case) is not None for case in {[c[:3] for c in VERSION_CASES]!r}]
        print(json.dumps([scans, versions]))
    """, user_file)
    assert got == [[c[3] for c in SCAN_CASES], [c[3] for c in VERSION_CASES]]


def test_chunk_generators_reassemble_their_files(user_file):
    got = in_locustfile(f"""
        eicar = b"".join(lf.malware_file_gen())
        user = b"".join(lf.user_file_gen({str(user_file)!r}))
        print(json.dumps([eicar.decode(), len(list(lf.malware_file_gen())),
                          user == open({str(user_file)!r}, "rb").read()]))
    """, user_file)
    eicar = (ROOT / "client-examples" / "eicar.txt").read_bytes().decode()
    assert got == [eicar, 2, True]


def test_eicar_sample_is_the_68_byte_test_file():
    data = (ROOT / "client-examples" / "eicar.txt").read_bytes()
    assert len(data) == 68
    assert hashlib.md5(data).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


def test_sample_file_is_reproducible(tmp_path):
    make_sample(tmp_path / "a.bin", SAMPLE_SIZE)
    make_sample(tmp_path / "sub" / "b.bin", SAMPLE_SIZE)
    a = (tmp_path / "a.bin").read_bytes()
    assert len(a) == SAMPLE_SIZE
    assert a == (tmp_path / "sub" / "b.bin").read_bytes()
    assert hashlib.sha256(a).hexdigest() == SAMPLE_SHA256
    assert not list(tmp_path.glob("*.tmp.*")), "a temporary file was left behind"


def test_sample_file_rejects_a_bad_size(tmp_path):
    done = subprocess.run(["sh", str(ROOT / "scripts" / "make-sample-file"), str(tmp_path / "x"), "5M"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode != 0
    assert "SIZE" in done.stderr
    assert not (tmp_path / "x").exists()


def test_run_perf_rejects_an_unknown_mode():
    done = subprocess.run(["sh", str(ROOT / "perf" / "run-perf"), "fast"], capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert "usage" in done.stderr


def test_run_perf_names_a_missing_server_binary(tmp_path):
    env = dict(os.environ, CLAMREST_BIN=str(tmp_path / "nothing"))
    done = subprocess.run(["sh", str(ROOT / "perf" / "run-perf"), "smoke"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 1
    assert str(tmp_path / "nothing") in done.stderr
