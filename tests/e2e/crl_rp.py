#!/usr/bin/python3
"""crl_rp.py - a relying party's CRL check with Python cryptography.

Run with /usr/bin/python3 (Debian python3-cryptography).

  crl_rp.py info CRL [PREFIX]
      prints "PREFIXnumber=N PREFIXbase=B PREFIXthis=T PREFIXnext=U"
      (base=0 for a full CRL; times in unix seconds), for a shell's eval
  crl_rp.py check CA FULL DELTA ATTIME CERT...
      checks both CRLs' signatures and issuer against CA, that FULL is a
      complete CRL valid at ATTIME and DELTA a delta CRL that applies to it
      (RFC 5280 5.2.4: base <= FULL's number < DELTA's number), then for
      each certificate prints "NAME revoked REASON TIME" or "NAME good":
      the delta's entry wins (removeFromCRL: not revoked), else the full
      CRL's.  Exit 3: FULL expired at ATTIME; 4: DELTA does not apply;
      1: any other error.

CRLs and certificates in PEM or DER.
"""
import calendar
import os
import sys

from cryptography import x509
from cryptography.x509.oid import CRLEntryExtensionOID

REASONS = {
    "unspecified": 0, "key_compromise": 1, "ca_compromise": 2,
    "affiliation_changed": 3, "superseded": 4, "cessation_of_operation": 5,
    "certificate_hold": 6, "remove_from_crl": 8, "privilege_withdrawn": 9,
    "aa_compromise": 10,
}


def load_crl(path):
    data = open(path, "rb").read()
    if data.startswith(b"-----"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def load_cert(path):
    data = open(path, "rb").read()
    if data.startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def secs(dt):
    return calendar.timegm(dt.utctimetuple())


def number(crl):
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value \
        .crl_number


def base_of(crl):
    try:
        return crl.extensions.get_extension_for_class(
            x509.DeltaCRLIndicator).value.crl_number
    except x509.ExtensionNotFound:
        return 0


def reason_of(rc):
    try:
        r = rc.extensions.get_extension_for_oid(
            CRLEntryExtensionOID.CRL_REASON).value.reason
    except x509.ExtensionNotFound:
        return 0
    return REASONS[r.name]


def info(path, prefix):
    crl = load_crl(path)
    print("%snumber=%d %sbase=%d %sthis=%d %snext=%d" % (
        prefix, number(crl), prefix, base_of(crl), prefix,
        secs(crl.last_update), prefix, secs(crl.next_update)))
    return 0


def check(ca_path, full_path, delta_path, attime, certs):
    ca = load_cert(ca_path)
    full = load_crl(full_path)
    delta = load_crl(delta_path)
    for name, crl in (("full", full), ("delta", delta)):
        if not crl.is_signature_valid(ca.public_key()):
            print("%s CRL: signature does not verify" % name)
            return 1
        if crl.issuer != ca.subject:
            print("%s CRL: issuer is not the CA" % name)
            return 1
    if base_of(full) != 0:
        print("full CRL carries a deltaCRLIndicator")
        return 1
    if base_of(delta) == 0:
        print("delta CRL lacks a deltaCRLIndicator (RFC 5280 5.2.4)")
        return 1
    if attime > secs(full.next_update):
        print("full CRL %d expired at %d (nextUpdate %d)" % (
            number(full), attime, secs(full.next_update)))
        return 3
    if not base_of(delta) <= number(full) < number(delta):
        print("delta CRL %d (base %d) does not apply to full CRL %d" % (
            number(delta), base_of(delta), number(full)))
        return 4
    if attime > secs(delta.next_update):
        print("delta CRL %d expired at %d" % (number(delta), attime))
        return 4
    for path in certs:
        cert = load_cert(path)
        if cert.issuer != ca.subject:
            print("%s: not issued by the CA" % path)
            return 1
        name = os.path.basename(path)
        rc = delta.get_revoked_certificate_by_serial_number(
            cert.serial_number)
        if rc is None:
            rc = full.get_revoked_certificate_by_serial_number(
                cert.serial_number)
        if rc is None or reason_of(rc) == REASONS["remove_from_crl"]:
            print("%s good" % name)
        else:
            print("%s revoked %d %d" % (name, reason_of(rc),
                                        secs(rc.revocation_date)))
    return 0


def main(argv):
    if len(argv) in (3, 4) and argv[1] == "info":
        return info(argv[2], argv[3] if len(argv) == 4 else "")
    if len(argv) >= 6 and argv[1] == "check":
        return check(argv[2], argv[3], argv[4], int(argv[5]), argv[6:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
