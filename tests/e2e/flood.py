#!/usr/bin/env python3
"""flood.py - connection floods against micad's listeners (tests only).

  flood.py SECONDS SPEC...

SPEC is KIND:PORT:ADDR:N: N connections from source address ADDR to
127.0.0.1:PORT that never send a byte (KIND http or tcp), or that finish
a TLS 1.3 handshake (certificate not checked) and then stay silent (tls).
Every connection the server closes is opened again after REOPEN_S, until
SECONDS have passed; then everything is closed and the script exits.

What the server sent before closing is classified: an HTTP 503 naming
the per-address limit ("from your address") or a shed ("make room"),
with or without Retry-After; a CA protocol ERROR frame with code 11
(busy).  Prints "# all N connections tried" once the first round is out,
then at the end one line per KIND:
  KIND opened=N closed=N connect_failed=N http503_per_address=N
  http503_shed=N http503_other=N no_retry_after=N busy=N held=N
held: connections open (not closed by the server) at the end.
Loopback only; every loop is bounded by SECONDS.
"""
import errno
import resource
import selectors
import socket
import ssl
import struct
import sys
import time

REOPEN_S = 0.5


class Conn:
    def __init__(self, kind, port, addr):
        self.kind, self.port, self.addr = kind, port, addr
        self.sock = None
        self.data = b""
        self.reopen_at = 0.0


def stats_new():
    return dict(opened=0, closed=0, connect_failed=0, http503_per_address=0,
                http503_shed=0, http503_other=0, no_retry_after=0, busy=0,
                held=0)


def open_conn(c, ctx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((c.addr, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", c.port))
        if c.kind == "tls":
            s = ctx.wrap_socket(s)	# handshake, blocking
        s.setblocking(False)
    except (OSError, ssl.SSLError):
        s.close()
        return None
    return s


def busy_frames(data):
    """ERROR frames (type 0x85) whose CODE TLV (0x0050) is 11."""
    n, off = 0, 0
    while off + 4 <= len(data):
        (flen,) = struct.unpack(">I", data[off:off + 4])
        body = data[off + 4:off + 4 + flen]
        if len(body) < flen or flen < 6:
            break
        if body[1] == 0x85:
            p = 6
            while p + 4 <= len(body):
                t, ln = struct.unpack(">HH", body[p:p + 4])
                if t == 0x0050 and ln == 2 and \
                        struct.unpack(">H", body[p + 4:p + 6])[0] == 11:
                    n += 1
                p += 4 + ln
        off += 4 + flen
    return n


def classify(c, st):
    d = c.data
    if c.kind == "http" and d.startswith(b"HTTP/1.1 503 "):
        if b"from your address" in d:
            st["http503_per_address"] += 1
        elif b"make room" in d:
            st["http503_shed"] += 1
        else:
            st["http503_other"] += 1
        if b"\r\nRetry-After: " not in d.split(b"\r\n\r\n")[0]:
            st["no_retry_after"] += 1
    elif c.kind == "tls":
        st["busy"] += busy_frames(d)


def read_some(c):
    """Appends what is there; True once the server has closed."""
    try:
        while True:
            d = c.sock.recv(65536)
            if not d:
                return True
            c.data += d
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return False
    except (ConnectionError, ssl.SSLError):
        return True
    except OSError as e:
        return e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    seconds = float(sys.argv[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = []
    for spec in sys.argv[2:]:
        kind, port, addr, n = spec.split(":")
        if kind not in ("http", "tcp", "tls"):
            sys.exit("flood.py: bad kind %s" % kind)
        conns += [Conn(kind, int(port), addr) for _ in range(int(n))]
    stats = {}
    for c in conns:
        stats.setdefault(c.kind, stats_new())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    first = True
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        for c in conns:
            if c.sock is None and now >= c.reopen_at and \
                    time.monotonic() - start < seconds:
                c.data = b""
                c.sock = open_conn(c, ctx)
                if c.sock is None:
                    stats[c.kind]["connect_failed"] += 1
                    c.reopen_at = time.monotonic() + REOPEN_S
                    continue
                stats[c.kind]["opened"] += 1
                sel.register(c.sock, selectors.EVENT_READ, c)
        if first:
            print("# all %d connections tried" % len(conns), flush=True)
            first = False
        for key, _ in sel.select(timeout=0.1):
            c = key.data
            if read_some(c):
                sel.unregister(c.sock)
                c.sock.close()
                c.sock = None
                st = stats[c.kind]
                st["closed"] += 1
                classify(c, st)
                c.reopen_at = time.monotonic() + REOPEN_S
    # the last word: what is still open, and what the server sent
    for c in conns:
        if c.sock is None:
            continue
        if read_some(c):
            stats[c.kind]["closed"] += 1
            classify(c, stats[c.kind])
        else:
            stats[c.kind]["held"] += 1
        c.sock.close()
    for kind in sorted(stats):
        print(kind + " " + " ".join("%s=%d" % (k, v) for k, v in
                                    stats[kind].items()), flush=True)


if __name__ == "__main__":
    main()
