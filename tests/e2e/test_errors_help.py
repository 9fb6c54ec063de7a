"""test_errors_help -- errors that tell what to do (issue 22.3): an empty database folder names
freshclam and DB_WAIT=1; an unknown flag on a terminal is a plain message with the --help hint
(JSON when stderr is not a terminal); a chunked body libmicrohttpd refuses itself is logged with the
status it sent, not 499."""
import json
import os
import pty
import socket
import subprocess
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


def raw_post(port, body):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        try:
            c.sendall(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                      harness.basic().encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        except OSError:
            pass
        head = c.recv(4096)
    return int(head.split()[1]), head


def test_chunk_errors_logged_with_the_status_sent(start):
    srv = start()
    sent = [raw_post(srv.port, b"zz\r\nabc\r\n0\r\n\r\n")[0],
            raw_post(srv.port, b"3;" + b"e" * (1 << 20) + b"\r\nabc\r\n0\r\n\r\n")[0]]

    def lines():
        got = [json.loads(l) for l in srv.logs().splitlines()
               if l.startswith("{") and '"url.path"' in l]
        return got if len(got) == 2 else None
    assert harness.wait_until(lines), srv.logs()
    logged = sorted(l["http.response.status_code"] for l in lines())
    assert logged == sorted(sent) and 499 not in logged, (sent, lines())
    for l in lines():
        assert "libmicrohttpd answered" in l["error.message"], l
