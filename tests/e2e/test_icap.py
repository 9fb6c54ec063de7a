"""test_icap -- the ICAP service (issue 25): OPTIONS, RESPMOD and REQMOD with the real binary, through
raw sockets (malformed requests: bad Encapsulated offsets, lying chunk sizes, huge heads, a preview
longer than announced, pipelining, slow clients) and through Debian's c-icap-client; Content-Encoding
(gzip, deflate, br) decoded and scanned; bodies past MAX_CONTENT_LENGTH never passed as clean; 503 under
DB_WAIT; the verdict-integrity corpus through ICAP; the access line and the metrics."""
import gzip
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import zlib

import pytest
import requests

import harness
import icapc
from icapc import EICAR

CLIENT = shutil.which("c-icap-client")
SERVICES = ("avscan", "srv_clamav", "virus_scan", "squidclamav")


def icap_env(**kw):
    env = {"ICAP_PORT": str(harness.free_port())}
    env.update(kw)
    return env


@pytest.fixture(scope="module")
def srv(start_module):
    s = start_module(env=icap_env(SPILL_THRESHOLD="65536"))
    s.icap = int(s.env["ICAP_PORT"])
    return s


def start_icap(start, **kw):
    s = start(env=icap_env(**kw.pop("env", {})), **kw)
    s.icap = int(s.env["ICAP_PORT"])
    return s


def blocked(a, threat="Eicar"):
    assert a.status == 200, a
    assert a.header("x-infection-found").startswith("Type=0; Resolution=2; Threat="), a
    assert threat in a.header("x-infection-found"), a
    assert a.encap.startswith(b"HTTP/1.1 403 Forbidden\r\n"), a
    assert b"This content was blocked" in a.body, a
    return a


# --- OPTIONS ---

@pytest.mark.parametrize("service", SERVICES)
def test_options_every_service(srv, service):
    a = icapc.ask(srv.icap, icapc.options(service))
    assert a.status == 200
    assert a.header("methods") == "RESPMOD, REQMOD"
    assert re.fullmatch(r'"CR-27000-\d+"', a.header("istag")), a.header("istag")
    assert a.header("preview") == "1024"
    assert a.header("transfer-preview") == "*"
    assert a.header("allow") == "204"
    assert a.header("max-connections") == "1000"
    assert int(a.header("options-ttl")) > 0
    assert a.header("encapsulated") == "null-body=0"
    assert service in a.header("service")


def test_istag_changes_with_the_signatures(start):
    s = start_icap(start)
    before = icapc.ask(s.icap, icapc.options()).header("istag")
    harness.make_db(s.db, 27001)
    s.signal(signal.SIGUSR2)
    assert harness.wait_until(lambda: icapc.ask(s.icap, icapc.options()).header("istag") != before,
                              timeout=30)
    assert "27001" in icapc.ask(s.icap, icapc.options()).header("istag")


def test_off_by_default(server):
    assert "ICAP" not in server.logs()


def test_unknown_service_and_method(srv):
    assert icapc.ask(srv.icap, icapc.options("nope")).status == 404
    out = icapc.raw(srv.icap, b"FOO icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\n\r\n")
    assert out.startswith(b"ICAP/1.0 405 "), out
    out = icapc.raw(srv.icap, b"OPTIONS icap://127.0.0.1/avscan ICAP/2.0\r\nHost: x\r\n\r\n")
    assert out.startswith(b"ICAP/1.0 505 "), out


# --- Verdicts ---

@pytest.mark.parametrize("service", SERVICES)
def test_respmod_eicar_blocked(srv, service):
    a = blocked(icapc.ask(srv.icap, icapc.respmod(EICAR, service)))
    assert "X-Infection-Found: Type=0; Resolution=2; Threat=Eicar" in a.encap.decode()
    assert a.header("x-violations-found").startswith("1")


def test_reqmod_eicar_blocked(srv):
    blocked(icapc.ask(srv.icap, icapc.reqmod(EICAR)))


def test_clean_is_204(srv):
    a = icapc.ask(srv.icap, icapc.respmod(b"hello, clean world\n" * 10))
    assert a.status == 204, a
    a = icapc.ask(srv.icap, icapc.reqmod(b"clean upload"))
    assert a.status == 204, a


