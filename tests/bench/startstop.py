#!/usr/bin/python3
# startstop.py URL REQ.DER ISSUER.PEM -- CMD...: runs CMD, polls URL with
# the OCSP request in REQ.DER (POST) until an answer saying "good" comes,
# then sends SIGTERM and waits for the exit.  Prints
#   start_ms stop_ms exit_status
# start_ms: exec to the first good answer; stop_ms: SIGTERM to exit.
# Used by tests/bench/start.sh; never judges the numbers.
import signal
import subprocess
import sys
import time
import urllib.request

from cryptography.x509 import ocsp


def good(body):
    try:
        r = ocsp.load_der_ocsp_response(body)
        return (r.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL and
                r.certificate_status == ocsp.OCSPCertStatus.GOOD)
    except Exception:
        return False


def main():
    sep = sys.argv.index("--")
    url, reqf = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sep + 1:]
    body = open(reqf, "rb").read()
    log = open(sys.argv[3], "ab")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=log, stderr=log)
    start_ms = None
    deadline = t0 + 120
    while time.monotonic() < deadline and p.poll() is None:
        try:
            rq = urllib.request.Request(url, data=body, headers={
                "Content-Type": "application/ocsp-request"})
            with urllib.request.urlopen(rq, timeout=5) as f:
                if good(f.read()):
                    start_ms = (time.monotonic() - t0) * 1000
                    break
        except Exception:
            time.sleep(0.001)
    if start_ms is None:
        p.kill()
        p.wait()
        print("? ? failed")
        return 1
    t1 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    rc = p.wait()
    stop_ms = (time.monotonic() - t1) * 1000
    print("%.1f %.1f %d" % (start_ms, stop_ms, rc))
    return 0


sys.exit(main())
