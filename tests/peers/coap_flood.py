#!/usr/bin/env python3
# Hostile CoAP/DTLS traffic for tests/hostile.bats, from raw UDP sockets (no CoAP library: the
# point is to send what a well-behaved stack would not).
#
#   coap_flood.py registers PORT N        N Registers with distinct endpoint names, one socket;
#                                         prints {"codes": {"2.01": n, "5.03": n, ...}}
#   coap_flood.py block1 PORT KIB [SIZE1] a Register whose links (</3303/0>, ...) come in Block1
#                                         blocks of 1 KiB, in order, KIB of them (the first with
#                                         Size1 if given, none otherwise);
#                                         prints the codes of the answers, up to the first error,
#                                         and the Size1 of the last answer if it has one
#   coap_flood.py block1-gap PORT         a lone Block1 block NUM 5, nothing before it
#   coap_flood.py dtls-hello PORT N       N DTLS ClientHellos from N sockets, none finished
import json
import os
import socket
import struct
import sys

import coapmsg

mid = 0


def request(code, options, payload=b"", token=b""):
    global mid
    mid = (mid + 1) & 0xffff
    return coapmsg.msg(coapmsg.CON, code, mid, token, options, payload)


last = None  # the last answer, parsed


def ask(s, pkt):
    global last
    s.send(pkt)
    while True:
        r = s.recv(2048)
        if len(r) >= 4 and struct.unpack(">H", r[2:4])[0] == mid:
            last = coapmsg.parse(r)
            return coapmsg.code_str(r[1])


def block1(num, more, szx=6):
    return coapmsg.block(num, more, szx)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    codes = {}
    if mode == "registers":
        # FLOOD_TIMEOUT: stop at the first Register left unanswered that long (a server that
        # holds datagrams back), counted as "timeout"
        s.settimeout(float(os.environ.get("FLOOD_TIMEOUT", "10")))
        for i in range(int(sys.argv[3])):
            try:
                c = ask(s, request(2, [(11, b"rd"), (15, f"ep=f{i:06d}".encode()), (15, b"lt=600")], b"</3/0>"))
            except socket.timeout:
                codes["timeout"] = 1
                break
            codes[c] = codes.get(c, 0) + 1
    elif mode == "block1":
        n = int(sys.argv[3])
        size1 = int(sys.argv[4]) if len(sys.argv) > 4 else None
        # links of 10 bytes with their commas, the last one without: one link format body
        k = (n * 1024 + 1) // 10
        body = (b"</3303/0>," * k)[:k * 10 - 1]
        for i in range(n):
            o = [(11, b"rd"), (15, b"ep=big"), (27, block1(i, i < n - 1))]
            if size1 is not None and i == 0:
                o.append((60, size1.to_bytes(4, "big")))
            c = ask(s, request(2, o, body[i * 1024:(i + 1) * 1024], token=b"\x01\x02"))
            codes[c] = codes.get(c, 0) + 1
            if not c.startswith("2."):
                break
        size1 = coapmsg.opt_uint(last[4], 60)
        if size1 is not None:
            print(json.dumps({"codes": codes, "size1": size1}))
            return
    elif mode == "block1-gap":
        for num in (5,):
            c = ask(s, request(2, [(11, b"rd"), (15, b"ep=gap"), (27, block1(num, True))], b"x" * 1024,
                               token=b"\x03\x04"))
            codes[c] = codes.get(c, 0) + 1
    elif mode == "dtls-hello":
        # each socket answers the HelloVerifyRequest's cookie, so that the server holds a
        # handshake in progress for it, then says nothing more
        socks = []
        answered = 0
        for i in range(int(sys.argv[3])):
            t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t.settimeout(2)
            t.connect(("127.0.0.1", port))
            rnd = os.urandom(32)
            def hello(seq, cookie):
                # DTLS 1.2 ClientHello offering TLS_PSK_WITH_AES_128_CCM_8
                body = b"\xfe\xfd" + rnd + b"\x00" + bytes([len(cookie)]) + cookie + b"\x00\x02\xc0\xa8" + b"\x01\x00"
                hs = (b"\x01" + len(body).to_bytes(3, "big") + seq.to_bytes(2, "big") + b"\x00\x00\x00" +
                      len(body).to_bytes(3, "big") + body)
                return b"\x16\xfe\xfd" + b"\x00\x00" + seq.to_bytes(6, "big") + len(hs).to_bytes(2, "big") + hs
            t.send(hello(0, b""))
            try:
                r = t.recv(2048)
                # record (13) + handshake header (12): HelloVerifyRequest is type 3
                if len(r) > 28 and r[0] == 0x16 and r[13] == 3:
                    clen = r[27]
                    t.send(hello(1, r[28:28 + clen]))
                    t.recv(4096)
                    answered += 1
            except socket.timeout:
                pass
            socks.append(t)
        codes["sent"] = len(socks)
        codes["server_hello"] = answered
    print(json.dumps({"codes": codes}))


main()
