"""test_openapi -- docs/openapi.yaml against the running server.

Every documented operation must exist, and real answers (status, content type, headers, body) must
be what the document says for that operation. Schemas are checked by a small validator for the
part of OpenAPI 3.0's schema language the document uses; test_document_is_well_formed makes sure
nothing outside that part creeps in unnoticed.
"""
import io
import json
import re
import tarfile
import zipfile

import pytest
import requests
import yaml

import harness

SPEC_PATH = harness.ROOT / "docs" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())
METHODS = ("get", "head", "post", "put", "delete", "patch", "options")
SCHEMA_KEYWORDS = {"type", "required", "properties", "additionalProperties", "nullable", "enum",
                   "pattern", "oneOf", "$ref", "format", "items", "description", "example"}


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def validate(value, schema, where="body"):
    """Errors of value against an OpenAPI 3.0 schema (the subset in SCHEMA_KEYWORDS)."""
    schema = resolve(schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null not allowed"]
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not validate(value, s, where)]
        return [] if len(ok) == 1 else [f"{where}: matches {len(ok)} of oneOf, not 1: {value!r}"]
    errors = []
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool,
             "integer": int, "number": (int, float)}
    if t is not None:
        if not isinstance(value, types[t]) or (t in ("integer", "number") and isinstance(value, bool)):
            return [f"{where}: {value!r} is not {t}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: {name} missing")
        for name, v in value.items():
            if name in props:
                errors += validate(v, props[name], f"{where}.{name}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}: {name} not documented")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errors += validate(v, schema["items"], f"{where}[{i}]")
    return errors


def media(content_type):
    """'text/plain; charset=utf-8' -> ('text/plain', {'charset': 'utf-8'})"""
    parts = [p.strip() for p in (content_type or "").split(";")]
    params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    return parts[0].lower(), params


def operation(path, method):
    return SPEC["paths"][path][method]


def check_response(r, path, method):
    """Asserts r is documented: its status for this operation (a 405: for any operation of the
    path, else the document-wide MethodNotAllowed the description names for every path), its
    headers, content type and body."""
    ops = SPEC["paths"][path]
    status = str(r.status_code)
    if status == "405":
        documented = [o["responses"]["405"] for o in ops.values() if "405" in o.get("responses", {})]
        assert documented or "405 `Method Not Allowed`" in SPEC["info"]["description"], \
            f"405 of {method.upper()} {path} is not documented"
        resp = resolve(documented[0] if documented else
                       {"$ref": "#/components/responses/MethodNotAllowed"})
    else:
        op = operation(path, method)
        assert status in op["responses"], \
            f"{method.upper()} {path} answered {status}, documented: {sorted(op['responses'])}"
        resp = resolve(op["responses"][status])
    for name, h in resp.get("headers", {}).items():
        assert name in r.headers, f"{method.upper()} {path} {status}: no {name} header"
        schema = resolve(h)["schema"]
        value = r.headers[name]
        if resolve(schema).get("type") == "integer":
            assert value.isdigit(), f"{name}: {value!r}"
            value = int(value)
        assert not validate(value, schema, name), validate(value, schema, name)
    if method == "head":
        return
    content = resp.get("content")
    assert content, f"{method.upper()} {path} {status}: no content documented"
    got_type, got_params = media(r.headers.get("Content-Type"))
    for doc_type, body in content.items():
        want_type, want_params = media(doc_type)
        if want_type == got_type and all(got_params.get(k) == v for k, v in want_params.items()):
            break
    else:
        raise AssertionError(f"{method.upper()} {path} {status}: Content-Type "
                             f"{r.headers.get('Content-Type')!r}, documented {list(content)}")
    value = r.json() if got_type == "application/json" else r.text
    errors = validate(value, body["schema"])
    assert not errors, f"{method.upper()} {path} {status}: {errors}"


def walk_schemas(node, found):
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            found.append(node["schema"])
        for k, v in node.items():
            if k in ("example", "examples"):
                continue
            walk_schemas(v, found)
    elif isinstance(node, list):
        for v in node:
            walk_schemas(v, found)


