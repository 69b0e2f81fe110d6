#!/usr/bin/env python3
"""Sign the same requests with lib/aws_sigv4 (through the unit program, JSON lines on its stdin)
and with botocore's SigV4Auth; print every difference and exit 1 if there is one."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from botocore.utils import percent_encode  # noqa: E402
from awssig import botocore_sign  # noqa: E402

AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
T = 1763850000  # 2025-11-22T22:20:00Z
IMEI = "urn:imei:352656100000000"
DATA = "data-ats.iot.eu-west-1.amazonaws.com"
JSON = [["Content-Type", "application/json"]]


def case(name, method, host, segments, params=(), headers=(), body="", service="iotdata",
         region="eu-west-1", token=None, time=T, path=None):
    c = dict(name=name, method=method, host=host, params=[list(p) for p in params],
             headers=[list(h) for h in headers], body=body, service=service, region=region,
             access_key=AK, secret_key=SK, time=time)
    if path is not None:
        c["path"] = path
    else:
        c["segments"] = segments
    if token:
        c["token"] = token
    return c


CASES = [
    case("update-imei", "POST", DATA, ["things", IMEI, "shadow"], headers=JSON,
         body='{"state":{"reported":{"3303":{"0":{"5700":21.5}}}}}'),
    case("update-imei-named", "POST", DATA, ["things", IMEI, "shadow"], params=[("name", "temp:1")],
         headers=JSON, body='{"state":{"desired":{"3311":{"0":{"5850":true}}}}}'),
    case("get-named-odd", "GET", DATA, ["things", "dev 1/é", "shadow"],
         params=[("name", "a b&c=d+e/f")]),
    case("update-session-token", "POST", DATA, ["things", "dev1", "shadow"], headers=JSON, body="{}",
         token="FwoGZXIvYXdzEB0aDExampleSessionToken/+=="),
    case("create-thing", "POST", "iot.eu-west-1.amazonaws.com", ["things", IMEI], headers=JSON,
         body="{}", service="iot"),
    case("kms-encrypt", "POST", "kms.us-east-1.amazonaws.com", [], region="us-east-1", service="kms",
         headers=[["Content-Type", "application/x-amz-json-1.1"], ["X-Amz-Target", "TrentService.Encrypt"]],
         body='{"KeyId":"alias/parts","Plaintext":"AAECAwQFBgcICQoLDA0ODw=="}'),
    case("loopback-port", "POST", "127.0.0.1:8443", ["things", IMEI, "shadow"], params=[("name", "x")],
         headers=JSON, body="{}"),
    case("percent-in-name", "POST", DATA, ["things", "100%", "shadow"], headers=JSON, body="{}"),
    case("params-sorted", "GET", DATA, ["things"], params=[("b", "2"), ("a", "z"), ("a", "y"), ("A", "1"),
                                                           ("nextToken", "ab/cd==")]),
    case("header-spaces", "POST", DATA, ["things", "d", "shadow"],
         headers=[["Content-Type", "  application/json   ;  charset=utf-8 "]], body="x"),
    case("big-payload", "POST", DATA, ["things", "d", "shadow"], headers=JSON,
         body='{"state":{"reported":{"s":"' + "x" * 65536 + '"}}}'),
    case("raw-path-dots", "GET", DATA, None, path="/things/./a//b/../c/"),
    case("other-date", "GET", DATA, ["things", IMEI, "shadow"], time=1440938160),
]


def main():
    prog = sys.argv[1]
    inp = "".join(json.dumps(c) + "\n" for c in CASES)
    out = subprocess.run([prog, "-"], input=inp.encode(), stdout=subprocess.PIPE, check=True).stdout
    ours = [json.loads(x) for x in out.decode().splitlines()]
    bad = 0
    if len(ours) != len(CASES):
        print(f"expected {len(CASES)} answers, got {len(ours)}")
        return 1
    for c, o in zip(CASES, ours):
        if "segments" in c:
            path = "".join("/" + percent_encode(s) for s in c["segments"]) or ""
        else:
            path = c["path"]
        scheme = "http" if c["host"].startswith("127.") else "https"
        url = f"{scheme}://{c['host']}{path}"
        auth, creq, query = botocore_sign(c["method"], url, c["headers"], c["body"].encode(), AK, SK,
                                          c.get("token"), c["region"], c["service"], o["amz_date"],
                                          params=c["params"])
        for what, want, got in (("path", path, o["path"]), ("query", query, o["query"]),
                                ("canonical request", creq, o["canonical_request"]),
                                ("authorization", auth, o["authorization"])):
            if want != got:
                bad += 1
                print(f"{c['name']}: {what} differs\n  botocore: {want!r}\n  ours:     {got!r}")
    print(f"{len(CASES)} requests compared with botocore, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
