#!/usr/bin/env python3
"""tlsconn.py - one CA-protocol connection held open across a change on
the server (tests only).

  tlsconn.py CA PORT NAME GOFILE

Connects with TLS 1.3 to 127.0.0.1:PORT, checking the server certificate
against CA and the host name NAME, sends HELLO and prints "hello ok" and
"serial HEX" (the server certificate's serial, as openssl prints it).
Then it waits (at most 25 s, below micad's 30 s login timeout) until
GOFILE exists, sends STATUS for an unknown request on the same
connection and prints "alive" when an answer frame comes back, else
"dead: REASON".
"""
import os
import socket
import ssl
import struct
import sys
import time

from micaframe import frame, read_frame, tlv


def main():
    ca, port, name, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
        sys.argv[4]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname=name)
    s.sendall(frame(0x01, 1, tlv(0x0001, b"\x01")))
    f = read_frame(s)
    print("hello ok" if f[1] == 0x81 else "hello 0x%02x" % f[1])
    der = s.getpeercert(binary_form=True)
    from cryptography import x509
    hexs = "%X" % x509.load_der_x509_certificate(der).serial_number
    # as openssl prints it: whole bytes
    print("serial " + ("0" + hexs if len(hexs) % 2 else hexs))
    sys.stdout.flush()
    deadline = time.time() + 25
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.05)
    try:
        s.sendall(frame(0x06, 2, tlv(0x0030, struct.pack(">Q", 999999)) +
                        tlv(0x0031, b"\x00" * 32)))
        f = read_frame(s)
        print("alive")
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        print("dead: %s" % e)


main()
