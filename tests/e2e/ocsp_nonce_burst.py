#!/usr/bin/env python3
"""ocsp_nonce_burst.py URL ISSUER OCSP_CERT THREADS PER_THREAD CERT...

Sends THREADS x PER_THREAD nonce'd OCSP requests at once (each thread
its own requests, one after the other, for the certificates in turn),
so that micad's OCSP signatures are batched to the signer.  Every answer
must be successful, echo its own nonce and carry a signature that
verifies under OCSP_CERT.  Prints "ok N" (N answers checked) or the
first failure, and exits 0 only when all were right.
"""
import os
import sys
import threading
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp


def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def verify(pub, resp):
    h = resp.signature_hash_algorithm
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(h))
    elif isinstance(pub, rsa.RSAPublicKey):
        pub.verify(resp.signature, resp.tbs_response_bytes,
                   padding.PKCS1v15(), h)
    else:
        pub.verify(resp.signature, resp.tbs_response_bytes)


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
            nonce = os.urandom(16)
            req = (ocsp.OCSPRequestBuilder()
                   .add_certificate(cert, issuer, hashes.SHA1())
                   .add_extension(x509.OCSPNonce(nonce), critical=False)
                   .build())
            try:
                r = urllib.request.Request(
                    url, data=req.public_bytes(serialization.Encoding.DER),
                    headers={"Content-Type": "application/ocsp-request"})
                with urllib.request.urlopen(r, timeout=30) as f:
                    der = f.read()
                resp = ocsp.load_der_ocsp_response(der)
                if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                    raise ValueError("status %s" % resp.response_status)
                got = resp.extensions.get_extension_for_class(
                    x509.OCSPNonce).value.nonce
                if got != nonce:
                    raise ValueError("another request's nonce")
                if resp.serial_number != cert.serial_number:
                    raise ValueError("another certificate's answer")
                verify(pub, resp)
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
