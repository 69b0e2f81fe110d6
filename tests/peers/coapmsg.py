# CoAP messages (RFC 7252) as raw bytes, for the test peers that speak CoAP from plain UDP
# sockets so that they can send what a CoAP library would not (block_device.py, coap_flood.py,
# coap_relay.py).
import struct

CON, NON, ACK, RST = 0, 1, 2, 3
TYPES = ["CON", "NON", "ACK", "RST"]


def uint(v):
    """An unsigned option value: as few bytes as it takes, none for 0."""
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big") if v else b""


def _nibble(x):
    if x < 13:
        return x, b""
    if x < 269:
        return 13, bytes([x - 13])
    return 14, struct.pack(">H", x - 269)


def enc_opts(options):
    """[(number, bytes), ...] in any order -> the options, delta-encoded in number order."""
    out, last = b"", 0
    for number, value in sorted(options, key=lambda o: o[0]):
        dn, dx = _nibble(number - last)
        ln, lx = _nibble(len(value))
        out += bytes([dn << 4 | ln]) + dx + lx + value
        last = number
    return out


def msg(typ, code, mid, token, options, payload=b""):
    return (bytes([0x40 | typ << 4 | len(token), code]) + struct.pack(">H", mid) + token + enc_opts(options) +
            (b"\xff" + payload if payload else b""))


def parse(b):
    """-> (type, code, message id, token, {option number: [values]}, payload)"""
    typ, tkl, code = (b[0] >> 4) & 3, b[0] & 15, b[1]
    mid = struct.unpack(">H", b[2:4])[0]
    token, i, num, opts = b[4:4 + tkl], 4 + tkl, 0, {}
    while i < len(b) and b[i] != 0xff:
        d, ln = b[i] >> 4, b[i] & 15
        i += 1
        if d == 13:
            d, i = b[i] + 13, i + 1
        elif d == 14:
            d, i = struct.unpack(">H", b[i:i + 2])[0] + 269, i + 2
        if ln == 13:
            ln, i = b[i] + 13, i + 1
        elif ln == 14:
            ln, i = struct.unpack(">H", b[i:i + 2])[0] + 269, i + 2
        num += d
        opts.setdefault(num, []).append(b[i:i + ln])
        i += ln
    payload = b[i + 1:] if i < len(b) else b""
    return typ, code, mid, token, opts, payload


def opt_uint(opts, n, last=False):
    """The value of option n as a number (its first occurrence, or its last), None if absent."""
    v = opts.get(n)
    return int.from_bytes(v[-1 if last else 0], "big") if v else None


def block(num, more, szx):
    """A Block1/Block2 option value (RFC 7959)."""
    return uint(num << 4 | (8 if more else 0) | szx)


def code_str(code):
    return f"{code >> 5}.{code & 31:02d}"
