"""flood_auth -- keep-alive connections sending scans with random wrong passwords, for test_dos_auth.

Run as a separate process (so its work does not share a GIL with the test that measures latency):
    flood_auth.py PORT CONNECTIONS SECONDS SOURCES
SOURCES is how many loopback source addresses the connections are spread over (1: all from
127.0.0.1; n: 127.0.0.2 .. 127.0.0.n+1). Stops by itself after SECONDS; prints one JSON line of
statistics: answers by status, 429/503 answers without Retry-After, reconnects, errors. SIGTERM
ends it early (the statistics are printed all the same).
"""
import base64
import json
import os
import selectors
import signal
import socket
import sys
import time

BODY = b"x" * 68


def request(port):
    pw = base64.b64encode(os.urandom(12)).decode()
    cred = base64.b64encode(f"app1:{pw}".encode()).decode()
    return (f"POST /v2/scan-chunked HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Basic {cred}\r\nContent-Length: {len(BODY)}\r\n\r\n").encode() + BODY


class Conn:
    def __init__(self, port, source):
        self.port, self.source = port, source
        self.sock = None
        self.buf = b""

    def open(self, sel):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.source != "127.0.0.1":
            s.bind((self.source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        s.setblocking(False)
        self.sock, self.buf = s, b""
        sel.register(s, selectors.EVENT_READ, self)
        self.send()

    def send(self):
        self.sock.setblocking(True)
        self.sock.sendall(request(self.port))
        self.sock.setblocking(False)

    def close(self, sel):
        sel.unregister(self.sock)
        self.sock.close()
        self.sock = None

    def answer(self):
        """(status, retry_after or None) of a whole answer in buf, removed from it; None if not yet."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in head[1:])}
        length = int(headers.get("content-length", "0"))
        if len(self.buf) < end + 4 + length:
            return None
        self.buf = self.buf[end + 4 + length:]
        return int(head[0].split()[1]), headers.get("retry-after"), headers.get("connection", "")


def main():
    port, conns, seconds, sources = (int(a) for a in sys.argv[1:5])
    stats = {"status": {}, "no_retry_after": 0, "reconnects": 0, "errors": 0}
    sel = selectors.DefaultSelector()
    pool = [Conn(port, "127.0.0.1" if sources == 1 else f"127.0.0.{2 + i % sources}")
            for i in range(conns)]
    for c in pool:
        c.open(sel)
    end = [time.monotonic() + seconds]
    signal.signal(signal.SIGTERM, lambda *_: end.__setitem__(0, 0))
    while time.monotonic() < end[0]:
        for key, _ in sel.select(timeout=0.2):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except OSError:
                data = b""
            if data:
                c.buf += data
                got = c.answer()
                if got is None:
                    continue
                status, retry, connection = got
                stats["status"][status] = stats["status"].get(status, 0) + 1
                if status in (429, 503) and retry is None:
                    stats["no_retry_after"] += 1
                if connection.lower() != "close":
                    try:
                        c.send()
                        continue
                    except OSError:
                        stats["errors"] += 1
            c.close(sel)
            stats["reconnects"] += 1
            try:
                c.open(sel)
            except OSError:
                stats["errors"] += 1
    for c in pool:
        if c.sock is not None:
            c.close(sel)
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
