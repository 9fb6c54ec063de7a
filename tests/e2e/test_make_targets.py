"""test_make_targets -- `make run` listens on 127.0.0.1 like `make up` (HOST=0.0.0.0 opens it) with
readable logs; `make logs` says when nothing is up (issue 22.4)."""
import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def fake_tree(tmp_path):
    """A copy of the scripts with a clamrest that prints its settings instead of serving."""
    (tmp_path / "scripts").mkdir()
    for f in ("run-demo", "demo-service", "demo.env"):
        shutil.copy(ROOT / "scripts" / f, tmp_path / "scripts" / f)
    fake = tmp_path / "clamrest"
    fake.write_text("#!/bin/sh\necho HOST=$HOST LOG_FORMAT=$LOG_FORMAT PORT=$PORT\n")
    fake.chmod(0o755)
    db = tmp_path / "db"
    db.mkdir()
    (db / "main.cvd").write_bytes(b"")
    return fake, db


def run_demo(tmp_path, **env):
    fake, db = fake_tree(tmp_path)
    base = {"PATH": os.environ["PATH"], "CLAMREST_BIN": str(fake), "CLAMAV_DB_DIR": str(db)}
    out = subprocess.run(["sh", str(tmp_path / "scripts" / "run-demo")], env={**base, **env},
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    return out.stdout.strip().splitlines()[-1]


def test_make_run_listens_on_loopback_with_text_logs(tmp_path):
    assert run_demo(tmp_path) == "HOST=127.0.0.1 LOG_FORMAT=text PORT=8090"


def test_make_run_host_and_format_can_be_set(tmp_path):
    assert run_demo(tmp_path, HOST="0.0.0.0", LOG_FORMAT="json") == \
        "HOST=0.0.0.0 LOG_FORMAT=json PORT=8090"


def test_make_logs_when_nothing_is_up(tmp_path):
    fake_tree(tmp_path)
    script = str(tmp_path / "scripts" / "demo-service")
    env = {"PATH": os.environ["PATH"]}
    out = subprocess.run(["sh", script, "logs"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "not up" in out.stderr and "make up" in out.stderr, out
    up = tmp_path / "build" / "up"
    up.mkdir(parents=True)
    (up / "clamrest.log").write_text("last line of an old run\n")
    out = subprocess.run(["sh", script, "logs"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "not up" in out.stderr, out
    assert "last line of an old run" in out.stderr, out
