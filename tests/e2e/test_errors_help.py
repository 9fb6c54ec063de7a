"""test_errors_help -- errors that tell what to do (issue 22.3): an empty database folder names
freshclam and DB_WAIT=1; an unknown flag on a terminal is a plain message with the --help hint
(JSON when stderr is not a terminal); a chunked body libmicrohttpd cannot read gets our own 400
with X-Request-Id (not its HTML page, a 500 for a long chunk extension), logged as the 400 it is."""
import json
import os
import pty
import re
import socket
import subprocess
import threading
import time

import harness


def base_env(db):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOST": "127.0.0.1",
           "PORT": str(harness.free_port()), "CLAMAV_TXT_URI": "", "CLAMAV_DB_DIR": str(db)}
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


def test_empty_database_folder_names_the_ways_out(tmp_path):
    p = subprocess.run([harness.BIN], env=base_env(tmp_path), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2, p
    msg = json.loads(p.stderr.strip().splitlines()[-1])["message"]
    assert "holds no signature database" in msg and "freshclam" in msg and "DB_WAIT=1" in msg, msg
    assert "Can't open" not in msg, msg


def test_unknown_flag_on_a_terminal_is_plain(tmp_path):
    master, slave = pty.openpty()
    try:
        p = subprocess.run([harness.BIN, "--no-such-flag"], env=base_env(tmp_path), stderr=slave,
                           stdout=subprocess.DEVNULL, timeout=30)
        os.close(slave)
        slave = None
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    text = out.decode()
    assert p.returncode == 2
    assert text.startswith("clamrest: unknown option '--no-such-flag'"), text
    assert "clamrest --help" in text and "{" not in text, text


def test_unknown_flag_elsewhere_is_json(tmp_path):
    p = subprocess.run([harness.BIN, "--no-such-flag"], env=base_env(tmp_path),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    line = json.loads(p.stderr.strip())
    assert line["log.level"] == "CRITICAL" and "--no-such-flag" in line["message"], line


def raw_post(port, body, path="/v2/scan-chunked", user="app1", password=harness.DEMO_PASSWORD):
    """(status, head and body bytes) of a chunked POST whose body bytes are given raw."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as c:
        try:
            c.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                      harness.basic(user, password).encode() +
                      b"\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        except OSError:
            pass
        out = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            out += chunk
    return int(out.split()[1]), out


BAD_CHUNKS = (b"zz\r\nabc\r\n0\r\n\r\n",                         # not hex
              b"3;" + b"e" * (1 << 20) + b"\r\nabc\r\n0\r\n\r\n",     # 1 MiB chunk extension
              b"3\r\nabc\r\nffffffffffffffffffff\r\n")               # overflows 64 bits


def test_chunk_errors_get_our_400(start):
    """Not libmicrohttpd's HTML page (a 500 for the long extension): our 400, with X-Request-Id,
    JSON on /v3, and the access line logs the 400 that was sent."""
    srv = start()
    ids = []
    for path in ("/v2/scan-chunked", "/v3/scan-chunked"):
        for body in BAD_CHUNKS:
            status, out = raw_post(srv.port, body, path)
            head, _, text = out.partition(b"\r\n\r\n")
            assert status == 400 and b"<html>" not in out, out[:300]
            rid = re.search(rb"\r\nX-Request-Id: ([0-9a-f]{32})\r\n", head)
            assert rid, head
            ids.append(rid.group(1).decode())
            if path.startswith("/v3"):
                assert "malformed chunked encoding" in json.loads(text)["error"], text
            else:
                assert b"malformed chunked encoding" in text, text

    def lines():
        got = {l.get("http.request.id"): l for l in (json.loads(x) for x in srv.logs().splitlines()
                                                     if x.startswith("{")) if "url.path" in l}
        return got if all(i in got for i in ids) else None
    assert harness.wait_until(lines), srv.logs()
    for i in ids:
        assert lines()[i]["http.response.status_code"] == 400, lines()[i]
        assert "malformed chunked encoding" in lines()[i]["error.message"], lines()[i]


def test_chunk_error_after_a_password_check_hits_only_its_request(start):
    """One HTTP thread: a request whose head (a new password, checked while it is suspended) and
    malformed chunk come in one packet is answered 400 once resumed, while another client's
    chunked upload, which sent data on the same thread meanwhile, is untouched and answered 200."""
    users = harness.demo_users() + "\nbob::" + harness.hash_password("bob-pw", rounds=2000000)
    srv = start(env={"IO_THREADS": "1", "APPLICATION_USERS": users})
    piece = [harness.EICAR[:20], harness.EICAR[20:40], harness.EICAR[40:]]
    with socket.create_connection(("127.0.0.1", srv.port), timeout=120) as legit:
        legit.sendall(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                      harness.basic().encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      b"%x\r\n" % len(piece[0]) + piece[0] + b"\r\n")
        time.sleep(0.2)
        got = []
        t = threading.Thread(target=lambda: got.append(
            raw_post(srv.port, BAD_CHUNKS[0], user="bob", password="bob-pw")))
        t.start()
        time.sleep(0.3)		# bob's check runs (a second or more): the thread reads legit's piece
        legit.sendall(b"%x\r\n" % len(piece[1]) + piece[1] + b"\r\n")
        t.join(150)
        assert got and got[0][0] == 400 and b"<html>" not in got[0][1], got
        legit.sendall(b"%x\r\n" % len(piece[2]) + piece[2] + b"\r\n0\r\n\r\n")
        resp = b""
        while b'"malware"' not in resp:
            chunk = legit.recv(65536)
            assert chunk, resp
            resp += chunk
    assert resp.startswith(b"HTTP/1.1 200") and b'"malware":true' in resp, resp
