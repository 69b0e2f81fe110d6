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
import sys

from coapmsg import TYPES, code_str, opt_uint, parse

lport, sport = int(sys.argv[1]), int(sys.argv[2])
dev = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dev.bind(("127.0.0.1", lport))
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.connect(("127.0.0.1", sport))
peer = None


def describe(b):
    typ, code, _, _, opts, payload = parse(b)
    d = {"type": TYPES[typ], "code": code_str(code)}
    for num, key in ((23, "block2"), (27, "block1")):
        if num in opts:
            v = opt_uint(opts, num, last=True)
            d[key] = [v >> 4, (v >> 3) & 1, v & 7]
    if 60 in opts:
        d["size1"] = opt_uint(opts, 60, last=True)
    d["len"] = len(payload)
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
