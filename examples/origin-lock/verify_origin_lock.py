#!/usr/bin/env python3
"""Verify Rampart's origin-lock headers in a Python backend (standard library only).

A backend behind the Rampart gateway should accept only requests that came through it. The
gateway adds `x-rampart-edge-id` and a signed `x-rampart-forwarded` record to every request;
`verify()` below checks them. The algorithm is documented in docs/gateway.md.

Run as a demo backend:  python3 verify_origin_lock.py --port 8080 --edge-id EDGE --key KID:BASE64URL_SECRET
It answers 200 with what the edge vouched for, or 403 with the reason.
"""
import base64
import hashlib
import hmac
import time


def verify(headers, method, path, edge_id, keys, max_age=30, now=None):
    """Return the forwarding record (dict) if the request came through the edge, else raise ValueError.

    headers: mapping with case-insensitive .get (e.g. http.server's); keys: {key_id: secret_bytes}.
    """
    if not hmac.compare_digest(headers.get("x-rampart-edge-id", "").encode(), edge_id.encode()):
        raise ValueError("wrong or missing edge id")
    fields = dict(part.split("=", 1) for part in headers.get("x-rampart-forwarded", "").split(";") if "=" in part)
    if fields.get("v") != "1" or fields.get("kid") not in keys:
        raise ValueError("missing record, unknown version or unknown key")
    lines = ["rampart-origin-lock-v1", edge_id, fields["kid"], fields["ts"], fields["client"], fields["rid"], method, path]
    digest = hmac.new(keys[fields["kid"]], "\n".join(lines).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), fields.get("sig", "")):
        raise ValueError("bad signature")
    if abs((now or time.time()) - int(fields["ts"])) > max_age:
        raise ValueError("stale record")
    return fields


def _serve(port, edge_id, keys):
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            try:
                record = verify(self.headers, self.command, self.path, edge_id, keys)
                status, body = 200, {"verified": True, "client": record["client"], "request_id": record["rid"]}
            except (ValueError, KeyError) as error:
                status, body = 403, {"verified": False, "reason": str(error)}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--edge-id", required=True)
    parser.add_argument("--key", action="append", required=True, help="KID:BASE64URL_SECRET, repeatable")
    arguments = parser.parse_args()
    accepted = {}
    for spec in arguments.key:
        kid, secret = spec.split(":", 1)
        accepted[kid] = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    _serve(arguments.port, arguments.edge_id, accepted)
