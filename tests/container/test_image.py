"""test_image -- the container image built by `make image`, run as deploy/README.md says: published
on 127.0.0.1 only, read-only root, no capabilities, no-new-privileges, a signature folder mounted
read-only. Run by `make image-test` (which builds the image first)."""
import signal
import time

import pytest
import requests

import container_harness as podman
from container_harness import podman as pm
import harness  # noqa: E402  (on the path through container_harness)

GRACE = 150	# seconds: the grace the recipes give (docker stop -t, stop_grace_period)


def start(name, db, env=(), port=None):
    port = port or harness.free_port()
    args = ["-p", f"127.0.0.1:{port}:8090", "-v", f"{db}:/var/lib/clamav:ro",
            "-e", f"APPLICATION_USERS={harness.demo_users()}", "-e", "DB_CHECK_INTERVAL=60"]
    for kv in env:
        args += ["-e", kv]
    return podman.run(name, *args), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    db = podman.db_folder(tmp_path_factory.mktemp("svc"))
    name, url = start("svc", db)
    assert podman.wait_status(url + "/check", 200), podman.logs(name)
    yield name, url
    podman.remove(name)


def scan(url, auth):
    return requests.post(url + "/v2/scan", auth=auth, timeout=30,
                         files={"file": ("eicar.txt", harness.EICAR)})


def test_check_200(svc):
    _, url = svc
    r = requests.get(url + "/check", timeout=5)
    assert (r.status_code, r.text) == (200, "Service OK")


def test_eicar_with_basic_auth_is_malware(svc):
    _, url = svc
    r = scan(url, harness.auth())
    assert r.status_code == 200, r.text
    assert r.json()["malware"] is True and "Eicar" in r.json()["reason"], r.text


def test_wrong_password_401(svc):
    _, url = svc
    assert scan(url, harness.auth(password="wrong")).status_code == 401


def test_published_on_loopback_only_with_hardening(svc):
    name, _ = svc
    ports = podman.inspect(name, "{{json .NetworkSettings.Ports}}")
    assert '"HostIp":"127.0.0.1"' in ports.replace(" ", ""), ports
    assert podman.inspect(name, "{{.HostConfig.ReadonlyRootfs}}") == "true"
    status = pm("exec", name, "cat", "/proc/1/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapEff"].strip() == "0000000000000000", fields["CapEff"]
    assert fields["CapBnd"].strip() == "0000000000000000", fields["CapBnd"]
    assert fields["NoNewPrivs"].strip() == "1"
    # The root file system refuses writes; /tmp (a tmpfs) takes them.
    assert pm("exec", name, "touch", "/usr/x", check=False).returncode != 0
    pm("exec", name, "touch", "/tmp/x")


def test_runs_as_named_non_root_user(svc):
    name, _ = svc
    status = pm("exec", name, "cat", "/proc/1/status").stdout
    uid = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    gid = next(line.split()[1:] for line in status.splitlines() if line.startswith("Gid:"))
    assert set(uid) == {"10001"} and set(gid) == {"10001"}, (uid, gid)
    # One uid and one gid, both with a name (useradd once made gid 999 and USER said 10001).
    assert pm("exec", name, "id").stdout.strip() == \
        "uid=10001(clamrest) gid=10001(clamrest) groups=10001(clamrest)"
    assert pm("exec", name, "getent", "group", "10001").stdout.startswith("clamrest:")


def test_runs_the_patched_libclamav(svc):
    """Both images, `make image` (the host's scripts/build-libclamav library, LIBCLAMAV=patched) and
    `make image-from-source` (a plain `podman build` of the repository, the library built in the
    Dockerfile's own stage), link the patched libclamav: that file is what the process maps,
    Debian's libclamav12 is not in the image at all, and /version and clamrest_build_info say so."""
    name, url = svc
    maps = pm("exec", name, "cat", "/proc/1/maps").stdout
    libs = {line.split()[-1] for line in maps.splitlines() if "libclamav" in line}
    assert libs == {"/opt/clamrest/libclamav/lib/libclamav.so.12.0.3"}, libs
    assert pm("exec", name, "ls", "/usr/lib/x86_64-linux-gnu/libclamav.so.12", check=False).returncode != 0
    assert pm("exec", name, "dpkg-query", "-W", "libclamav12", check=False).returncode != 0
    assert requests.get(url + "/version", timeout=5).json()["libclamav_patched"] is True
    metrics = requests.get(url + "/metrics", auth=harness.auth(), timeout=5).text
    info = next(x for x in metrics.splitlines() if x.startswith("clamrest_build_info{"))
    assert 'libclamav_patched="true"' in info and \
        'libclamav_file="/opt/clamrest/libclamav/lib/libclamav.so.12"' in info, info
    assert "(libclamav 1.4.6 from /opt/clamrest/libclamav/lib/libclamav.so.12, patched)" in podman.logs(name)


