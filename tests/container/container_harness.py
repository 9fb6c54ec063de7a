"""container_harness -- helpers of the container tests: podman with our containers.conf, free loopback ports,
containers that are always removed, and the image under test."""
import atexit
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import harness  # noqa: E402  (free_port, make_db, demo_users, EICAR)

CONF = os.environ.get("CONTAINERS_CONF", str(ROOT / "build" / "containers.conf"))
ENV = {**os.environ, "CONTAINERS_CONF": CONF}
PREFIX = f"clamrest-test-{os.getpid()}"


def version():
    for line in (ROOT / "src" / "config.h").read_text().splitlines():
        if line.startswith("#define CONFIG_VERSION"):
            return line.split('"')[1]
    raise RuntimeError("no CONFIG_VERSION in src/config.h")


IMAGE = os.environ.get("CLAMREST_IMAGE", f"clamrest:{version()}")


def podman(*args, check=True, timeout=120, input=None):
    """Runs podman; returns the CompletedProcess (text)."""
    r = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True, timeout=timeout,
                       input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


_CONTAINERS = set()


@atexit.register
def _remove_leftovers():
    for name in list(_CONTAINERS):
        podman("rm", "-f", "-t", "0", name, check=False)


def run(name, *args, image=IMAGE):
    """podman run -d with the project's hardening; the container is removed at exit whatever
    happens. Returns the full name."""
    full = f"{PREFIX}-{name}"
    _CONTAINERS.add(full)
    podman("run", "-d", "--name", full, "--read-only", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges", "--tmpfs", "/tmp:rw,size=256m",
           # no systemd timer here (no systemd as PID 1): the tests run the check themselves
           "--health-interval", "disable", *args, image)
    return full


def remove(name):
    podman("rm", "-f", "-t", "0", name, check=False)
    _CONTAINERS.discard(name)


def inspect(name, fmt):
    return podman("inspect", "--format", fmt, name).stdout.strip()


def logs(name):
    r = podman("logs", name, check=False)
    return r.stdout + r.stderr


def healthcheck(name):
    """(exit code, output) of the image's HEALTHCHECK command, run now."""
    r = podman("healthcheck", "run", name, check=False, timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def db_folder(tmp_path, with_db=True):
    """A signature folder readable by the container's user (uid 10001)."""
    db = tmp_path / "db"
    db.mkdir()
    for p in (tmp_path, db):
        p.chmod(0o755)
    if with_db:
        harness.make_db(db)
    return db


def wait_status(url, want, timeout=30.0):
    import requests

    def ok():
        try:
            return requests.get(url, timeout=2).status_code == want
        except requests.RequestException:
            return False
    return harness.wait_until(ok, timeout=timeout, step=0.2)


def image_size(image=IMAGE):
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


def now():
    return time.monotonic()
