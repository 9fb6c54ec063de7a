"""test_doc_slips -- the documentation slips of issue 22.5, each checked against what it describes."""
import re
import subprocess

import requests
import yaml

import harness

ROOT = harness.ROOT


def test_client_examples_endpoint_table_is_one_table():
    text = (ROOT / "client-examples" / "README.md").read_text()
    section = text.split("## The endpoints", 1)[1].split("\n\n", 2)
    table = section[1]
    assert "/v2/scan-chunked" in table and "/v3/scan-chunked" in table, table
    assert ".UNOFFICIAL" in text and "libclamav adds" in text


def test_curl_sh_promises_the_demo_name(server):
    r = requests.post(server.url + "/v2/scan-chunked", data=harness.EICAR, auth=harness.auth(),
                      timeout=10)
    name = r.json()["reason"]
    assert f'"reason": "{name}"' in (ROOT / "client-examples" / "curl.sh").read_text(), name


def man_text():
    out = subprocess.run(["man", "-l", str(ROOT / "docs" / "clamrest.8")], capture_output=True,
                         text=True, env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"}, check=True)
    return re.sub(r".\x08", "", out.stdout)


def test_man_page_json_and_tmp_folder():
    text = " ".join(man_text().split())
    assert '{"malware": bool, "reason": string or null, "time": seconds}' in text
    assert '{"engine", "files": [{"name", "size", "sha256", "type", "malware", "matches": ' \
        '[{"signature", "path"}], "limits_exceeded", "time"}], "malware", "time"}' in text, text
    assert "SCAN_TMPDIR/clamrest.<pid>" in text and "clamrest.<pid> inside it" in text


def test_deploy_readme_sizes_tmpdir_by_body_disk():
    text = (ROOT / "deploy" / "README.md").read_text()
    assert "SCAN_THREADS + SCAN_QUEUE" not in text
    assert "bounded by `BODY_DISK`" in text
    dep = (ROOT / "deploy" / "kubernetes" / "deployment.yaml").read_text()
    body_disk = int(re.search(r'name: BODY_DISK, value: "(\d+)"', dep).group(1))
    limit = re.search(r"name: tmp\n\s+emptyDir:\n\s+sizeLimit: (\d+)Gi", dep)
    assert body_disk < int(limit.group(1)) * 2**30


def test_openapi_head_on_every_get_and_no_405_on_get():
    spec = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    for path, item in spec["paths"].items():
        if "get" in item:
            assert "head" in item, path
        for m in ("get", "head"):
            if m in item:
                assert "405" not in item[m]["responses"], (m, path)


def test_help_columns_are_aligned():
    out = subprocess.run([harness.BIN, "--help"], capture_output=True, text=True, check=True).stdout
    starts = {(m.start(2), m.start(3)) for m in
              (re.match(r"^  (--\S+) +([A-Z0-9_]+) +(\S)", l) for l in out.splitlines()) if m}
    assert len(starts) == 1, starts


def test_perf_readme_explains_the_cache():
    text = (ROOT / "perf" / "README.md").read_text()
    assert "SCAN_CACHE=0" in text and "USER_DEFINED" in text


def test_compatibility_lists_version_error_wording():
    text = (ROOT / "docs" / "COMPATIBILITY.md").read_text().split("# Differences from upstream", 1)[1]
    text = text.split("\n## ", 1)[0]
    assert "`/check_warning`" in text and "`/check_version`" in text