def test_document_is_well_formed():
    assert SPEC["openapi"].startswith("3.0.")
    refs = re.findall(r"\$ref[\"']?:\s*[\"']([^\"']+)", SPEC_PATH.read_text())
    assert refs
    for ref in refs:
        resolve({"$ref": ref})
    for path, item in SPEC["paths"].items():
        ops = {m: o for m, o in item.items() if m in METHODS}
        assert ops, path
        for m, op in ops.items():
            assert op["responses"], f"{m} {path}"
            for status, resp in op["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", status), f"{m} {path} {status}"
                assert "description" in resolve(resp), f"{m} {path} {status}"
            for sec in op.get("security", []):
                for name in sec:
                    assert name in SPEC["components"]["securitySchemes"]
    schemas = list(SPEC["components"]["schemas"].values())
    walk_schemas(SPEC, schemas)

    def keywords(s):
        s = resolve(s)
        unknown = set(s) - SCHEMA_KEYWORDS
        assert not unknown, f"schema keywords the validator does not know: {unknown}"
        for sub in list(s.get("properties", {}).values()) + s.get("oneOf", []):
            keywords(sub)
        if isinstance(s.get("items"), dict):
            keywords(s["items"])

    for s in schemas:
        keywords(s)
    # The examples of the schemas are valid themselves.
    for name, s in SPEC["components"]["schemas"].items():
        if "example" in s:
            assert not validate(s["example"], s), name


def test_scan_endpoints_need_basic_auth():
    for path, item in SPEC["paths"].items():
        for m, op in item.items():
            if m == "post":
                assert op.get("security") == [{"basicAuth": []}], path
                assert "401" in op["responses"], path
            elif m in METHODS:
                assert op.get("security", SPEC.get("security")) == [], path


def test_every_documented_operation_exists(server):
    missing = []
    for path, item in SPEC["paths"].items():
        for m in item:
            if m not in METHODS:
                continue
            r = requests.request(m.upper(), server.url + path, timeout=10)
            if r.status_code in (404, 405):
                missing.append((m, path))
            elif m == "post":
                assert r.status_code == 401, f"POST {path} without auth: {r.status_code}"
    assert not missing, f"documented but not served: {missing}"


def scan_cases():
    clean = b"just some harmless text\n" * 40
    return [
        ("post", "/v2/scan", dict(files={"file": ("eicar.com", harness.EICAR)}), 200, True),
        ("post", "/v2/scan", dict(files={"file": ("clean.txt", clean)}), 200, False),
        ("post", "/v2/scan-chunked", dict(data=iter([harness.EICAR])), 200, True),
        ("post", "/v2/scan-chunked", dict(data=clean), 200, False),
        ("post", "/scan", dict(files={"file": ("eicar.com", harness.EICAR)}), 200, True),
        ("post", "/scan", dict(files={"file": ("clean.txt", clean)}), 200, False),
        ("post", "/v3/scan", dict(files=[("file", ("eicar.com", harness.EICAR)),
                                         ("file", ("clean.txt", clean))]), 200, True),
        ("post", "/v3/scan?all_matches=true", dict(files={"file": ("nested.tar.gz", nested())}), 200, True),
        ("post", "/v3/scan", dict(files={"file": ("clean.txt", clean)}), 200, False),
        ("post", "/v3/scan-chunked", dict(data=iter([harness.EICAR])), 200, True),
        ("post", "/v3/scan-chunked?all_matches=false", dict(data=b"xy"), 200, False),
    ]


def nested():
    """EICAR in a zip in a tar.gz: a v3 answer with a path three names deep."""
    z, t = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("eicar.com", harness.EICAR)
    with tarfile.open(fileobj=t, mode="w:gz") as f:
        ti = tarfile.TarInfo("inner.zip")
        ti.size = len(z.getvalue())
        f.addfile(ti, io.BytesIO(z.getvalue()))
    return t.getvalue()


