#!/usr/bin/env python3
"""list_busyloop.py - a LIST does not stall micad's CA-protocol loop.

  list_busyloop.py CA PORT ACCOUNT PASSWORD CODE HELLOS
  list_busyloop.py CA PORT ACCOUNT PASSWORD CODE close

Connection A logs in; HELLOS more connections finish their TLS 1.3
handshakes.  Then A sends LIST (a scan of every certificate record) and,
right after, each other connection in turn sends HELLO and waits for its
SERVER_HELLO (work done on the loop alone, far shorter than the scan).
Prints "login RESULT", then the order in which the answers came, one per
line: "hello K" (the K-th connection got its SERVER_HELLO) or "certs
TOTAL N" (A's CERTS: the account's total and the entries sent), then
"done".  With the scan on the loop, every HELLO waits for the CERTS.
With "close", A closes its connection right after sending LIST.
"""
import socket
import ssl
import struct
import sys
import threading

from micaframe import (HELLO, SERVER_HELLO, connect, frame, read_frame,
                       result, tlv)

LIST, CERTS, T_TOTAL, T_CERTINFO = 0x07, 0x86, 0x0060, 0x0061


def tlvs(f):
    """(tag, value) pairs of a frame from read_frame."""
    out, o = [], 6
    while o + 4 <= len(f):
        t, n = struct.unpack(">HH", f[o:o + 4])
        out.append((t, f[o + 4:o + 4 + n]))
        o += 4 + n
    return out


def main():
    ca, port, acct, pw, code, hellos = sys.argv[1:7]
    port = int(port)
    close = hellos == "close"
    hellos = 0 if close else int(hellos)
    a = connect(ca, port)
    a.sendall(frame(2, 2, tlv(0x10, acct.encode()) + tlv(0x11, pw.encode())
                    + tlv(0x12, code.encode())))
    r = result(read_frame(a))
    print("login", r, flush=True)
    if r != "ok":
        sys.exit(1)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    others = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                       timeout=60))
              for _ in range(hellos)]
    events, lock = [], threading.Lock()

    def hello_all():
        for k, s in enumerate(others):
            s.sendall(frame(HELLO, 1, tlv(1, b"\x01")))
            f = read_frame(s)
            with lock:
                events.append("hello %d" % k if f[1] == SERVER_HELLO
                              else "hello %d %s" % (k, result(f)))
            s.close()

    a.sendall(frame(LIST, 3))
    if close:
        a.close()
        print("closed")
        return
    t = threading.Thread(target=hello_all)
    t.start()
    f = read_frame(a)
    with lock:
        if f[1] == CERTS:
            v = tlvs(f)
            total = [struct.unpack(">I", x)[0] for t_, x in v if t_ == T_TOTAL]
            n = len([1 for t_, x in v if t_ == T_CERTINFO])
            events.append("certs %s %d" % (total[0] if total else "?", n))
        else:
            events.append("list " + result(f))
    t.join()
    for e in events:
        print(e)
    print("done")


if __name__ == "__main__":
    main()
