"""What the Python load tools (crash-loop.py, soak.py) share: buyer tokens as the daemon
checks them (JWT HS256, claim `sub`, required `exp`) and a free loopback port. Standard library only."""
import base64
import hashlib
import hmac
import json
import socket
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer_token(secret: str, user: str, ttl_seconds: int) -> str:
    """`Bearer <JWT>` for `user`, signed with `secret`, valid for `ttl_seconds`."""
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64(json.dumps({"sub": user, "exp": int(time.time()) + ttl_seconds}, separators=(",", ":")).encode())
    signature = b64(hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"Bearer {header}.{payload}.{signature}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
