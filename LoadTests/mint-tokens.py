#!/usr/bin/env python3
"""Mints N buyer tokens (JWT HS256, users u0..u{N-1}) for load tests, one per line.

usage: mint-tokens.py SECRET N > tokens.txt
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    secret, count = sys.argv[1].encode(), int(sys.argv[2])
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    expires = int(time.time()) + 4 * 3600
    out = sys.stdout
    for n in range(count):
        payload = b64(json.dumps({"sub": f"u{n}", "exp": expires}, separators=(",", ":")).encode())
        signature = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        out.write(f"{header}.{payload}.{signature}\n")


if __name__ == "__main__":
    main()
