#!/usr/bin/env python3
"""The /get side of the AWS IoT Device Shadow service on a test MQTT broker: a request on
$aws/things/<thing>/shadow[/name/<shadow>]/get is answered on .../get/accepted with the
document in DOCS/<thing>.json (DOCS/<thing>.<shadow>.json), or on .../get/rejected with AWS's
404 when there is none. It subscribes as client "shadow-service"
with a persistent session, so that a broker with persistence keeps the requests made while it
reconnects after a restart. MQTT through mosquitto_sub and mosquitto_pub, which end with us.

  aws_shadow_get.py DOCS <mosquitto_sub/pub connection options...>
"""
import ctypes
import os
import signal
import subprocess
import sys


def die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main():
    docs, conn = sys.argv[1], sys.argv[2:]
    sub = subprocess.Popen(["mosquitto_sub", *conn, "-i", "shadow-service", "-c", "-q", "1", "-v", "-t", "$aws/things/+/shadow/get",
                            "-t", "$aws/things/+/shadow/name/+/get"],
                           stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    signal.signal(signal.SIGTERM, lambda *_: (sub.terminate(), sys.exit(0)))
    for line in sub.stdout:
        topic = line.split(" ", 1)[0].strip()
        parts = topic.split("/")  # $aws things T shadow [name N] get
        if len(parts) < 5:
            continue
        thing = parts[2]
        shadow = parts[5] if len(parts) == 7 else None
        path = os.path.join(docs, f"{thing}.{shadow}.json" if shadow else f"{thing}.json")
        if os.path.exists(path):
            args = ["-t", topic + "/accepted", "-f", path]
        else:
            msg = '{"code":404,"message":"No shadow exists with name: \'%s\'"}' % (shadow or "Classic")
            args = ["-t", topic + "/rejected", "-m", msg]
        subprocess.run(["mosquitto_pub", *conn, *args], check=False, preexec_fn=die_with_parent)
        print("answered", topic, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
