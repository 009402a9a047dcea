"""Raw Kafka frames, for requests no client library would send (hostile-client tests)."""

import struct

CLIENT = b"hostile"


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def read_uvarint(buf, pos):
    """(value, position after it)."""
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def compact(b):
    """A compact (flexible-version) string or bytes."""
    return uvarint(len(b) + 1) + b


def string16(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


def frame(api, version, correlation, body, flexible=False):
    """A size-prefixed request: header v1 (v2 with `flexible`) then `body`."""
    header = struct.pack(">hhi", api, version, correlation) + string16(CLIENT)
    if flexible:
        header += b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(s):
    """One size-prefixed response; ConnectionError if the broker closes first."""
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        return buf
    return exact(struct.unpack(">i", exact(4))[0])
