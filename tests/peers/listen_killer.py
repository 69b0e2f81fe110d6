#!/usr/bin/env python3
# Kill -9 lwm2m-listen at random points while simulated devices (lwm2m-device.js) register,
# register again and de-register, restarting it each time on the same port and state directory.
# Once every device has had its answers, kill it once more, restart it, and compare what it
# restored with what the devices were told: each endpoint whose last acknowledged operation was a
# Register (2.01) must be there with the registration id it was given, and no other.
#
#   listen_killer.py PORT STATE_DIR CONTROL_SOCKET DEVICE_JS DEVICES OPS SEED [LISTEN_ARGS...]
#
# Prints one JSON summary line; exit 0 when restored == acknowledged, 1 when not, 2 when the
# run did not finish in its bound.
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time

port, state, sock_path, device_js = sys.argv[1:5]
ndev, nops, seed = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
extra = sys.argv[8:]
rng = random.Random(seed)
tmp = os.path.dirname(sock_path)
listen_err = open(os.path.join(tmp, "listen.err"), "ab")


def start_listen():
    r, w = os.pipe()
    p = subprocess.Popen(["lwm2m-listen", "-l", f"127.0.0.1:{port}", "-C", sock_path, "-S", state,
                          "-d", str(w), *extra], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=listen_err, pass_fds=(w,))
    os.close(w)
    with os.fdopen(r, "rb") as f:
        if f.read(1) != b"\n":
            sys.exit(f"lwm2m-listen did not get ready (exit {p.wait()})")
    return p


def kill(p):
    p.send_signal(signal.SIGKILL)
    p.wait()


class Device:
    def __init__(self, i):
        self.ep = f"killtest{i}"
        self.proc = subprocess.Popen(["node", device_js, "--server", f"127.0.0.1:{port}", "--ep", self.ep],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(tmp, f"dev{i}.err"), "ab"))
        self.buf = b""
        self.pending = True  # it registers when it starts
        self.acked = None    # None: nothing acknowledged yet; "" deregistered; else the registration id
        self.ops = nops
        self.failures = []

    def send(self, cmd):
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        self.pending = True
        self.ops -= 1

    def on_event(self, ev):
        e = ev.get("event")
        if e == "registered":
            self.acked = ev["location"].rsplit("/", 1)[1]
        elif e == "deregistered" and ev.get("code") in ("2.02", "4.04"):
            # 4.04: the De-register was kept, then the kill took the 2.02; the retransmission
            # found it gone. Either way the device is told it is not registered.
            self.acked = ""
        elif e in ("register-failed", "deregister-failed", "update-failed", "deregistered"):
            self.failures.append(ev)
        else:
            return
        self.pending = False


devices = [Device(i) for i in range(ndev)]
sel = selectors.DefaultSelector()
for d in devices:
    os.set_blocking(d.proc.stdout.fileno(), False)
    sel.register(d.proc.stdout, selectors.EVENT_READ, d)

listen = start_listen()
kills = acked_ops = 0
deadline = time.monotonic() + 240
# A kill comes at a random moment after the restarted server answered something, so that every
# life of it makes progress however slowly it starts (sanitizer builds, a loaded machine), and
# at the latest after a few acknowledged operations, so that a fast server is killed too.
next_kill = None
acked_at_start = 0
kill_after = rng.randint(1, 8)
try:
    while any(d.pending or d.ops > 0 for d in devices):
        if time.monotonic() > deadline:
            print(json.dumps({"error": "not finished in time", "kills": kills,
                              "pending": [d.ep for d in devices if d.pending]}))
            sys.exit(2)
        for key, _ in sel.select(timeout=0.02):
            d = key.data
            chunk = os.read(d.proc.stdout.fileno(), 65536)
            if not chunk:
                sys.exit(f"device {d.ep} ended")
            d.buf += chunk
            while b"\n" in d.buf:
                line, d.buf = d.buf.split(b"\n", 1)
                was = d.pending
                d.on_event(json.loads(line))
                acked_ops += was and not d.pending
                if next_kill is None and acked_ops > acked_at_start:
                    next_kill = time.monotonic() + rng.uniform(0, 0.4)
        for d in devices:
            if not d.pending and d.ops > 0:
                d.send("deregister" if d.acked and rng.random() < 0.5 else "register")
        if next_kill is not None and (time.monotonic() >= next_kill or acked_ops - acked_at_start >= kill_after):
            kill(listen)
            kills += 1
            time.sleep(rng.uniform(0, 0.2))
            listen = start_listen()
            next_kill = None
            acked_at_start = acked_ops
            kill_after = rng.randint(1, 8)
    # from the files alone
    kill(listen)
    kills += 1
    listen = start_listen()
    c = socket.socket(socket.AF_UNIX)
    c.connect(sock_path)
    c.settimeout(20)
    c.sendall(b'{"op":"list"}\n')
    reply = json.loads(c.makefile().readline())
    c.close()
finally:
    for d in devices:
        d.proc.kill()
        d.proc.wait()
    listen.terminate()
    listen.wait()

restored = {r["ep"]: r["reg"] for r in reply["registrations"]}
expected = {d.ep: d.acked for d in devices if d.acked}
failures = [f for d in devices for f in d.failures]
ok = restored == expected and not failures
print(json.dumps({"ok": ok, "kills": kills, "acked_ops": acked_ops, "expected": expected,
                  "restored": restored, "failures": failures}, sort_keys=True))
sys.exit(0 if ok else 1)
