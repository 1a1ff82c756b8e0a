#!/usr/bin/env python3
"""lostlogin.py - a CA-protocol server that loses the connection at a
chosen step, as a micad killed at that moment would (tests only).

  lostlogin.py CERT KEY PORTFILE STEP

Listens on 127.0.0.1 (a free port, written to PORTFILE), serves one
TLS 1.3 connection: answers HELLO with SERVER_HELLO; with STEP "login" it
closes the connection as soon as the LOGIN frame has arrived (no answer:
the client cannot know whether its code was used); with STEP "reissue"
it answers the LOGIN with OK and closes when the next frame (the
REISSUE) has arrived.  Prints "got LOGIN" / "got REISSUE".
"""
import socket
import ssl
import struct
import sys

from micaframe import frame, read_frame, tlv


def main():
    cert, key, portfile, step = sys.argv[1:5]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ls.settimeout(60)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    import os
    os.rename(portfile + ".tmp", portfile)
    c, _ = ls.accept()
    c.settimeout(30)
    s = ctx.wrap_socket(c, server_side=True)
    b = read_frame(s, 1 << 16)
    fid = struct.unpack(">I", b[2:6])[0]
    s.sendall(frame(0x81, fid, tlv(2, b"\x01") +
                    tlv(3, struct.pack(">I", 65536))))
    b = read_frame(s, 1 << 16)
    if b[1] == 0x02:
        print("got LOGIN", flush=True)
    if b[1] == 0x02 and step == "reissue":
        fid = struct.unpack(">I", b[2:6])[0]
        s.sendall(frame(0x80, fid))
        b = read_frame(s, 1 << 16)
        if b[1] == 0x03:
            print("got REISSUE", flush=True)
    # gone, like a killed micad: no answer
    s.close()
    ls.close()


if __name__ == "__main__":
    main()
