"""test_manifests -- deploy/kubernetes passes the strict schema check (tests/k8s/check-manifests.mjs,
every field known to the Kubernetes API models, right types), and the check does catch a
misspelled field, a field at the wrong level and a wrong type. Offline once `make k8s-schema` has
run npm install into build/k8s-check."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests" / "k8s" / "check-manifests.mjs"
MODULES = pathlib.Path(os.environ.get("K8S_CHECK_MODULES", ROOT / "build" / "k8s-check" / "node_modules"))
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))


def run_check(*files):
    if not (MODULES / "@kubernetes" / "client-node").is_dir():
        pytest.fail(f"{MODULES} has no @kubernetes/client-node: run make k8s-schema")
    return subprocess.run(["node", str(CHECK), str(MODULES), *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def test_deploy_kubernetes_passes():
    r = run_check(*MANIFESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    checked = r.stdout.count(": ok")
    assert checked == len(MANIFESTS) - 1, r.stdout	# kustomization.yaml is not an API object


@pytest.mark.parametrize("old,new,message", [
    ("periodSeconds:", "periodSecond:", "periodSecond: unknown field of V1Probe"),
    ("readOnlyRootFilesystem:", "readOnlyRootFileSystem:", "unknown field of V1SecurityContext"),
    ("terminationGracePeriodSeconds: 150", "terminationGracePeriodSeconds: \"150\"",
     "terminationGracePeriodSeconds: string where an integer is expected"),
    ("  replicas:", "  replica:", "replica: unknown field of V1DeploymentSpec"),
])
def test_check_catches_mistakes(tmp_path, old, new, message):
    text = (ROOT / "deploy" / "kubernetes" / "deployment.yaml").read_text()
    assert old in text, f"{old!r} is no longer in deployment.yaml: update this test"
    bad = tmp_path / "deployment.yaml"
    bad.write_text(text.replace(old, new, 1))
    r = run_check(bad)
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stderr, r.stderr


def test_unknown_kind_is_an_error(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n")
    r = run_check(bad)
    assert r.returncode == 1 and "no model for apiVersion apps/v1 kind Deploymnet" in r.stderr, r.stderr
