#!/usr/bin/env python3
"""httpflood.py - an HTTP client that pipelines and does not read (tests).

  httpflood.py HOST PORT MICAD_PID REQUEST_DER N

Sends N pipelined keep-alive POST /ocsp requests (the last asks to
close) without reading a single answer until the server stops taking
bytes for 3 s (its output limit: it stops reading the connection).
Meanwhile samples micad's RSS and checks that another client is served
(GET /healthz on a new connection).  Then reads every answer while
sending the rest: the server must resume.  Prints key=value lines:
  rss_before_kb rss_max_kb sent_before_read other_client requests
  answers_200 answers_other
"""
import socket
import sys
import threading
import time


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def other_client(host, port):
    try:
        c = socket.create_connection((host, port), timeout=10)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        got = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            got += d
        c.close()
        return "ok" if got.startswith(b"HTTP/1.1 200 ") and \
            got.endswith(b"ok\n") else "bad"
    except OSError as e:
        return "error:%s" % e


def main():
    host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    der = open(sys.argv[4], "rb").read()
    n = int(sys.argv[5])
    head = (b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/ocsp-request\r\nContent-Length: %d\r\n\r\n"
            % len(der))
    last = head.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    data = (head + der) * (n - 1) + last + der
    rss0 = rss_kb(pid)
    s = socket.create_connection((host, port), timeout=30)
    s.setblocking(False)
    pos, idle_since, rss_max = 0, time.time(), rss0
    while pos < len(data) and time.time() - idle_since < 3:
        try:
            k = s.send(data[pos:pos + 65536])
            pos += k
            idle_since = time.time()
        except BlockingIOError:
            time.sleep(0.05)
            rss_max = max(rss_max, rss_kb(pid))
    rss_max = max(rss_max, rss_kb(pid))
    print("rss_before_kb %d" % rss0)
    print("rss_max_kb %d" % rss_max)
    print("sent_before_read %d" % (pos // len(head + der)))
    print("other_client %s" % other_client(host, port))
    s.setblocking(True)
    chunks = []

    def reader():
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            chunks.append(d)

    th = threading.Thread(target=reader)
    th.start()
    s.sendall(data[pos:])
    th.join()
    s.close()
    got = b"".join(chunks)
    total = got.count(b"HTTP/1.1 ")
    ok = got.count(b"HTTP/1.1 200 OK\r\n")
    print("requests %d" % n)
    print("answers_200 %d" % ok)
    print("answers_other %d" % (total - ok))


main()
