"""Configuration: a bad setting stops the start with exit code 2 and one clear JSON line (log.level
CRITICAL) on stderr naming it; --help and --version stay plain text; flags win over the
environment."""
import os
import subprocess

import pytest
import requests

import harness


def run_failing(env=None, args=(), db_version=27000, timeout=20):
    """Starts the binary with the harness defaults plus env/args; waits for it to exit."""
    srv = harness.Clamrest(env=env, args=args, db_version=db_version, wait=False)
    try:
        try:
            rc = srv.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            srv.stop()
            raise AssertionError(f"clamrest kept running with env={env} args={args}:\n{srv.logs()}")
        srv.stop()
        stderr = harness.stderr_of(srv)
        stdout = harness.stdout_of(srv)
        leftovers = sorted(os.listdir(srv.tmpdir))
        return rc, stdout, stderr, leftovers
    finally:
        srv.cleanup()


def check_config_error(rc, stdout, stderr, leftovers, setting):
    ctx = f"rc={rc}\nstderr:\n{stderr}\nstdout:\n{stdout}"
    assert rc == 2, ctx
    objs, plain = harness.json_lines(stderr)
    assert plain == [], "every stderr line must be a JSON object:\n" + ctx
    fatal = [o for o in objs if o.get("log.level") == "CRITICAL"]
    assert len(fatal) == 1, "expected exactly one CRITICAL line on stderr:\n" + ctx
    assert setting in fatal[0]["message"], f"the error line does not name {setting}:\n" + ctx
    assert "AddressSanitizer" not in stderr and "runtime error" not in stderr, ctx
    assert leftovers == [], f"TMPDIR not empty after a failed start: {leftovers}"


@pytest.mark.parametrize("env,setting", [
    ({"PORT": "abc"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"PORT": "0"}, "PORT"),
    ({"PORT": "-1"}, "PORT"),
    ({"PORT": "80x"}, "PORT"),
    ({"MAX_CONTENT_LENGTH": "lots"}, "MAX_CONTENT_LENGTH"),
    ({"MAX_CONTENT_LENGTH": "0"}, "MAX_CONTENT_LENGTH"),
    ({"SCAN_THREADS": "0"}, "SCAN_THREADS"),
    ({"REQUEST_TIMEOUT": "1.5"}, "REQUEST_TIMEOUT"),
    ({"LOGGING_LEVEL": "LOUD"}, "LOGGING_LEVEL"),
    ({"HOST": "not-an-address"}, "HOST"),
    ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
    ({"TRUSTED_PROXIES": "10.0.0.1,,::1"}, "TRUSTED_PROXIES"),
    ({"TRUSTED_PROXIES": "proxy.example"}, "TRUSTED_PROXIES"),
    ({"APPLICATION_USERS": "app1:" + harness.hash_password("pw")}, "APPLICATION_USERS"),
    ({"APPLICATION_USERS": "app1" + harness.hash_password("pw")}, "APPLICATION_USERS"),
    ({"APPLICATION_USERS": "app1::notahash"}, "APPLICATION_USERS"),
    ({"APPLICATION_USERS": "app1::$pbkdf2-sha256$1000$salt"}, "APPLICATION_USERS"),
    ({"APPLICATION_USERS": "app1::$md5$abc$def"}, "APPLICATION_USERS"),
    ({"APPLICATION_USERS": "app1::" + harness.hash_password("pw") + "\\nbroken line"},
     "APPLICATION_USERS"),
    ({"APPLICATION_USERS": "::" + harness.hash_password("pw")}, "APPLICATION_USERS"),
], ids=lambda v: repr(v)[:60] if isinstance(v, dict) else v)
def test_bad_setting(env, setting):
    check_config_error(*run_failing(env=env), setting)


def test_db_dir_missing(tmp_path):
    check_config_error(*run_failing(env={"CLAMAV_DB_DIR": str(tmp_path / "nope")}), "CLAMAV_DB_DIR")


def test_db_dir_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    check_config_error(*run_failing(env={"CLAMAV_DB_DIR": str(tmp_path / "empty")}), "CLAMAV_DB_DIR")


def test_db_dir_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    check_config_error(*run_failing(env={"CLAMAV_DB_DIR": str(tmp_path / "f")}), "CLAMAV_DB_DIR")


