#!/usr/bin/env python3
"""mica_login.py - concurrent LOGINs over the mica CA protocol (tests only).

  mica_login.py CA PORT N ACCOUNT PASSWORD CODE [ACCOUNT PASSWORD CODE]...

Opens N TLS 1.3 connections, sends HELLO on each, waits until every one
has its SERVER_HELLO, then sends all LOGIN frames at once (a barrier) so
the server sees them concurrently.  Connection i uses the i-th
(ACCOUNT, PASSWORD, CODE) triple, cycling.  Prints one line per connection
in order: "ok" or "error N", then "mean_ms X" (mean time from LOGIN sent
to its answer).  With N = -K it runs K logins one after another instead
(for timing) and prints the same lines.  With MICA_LOGIN_SPREAD=1 in the
environment, concurrent connection i comes from 127.0.0.(2+i) (micad
allows one LOGIN in flight per address).
"""
import os
import sys
import threading
import time

from micaframe import connect, frame, read_frame, result, tlv


def login_frame(acct, pw, code):
    return frame(2, 2, tlv(0x10, acct.encode()) + tlv(0x11, pw.encode()) +
                 tlv(0x12, code.encode()))


def main():
    ca, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    creds = sys.argv[4:]
    if len(creds) < 3 or len(creds) % 3 != 0 or n == 0:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    triples = [creds[i:i + 3] for i in range(0, len(creds), 3)]
    results, times = [], []
    if n < 0:
        for i in range(-n):
            s = connect(ca, port)
            t0 = time.monotonic()
            s.sendall(login_frame(*triples[i % len(triples)]))
            try:
                results.append(result(read_frame(s)))
            except (OSError, EOFError, ValueError) as e:
                results.append("failed %s" % e)
            times.append(time.monotonic() - t0)
            s.close()
    else:
        socks = [None] * n
        results = [None] * n
        times = [0.0] * n
        barrier = threading.Barrier(n)

        def run(i):
            # MICA_LOGIN_SPREAD=1: connection i comes from 127.0.0.(2+i),
            # so micad's per-address LOGIN cap does not apply
            src = None
            if os.environ.get("MICA_LOGIN_SPREAD"):
                src = "127.0.0.%d" % (2 + i % 250)
            try:
                socks[i] = connect(ca, port, src)
            except (OSError, EOFError, ValueError) as e:
                results[i] = "failed %s" % e
            barrier.wait()
            if socks[i] is None:
                return
            t0 = time.monotonic()
            try:
                socks[i].sendall(login_frame(*triples[i % len(triples)]))
                results[i] = result(read_frame(socks[i]))
            except (OSError, EOFError, ValueError) as e:
                results[i] = "failed %s" % e
            times[i] = time.monotonic() - t0
            socks[i].close()

        th = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in th:
            t.start()
        for t in th:
            t.join()
    for r in results:
        print(r)
    print("mean_ms %.1f" % (1000.0 * sum(times) / len(times)))


if __name__ == "__main__":
    main()