@pytest.mark.parametrize("size", [0, 10, 70000, 300000])
def test_clean_echo_without_204_is_byte_identical(srv, size):
    """Without Allow: 204 a clean message comes back as it was (in memory and spilled to a file)."""
    body = os.urandom(size)
    a = icapc.ask(srv.icap, icapc.respmod(body, allow204=False, piece=7777))
    assert a.status == 200, a
    assert a.body == body
    assert a.encap == icapc.http_response(body)
    a = icapc.ask(srv.icap, icapc.reqmod(body, allow204=False))
    assert a.status == 200 and a.body == body and a.encap == icapc.http_request(body)


def test_null_body_is_clean(srv):
    req_hdr = b"GET /x HTTP/1.1\r\nHost: e\r\n\r\n"
    a = icapc.ask(srv.icap, b"REQMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\nAllow: 204\r\n"
                  b"Encapsulated: req-hdr=0, null-body=%d\r\n\r\n" % len(req_hdr) + req_hdr)
    assert a.status == 204, a


def test_eicar_split_across_chunks(srv):
    blocked(icapc.ask(srv.icap, icapc.respmod(b"A" * 100 + EICAR, piece=3)))


@pytest.mark.parametrize("enc,pack", [
    (b"gzip", gzip.compress),
    (b"deflate", zlib.compress),
    (b"deflate", lambda d: (lambda c: c.compress(d) + c.flush())(zlib.compressobj(9, zlib.DEFLATED, -15))),
    (b"br", None),
])
def test_content_encoding_decoded(srv, enc, pack):
    if pack is None:
        brotli = pytest.importorskip("brotli")
        pack = brotli.compress
    body = pack(EICAR)
    blocked(icapc.ask(srv.icap, icapc.respmod(body, http_extra=b"Content-Encoding: " + enc + b"\r\n")))
    clean = pack(b"clean text " * 1000)
    a = icapc.ask(srv.icap, icapc.respmod(clean, http_extra=b"Content-Encoding: " + enc + b"\r\n"))
    assert a.status == 204, a


@pytest.mark.parametrize("enc,body", [(b"gzip", b"not gzip at all"), (b"zstd", b"whatever"),
                                      (b"gzip", gzip.compress(EICAR)[:-8] + b"")])
def test_content_encoding_not_undone_is_blocked(srv, enc, body):
    """A coding we do not know, or one that is corrupt or cut short: not scanned, so never 204."""
    a = icapc.ask(srv.icap, icapc.respmod(body, http_extra=b"Content-Encoding: " + enc + b"\r\n"))
    assert a.status == 200 and a.header("x-infection-found"), a


def test_upload_policy_applies_to_icap(start):
    """DENY_TYPES=executables (docs/POLICY.md) judges what passes through ICAP too (no user: the
    global policy): an ELF download gets the block page named Policy.Type.ELF, gzip-encoded too;
    text passes; POLICY_MODE=report only logs. A policy never passes malware."""
    elf = pathlib.Path("/bin/true").read_bytes()
    s = start_icap(start, env={"DENY_TYPES": "executables"})
    for body, extra in ((elf, b""), (gzip.compress(elf), b"Content-Encoding: gzip\r\n")):
        a = icapc.ask(s.icap, icapc.respmod(body, http_extra=extra))
        assert a.status == 200, a
        assert "Threat=Policy.Type.ELF;" in a.header("x-infection-found"), a
        assert b"This content was blocked" in a.body and b"Policy.Type.ELF" in a.body, a
    assert icapc.ask(s.icap, icapc.respmod(b"plain text, allowed\n")).status == 204
    blocked(icapc.ask(s.icap, icapc.respmod(EICAR)))
    text = requests.get(s.url + "/metrics", timeout=5).text
    assert 'clamrest_icap_verdicts_total{protocol="icap",verdict="blocked"} 2' in text, text
    # Per file judged: the gzip-encoded body is judged raw (an ELF inside gzip) and decoded.
    assert re.search(r'clamrest_policy_blocked_total\{rule="deny"\} 3\b', text), text
    assert harness.wait_until(lambda: '"labels.verdict":"blocked"' in s.logs(), timeout=5), s.logs()[-2000:]
    s.stop()
    r = start_icap(start, env={"DENY_TYPES": "executables", "POLICY_MODE": "report"})
    assert icapc.ask(r.icap, icapc.respmod(elf)).status == 204
    assert harness.wait_until(lambda: "would block (POLICY_MODE=report)" in r.logs(), timeout=5), r.logs()[-2000:]


