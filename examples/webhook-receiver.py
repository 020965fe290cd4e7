#!/usr/bin/env python3
"""A FlashSale webhook receiver to copy: standard library only.

It checks each delivery's signature and timestamp, keeps each change once (by its id, across
restarts), and answers 200 only once the change is stored. Run it, then list its URL under
`webhooks.receivers` with the same secret:

    python3 examples/webhook-receiver.py --port 9000 --secret a-long-random-receiver-secret \
        --store ./received.ndjson

Every stored change is one JSON line in --store (here, fulfilment would pick it up).
"""

import argparse
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How far the sender's X-FlashSale-Timestamp may be from this machine's clock, seconds.
MAX_SKEW_SECONDS = 300
# Largest body accepted, bytes (a change is well under 4 KiB).
MAX_BODY_BYTES = 64 * 1024


class Store:
    """The changes kept so far: one JSON line each, and the set of their ids."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.seen = set()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as lines:
                for line in lines:
                    if line.strip():
                        self.seen.add(json.loads(line)["id"])

    def add(self, change_id, body):
        """Stores the change unless it is a repeat; True when it was new."""
        with self.lock:
            if change_id in self.seen:
                return False
            with open(self.path, "ab") as out:
                out.write(body.strip() + b"\n")
                out.flush()
                os.fsync(out.fileno())
            self.seen.add(change_id)
            return True


def expected_signature(secret, timestamp, change_id, body):
    """Lowercase hex HMAC-SHA256(secret, timestamp + "\\n" + id + "\\n" + body)."""
    message = timestamp.encode() + b"\n" + change_id.encode() + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def make_handler(secret, store):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                return self.answer(413, "too large")
            body = self.rfile.read(length)
            timestamp = self.headers.get("X-FlashSale-Timestamp", "")
            change_id = self.headers.get("X-FlashSale-Id", "")
            signature = self.headers.get("X-FlashSale-Signature", "")
            # The signature first, over the raw bytes, compared in constant time.
            if not hmac.compare_digest(signature, expected_signature(secret, timestamp, change_id, body)):
                return self.answer(401, "bad signature")
            if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
                return self.answer(401, "stale timestamp")
            change = json.loads(body)
            if str(change.get("id")) != change_id:
                return self.answer(400, "id header and body disagree")
            if store.add(change["id"], body):
                data = change.get("data", {})
                print(f"change {change['id']} {change['type']} {data.get('order') or data.get('group') or data.get('coupon')}",
                      flush=True)
            # A repeat is answered 200 too: the sender must stop resending it.
            return self.answer(200, "ok")

        def answer(self, status, text):
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler


def main():
    # Stop on SIGTERM and SIGINT even if the parent started us with them blocked.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    parser = argparse.ArgumentParser(description="Receive FlashSale webhooks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="the receiver's secret in the daemon's config")
    parser.add_argument("--store", default="received.ndjson", help="where the changes go, one JSON line each")
    options = parser.parse_args()
    server = ThreadingHTTPServer((options.host, options.port), make_handler(options.secret, Store(options.store)))
    print(f"listening on http://{options.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