def test_answers_match_the_document(server):
    url, auth = server.url, harness.auth()
    for method, path in (("get", "/"), ("get", "/check"), ("head", "/check"), ("head", "/")):
        r = requests.request(method.upper(), url + path, timeout=10)
        assert r.status_code == 200
        check_response(r, path, method)

    for method, target, kw, status, malware in scan_cases():
        path = target.split("?")[0]
        r = requests.post(url + target, auth=auth, timeout=30, **kw)
        assert r.status_code == status, (path, r.text)
        check_response(r, path, method)
        if path == "/scan":
            assert r.text == ("NOTOK" if malware else "OK")
        else:
            assert r.json()["malware"] is malware

    refused = [
        ("post", "/v2/scan", dict(data=b"not multipart", auth=auth), 400),
        ("post", "/v2/scan", dict(files=[("a", ("a", b"1")), ("b", ("b", b"2"))], auth=auth), 400),
        ("post", "/scan", dict(files={"field": (None, b"no filename")}, auth=auth), 400),
        ("post", "/v2/scan", dict(files={"file": ("a", b"1")}), 401),
        ("post", "/v2/scan-chunked", dict(data=b"1", auth=("app1", "wrong")), 401),
        ("post", "/scan", dict(files={"file": ("a", b"1")}, auth=("nobody", "x")), 401),
        ("post", "/v3/scan", dict(files=[("f", ("a", b"1"))] * 17, auth=auth), 400),
        ("post", "/v3/scan", dict(files={"field": (None, b"no filename")}, auth=auth), 400),
        ("post", "/v3/scan", dict(data=b"not multipart", auth=auth), 400),
        ("post", "/v3/scan-chunked?all_matches=maybe", dict(data=b"1", auth=auth), 400),
        ("post", "/v3/scan", dict(files={"file": ("a", b"1")}), 401),
        ("post", "/v3/scan-chunked", dict(data=b"1", auth=("app1", "wrong")), 401),
        ("get", "/v3/scan", {}, 405),
        ("put", "/v3/scan-chunked", {}, 405),
        ("post", "/check", {}, 405),
        ("get", "/v2/scan", {}, 405),
        ("delete", "/scan", {}, 405),
        ("put", "/check_version", {}, 405),
    ]
    for method, path, kw, status in refused:
        r = requests.request(method.upper(), url + path, timeout=10, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        check_response(r, path.split("?")[0], method)

    # Ambiguous framing: Content-Length and Transfer-Encoding together.
    raw = harness.raw_request(server.port, (
        "POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " + harness.basic() +
        "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode())
    assert raw.startswith(b"HTTP/1.1 400"), raw[:200]
    assert "400" in operation("/v2/scan-chunked", "post")["responses"]

    r = requests.get(url + "/no/such/path", timeout=10)
    assert (r.status_code, r.text) == (404, "Not Found")

    for path in SPEC["paths"]:
        r = requests.options(url + path, timeout=10)
        assert r.status_code == 200, (path, r.status_code)
        check_response(r, path, "options")

    r = requests.get(url + "/version", timeout=10)
    assert r.status_code == 200, r.text
    check_response(r, "/version", "get")

    # No reachable DNS in the default test server: the version endpoints report why.
    r = requests.get(url + "/check_version", timeout=30)
    assert r.status_code == 500
    check_response(r, "/check_version", "get")
    assert "error" in r.json()
    r = requests.get(url + "/check_warning", timeout=30)
    assert r.status_code == 500
    check_response(r, "/check_warning", "get")


def test_throttled_matches_the_document(start):
    """429 once the address has used up its failed password checks (AUTH_FAIL_BURST 1)."""
    srv = start(env={"AUTH_FAIL_BURST": "1", "AUTH_FAIL_RATE": "6"})
    for path, kw in (("/v2/scan-chunked", dict(data=b"1")),
                     ("/v2/scan", dict(files={"file": ("a", b"1")})),
                     ("/scan", dict(files={"file": ("a", b"1")})),
                     ("/v3/scan", dict(files={"file": ("a", b"1")})),
                     ("/v3/scan-chunked", dict(data=b"1"))):
        for i, status in enumerate((401, 429) if path == "/v2/scan-chunked" else (429,)):
            r = requests.post(srv.url + path, auth=("app1", f"guess-{path}-{i}"), timeout=10, **kw)
            assert r.status_code == status, (path, r.status_code, r.text)
            check_response(r, path, "post")
        assert r.headers["Retry-After"] == "10", r.headers


def test_too_large_matches_the_document(start):
    srv = start(env={"MAX_CONTENT_LENGTH": "1000"})
    for path, kw in (("/v2/scan", dict(files={"file": ("big", b"\0" * 2000)})),
                     ("/v2/scan-chunked", dict(data=b"\0" * 2000)),
                     ("/scan", dict(files={"file": ("big", b"\0" * 2000)})),
                     ("/v3/scan", dict(files={"file": ("big", b"\0" * 2000)})),
                     ("/v3/scan-chunked", dict(data=b"\0" * 2000))):
        r = requests.post(srv.url + path, auth=harness.auth(), timeout=10, **kw)
        assert r.status_code == 413, (path, r.status_code)
        check_response(r, path, "post")


@pytest.mark.parametrize("published,status,outdated", [(27000, 200, False), (27001, 200, False),
                                                       (27005, 500, True)])
def test_versions_match_the_document(start, dns, published, status, outdated):
    d = dns(published)
    srv = start(env={"CLAMAV_DNS_SERVER": d.server}, db_version=27000)
    # The first lookup may still be on its way.
    assert harness.wait_until(
        lambda: "error" not in requests.get(srv.url + "/check_version", timeout=5).json(), timeout=15)
    r = requests.get(srv.url + "/check_version", timeout=10)
    assert r.status_code == status, r.text
    check_response(r, "/check_version", "get")
    body = r.json()
    assert (body["clamd-actual"], body["clamd-required"], body["outdated"]) == \
        ("27000", str(published), outdated)
    r = requests.get(srv.url + "/check_warning", timeout=10)
    assert r.status_code == (200 if published == 27000 else 500)
    check_response(r, "/check_warning", "get")
    if published == 27000:
        assert r.text == "27000"
    else:
        assert r.text == f"Outdated local_version: 27000 remote_version: {published}"


def test_metrics_match_the_document(server):
    r = requests.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200
    check_response(r, "/metrics", "get")
    assert re.search(r"^# TYPE \w+ (counter|gauge|histogram|summary|untyped)$", r.text, re.M), r.text[:500]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_validator_catches_mistakes():
    """The validator itself: it must reject what does not match."""
    s = SPEC["components"]["schemas"]
    assert not validate({"malware": False, "reason": None, "time": 0.1}, s["ScanResult"])
    assert validate({"malware": "no", "reason": None, "time": 0.1}, s["ScanResult"])
    assert validate({"malware": False, "time": 0.1}, s["ScanResult"])
    assert validate({"malware": False, "reason": None, "time": 0.1, "x": 1}, s["ScanResult"])
    assert validate({"service": "1.0.0", "clamd-actual": True, "clamd-required": "1",
                     "outdated": False}, s["VersionInfo"])
    assert validate({"service": "1.0.0", "clamd-actual": 1, "clamd-required": "1",
                     "outdated": False}, s["VersionInfo"])
    assert not validate({"service": "1.0.0", "clamd-actual": "1", "clamd-required": "1",
                         "outdated": False}, s["VersionInfo"])
    one_of = {"oneOf": [{"$ref": "#/components/schemas/VersionInfo"},
                        {"$ref": "#/components/schemas/VersionError"}]}
    assert not validate({"service": "1.0.0", "error": "x"}, one_of)
    assert validate({"service": "1.0.0"}, one_of)
    assert validate(json.loads('{"error": null}'), s["ScanError"])
    v3 = s["V3Result"]["example"]
    assert not validate(v3, s["V3Result"])
    bad = json.loads(json.dumps(v3))
    bad["files"][0]["sha256"] = "ABC"
    assert validate(bad, s["V3Result"])
    bad = json.loads(json.dumps(v3))
    bad["files"][0]["matches"][0]["path"] = "outer.tar.gz"
    assert validate(bad, s["V3Result"])
    bad = json.loads(json.dumps(v3))
    del bad["files"][0]["type"]
    assert validate(bad, s["V3Result"])