def test_gzip_bomb_stops_at_the_expansion_limit(start):
    s = start_icap(start, env={"MAX_EXPANSION": "1"})
    bomb = gzip.compress(b"\0" * (80 << 20), 1)
    a = icapc.ask(s.icap, icapc.respmod(bomb, http_extra=b"Content-Encoding: gzip\r\n"), timeout=60)
    blocked(a, "Heuristics.Limits.Exceeded.MaxExpansion")


def test_template(start, tmp_path):
    t = tmp_path / "page.html"
    t.write_text("<p>nope: {threat} {threat}</p>")
    s = start_icap(start, env={"ICAP_TEMPLATE": str(t)})
    a = icapc.ask(s.icap, icapc.respmod(EICAR))
    assert a.body.startswith(b"<p>nope: Eicar-Test-Signature"), a
    assert a.body.count(b"Eicar") == 2


# --- Body limits ---

def test_over_max_content_length_is_blocked(start):
    s = start_icap(start, env={"MAX_CONTENT_LENGTH": "1000"})
    a = icapc.ask(s.icap, icapc.respmod(b"x" * 5000))
    blocked(a, "Heuristics.Limits.Exceeded.MaxContentLength")
    # The connection stays usable: the rest of the body was read.
    c = icapc.Conn(s.icap)
    blocked(c.ask(icapc.respmod(b"y" * 2000)), "MaxContentLength")
    assert c.ask(icapc.respmod(b"small")).status == 204
    c.close()


def test_oversize_pass_marks_not_scanned(start):
    s = start_icap(start, env={"MAX_CONTENT_LENGTH": "1000", "ICAP_OVERSIZE": "pass"})
    a = icapc.ask(s.icap, icapc.respmod(b"x" * 5000))
    assert a.status == 204, a
    assert a.header("x-infection-found") == "Type=2; Resolution=1; Threat=Heuristics.Limits.Exceeded.MaxContentLength;"
    assert a.header("x-clamrest-not-scanned")
    # Without Allow: 204 the body cannot be echoed (it was not kept): blocked.
    blocked(icapc.ask(s.icap, icapc.respmod(b"x" * 5000, allow204=False)), "MaxContentLength")


# --- Preview ---

def preview_request(body, preview, service="avscan"):
    res_hdr = icapc.http_response(body)
    head = (b"RESPMOD icap://127.0.0.1/%s ICAP/1.0\r\nHost: x\r\nAllow: 204\r\nPreview: %d\r\n"
            b"Encapsulated: res-hdr=0, res-body=%d\r\n\r\n" % (service.encode(), preview, len(res_hdr)))
    return head + res_hdr


def test_preview_whole_body_with_ieof(srv):
    a = icapc.ask(srv.icap, preview_request(EICAR, 1024) + icapc.chunked(EICAR, ieof=True))
    blocked(a)
    a = icapc.ask(srv.icap, preview_request(b"ok", 1024) + icapc.chunked(b"ok", ieof=True))
    assert a.status == 204


def test_preview_then_100_continue(srv):
    body = b"B" * 3000 + EICAR
    c = icapc.Conn(srv.icap)
    c.send(preview_request(body, 1024) + b"400\r\n" + body[:1024] + b"\r\n0\r\n\r\n")
    assert c.read().status == 100
    c.send(icapc.chunked(body[1024:], piece=500))
    blocked(c.read())
    c.close()


def test_preview_zero(srv):
    c = icapc.Conn(srv.icap)
    c.send(preview_request(b"clean" * 10, 0) + b"0\r\n\r\n")
    assert c.read().status == 100
    c.send(icapc.chunked(b"clean" * 10))
    assert c.read().status == 204
    c.close()


