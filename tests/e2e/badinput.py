#!/usr/bin/env python3
# badinput.py - raw-byte drivers for tests/e2e/t_badinput.sh.
#
#   badinput.py proto CA PORT SPEC...   CA protocol frames over TLS 1.3
#   badinput.py admin SOCKET SPEC       raw admin-socket request
#   badinput.py ocspstatus FILE         OCSPResponse responseStatus
#   badinput.py ocspnonce IN OUT N      replace the nonce of an OCSP
#                                       request (openssl -reqout) by N bytes
#
# proto SPEC tokens (sent in order, in one write):
#   hello                 HELLO id 1, VERSIONS 01
#   login:NAME[:badpw|:badotp]  LOGIN id 2: NAME, the first line of
#                         $PWFILE, the current TOTP code of the base32
#                         secret in $SECRETS/NAME.secret (RFC 6238, SHA-1,
#                         30 s); badpw/badotp spoil the password or code
#   f:VER:TYPE:ID[:TLV,TLV...]   one frame; TLV is TAG=VALUE with TAG hex
#                         and VALUE one of: hex bytes (maybe empty),
#                         'text, N*HH (byte HH N times), $VAR (hex from the
#                         environment)
#   raw:HEX               raw bytes
# After the spec a probe frame (unknown type 0x7e, id 0xfffffffe) is sent:
# its ERROR 3 proves the connection is still open.  Output, one line:
# every reply as NAME@ID (ERROR as ERROR<code>@ID), then "open" or
# "closed".  No timing is involved: the probe answers or the server closes.
#
# admin SPEC: space-separated pieces u8:N u16:N u32:N s16:TEXT (u16 length
# + text) hex:HEX; the 4-byte length prefix is computed unless the first
# piece is len:N.  "big" alone is a length prefix of 1 MiB + 1.  Output: "code=N err=TEXT" for a
# reply, "closed" when micad closed without one.
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import sys
import time

NAMES = {0x80: "OK", 0x81: "SERVER_HELLO", 0x82: "ACCEPTED", 0x83: "ISSUED",
         0x84: "REJECTED", 0x85: "ERROR", 0x86: "CERTS", 0x90: "ENROLLED",
         0x98: "NONCE", 0x99: "RENEWED"}
PROBE_ID = 0xfffffffe


def frame(ver, typ, fid, body=b""):
    b = bytes([ver, typ]) + struct.pack(">I", fid) + body
    return struct.pack(">I", len(b)) + b


def tlv(tag, val):
    return struct.pack(">HH", tag, len(val)) + val


def value(v):
    if v.startswith("'"):
        return v[1:].encode()
    if v.startswith("$"):
        return bytes.fromhex(os.environ[v[1:]])
    if "*" in v:
        n, h = v.split("*", 1)
        return bytes.fromhex(h) * int(n)
    return bytes.fromhex(v)


def totp(secret_b32):
    key = base64.b32decode(secret_b32.strip().upper())
    step = int(time.time()) // 30
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 15
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000
    return "%06d" % code


def token(t):
    if t == "hello":
        return frame(1, 1, 1, tlv(1, b"\x01"))
    if t.startswith("login:"):
        name, _, how = t[6:].partition(":")
        with open(os.environ["PWFILE"], "rb") as f:
            pw = f.readline().rstrip(b"\n")
        with open(os.path.join(os.environ["SECRETS"], name + ".secret")) as f:
            code = totp(f.read())
        if how == "badpw":
            pw += b"x"
        elif how == "badotp":
            code = "%06d" % ((int(code) + 1) % 1000000)
        return frame(1, 2, 2, tlv(0x10, name.encode()) + tlv(0x11, pw) +
                     tlv(0x12, code.encode()))
    if t.startswith("raw:"):
        return bytes.fromhex(t[4:])
    if t.startswith("f:"):
        parts = t.split(":", 4)
        body = b""
        if len(parts) == 5 and parts[4]:
            for item in parts[4].split(","):
                tag, v = item.split("=", 1)
                body += tlv(int(tag, 16), value(v))
        return frame(int(parts[1], 16), int(parts[2], 16), int(parts[3]),
                     body)
    raise SystemExit("badinput.py: bad token " + t)