def test_licence_notice_and_corresponding_source(svc):
    """The GPL's terms travel with the image: the licence, the notice of the components, and the
    corresponding source of the patched libclamav (our patches and the exact source tarball)."""
    name, _ = svc
    doc = "/usr/share/doc/clamrest"
    assert "GNU GENERAL PUBLIC LICENSE" in pm("exec", name, "cat", f"{doc}/LICENSE").stdout
    notice = pm("exec", name, "cat", f"{doc}/NOTICE").stdout
    for component in ("libclamav", "libmicrohttpd", "OpenSSL", "c-ares"):
        assert component in notice, component
    readme = pm("exec", name, "cat", f"{doc}/libclamav-source/README").stdout
    sums = (podman.ROOT / "third_party" / "libclamav" / "SHA256SUMS").read_text()
    sha = readme.split("sha256 ")[1].split()[0]
    assert f"{sha}  clamav_1.4.6+dfsg.orig.tar.xz" in sums, readme
    shipped = set(pm("exec", name, "ls", f"{doc}/libclamav-source").stdout.split())
    ours = {p.name for p in (podman.ROOT / "third_party" / "libclamav").glob("*.patch")}
    assert ours and ours <= shipped, (ours, shipped)
    for p in sorted(ours):
        assert pm("exec", name, "cat", f"{doc}/libclamav-source/{p}").stdout == \
            (podman.ROOT / "third_party" / "libclamav" / p).read_text()
    assert "patch: " in pm("exec", name, "cat", "/opt/clamrest/libclamav/lib/clamrest-libclamav.txt").stdout


def test_image_keeps_healthcheck_and_user():
    hc = pm("image", "inspect", "--format", "{{json .HealthCheck}}", podman.IMAGE).stdout
    assert "CMD-SHELL" in hc and "/check" in hc, f"HEALTHCHECK lost (built without --format docker?): {hc}"
    assert podman.inspect(podman.IMAGE, "{{.Config.User}}") == "10001:10001"


def test_healthcheck_passes_then_fails_when_stopped(svc):
    name, _ = svc
    rc, out = podman.healthcheck(name)
    assert rc == 0, out
    pm("kill", "--signal", "STOP", name)
    try:
        rc, out = podman.healthcheck(name)
        assert rc != 0, f"healthcheck passed while clamrest was stopped: {out}"
    finally:
        pm("kill", "--signal", "CONT", name)
    rc, out = podman.healthcheck(name)
    assert rc == 0, out


def test_sigterm_stops_within_grace_with_exit_0(tmp_path):
    name, url = start("stop", podman.db_folder(tmp_path))
    try:
        assert podman.wait_status(url + "/check", 200), podman.logs(name)
        t0 = time.monotonic()
        pm("stop", "-t", str(GRACE), name, timeout=GRACE + 30)
        took = time.monotonic() - t0
        code = podman.inspect(name, "{{.State.ExitCode}}")
        logs = podman.logs(name)
        print(f"podman stop took {took:.2f} s, exit code {code}")
        assert code == "0", logs
        assert took < GRACE / 3, f"stop took {took:.1f} s: SIGTERM ignored, killed at the end?"
        assert f"signal {int(signal.SIGTERM)}: shutting down" in logs, logs
    finally:
        podman.remove(name)


def test_empty_db_folder_waits_then_loads_without_restart(tmp_path):
    """The image sets DB_WAIT=1: 503 and an unhealthy container until a database appears, then
    ready in the same container."""
    db = podman.db_folder(tmp_path, with_db=False)
    name, url = start("wait", db)
    try:
        assert podman.wait_status(url + "/check", 503), podman.logs(name)
        rc, out = podman.healthcheck(name)
        assert rc != 0, out
        assert "no signature database yet" in podman.logs(name)
        started = podman.inspect(name, "{{.State.StartedAt}}")
        harness.make_db(db)
        assert podman.wait_status(url + "/check", 200, timeout=20), podman.logs(name)
        assert scan(url, harness.auth()).json()["malware"] is True
        assert podman.healthcheck(name)[0] == 0
        assert podman.inspect(name, "{{.State.StartedAt}}") == started
        assert podman.inspect(name, "{{.RestartCount}}") == "0"
    finally:
        podman.remove(name)


def test_empty_db_folder_without_db_wait_exits_2(tmp_path):
    db = podman.db_folder(tmp_path, with_db=False)
    name, _ = start("nowait", db, env=["DB_WAIT=0"])
    try:
        assert harness.wait_until(
            lambda: podman.inspect(name, "{{.State.Status}}") == "exited", timeout=30)
        assert podman.inspect(name, "{{.State.ExitCode}}") == "2"
        assert "CLAMAV_DB_DIR" in podman.logs(name)
    finally:
        podman.remove(name)


def test_image_size():
    size = podman.image_size()
    print(f"{podman.IMAGE}: {size} bytes ({size / 1e6:.1f} MB)")
    assert size < 200_000_000, size