def test_preview_longer_than_announced(srv):
    out = icapc.raw(srv.icap, preview_request(b"Z" * 200, 10) + icapc.chunked(b"Z" * 200))
    assert out.startswith(b"ICAP/1.0 400 "), out


# --- Malformed requests ---

BAD_ENCAP = [
    b"res-hdr=10, res-body=5",          # offsets going back
    b"res-body=0, res-hdr=10",          # body before a header
    b"res-hdr=5, res-body=40",          # does not start at 0
    b"res-hdr=0",                       # no body kind
    b"res-hdr=0, res-body=x",           # not a number
    b"res-hdr=0, res-body=99999999999",  # huge
    b"res-hdr=0,, res-body=10",         # empty item
    b"foo=0, res-body=10",              # unknown kind
    b"res-hdr=0, res-hdr=0, res-body=10",
]


@pytest.mark.parametrize("encap", BAD_ENCAP)
def test_bad_encapsulated(srv, encap):
    out = icapc.raw(srv.icap, b"RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\nEncapsulated: " +
                    encap + b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n0\r\n\r\n")
    assert out.startswith(b"ICAP/1.0 400 "), out


def test_encapsulated_offset_inside_a_header(srv):
    """res-body says the headers are shorter (or longer) than they are."""
    res_hdr = icapc.http_response(EICAR)
    for off in (len(res_hdr) - 3, len(res_hdr) + 3):
        data = (b"RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\nEncapsulated: res-hdr=0, res-body=%d\r\n\r\n"
                % off + res_hdr + icapc.chunked(EICAR))
        out = icapc.raw(srv.icap, data)
        assert not out.startswith(b"ICAP/1.0 204"), out
        assert out.startswith(b"ICAP/1.0 400 ") or b"Threat=Eicar" in out, out


@pytest.mark.parametrize("chunks", [
    b"5\r\n" + EICAR + b"\r\n0\r\n\r\n",                  # size smaller than the data
    b"%x\r\n" % (len(EICAR) + 5) + EICAR + b"\r\n0\r\n\r\n",  # larger: runs into the next line
    b"zz\r\n" + EICAR + b"\r\n0\r\n\r\n",                 # not hex
    b"-5\r\n" + EICAR + b"\r\n0\r\n\r\n",
    b"ffffffffffffffffffff\r\n" + EICAR + b"\r\n0\r\n\r\n",  # overflow
    b"%x\n" % len(EICAR) + EICAR + b"\r\n0\r\n\r\n",      # bare LF
    b"%x\r\n" % len(EICAR) + EICAR + b"\r\n0\r\nTrailer: x\r\n\r\n",
])
def test_lying_chunks(srv, chunks):
    res_hdr = icapc.http_response(EICAR)
    data = (b"RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\nAllow: 204\r\nEncapsulated: res-hdr=0, "
            b"res-body=%d\r\n\r\n" % len(res_hdr) + res_hdr + chunks)
    out = icapc.raw(srv.icap, data, half_close=True)
    # 400, the EICAR found, or (a size that swallows the rest) the request never whole: closed
    # without an answer. Never 204.
    assert out.startswith(b"ICAP/1.0 400 ") or b"Threat=Eicar" in out or out == b"", out


def test_huge_head(srv):
    out = icapc.raw(srv.icap, b"OPTIONS icap://127.0.0.1/avscan ICAP/1.0\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n")
    assert out.startswith(b"ICAP/1.0 400 "), out
    hdr = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"b" * 20000 + b"\r\n\r\n"
    out = icapc.raw(srv.icap, b"RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\nEncapsulated: res-hdr=0, "
                    b"res-body=%d\r\n\r\n" % len(hdr) + hdr + icapc.chunked(EICAR))
    assert out.startswith(b"ICAP/1.0 400 "), out


def test_nul_and_garbage_heads(srv):
    for data in (b"\0\0\0\r\n\r\n", b"RESPMOD\r\n\r\n", b"\r\n\r\n", b"OPTIONS /avscan\0 ICAP/1.0\r\n\r\n"):
        out = icapc.raw(srv.icap, data)
        assert out.startswith(b"ICAP/1.0 400 "), (data, out)


def test_pipelining(srv):
    c = icapc.Conn(srv.icap)
    c.send(icapc.respmod(b"clean one") + icapc.respmod(EICAR) + icapc.options() + icapc.reqmod(b"clean two"))
    assert c.read().status == 204
    blocked(c.read())
    assert c.read().status == 200
    assert c.read().status == 204
    c.close()


def test_keepalive_many(srv):
    c = icapc.Conn(srv.icap)
    for i in range(50):
        a = c.ask(icapc.respmod(EICAR if i % 2 else b"clean %d" % i))
        assert a.status == (200 if i % 2 else 204)
    c.close()


# --- Slow clients, connection limits ---

def test_slowloris_head_is_cut(start):
    s = start_icap(start, env={"REQUEST_TIMEOUT": "2"})
    sock = socket.create_connection(("127.0.0.1", s.icap))
    sock.sendall(b"RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\n")
    t0 = time.monotonic()
    sock.settimeout(10)
    try:
        got = sock.recv(100)
    except ConnectionResetError:
        got = b""
    assert got == b"" and time.monotonic() - t0 < 6
    sock.close()
    # Counted as ICAP's cut, not HTTP's.
    cut = 'clamrest_connections_cut_total{protocol="%s",reason="head_timeout"}'
    assert harness.wait_until(lambda: harness.metric(s, cut % "icap") == 1)
    assert harness.metric(s, cut % "http") == 0


def test_slow_body_is_cut(start):
    s = start_icap(start, env={"REQUEST_TIMEOUT": "1", "MIN_UPLOAD_RATE": "100000"})
    res_hdr = icapc.http_response(b"x" * 100000)
    sock = socket.create_connection(("127.0.0.1", s.icap))
    sock.sendall(b"RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\nHost: x\r\nEncapsulated: res-hdr=0, "
                 b"res-body=%d\r\n\r\n" % len(res_hdr) + res_hdr + b"186a0\r\n")
    t0 = time.monotonic()
    closed = False
    try:
        while time.monotonic() - t0 < 8:
            sock.sendall(b"x" * 10)
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    assert closed, "a body far below MIN_UPLOAD_RATE was not cut"
    sock.close()
    cut = 'clamrest_connections_cut_total{protocol="%s",reason="slow_body"}'
    assert harness.metric(s, cut % "icap") == 1
    assert harness.metric(s, cut % "http") == 0
    assert "slow" in s.logs() or "MIN_UPLOAD_RATE" in s.logs()


def test_max_connections(start):
    s = start_icap(start, env={"MAX_CONNECTIONS": "3"})
    socks = []
    for _ in range(3):
        c = icapc.Conn(s.icap)
        c.send(b"RESPMOD icap://127.0.0.1/avscan ICAP/1.0\r\n")   # requests in progress: heads not whole
        socks.append(c)
    time.sleep(0.3)
    # A fourth cannot get in while the three have requests in progress (guard_admit): its connection
    # is closed without an answer... unless the heads count as idle, when one is evicted.
    out = icapc.raw(s.icap, icapc.options(), timeout=3)
    assert out == b"" or out.startswith(b"ICAP/1.0 200"), out
    for c in socks:
        c.close()
    assert harness.wait_until(lambda: icapc.ask(s.icap, icapc.options()).status == 200, timeout=10)


# --- Start, stop, reload ---

def test_db_wait_is_503(start):
    s = start_icap(start, db_version=None, wait=False, env={"DB_WAIT": "1"})

    def up():
        try:
            return icapc.raw(s.icap, icapc.respmod(EICAR), timeout=2)
        except OSError:
            return None

    assert harness.wait_until(lambda: up() is not None, timeout=20)
    out = up()
    assert out.startswith(b"ICAP/1.0 503 "), out
    harness.make_db(s.db)
    assert harness.wait_until(lambda: (up() or b"").startswith(b"ICAP/1.0 200 "), timeout=30)


def test_low_memory_reload_answers_503_never_a_verdict(start):
    """RELOAD_MODE=low-memory frees the engine before the new one loads: meanwhile ICAP answers 503,
    never 204 (clean) without an engine; EICAR is blocked before and after (as test_reload_mode does
    for HTTP)."""
    import test_reload_mode
    s = start_icap(start, env={"RELOAD_MODE": "low-memory", "DB_CHECK_INTERVAL": "0", "SCAN_THREADS": "2"})
    test_reload_mode.slow_db(s)
    s.signal(signal.SIGUSR2)
    assert harness.wait_until(
        lambda: harness.metric(s, 'clamrest_database_reloads_total{result="success"}') == 1,
        60 * harness.TIME_FACTOR), s.logs()
    stop = threading.Event()
    seen = {"verdict": 0, "busy": 0}
    wrong = []

    def scanner(evil):
        i = 0
        while not stop.is_set():
            i += 1
            body = EICAR if evil else b"clean text %d %f" % (i, time.time())
            a = icapc.ask(s.icap, icapc.respmod(body))
            if a.status == 503:
                seen["busy"] += 1
            elif a.status == (200 if evil else 204):
                seen["verdict"] += 1
            else:
                wrong.append((evil, a.status, a.headers))

    threads = [threading.Thread(target=scanner, args=(k % 2 == 0,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        for n in (2, 3):
            time.sleep(0.3)
            test_reload_mode.reload_changed(s, n)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert wrong == [], wrong[:5]
    assert seen["busy"] > 0 and seen["verdict"] > 0, seen
    blocked(icapc.ask(s.icap, icapc.respmod(EICAR)))


def test_sigterm_drains(start):
    s = start_icap(start)
    idle = icapc.Conn(s.icap)
    assert idle.ask(icapc.options()).status == 200
    s.signal(signal.SIGTERM)
    s.proc.wait(20)
    assert s.proc.returncode == 0, s.logs()
    idle.close()


def test_sigterm_lets_a_request_in_progress_finish(start):
    """SIGTERM: new connections are refused, a request whose body is still coming is answered."""
    s = start_icap(start)
    data = icapc.respmod(b"A" * 5000 + EICAR, piece=1000)
    c = icapc.Conn(s.icap)
    c.send(data[:len(data) // 2])
    time.sleep(0.3)
    s.signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):
        icapc.ask(s.icap, icapc.options(), timeout=2)
    c.send(data[len(data) // 2:])
    blocked(c.read())
    c.close()
    s.proc.wait(20)
    assert s.proc.returncode == 0, s.logs()


def test_one_shutdown_grace_for_both_fronts(start):
    """An HTTP upload and an ICAP body both still arriving at SIGTERM: each front gets the same
    SHUTDOWN_GRACE from the signal, not one after the other (the process is gone within grace + 5 s,
    as issue 20 bounds it; each front waiting its own grace in turn took twice as long)."""
    grace = 8
    s = start_icap(start, env={"SHUTDOWN_GRACE": str(grace), "REQUEST_TIMEOUT": "120",
                               "MIN_UPLOAD_RATE": "0"})
    http = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    http.sendall(b"POST /v2/scan-chunked HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                 harness.basic().encode() + b"\r\nContent-Length: 1000000\r\n\r\n" + b"A" * 1000)
    icap = icapc.Conn(s.icap, timeout=30)
    data = icapc.respmod(b"A" * 100000, piece=1000)
    icap.send(data[:5000])
    stop = [False]

    def trickle():      # both bodies keep coming, slowly: neither request ends by itself
        i = 5000
        while not stop[0]:
            try:
                http.sendall(b"A")
                icap.send(data[i:i + 1])
            except OSError:
                return
            i += 1
            time.sleep(0.2)

    t = threading.Thread(target=trickle)
    t.start()
    try:
        assert harness.wait_until(lambda: "RESPMOD" not in s.logs(), timeout=2)
        time.sleep(1)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        s.proc.wait(4 * grace)
        took = time.monotonic() - t0
    finally:
        stop[0] = True
        t.join(10)
        http.close()
        icap.close()
    assert s.proc.returncode == 0, s.logs()[-2000:]
    assert grace - 1 <= took < grace + 5, (took, s.logs()[-2000:])


def test_bad_settings_refuse_to_start(tmp_path):
    for env, want in (({"ICAP_OVERSIZE": "maybe"}, "ICAP_OVERSIZE"), ({"ICAP_HOST": "nohost"}, "ICAP_HOST"),
                      ({"ICAP_TEMPLATE": str(tmp_path / "none.html")}, "ICAP_TEMPLATE")):
        with pytest.raises(RuntimeError) as e:
            s = harness.Clamrest(env=icap_env(**env))
            s.stop()
        assert want in str(e.value)


# --- Logs and metrics ---

def test_access_line_and_metrics(start):
    s = start_icap(start)
    a = icapc.ask(s.icap, icapc.respmod(EICAR, extra=b"X-Client-IP: 192.0.2.7\r\n"))
    blocked(a)
    istag = a.header("istag")
    assert harness.wait_until(lambda: '"network.protocol":"icap"' in s.logs())
    lines = [json.loads(l) for l in s.logs().splitlines() if '"network.protocol":"icap"' in l]
    line = lines[-1]
    assert line["http.request.method"] == "RESPMOD"
    assert line["url.path"] == "/avscan"
    assert line["labels.verdict"] == "malware"
    assert line["labels.signature"].startswith("Eicar")
    assert line["labels.istag"] == istag
    assert line["client.ip"] == "192.0.2.7"
    assert line["http.request.body.bytes"] == len(EICAR)
    m = requests.get(s.url + "/metrics", timeout=5).text
    assert 'clamrest_icap_requests_total{protocol="icap",method="RESPMOD",code="200"} 1' in m
    assert 'clamrest_scans_total{protocol="icap",verdict="malware"} 1' in m
    assert 'clamrest_icap_verdicts_total{protocol="icap",verdict="malware"} 1' in m


def test_scan_metrics_by_protocol(start):
    """The shared scan metrics tell the fronts apart: a scan over HTTP moves protocol="http", one
    over ICAP protocol="icap", and neither moves the other's; both are there from the start."""
    s = start_icap(start)
    scans, seconds = "clamrest_scans_total", "clamrest_scan_duration_seconds_count"
    for protocol in ("http", "icap"):
        assert harness.metric_sum(s, scans, protocol=protocol) == 0
        assert harness.metric_sum(s, seconds, protocol=protocol) == 0
        assert harness.metric_sum(s, "clamrest_scanned_bytes_total", protocol=protocol) == 0
    r = harness.scan_chunked(s, b"clean over http")
    assert r.status_code == 200 and r.json()["malware"] is False, r.text
    assert harness.metric(s, 'clamrest_scans_total{protocol="http",verdict="clean"}') == 1
    assert harness.metric_sum(s, scans, protocol="http") == 1
    assert harness.metric_sum(s, scans, protocol="icap") == 0
    assert harness.metric_sum(s, "clamrest_scanned_bytes_total", protocol="http") == 15
    blocked(icapc.ask(s.icap, icapc.respmod(EICAR)))
    assert harness.metric(s, 'clamrest_scans_total{protocol="icap",verdict="malware"}') == 1
    assert harness.metric_sum(s, scans, protocol="icap") == 1
    assert harness.metric_sum(s, scans, protocol="http") == 1
    assert harness.metric_sum(s, scans, protocol="http", verdict="malware") == 0
    assert harness.metric_sum(s, seconds, protocol="http") == 1
    assert harness.metric_sum(s, seconds, protocol="icap") == 1
    assert harness.metric_sum(s, "clamrest_scan_duration_seconds_bucket", protocol="icap", le="+Inf") == 1
    assert harness.metric_sum(s, "clamrest_scanned_bytes_total", protocol="icap") == len(EICAR)
    assert harness.metric_sum(s, "clamrest_scanned_bytes_total", protocol="http") == 15
    # Queries by verdict alone still see every scan; every series names protocol first.
    assert harness.metric_sum(s, scans, verdict="malware") == 1
    assert harness.metric_sum(s, scans) == 2
    m = requests.get(s.url + "/metrics", timeout=5).text
    lines = [l for l in m.splitlines() if re.match(r"clamrest_(scans_total|scan_duration_seconds|scanned_bytes)", l)]
    assert len(lines) > 20 and all(re.match(r'[a-z_]+\{protocol="(http|icap)"[,}]', l) for l in lines), lines


# --- c-icap-client (Debian's c-icap) ---

needs_client = pytest.mark.skipif(CLIENT is None, reason="c-icap-client is not installed (apt install c-icap)")


def client(port, *args, timeout=30):
    return subprocess.run([CLIENT, "-i", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                          timeout=timeout, text=True, errors="replace")


@needs_client
@pytest.mark.parametrize("preview", ["0", "10", "1024", "4096"])
@pytest.mark.parametrize("service", SERVICES)
def test_c_icap_client_file(srv, tmp_path, service, preview):
    eicar = tmp_path / "eicar.com"
    eicar.write_bytes(b"padding " * 300 + EICAR)
    out = client(srv.icap, "-s", service, "-f", str(eicar), "-w", preview, "-v")
    assert "X-Infection-Found: Type=0; Resolution=2; Threat=Eicar" in out.stdout + out.stderr, out
    clean = tmp_path / "clean.bin"
    clean.write_bytes(os.urandom(200000))
    out = client(srv.icap, "-s", service, "-f", str(clean), "-w", preview, "-v")
    assert "204" in out.stdout + out.stderr, out


@needs_client
def test_c_icap_client_no204_echo(srv, tmp_path):
    clean = tmp_path / "clean.bin"
    clean.write_bytes(os.urandom(300000))
    dest = tmp_path / "out.bin"
    out = client(srv.icap, "-s", "avscan", "-f", str(clean), "-no204", "-o", str(dest))
    assert dest.read_bytes() == clean.read_bytes(), out


@needs_client
def test_c_icap_client_req_and_resp(srv, tmp_path):
    eicar = tmp_path / "eicar.com"
    eicar.write_bytes(EICAR)
    dest = tmp_path / "page.html"
    out = client(srv.icap, "-s", "srv_clamav", "-req", "http://example.test/upload", "-f", str(eicar),
                 "-o", str(dest), "-v")
    assert "Threat=Eicar" in out.stdout + out.stderr, out
    assert b"This content was blocked" in dest.read_bytes()
    out = client(srv.icap, "-s", "virus_scan", "-resp", "http://example.test/eicar.com", "-f", str(eicar), "-v")
    assert "Threat=Eicar" in out.stdout + out.stderr, out


@needs_client
def test_c_icap_client_options(srv):
    out = client(srv.icap, "-s", "avscan", "-method", "OPTIONS")
    text = out.stdout + out.stderr
    assert "Preview: 1024" in text and "Allow 204: Yes" in text, out


# --- The verdict-integrity corpus through ICAP ---

@pytest.mark.corpus
def test_verdict_integrity_corpus_through_icap(start):
    """Every adversarial case of test_verdict_integrity (issue 9), sent by RESPMOD and REQMOD (with
    Allow: 204) to a server of its settings group: never 204, and a case that must be EICAR is."""
    import adversarial
    import test_verdict_integrity as vit
    servers = {}
    bad = []
    d = tempfile.mkdtemp(prefix="clamrest-icap-vit-")
    try:
        db = vit.make_db_with_anywhere(__import__("pathlib").Path(d) / "db")
        for case in vit.CASES:
            if case.group not in servers:
                env = {"CLAMAV_DB_DIR": str(db), "DB_CHECK_INTERVAL": "0"}
                env.update(adversarial.GROUPS.get(case.group, {}))
                servers[case.group] = start_icap(start, env=env)
            s = servers[case.group]
            data = case.body()
            for build in (icapc.respmod, icapc.reqmod):
                a = icapc.ask(s.icap, build(data), timeout=60)
                threat = a.header("x-infection-found") or ""
                if a.status == 204:
                    bad.append(f"{case.name}: FALSE CLEAN via {build.__name__}")
                elif a.status != 200 or not threat:
                    if a.status != 503:
                        bad.append(f"{case.name}: {build.__name__} answered {a.status}")
                elif case.expect == "eicar" and "eicar" not in threat.lower():
                    bad.append(f"{case.name}: {build.__name__}: {threat}, expected EICAR")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert not bad, "\n".join(bad)