def proto(ca, port, spec):
    data = b"".join(token(t) for t in spec)
    data += frame(1, 0x7e, PROBE_ID)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                 timeout=15))
    try:
        s.sendall(data)
    except (OSError, ssl.SSLError):
        pass
    buf = b""
    out = []
    state = "closed"
    while True:
        while len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            f, buf = buf[4:4 + n], buf[4 + n:]
            if len(f) < 6:
                out.append("SHORT")
                continue
            fid = struct.unpack(">I", f[2:6])[0]
            name = NAMES.get(f[1], "0x%02x" % f[1])
            if f[1] == 0x85 and len(f) >= 12:
                name += str(struct.unpack(">H", f[10:12])[0])
            if fid == PROBE_ID and name == "ERROR3":
                state = "open"
                break
            out.append("%s@%d" % (name, fid))
        if state == "open":
            break
        try:
            d = s.recv(65536)
        except (OSError, ssl.SSLError):
            d = b""
        if not d:
            break
        buf += d
    out.append(state)
    print(" ".join(out))


def admin(path, spec):
    if spec == "big":
        data = struct.pack(">I", (1 << 20) + 1) + b"\x01" * 64
    else:
        data = b""
        prefix = None
        for piece in spec.split():
            kind, v = piece.split(":", 1)
            if kind == "len":
                prefix = struct.pack(">I", int(v))
            elif kind == "u8":
                data += bytes([int(v)])
            elif kind == "u16":
                data += struct.pack(">H", int(v))
            elif kind == "u32":
                data += struct.pack(">I", int(v))
            elif kind == "s16":
                data += struct.pack(">H", len(v)) + v.encode()
            elif kind == "hex":
                data += bytes.fromhex(v)
            else:
                raise SystemExit("badinput.py: bad admin piece " + piece)
        data = (prefix or struct.pack(">I", len(data))) + data
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(path)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    buf = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except OSError:
        pass
    if len(buf) < 4 + 2 + 8:
        print("closed")
        return
    p = buf[4:]
    code = p[1]
    n = struct.unpack(">I", p[2:6])[0]
    m = struct.unpack(">I", p[6 + n:10 + n])[0]
    err = p[10 + n:10 + n + m].decode(errors="replace").strip()
    print("code=%d err=%s" % (code, err))


def der_len(b, i):
    """(length, index of the content) of the DER element at b[i]."""
    n = b[i + 1]
    if n < 0x80:
        return n, i + 2
    k = n & 0x7f
    return int.from_bytes(b[i + 2:i + 2 + k], "big"), i + 2 + k


def der(tag, body):
    n = len(body)
    if n < 0x80:
        h = bytes([n])
    else:
        k = (n.bit_length() + 7) // 8
        h = bytes([0x80 | k]) + n.to_bytes(k, "big")
    return bytes([tag]) + h + body


def ocspstatus(path):
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 2 or b[0] != 0x30:
        print("not-der")
        return
    _, i = der_len(b, 0)
    if b[i:i + 2] != b"\x0a\x01":
        print("not-ocsp")
        return
    print(b[i + 2])


def ocspnonce(inp, outp, n):
    """OCSPRequest { TBSRequest { [version] requestList [2] exts } }: the
    extensions are replaced by one nonce extension of n octets."""
    with open(inp, "rb") as f:
        b = f.read()
    _, i = der_len(b, 0)           # OCSPRequest content
    tl, j = der_len(b, i)          # TBSRequest content
    tbs = b[j:j + tl]
    k = 0
    keep = b""
    while k < len(tbs):
        el, c = der_len(tbs, k)
        if tbs[k] != 0xa2:
            keep += tbs[k:c + el]
        k = c + el
    oid = bytes.fromhex("06092b0601050507300102")  # id-pkix-ocsp-nonce
    ext = der(0x30, oid + der(0x04, der(0x04, b"\x5a" * n)))
    tbs = keep + der(0xa2, der(0x30, ext))
    with open(outp, "wb") as f:
        f.write(der(0x30, der(0x30, tbs) + b[j + tl:]))


def main():
    a = sys.argv
    if a[1] == "proto":
        proto(a[2], int(a[3]), " ".join(a[4:]).split())
    elif a[1] == "admin":
        admin(a[2], " ".join(a[3:]))
    elif a[1] == "ocspstatus":
        ocspstatus(a[2])
    elif a[1] == "ocspnonce":
        ocspnonce(a[2], a[3], int(a[4]))
    else:
        raise SystemExit("usage: badinput.py proto|admin|ocspstatus|ocspnonce")


if __name__ == "__main__":
    main()
