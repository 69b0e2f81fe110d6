#!/usr/bin/env python3
# A UDP relay between one CoAP device and a server that prints one JSON line per datagram,
# so a test can see how a transfer went on the wire (tests/blockwise.bats):
#
#   coap_relay.py LISTEN_PORT SERVER_PORT
#     {"dir":"up"|"down","type":"CON|NON|ACK|RST","code":"2.31","block1":[num,more,szx],
#      "block2":[...],"size1":n,"len":payload bytes}
# The device sends to LISTEN_PORT; the server sees the relay's other socket as the device.
import json
import select
import socket
import struct
import sys

lport, sport = int(sys.argv[1]), int(sys.argv[2])
dev = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dev.bind(("127.0.0.1", lport))
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.connect(("127.0.0.1", sport))
peer = None


def describe(b):
    d = {"type": ["CON", "NON", "ACK", "RST"][(b[0] >> 4) & 3], "code": f"{b[1] >> 5}.{b[1] & 31:02d}"}
    i, num = 4 + (b[0] & 15), 0
    while i < len(b) and b[i] != 0xff:
        dl, ln = b[i] >> 4, b[i] & 15
        i += 1
        if dl == 13:
            dl, i = b[i] + 13, i + 1
        elif dl == 14:
            dl, i = struct.unpack(">H", b[i:i + 2])[0] + 269, i + 2
        if ln == 13:
            ln, i = b[i] + 13, i + 1
        elif ln == 14:
            ln, i = struct.unpack(">H", b[i:i + 2])[0] + 269, i + 2
        num += dl
        v = int.from_bytes(b[i:i + ln], "big")
        if num in (23, 27):
            d["block2" if num == 23 else "block1"] = [v >> 4, (v >> 3) & 1, v & 7]
        elif num == 60:
            d["size1"] = v
        i += ln
    d["len"] = len(b) - i - 1 if i < len(b) else 0
    return d


while True:
    r, _, _ = select.select([dev, srv], [], [])
    if dev in r:
        b, peer = dev.recvfrom(65536)
        srv.send(b)
        print(json.dumps(dict(dir="up", **describe(b))), flush=True)
    if srv in r:
        b = srv.recv(65536)
        if peer:
            dev.sendto(b, peer)
        print(json.dumps(dict(dir="down", **describe(b))), flush=True)
