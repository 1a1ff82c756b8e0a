#!/usr/bin/env python3
"""ocsp_nonce_burst.py URL ISSUER OCSP_CERT THREADS PER_THREAD CERT...

Sends THREADS x PER_THREAD nonce'd OCSP requests at once (each thread
its own requests, one after the other, for the certificates in turn),
so that micad's OCSP signatures are batched to the signer.  Every answer
must be successful, echo its own nonce and carry a signature that
verifies under OCSP_CERT.  Prints "ok N" (N answers checked) or the
first failure, and exits 0 only when all were right.
"""
import sys
import threading
import urllib.request

from ocspreq import check_answer, load, nonce_request


def main():
    url, issuer_p, signer_p = sys.argv[1:4]
    threads, per = int(sys.argv[4]), int(sys.argv[5])
    issuer, signer = load(issuer_p), load(signer_p)
    certs = [load(p) for p in sys.argv[6:]]
    pub = signer.public_key()
    errors, good = [], [0]
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(t):
        start.wait()
        for i in range(per):
            cert = certs[(t + i) % len(certs)]
            req, nonce = nonce_request(issuer, cert)
            try:
                r = urllib.request.Request(
                    url, data=req,
                    headers={"Content-Type": "application/ocsp-request"})
                with urllib.request.urlopen(r, timeout=30) as f:
                    der = f.read()
                check_answer(pub, cert, nonce, der)
                with lock:
                    good[0] += 1
            except Exception as e:  # noqa: BLE001 (reported, then fail)
                with lock:
                    errors.append("thread %d request %d: %r" % (t, i, e))
                return

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        print("failed: %s (%d right)" % (errors[0], good[0]))
        return 1
    print("ok %d" % good[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
