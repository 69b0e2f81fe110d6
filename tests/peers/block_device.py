#!/usr/bin/env python3
# A NoSec LwM2M device from a raw UDP socket that plays block-wise games (RFC 7959) with the
# server, for tests/blockwise.bats. It registers as EP with </3311/0> (the Register retransmitted
# as RFC 7252 has it: events register-retransmit, then registered or register-failed, which
# exits 1), then answers every GET
# with a Block2 body and every Block1 request part as MODE says; one JSON line per event.
#
#   block_device.py PORT EP MODE
#     endless    every GET gets the part it asks for, 1024 bytes, always "more to come"
#     gap        part 0, then part 3 when asked for part 1
#     short      part 0 of 1000 bytes (not the block size) with "more to come"
#     small      a 3000-byte body in 512-byte parts, though 1024 were asked for (allowed);
#                each part sent twice, the copy as a separate CON response (a retransmission)
#     dup        Block1 parts: each 2.31 Continue is sent twice (a retransmitted ACK);
#                the whole body gets 2.04 and an event with its length and SHA-256
#     observe    a GET with Observe 0 gets a plain answer, then a notification whose Block2
#                body never ends (parts asked for as in endless)
#     tiny       takes request bodies of at most 64 bytes, as Wakaama's client with -S 64: a
#                larger body, or Block1 part, gets 4.13 with Block1 (its number, more, SZX 2),
#                the size to use (RFC 7959 2.9.3); parts of 64 bytes are taken
#     shrink     Block1 parts: the first is answered 2.31 with SZX 2 (64 bytes), the size the
#                rest is to come in (RFC 7959 2.3); later parts larger than 64 bytes get 4.13
#     notify     a GET with Observe 0 gets "21.5"; once the file $NOTIFY_WHEN exists, one
#                confirmable notification "22.5", retransmitted every 0.5 s until its ACK
#                comes (events notify-sent with the attempt, then notify-acked)
import hashlib
import json
import os
import random
import socket
import sys
import time

from coapmsg import ACK, CON, NON, RST, block, msg, opt_uint, parse, uint

port, ep, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
mid = 0x1000


def emit(**kw):
    print(json.dumps(kw), flush=True)


def register():
    """Register, retransmitted as RFC 7252 4.2 has it until the answer comes: the first timeout
    ACK_TIMEOUT times a random factor up to ACK_RANDOM_FACTOR, doubled each time, MAX_RETRANSMIT
    retransmissions (one 2.01 took more than 10 s on a loaded machine). A separate response (an
    empty ACK first) is waited for and acknowledged."""
    global mid
    ACK_TIMEOUT, ACK_RANDOM_FACTOR, MAX_RETRANSMIT = 2.0, 1.5, 4
    mid += 1
    token = b"\x42"
    req = msg(CON, 2, mid, token, [(11, b"rd"), (15, f"ep={ep}".encode()), (15, b"lt=600"), (15, b"lwm2m=1.1"),
                                   (12, uint(40))], b"</3311/0>")
    timeout = ACK_TIMEOUT * random.uniform(1, ACK_RANDOM_FACTOR)
    sent, deadline, acked = 0, 0.0, False
    while True:
        now = time.monotonic()
        if acked and now >= deadline:
            break  # the separate response never came
        if not acked and now >= deadline:
            if sent > MAX_RETRANSMIT:
                break
            if sent:
                emit(event="register-retransmit", attempt=sent)
            try:
                s.send(req)
            except ConnectionRefusedError:
                pass  # nothing listens there (yet): as a lost datagram
            sent += 1
            deadline = now + timeout
            timeout *= 2
        s.settimeout(max(0.01, deadline - now))
        try:
            b = s.recv(2048)
        except (socket.timeout, ConnectionRefusedError):
            continue
        if len(b) < 4:
            continue
        typ, code, m, tok, _, _ = parse(b)
        if typ == ACK and m == mid and code == 0:
            acked, deadline = True, time.monotonic() + 60  # a separate response follows
        elif typ == RST and m == mid:
            break
        elif code == 0x41 and ((typ == ACK and m == mid) or (typ in (CON, NON) and tok == token)):
            if typ == CON:
                s.send(msg(ACK, 0, m, b"", []))
            emit(event="registered", attempts=sent)
            return
    emit(event="register-failed", attempts=sent)
    sys.exit(1)


register()

