"""micaframe.py - the mica CA protocol's framing for the test scripts.

A frame: u32 length, then u8 version, u8 type, u32 id, TLVs (u16 tag,
u16 length, value); all big-endian.  docs/PROTOCOL.md is the reference.
"""
import socket
import ssl
import struct

HELLO, SERVER_HELLO, OK, ERROR = 0x01, 0x81, 0x80, 0x85


def frame(typ, fid, body=b"", ver=1):
    b = bytes([ver, typ]) + struct.pack(">I", fid) + body
    return struct.pack(">I", len(b)) + b


def tlv(t, v):
    return struct.pack(">HH", t, len(v)) + v


def _read(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise EOFError("closed")
        buf += d
    return buf


def read_frame(s, max_len=1 << 20):
    """The next frame's bytes after its length (version, type, id, TLVs)."""
    n = struct.unpack(">I", _read(s, 4))[0]
    if n < 6 or n > max_len:
        raise ValueError("bad frame length %d" % n)
    return _read(s, n)


def result(f):
    """"ok", "error CODE" or "frame 0xTT" for a frame from read_frame."""
    if f[1] == OK:
        return "ok"
    if f[1] == ERROR and len(f) >= 12:
        return "error %d" % struct.unpack(">H", f[10:12])[0]
    return "frame 0x%02x" % f[1]


def connect(ca, port, src=None, timeout=60):
    """TLS 1.3 to 127.0.0.1:port trusting ca, HELLO answered."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(src, 0) if src else None)
    s = ctx.wrap_socket(s)
    s.sendall(frame(HELLO, 1, tlv(1, b"\x01")))
    f = read_frame(s)
    if f[1] != SERVER_HELLO:
        raise ValueError("no SERVER_HELLO: %s" % result(f))
    return s
