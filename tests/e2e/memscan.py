#!/usr/bin/python3
# memscan.py - searches processes' memory for private key material
# (tests/e2e/t_signer.sh).
#   memscan.py KEYFILE[,KEYFILE...] PID...
# For every key file: the private scalar (EC, Ed25519) or the private
# exponent and primes (RSA) big-endian and little-endian (OpenSSL's
# BIGNUM limbs), the key's PKCS#8 DER and the first base64 line of the
# PEM file.  Reads /proc/PID/mem over every readable mapping of /proc/
# PID/maps (needs ptrace access: root, as the tests run).  Prints one
# line per PID: "PID found N" or "PID clean"; exit 0.
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def patterns(path):
    pem = open(path, "rb").read()
    key = serialization.load_pem_private_key(pem, password=None)
    pats = []
    if isinstance(key, ec.EllipticCurvePrivateKey):
        n = (key.curve.key_size + 7) // 8
        ints = [(key.private_numbers().private_value, n)]
    elif isinstance(key, rsa.RSAPrivateKey):
        p = key.private_numbers()
        ints = [(p.d, key.key_size // 8), (p.p, key.key_size // 16),
                (p.q, key.key_size // 16)]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(serialization.Encoding.Raw,
                                serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        pats.append(raw)
        ints = []
    else:
        raise SystemExit("memscan: unsupported key type in " + path)
    for v, n in ints:
        be = v.to_bytes(n, "big").lstrip(b"\0")
        pats.append(be)
        pats.append(be[::-1])
    pats.append(key.private_bytes(serialization.Encoding.DER,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    body = [l for l in pem.splitlines() if l and not l.startswith(b"-----")]
    if body:
        pats.append(body[0])
    return [p for p in pats if len(p) >= 16]


def scan(pid, pats):
    found = 0
    with open("/proc/%d/maps" % pid) as maps, \
            open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            f = line.split()
            if f[1][0] != "r":
                continue
            if len(f) > 5 and f[5] in ("[vvar]", "[vsyscall]"):
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            # reserved, never-touched ranges (ASan's shadow memory is
            # terabytes): reading them would only build page tables
            if hi - lo > (4 << 30) and len(f) < 6:
                continue
            tail = b""
            pos = lo
            while pos < hi:
                n = min(1 << 20, hi - pos)
                try:
                    mem.seek(pos)
                    chunk = mem.read(n)
                except OSError:
                    chunk = b""
                if not chunk:
                    tail = b""
                    pos += n
                    continue
                buf = tail + chunk
                for p in pats:
                    if p in buf:
                        found += 1
                tail = buf[-64:]
                pos += n
    return found


def main():
    pats = []
    for path in sys.argv[1].split(","):
        pats += patterns(path)
    for pid in sys.argv[2:]:
        n = scan(int(pid), pats)
        print("%s %s" % (pid, "found %d" % n if n else "clean"))


main()