body1 = b""
CT_TEXT = 0
obs_token, pending, attempts, next_send = None, None, 0, 0.0
s.settimeout(0.1)
while True:
    if mode == "notify" and obs_token is not None and attempts == 0 and os.path.exists(os.environ["NOTIFY_WHEN"]):
        mid += 1
        pending = msg(CON, 0x45, mid, obs_token, [(6, uint(3)), (12, uint(CT_TEXT))], b"22.5")
        next_send = 0.0
    if pending is not None and time.monotonic() >= next_send:
        s.send(pending)
        attempts += 1
        next_send = time.monotonic() + 0.5
        emit(event="notify-sent", attempt=attempts)
    try:
        b = s.recv(4096)
    except socket.timeout:
        continue
    if len(b) < 4:
        continue
    typ, code, m, token, opts, payload = parse(b)
    if pending is not None and typ == ACK and code == 0 and m == mid:
        pending = None
        emit(event="notify-acked", attempts=attempts)
        continue
    if code == 0 or code >= 32:
        continue  # ACK, Reset, or a response to us
    b2, b1 = opt_uint(opts, 23), opt_uint(opts, 27)
    if code == 1:  # GET
        num, szx = (b2 >> 4, b2 & 7) if b2 is not None else (0, 6)
        observe = opt_uint(opts, 6)
        emit(event="get", num=num, szx=szx, observe=observe)
        if mode == "observe" and observe != 0 and 6 in opts:
            # the cancelling GET (Observe 1)
            s.send(msg(ACK, 0x45, m, token, [(12, uint(CT_TEXT))], b"bye"))
            emit(event="cancel")
            continue
        o = [(12, uint(CT_TEXT))]
        if mode == "notify" and observe == 0:
            obs_token = token
            s.send(msg(ACK, 0x45, m, token, o + [(6, uint(2))], b"21.5"))
            continue
        if mode == "observe" and observe == 0:
            # a plain first answer, then a notification whose body never ends
            s.send(msg(ACK, 0x45, m, token, o + [(6, uint(2))], b"first"))
            mid += 1
            s.send(msg(CON, 0x45, mid, token, o + [(6, uint(3)), (23, block(0, True, 6))], b"x" * 1024))
            continue
        if mode in ("endless", "observe"):
            s.send(msg(ACK, 0x45, m, token, o + [(23, block(num, True, 6))], b"x" * 1024))
        elif mode == "gap":
            n = 3 if num == 1 else num
            s.send(msg(ACK, 0x45, m, token, o + [(23, block(n, True, 6))], b"g" * 1024))
        elif mode == "short":
            s.send(msg(ACK, 0x45, m, token, o + [(23, block(num, True, 6))], b"s" * 1000))
        elif mode == "small":
            body = bytes(ord("a") + i % 26 for i in range(3000))
            n = num * (1 << (szx + 4)) // 512  # the same offset in 512-byte parts
            part = body[n * 512:(n + 1) * 512]
            more = (n + 1) * 512 < len(body)
            pkt = msg(ACK, 0x45, m, token, o + [(23, block(n, more, 5))], part)
            s.send(pkt)
            mid += 1
            s.send(msg(CON, 0x45, mid, token, o + [(23, block(n, more, 5))], part))
        continue
    if mode in ("tiny", "shrink") and len(payload) > 64 and not (mode == "shrink" and b1 is not None and b1 >> 4 == 0):
        num = b1 >> 4 if b1 is not None else 0
        emit(event="too-large", num=num, len=len(payload), block1=b1 is not None)
        s.send(msg(ACK, 0x8d, m, token, [(27, block(num, True, 2))]))  # 4.13
        continue
    if b1 is not None:  # a request in Block1 parts
        num, more, szx = b1 >> 4, b1 & 8, b1 & 7
        if num == 0:
            body1 = b""
        if mode in ("tiny", "shrink") and num << (szx + 4) != len(body1):
            emit(event="block1-gap", num=num, szx=szx, have=len(body1))
            s.send(msg(ACK, 0x88, m, token, []))  # 4.08 Request Entity Incomplete
            continue
        body1 += payload
        emit(event="block1", num=num, more=bool(more), len=len(payload), szx=szx)
        if mode == "shrink" and more:
            b1 = b1 & ~7 | min(szx, 2)  # acknowledged in the sender's numbering, our size
        if more:
            ans = msg(ACK, 0x5f, m, token, [(27, uint(b1))])  # 2.31 Continue
            s.send(ans)
            if mode == "dup":
                s.send(ans)
        else:
            s.send(msg(ACK, 0x44, m, token, [(27, uint(b1))]))  # 2.04
            emit(event="body", len=len(body1), sha256=hashlib.sha256(body1).hexdigest())
        continue
    if mode in ("tiny", "shrink") and payload:
        emit(event="body", len=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    s.send(msg(ACK, 0x44, m, token, []))
