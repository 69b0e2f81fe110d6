#!/usr/bin/env python3
"""A stand-in for the AWS IoT HTTPS endpoints (data plane UpdateThingShadow / GetThingShadow,
control plane CreateThing) that checks every request the way AWS would: SigV4 recomputed with
botocore's signer and compared, or an X.509 client certificate required by TLS. Every request
is logged as a JSON line. A plan file ({"thing": [429, 500, "close", ...]}) makes the next
requests for a thing fail in that order; then they succeed.

  aws_capture.py --port P --log FILE [--plan FILE] [--access-key AK --secret-key SK]
                 [--tls CERT KEY [--client-ca CA]] [--ready FILE]
"""
import argparse
import json
import os
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from awssig import botocore_sign  # noqa: E402

ERRORS = {
    400: ("InvalidRequestException", "Invalid JSON"),
    404: ("ResourceNotFoundException", "No shadow exists with name: '{name}'"),
    409: ("ConflictException", "Version conflict"),
    413: ("RequestEntityTooLargeException", "The payload exceeds the maximum size allowed"),
    429: ("ThrottlingException", "Rate exceeded"),
    500: ("InternalFailureException", "Internal service failure"),
    503: ("ServiceUnavailableException", "Service unavailable"),
}
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")

lock = threading.Lock()
state = {"n": 0, "versions": {}, "plan_used": {}}


def planned(args, thing):
    """The next planned failure for thing, or None."""
    if not args.plan or not os.path.exists(args.plan):
        return None
    with open(args.plan) as f:
        plan = json.load(f)
    steps = plan.get(thing, [])
    used = state["plan_used"].get(thing, 0)
    if used < len(steps):
        state["plan_used"][thing] = used + 1
        return steps[used]
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("aws_capture: " + (fmt % a) + "\n")

    def reply(self, status, body, error_type=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type + ":http://internal.amazon.com/coral/")
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, **fmt):
        etype, msg = ERRORS.get(status, ("UnknownException", "HTTP %d" % status))
        body = {"message": msg.format(**fmt)}
        if status in (400, 404, 409, 413):
            body = {"code": status, "message": body["message"], "timestamp": int(time.time())}
        self.reply(status, body, etype)

    def check_sigv4(self, body, service):
        """'ok', or why not."""
        auth = self.headers.get("Authorization")
        if not auth:
            return "missing"
        m = AUTH_RE.match(auth)
        if not m:
            return "malformed"
        key, _, region, svc, signed, _ = m.groups()
        if key != self.server.args.access_key:
            return "unknown-key"
        if svc != service:
            return f"service {svc}, expected {service}"
        amz_date = self.headers.get("X-Amz-Date", "")
        headers = {}
        for h in signed.split(";"):
            if h not in ("x-amz-date", "x-amz-security-token"):
                headers[h] = self.headers.get(h, "")
        scheme = "https" if self.server.args.tls else "http"
        url = f"{scheme}://{self.headers.get('Host')}{self.path}"
        want, _, _ = botocore_sign(self.command, url, headers, body, key, self.server.args.secret_key,
                                   self.headers.get("X-Amz-Security-Token"), region, service, amz_date)
        return "ok" if want == auth else "bad-signature"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        raw_path, _, query = self.path.partition("?")
        m = re.match(r"^/things/([^/]+)(/shadow)?$", raw_path)
        thing = unquote(m.group(1)) if m else None
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        shadow = unquote(params["name"]) if "name" in params else None
        op = None
        if m and m.group(2) and self.command == "POST":
            op, service = "UpdateThingShadow", "iotdata"
        elif m and m.group(2) and self.command == "GET":
            op, service = "GetThingShadow", "iotdata"
        elif m and self.command == "POST":
            op, service = "CreateThing", "iot"
        auth = "none"
        if self.server.args.client_ca:
            auth = "x509"
        elif op:
            auth = self.check_sigv4(body, service)
        with lock:
            state["n"] += 1
            rec = {"n": state["n"], "conn": "%s:%d" % self.client_address, "method": self.command,
                   "path": raw_path, "query": query, "op": op, "thing": thing, "shadow": shadow,
                   "auth": auth, "body": body.decode("utf-8", "replace")}
            step = planned(self.server.args, thing) if op and auth in ("ok", "x509") else None
            rec["answer"] = step if step is not None else 200
            with open(self.server.args.log, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if op is None:
            return self.reply(404, {"message": "no such operation"}, "UnknownOperationException")
        if auth == "unknown-key":
            return self.reply(403, {"message": "The security token included in the request is invalid."},
                              "UnrecognizedClientException")
        if auth not in ("ok", "x509"):
            return self.reply(403, {"message": "The request signature we calculated does not match the "
                                    "signature you provided. (%s)" % auth}, "InvalidSignatureException")
        if step == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if step is not None:
            return self.error(int(step), name=shadow or "")
        if op == "CreateThing":
            return self.reply(200, {"thingName": thing, "thingArn": "arn:aws:iot:test:0:thing/" + thing,
                                    "thingId": "0"})
        key = f"{thing}/{shadow or ''}"
        if op == "GetThingShadow":
            with lock:
                v = state["versions"].get(key)
            if v is None:
                return self.error(404, name=shadow or "Classic")
            return self.reply(200, {"state": {}, "version": v, "timestamp": int(time.time())})
        try:
            doc = json.loads(body)
            assert isinstance(doc, dict) and isinstance(doc.get("state"), dict)
        except (ValueError, AssertionError):
            return self.error(400)
        with lock:
            v = state["versions"].get(key, 0) + 1
            state["versions"][key] = v
        now = int(time.time())
        out = {"state": doc["state"], "metadata": {}, "version": v, "timestamp": now}
        if "clientToken" in doc:
            out["clientToken"] = doc["clientToken"]
        return self.reply(200, out)

    do_GET = do_POST = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--plan")
    ap.add_argument("--access-key", default="AKIDEXAMPLE")
    ap.add_argument("--secret-key", default="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--client-ca")
    ap.add_argument("--ready")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.args = args
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*args.tls)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if args.ready:
        open(args.ready, "w").close()
    srv.serve_forever()


if __name__ == "__main__":
    main()
