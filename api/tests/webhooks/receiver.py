"""A webhook receiver for the tests: verifies every delivery with the PyPI
`standardwebhooks` package (an implementation independent of ours) and records
it as one JSON line in LOG.

usage: receiver.py PORT SECRETS_FILE CONTROL_FILE LOG

SECRETS_FILE holds the whsec_ secrets to verify with, one per line (re-read on
every request). CONTROL_FILE says how to answer: "200", "503", "410", or
"429 retry-after=30" (re-read on every request; default 200).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

PORT, SECRETS, CONTROL, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        errors = []
        for i, secret in enumerate(s for s in read(SECRETS).splitlines() if s):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(i)
            except Exception as e:  # noqa: BLE001 - any failure is "not verified"
                errors.append(f"{type(e).__name__}: {e}")
        control = (read(CONTROL, "200") or "200").split()
        status = int(control[0])
        record = {
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signatures": headers.get("webhook-signature", "").count("v1,"),
            "verified": verified,
            "errors": errors,
            "status": status,
            "body": json.loads(body) if body else None,
        }
        with open(LOG, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        for extra in control[1:]:
            if extra.startswith("retry-after="):
                self.send_header("Retry-After", extra.split("=", 1)[1])
        answer = b"thanks" if status < 300 else b"not now"
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
