"""icapc -- a small ICAP client for the tests (raw sockets): builds REQMOD/RESPMOD/OPTIONS requests,
reads answers (head, encapsulated headers, de-chunked body)."""
import socket

EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


def chunked(body, piece=None, ieof=False):
    out = b""
    if body:
        pieces = [body] if piece is None else [body[i:i + piece] for i in range(0, len(body), piece)]
        for p in pieces:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + (b"0; ieof\r\n\r\n" if ieof else b"0\r\n\r\n")


def http_response(body, extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % len(body))


def http_request(body, url=b"http://example.test/upload"):
    return (b"POST " + url + b" HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))


def respmod(body, service="avscan", allow204=True, extra=b"", http_extra=b"", piece=None, head_extra=b""):
    """A whole RESPMOD request (no preview) for body."""
    req_hdr = b"GET /file HTTP/1.1\r\nHost: example.test\r\n\r\n"
    res_hdr = http_response(body, http_extra)
    icap = (b"RESPMOD icap://127.0.0.1/%s ICAP/1.0\r\nHost: 127.0.0.1\r\n" % service.encode() +
            (b"Allow: 204\r\n" if allow204 else b"") + extra +
            b"Encapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n" % (len(req_hdr), len(req_hdr) + len(res_hdr)))
    return icap + head_extra + req_hdr + res_hdr + chunked(body, piece)


def reqmod(body, service="avscan", allow204=True, extra=b""):
    req_hdr = http_request(body)
    icap = (b"REQMOD icap://127.0.0.1/%s ICAP/1.0\r\nHost: 127.0.0.1\r\n" % service.encode() +
            (b"Allow: 204\r\n" if allow204 else b"") + extra +
            b"Encapsulated: req-hdr=0, req-body=%d\r\n\r\n" % len(req_hdr))
    return icap + req_hdr + chunked(body)


def options(service="avscan"):
    return (b"OPTIONS icap://127.0.0.1/%s ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n"
            % service.encode())


class Answer:
    def __init__(self, status, headers, encap=b"", body=b""):
        self.status, self.headers, self.encap, self.body = status, headers, encap, body

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"Answer({self.status}, {self.headers}, {self.encap[:200]!r}, {self.body[:100]!r})"


class Conn:
    """One ICAP connection with a read buffer (answers are read one at a time: pipelining)."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.s.close()

    def _more(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError("connection closed")
        self.buf += b

    def _until(self, sep):
        while sep not in self.buf:
            self._more()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _take(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self):
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        last = None
        for line in lines[1:]:
            if not line:
                continue
            if line[0] in " \t" and last:
                headers[last] += "\n" + line.strip()
                continue
            k, v = line.split(":", 1)
            last = k.strip().lower()
            headers[last] = v.strip()
        enc = headers.get("encapsulated", "null-body=0")
        parts = dict(p.strip().split("=") for p in enc.split(","))
        if status == 100:
            return Answer(status, headers)
        body_off = parts.get("res-body", parts.get("req-body"))
        hdr_len = int(body_off if body_off is not None else parts.get("null-body", 0))
        encap = self._take(hdr_len)
        body = b""
        if body_off is not None:
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")
                    break
                body += self._take(size)
                self._take(2)
        return Answer(status, headers, encap, body)

    def ask(self, data):
        self.send(data)
        return self.read()


def ask(port, data, timeout=10):
    c = Conn(port, timeout)
    try:
        return c.ask(data)
    finally:
        c.close()


def raw(port, data, timeout=5, wait_close=True, half_close=False):
    """Sends data, returns every byte read until the server closes (or the timeout); half_close:
    shuts down our side after the data (the server sees the request end there)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            if not wait_close and b"\r\n\r\n" in out:
                break
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        s.close()
    return out
