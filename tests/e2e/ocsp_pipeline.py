#!/usr/bin/env python3
"""ocsp_pipeline.py MODE HOST PORT ISSUER OCSP_CERT ARGS... CERT...

pipeline CONNS PER CERT...
    Opens CONNS connections and writes PER nonce'd OCSP POST requests
    back to back on each (pipelined, each with its own nonce), all before
    reading anything.  Every third connection is then closed at once
    (alternately with a FIN and with a reset), before its answers can
    arrive; on the others the PER answers are read in order: each must be
    a 200 with a successful OCSP response for its own certificate, echo
    its own request's nonce and verify under OCSP_CERT.  Prints "ok N
    closed M" (N answers checked, M connections closed early).

busy CONNS SIGNER_PID METRICS_URL CERT...
    The signer process is stopped (SIGSTOP, by the caller): opens CONNS
    connections, one nonce'd request each, waits until micad has taken
    every one in (mica_ocsp_cache_misses_total grew by CONNS), sends the
    signer SIGCONT and reads one answer per connection: a 503 (the
    signer queue was full) or a right answer as above.  Prints "ok
    answered A busy B" (A + B = CONNS).
"""
import os
import signal
import socket
import sys
import time
import urllib.request

from ocspreq import check_answer, load, nonce_request


def request(host, issuer, cert):
    der, nonce = nonce_request(issuer, cert)
    head = ("POST /ocsp HTTP/1.1\r\nHost: %s\r\n"
            "Content-Type: application/ocsp-request\r\n"
            "Content-Length: %d\r\n\r\n" % (host, len(der))).encode()
    return head + der, nonce


class Reader:
    """HTTP/1.1 responses with Content-Length, in order, off one socket."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise ValueError("connection closed early")
        self.buf += d

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        code = int(lines[0].split()[1])
        clen = 0
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            if k.strip().lower() == "content-length":
                clen = int(v.strip())
        while len(self.buf) < clen:
            self.fill()
        body, self.buf = self.buf[:clen], self.buf[clen:]
        return code, body


def check(pub, cert, nonce, code, body):
    if code != 200:
        raise ValueError("HTTP %d" % code)
    check_answer(pub, cert, nonce, body)


def connect(host, port):
    s = socket.create_connection((host, port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def pipeline(host, port, issuer, pub, certs, conns, per):
    socks, sent = [], []
    for i in range(conns):
        s = connect(host, port)
        reqs = []
        data = b""
        for k in range(per):
            cert = certs[(i + k) % len(certs)]
            r, nonce = request(host, issuer, cert)
            data += r
            reqs.append((cert, nonce))
        s.sendall(data)
        socks.append(s)
        sent.append(reqs)
    closed = 0
    for i, s in enumerate(socks):
        if i % 3 == 0:
            if i % 2 == 0:  # a reset rather than a FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            closed += 1
    checked = 0
    for i, s in enumerate(socks):
        if i % 3 == 0:
            continue
        rd = Reader(s)
        for k, (cert, nonce) in enumerate(sent[i]):
            code, body = rd.response()
            try:
                check(pub, cert, nonce, code, body)
            except Exception as e:  # noqa: BLE001
                raise ValueError("connection %d answer %d: %r" % (i, k, e))
            checked += 1
        s.close()
    print("ok %d closed %d" % (checked, closed))


def misses(url):
    with urllib.request.urlopen(url, timeout=30) as f:
        for ln in f.read().decode().splitlines():
            if ln.startswith("mica_ocsp_cache_misses_total "):
                return int(ln.split()[1])
    raise ValueError("no mica_ocsp_cache_misses_total")


def busy(host, port, issuer, pub, certs, conns, pid, murl):
    m0 = misses(murl)
    socks = []
    for i in range(conns):
        s = connect(host, port)
        cert = certs[i % len(certs)]
        r, nonce = request(host, issuer, cert)
        s.sendall(r)
        socks.append((s, cert, nonce))
    # every request taken in (a wait for an event, not a time limit)
    for _ in range(600):
        if misses(murl) - m0 >= conns:
            break
        time.sleep(0.1)
    else:
        raise ValueError("micad took %d requests in, not %d"
                         % (misses(murl) - m0, conns))
    os.kill(pid, signal.SIGCONT)
    answered = nbusy = 0
    for i, (s, cert, nonce) in enumerate(socks):
        code, body = Reader(s).response()
        if code == 503:
            nbusy += 1
        else:
            try:
                check(pub, cert, nonce, code, body)
            except Exception as e:  # noqa: BLE001
                raise ValueError("connection %d: %r" % (i, e))
            answered += 1
        s.close()
    print("ok answered %d busy %d" % (answered, nbusy))


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    issuer, signer = load(sys.argv[4]), load(sys.argv[5])
    pub = signer.public_key()
    try:
        if mode == "pipeline":
            conns, per = int(sys.argv[6]), int(sys.argv[7])
            certs = [load(p) for p in sys.argv[8:]]
            pipeline(host, port, issuer, pub, certs, conns, per)
        else:
            conns, pid, murl = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
            certs = [load(p) for p in sys.argv[9:]]
            busy(host, port, issuer, pub, certs, conns, pid, murl)
    except Exception as e:  # noqa: BLE001
        print("failed: %r" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
