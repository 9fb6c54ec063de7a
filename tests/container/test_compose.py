"""test_compose -- deploy/docker/compose.yaml started offline with Debian's podman-compose (1.0.3) and
docker-compose (1.29, talking to podman's Docker API socket): freshclam's mirror is an address of
the stack's own network that serves nothing (the freshclam container's loopback, port 9), so no
traffic leaves the machine. freshclam fails, clamrest answers 503 meanwhile; a signature database
copied into the shared volume is loaded without a restart and EICAR is found; then the stack is
taken down. Run by `make compose-test` (which builds both images first)."""
import os
import shutil
import signal
import subprocess
import time

import pytest
import requests

import container_harness as podman
from container_harness import podman as pm
import harness  # noqa: E402  (on the path through container_harness)

COMPOSE = podman.ROOT / "deploy" / "docker" / "compose.yaml"
NOWHERE = "http://127.0.0.1:9"	# inside the freshclam container: nothing listens there


class Stack:
    """One compose project in a folder of its own (compose.yaml and a clamrest.env next to it)."""

    def __init__(self, tool, tmp_path, env):
        self.tool = tool
        self.project = f"clamresttest{os.getpid()}{tool[0]}"
        self.dir = tmp_path / "deploy" / "docker"
        self.dir.mkdir(parents=True)
        shutil.copy(COMPOSE, self.dir / "compose.yaml")
        # As the README says: no quotes around the value.
        (self.dir / "clamrest.env").write_text(
            f"APPLICATION_USERS={harness.demo_users()}\nDB_CHECK_INTERVAL=60\n")
        self.port = harness.free_port()
        self.env = {**podman.ENV, **env, "FRESHCLAM_PRIVATE_MIRROR": NOWHERE,
                    "CLAMREST_PUBLISH": f"127.0.0.1:{self.port}"}
        self.url = f"http://127.0.0.1:{self.port}"

    def compose(self, *args, check=True, timeout=300):
        cmd = [self.tool, "-p", self.project, "-f", str(self.dir / "compose.yaml"), *args]
        r = subprocess.run(cmd, cwd=self.dir, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def container(self, service):
        names = pm("ps", "-a", "--format", "{{.Names}}").stdout.split()
        found = [n for n in names if n.startswith(self.project) and service in n[len(self.project):]]
        assert len(found) == 1, (service, names)
        return found[0]

    def volume(self, name):
        vols = pm("volume", "ls", "--format", "{{.Name}}").stdout.split()
        found = [v for v in vols if v.startswith(self.project) and v.endswith(name)]
        assert len(found) == 1, (name, vols)
        return found[0]


class DockerApi:
    """podman's Docker-compatible API on a socket of our own, for docker-compose 1.29."""

    def __init__(self, tmp_path):
        self.sock = tmp_path / "podman.sock"
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0",
                                      f"unix://{self.sock}"], env=podman.ENV,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert harness.wait_until(self.sock.exists, timeout=20), "podman system service did not start"
        self.env = {"DOCKER_HOST": f"unix://{self.sock}"}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["podman-compose", "docker-compose"])
def stack(request, tmp_path):
    api = None
    env = {}
    if request.param == "docker-compose":
        api = DockerApi(tmp_path)
        env = api.env
    s = Stack(request.param, tmp_path, env)
    try:
        yield s
    finally:
        down = s.compose("down", "-v", "-t", "10", check=False)
        print(down.stdout[-2000:], down.stderr[-2000:])
        for v in pm("volume", "ls", "--format", "{{.Name}}").stdout.split():
            if v.startswith(s.project):
                pm("volume", "rm", "-f", v, check=False)
        # podman-compose 1.0.3's down leaves the project's network behind.
        for n in pm("network", "ls", "--format", "{{.Name}}").stdout.split():
            if n.startswith(s.project):
                pm("network", "rm", "-f", n, check=False)
        if api is not None:
            api.stop()
    leftovers = [n for n in pm("ps", "-a", "--format", "{{.Names}}").stdout.split()
                 if n.startswith(s.project)]
    assert leftovers == [], f"{request.param} down left {leftovers}"


def scan_eicar(url):
    return requests.post(url + "/v2/scan", auth=harness.auth(), timeout=30,
                         files={"file": ("eicar.txt", harness.EICAR)})


def test_compose_starts_offline_and_loads_the_database_without_restart(stack):
    t0 = time.monotonic()
    stack.compose("up", "-d")
    clamrest = stack.container("clamrest")
    freshclam = stack.container("freshclam")
    assert podman.wait_status(stack.url + "/check", 503, timeout=60), podman.logs(clamrest)
    print(f"{stack.tool}: up, clamrest answering 503 after {time.monotonic() - t0:.1f} s")
    ports = podman.inspect(clamrest, "{{json .NetworkSettings.Ports}}").replace(" ", "")
    assert '"HostIp":"127.0.0.1"' in ports and '"HostIp":""' not in ports, ports

    # freshclam cannot get anything from its mirror, and says so; clamrest keeps answering 503.
    def freshclam_failed():
        text = podman.logs(freshclam).lower()
        return "127.0.0.1" in text and ("fail" in text or "error" in text or "can't" in text)
    assert harness.wait_until(freshclam_failed, timeout=90, step=1), podman.logs(freshclam)
    flog = podman.logs(freshclam)
    assert "database.clamav.net" not in flog and "current.cvd.clamav.net" not in flog, flog
    print(f"{stack.tool}: freshclam: " + " | ".join(
        line for line in flog.splitlines() if "127.0.0.1" in line or "ERROR" in line)[:600])
    r = requests.get(stack.url + "/check", timeout=5)
    assert r.status_code == 503, r.text
    assert scan_eicar(stack.url).status_code == 503
    assert "no signature database yet" in podman.logs(clamrest)
    started = podman.inspect(clamrest, "{{.State.StartedAt}}")

    # An operator (or freshclam) puts a database into the volume: loaded in place.
    mount = pm("volume", "inspect", "--format", "{{.Mountpoint}}", stack.volume("clamav-db")).stdout.strip()
    t1 = time.monotonic()
    harness.make_db(mount)
    assert podman.wait_status(stack.url + "/check", 200, timeout=30), podman.logs(clamrest)
    print(f"{stack.tool}: clamrest ready {time.monotonic() - t1:.1f} s after the database was copied in")
    r = scan_eicar(stack.url)
    assert r.status_code == 200 and r.json()["malware"] is True, r.text
    assert podman.inspect(clamrest, "{{.State.StartedAt}}") == started
    assert podman.inspect(clamrest, "{{.RestartCount}}") == "0"
    assert podman.inspect(clamrest, "{{.HostConfig.ReadonlyRootfs}}") == "true"
