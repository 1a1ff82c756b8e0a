"""ocspreq.py - nonce'd OCSP requests and the checks of their answers,
for the test scripts (ocsp_pipeline.py, ocsp_nonce_burst.py).

RFC 6960 requests built with python3-cryptography (SHA-1 CertID, as
openssl ocsp sends), an RFC 8954 nonce each; an answer is right when it
is successful, echoes that nonce, is about that certificate and its
signature verifies under the OCSP signer's key.
"""
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp


def load(path):
    """A PEM certificate from path."""
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def verify(pub, resp):
    """Raises unless resp's signature verifies under pub."""
    h = resp.signature_hash_algorithm
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(h))
    elif isinstance(pub, rsa.RSAPublicKey):
        pub.verify(resp.signature, resp.tbs_response_bytes,
                   padding.PKCS1v15(), h)
    else:
        pub.verify(resp.signature, resp.tbs_response_bytes)


def nonce_request(issuer, cert):
    """(DER request for cert with a fresh 16-byte nonce, the nonce)."""
    nonce = os.urandom(16)
    der = (ocsp.OCSPRequestBuilder()
           .add_certificate(cert, issuer, hashes.SHA1())
           .add_extension(x509.OCSPNonce(nonce), critical=False)
           .build().public_bytes(serialization.Encoding.DER))
    return der, nonce


def check_answer(pub, cert, nonce, der):
    """Raises ValueError (or the signature's error) unless der is a right
    answer to nonce_request's request for cert."""
    resp = ocsp.load_der_ocsp_response(der)
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError("status %s" % resp.response_status)
    got = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    if got != nonce:
        raise ValueError("another request's nonce")
    if resp.serial_number != cert.serial_number:
        raise ValueError("another certificate's answer")
    verify(pub, resp)
