#!/usr/bin/env python3
"""fetchflood.py - a CA-protocol client that never reads (tests only).

  fetchflood.py CA PORT MICAD_PID REQUEST TOKEN_HEX N

Sends HELLO, then N FETCH frames for an issued request (each answered
by an ISSUED frame with certificate and chain, ~1-2 KB) without reading
a single reply.  Sending stops early if the server stops taking bytes
for 5 s (that is the server's output throttle doing its work).  Then it
samples micad's RSS for a few seconds, checks that a second client is
served meanwhile (STATUS on a new connection), and finally reads the
replies of the first connection: the server must resume reading once
they drain.  Prints key=value lines:
  rss_before_kb rss_max_kb sent stalled other_client received
"""
import socket
import ssl
import struct
import sys
import time

from micaframe import connect, frame, read_frame, tlv

FETCH, STATUS = 0x05, 0x06
ISSUED, ACCEPTED, ERROR = 0x83, 0x82, 0x85


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ca, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    req, token, n = int(sys.argv[4]), bytes.fromhex(sys.argv[5]), \
        int(sys.argv[6])
    body = tlv(0x30, struct.pack(">Q", req)) + tlv(0x31, token)
    rss0 = rss_kb(pid)
    s = connect(ca, port)
    chunk = 500
    one = frame(FETCH, 2, body)
    sent, stalled = 0, 0
    s.settimeout(5)
    try:
        while sent < n:
            k = min(chunk, n - sent)
            s.sendall(one * k)
            sent += k
    except (socket.timeout, ssl.SSLError, OSError):
        stalled = 1
    # micad works through what it has read: watch its RSS meanwhile
    rss_max = rss0
    for _ in range(25):
        rss_max = max(rss_max, rss_kb(pid))
        time.sleep(0.2)
    # another client is served while the first one does not read
    other = "failed"
    try:
        o = connect(ca, port)
        o.sendall(frame(STATUS, 3, body))
        f = read_frame(o)
        if f[1] == ACCEPTED:
            other = "ok"
        else:
            other = "frame 0x%02x" % f[1]
        o.close()
    except (OSError, EOFError, ValueError) as e:
        other = "failed %s" % e
    rss_max = max(rss_max, rss_kb(pid))
    # now read: the server must resume and answer every complete frame
    got = 0
    if True:
        # sent counts whole chunks only; a chunk cut by the stall is
        # partly received, its complete frames answered too
        s.settimeout(30)
        try:
            while got < sent:
                f = read_frame(s)
                if f[1] != ISSUED:
                    break
                got += 1
        except (OSError, EOFError, ValueError):
            pass
    s.close()
    print("rss_before_kb %d" % rss0)
    print("rss_max_kb %d" % rss_max)
    print("sent %d" % sent)
    print("stalled %d" % stalled)
    print("other_client %s" % other)
    print("received %d" % got)


if __name__ == "__main__":
    main()
