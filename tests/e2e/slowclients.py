#!/usr/bin/env python3
"""slowclients.py - slow and half-open clients against micad (tests only).

  slowclients.py load CA_FILE HTTP_PORT CA_PORT SECONDS HTTP SILENT PARTIAL
                 TRICKLE FIRST_ADDR PER_ADDR
  slowclients.py burst CA_PORT ADDR N WAIT

load: for SECONDS, holds HTTP connections that send one header byte per
second (a header that never ends), CA-port connections that never send a
byte (SILENT) or send half a TLS record header (PARTIAL) and so never
finish the handshake, and TRICKLE CA-port connections that finish TLS 1.3
and then send a frame one byte per second.  Sources are 127.0.0.FIRST_ADDR
and up, PER_ADDR connections per source address.  Nothing is reopened.
At the end prints, per kind: "KIND opened=N closed=N first_close=S
last_close=S" (seconds after start, "-" when none closed).

burst: opens N silent connections from ADDR to CA_PORT, waits WAIT
seconds, prints "opened=N closed=N" (closed by the server meanwhile).
Loopback only; every loop is bounded.
"""
import errno
import os
import selectors
import socket
import ssl
import sys
import time

from micaframe import frame, tlv


class Conn:
    def __init__(self, kind, sock, payload):
        self.kind = kind
        self.sock = sock
        self.payload = payload
        self.pos = 0
        self.closed_at = None


def tcp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((addr, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def is_closed(c):
    """Reads whatever is there; True when the peer closed or reset."""
    try:
        while True:
            d = c.sock.recv(4096)
            if not d:
                return True
    except ssl.SSLWantReadError:
        return False
    except BlockingIOError:
        return False
    except (ConnectionError, ssl.SSLError):
        return True
    except OSError as e:
        return e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK)


def load(argv):
    ca_file, http_port, ca_port = argv[0], int(argv[1]), int(argv[2])
    seconds = float(argv[3])
    n_http, n_silent, n_partial, n_trickle = (int(x) for x in argv[4:8])
    first, per = int(argv[8]), int(argv[9])
    conns = []
    k = [0]

    def src():
        a = "127.0.0.%d" % (first + k[0] // per)
        k[0] += 1
        return a

    start = time.monotonic()
    pad = b"a" * 100000
    for _ in range(n_http):
        s = tcp(src(), http_port)
        conns.append(Conn("http", s, b"POST /ocsp HTTP/1.1\r\n"
                          b"Host: 127.0.0.1\r\nX-Pad: " + pad))
    for _ in range(n_silent):
        conns.append(Conn("ca-silent", tcp(src(), ca_port), b""))
    for _ in range(n_partial):
        s = tcp(src(), ca_port)
        s.sendall(b"\x16\x03")	# half a TLS record header
        conns.append(Conn("ca-partial", s, b""))
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    body = frame(1, 1, tlv(1, b"\x01")) + frame(
        2, 2, tlv(0x10, b"slow") + tlv(0x11, b"p" * 1000) +
        tlv(0x12, b"123456"))
    for _ in range(n_trickle):
        s = ctx.wrap_socket(tcp(src(), ca_port))
        conns.append(Conn("ca-trickle", s, body))
    for c in conns:
        c.sock.setblocking(False)
    print("# all %d connections open after %.1f s" %
          (len(conns), time.monotonic() - start), flush=True)
    while time.monotonic() - start < seconds:
        now = time.monotonic() - start
        for c in conns:
            if c.closed_at is not None:
                continue
            if is_closed(c):
                c.closed_at = now
                continue
            if c.pos < len(c.payload):
                try:
                    c.sock.send(c.payload[c.pos:c.pos + 1])
                    c.pos += 1
                except (BlockingIOError, ssl.SSLWantWriteError,
                        ssl.SSLWantReadError):
                    pass
                except OSError:
                    c.closed_at = now
        time.sleep(1.0)
    for kind in ("http", "ca-silent", "ca-partial", "ca-trickle"):
        mine = [c for c in conns if c.kind == kind]
        cl = sorted(c.closed_at for c in mine if c.closed_at is not None)
        print("%s opened=%d closed=%d first_close=%s last_close=%s" % (
            kind, len(mine), len(cl),
            "%.0f" % cl[0] if cl else "-",
            "%.0f" % cl[-1] if cl else "-"), flush=True)
    for c in conns:
        c.sock.close()


def burst(argv):
    port, addr, n, wait = int(argv[0]), argv[1], int(argv[2]), float(argv[3])
    conns = [Conn("burst", tcp(addr, port), b"") for _ in range(n)]
    for c in conns:
        c.sock.setblocking(False)
    time.sleep(wait)
    closed = sum(1 for c in conns if is_closed(c))
    print("opened=%d closed=%d" % (len(conns), closed))
    for c in conns:
        c.sock.close()


def main():
    if len(sys.argv) == 12 and sys.argv[1] == "load":
        load(sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "burst":
        burst(sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