@pytest.mark.parametrize("setting", ["TMPDIR", "SCAN_TMPDIR"])
@pytest.mark.parametrize("kind,reason", [
    ("missing", "No such file or directory"),
    ("file", "Not a directory"),
    ("read-only", "Read-only file system"),
])
def test_unusable_temporary_folder(tmp_path, setting, kind, reason):
    """A temporary folder that does not exist, is not a folder or is not writable stops the start
    (exit 2, one line naming the setting and the reason), not the first upload that needs it."""
    path = tmp_path / "t"
    mounted = False
    if kind == "file":
        path.write_text("x")
    elif kind == "read-only":
        path.mkdir()
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs (needs root): {p.stderr.strip()}")
        mounted = True
    try:
        rc, stdout, stderr, leftovers = run_failing(env={setting: str(path)})
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)
    check_config_error(rc, stdout, stderr, leftovers, setting)
    assert reason in stderr and str(path) in stderr, stderr


@pytest.mark.parametrize("args,setting", [
    (["--port", "abc"], "PORT"),
    (["--port=70000"], "PORT"),
    (["--max-content-length", "x"], "MAX_CONTENT_LENGTH"),
    (["--no-such-option", "1"], "--no-such-option"),
    (["stray"], "stray"),
    (["--port"], "--port"),
])
def test_bad_flag(args, setting):
    check_config_error(*run_failing(args=args), setting)


def test_help():
    p = subprocess.run([harness.BIN, "--help"], capture_output=True, text=True, timeout=20,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    ctx = f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    assert p.returncode == 0, ctx
    for setting in ("HOST", "PORT", "APPLICATION_USERS", "MAX_CONTENT_LENGTH", "CLAMAV_DB_DIR",
                    "CLAMAV_TXT_URI", "CLAMAV_DNS_SERVER", "LOGGING_LEVEL", "TMPDIR",
                    "SPILL_THRESHOLD", "--port", "--db-dir"):
        assert setting in p.stdout, f"--help does not list {setting}:\n" + ctx


def test_help_does_not_need_valid_settings():
    """--help answers before the settings are used: a bad CLAMAV_DB_DIR does not matter."""
    p = subprocess.run([harness.BIN, "--help"], capture_output=True, text=True, timeout=20,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                            "CLAMAV_DB_DIR": "/nonexistent"})
    assert p.returncode == 0 and "PORT" in p.stdout, (p.returncode, p.stdout, p.stderr)


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_port_flag_overrides_env(start, form):
    flag_port = harness.free_port()
    env_port = harness.free_port()
    args = ["--port", str(flag_port)] if form == "separate" else [f"--port={flag_port}"]
    srv = start(env={"PORT": str(env_port)}, args=args, wait=False)
    srv.port, srv.url = flag_port, f"http://127.0.0.1:{flag_port}"
    assert harness.wait_until(srv.ready), srv.logs()
    r = requests.get(srv.url + "/check", timeout=10)
    assert (r.status_code, r.text) == (200, "Service OK")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{env_port}/check", timeout=3)


def test_max_content_length_flag_overrides_env(start):
    srv = start(env={"MAX_CONTENT_LENGTH": str(1024 * 1024)}, args=["--max-content-length", "1000"])
    r = requests.post(srv.url + "/v2/scan-chunked", data=b"A" * 1001, auth=harness.auth(), timeout=10)
    assert (r.status_code, r.text) == (413, "File Too Large"), (r.status_code, r.text)
    r = requests.post(srv.url + "/v2/scan-chunked", data=b"A" * 1000, auth=harness.auth(), timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is False, (r.status_code, r.text)


def test_users_flag_overrides_env(start):
    h = harness.hash_password("flag-pw")
    srv = start(args=["--users", f"flaguser::{h}"])
    r = requests.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, auth=("flaguser", "flag-pw"),
                      timeout=10)
    assert r.status_code == 200 and r.json()["malware"] is True, (r.status_code, r.text)
    r = requests.post(srv.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(), timeout=10)
    assert r.status_code == 401, (r.status_code, r.text)


def test_clean_exit_on_sigterm(start):
    srv = start()
    r = requests.get(srv.url + "/check", timeout=10)
    assert r.status_code == 200
    assert srv.stop() == 0, srv.logs()
    assert os.listdir(srv.tmpdir) == [], os.listdir(srv.tmpdir)
