#!/usr/bin/env python3
"""Crash loop (issue 7): N times, start the real flashsaled on ONE data directory, run a burst
of mixed claims (orders, payments, cancels, group opens and joins, coupon claims), SIGKILL it
at a random instant, restart it, and check every acknowledgement ever given (across all
rounds) and the invariants:

  - every acknowledged order is there with at least its acknowledged status
    (paid -> paid|formed; a late payment may move pending or canceled on to paid or refund_pending);
  - every acknowledged coupon is still its owner's and usable once (sampled);
  - per item: total = available + reserved + sold, sold <= total, and sold never passes the
    stock put on sale; no group has more members than its size; coupons_claimed <= batch total.

Prints `N passed, M failed` on its own last line; exit status 1 if any round failed.
Standard library only.

usage: crash-loop.py [N] [--binary PATH] [--seed S] [--keep]
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from flashsale_client import bearer_token, free_port

USER_SECRET = "crash-user-secret"
PAY_SECRET = "crash-pay-secret"
K1_STOCK = 400
COUPON_TOTAL = 500
GROUP_SIZE = 3
CONFIG = f"""
secrets:
  user_token: {USER_SECRET}
  payment: {PAY_SECRET}
  ops: crash-ops-secret
rate_limit:
  per_ip:
    rate: 1000000
    burst: 1000000
admission:
  max_inflight: 100000
payment:
  window: 15m
group:
  window: 1h
events:
  - id: crash
    kind: seckill
    starts_at: now-1m
    ends_at: now+1h
    items:
      - {{ sku: K1, name: Crash item, price: 500, stock: {K1_STOCK}, limit_per_user: 1 }}
      - {{ sku: K2, name: Coupon check item, price: 500, stock: 100000, limit_per_user: 1 }}
  - id: crashg
    kind: groupbuy
    starts_at: now-1m
    ends_at: now+1h
    items:
      - {{ sku: G1, name: Group item, price: 900, group_price: 600, group_size: {GROUP_SIZE}, stock: 3000, limit_per_user: 1 }}
coupons:
  - id: crashc
    total: {COUPON_TOTAL}
    value: 100
    min_spend: 0
    per_user: 1
    per_ip: 1000000
    starts_at: now-1m
    ends_at: now+1h
    valid_for: 1h
"""

RANK = {"pending": 0, "paid": 1, "formed": 2}
# A payment that arrives after a cancel makes the order paid again, or refund_pending when the
# stock is gone (§3.7), so a canceled order can move on too; a paid one never goes back.
ALLOWED = {
    "pending": {"pending", "paid", "formed", "canceled", "refund_pending"},
    "paid": {"paid", "formed"},
    "formed": {"formed"},
    "canceled": {"canceled", "paid", "formed", "refund_pending"},
    "refund_pending": {"refund_pending"},
}


def token(user: str) -> str:
    return bearer_token(USER_SECRET, user, 3600)


class Ledger:
    """Every acknowledgement the daemon gave, over all rounds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.orders = {}  # id -> {"user", "status", "amount"}
        self.coupons = {}  # code -> user
        self.groups = set()


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method, path, user=None, body=None, headers=None):
        hdrs = dict(headers or {})
        if user:
            hdrs["Authorization"] = token(user)
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.conn.request(method, path, body=raw, headers=hdrs)
        response = self.conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data) if data else {}
        except ValueError:
            return response.status, {}

    def pay(self, order, amount, transaction):
        body = json.dumps({"order": order, "transaction": transaction, "amount": amount}).encode()
        ts, nonce = str(int(time.time())), uuid.uuid4().hex
        sig = hmac.new(PAY_SECRET.encode(), ts.encode() + b"\n" + nonce.encode() + b"\n" + body, hashlib.sha256).hexdigest()
        return self.call("POST", "/v1/payments/notify", body=body,
                         headers={"X-Pay-Timestamp": ts, "X-Pay-Nonce": nonce, "X-Pay-Signature": sig})


class Daemon:
    def __init__(self, binary, directory):
        self.port, self.directory = free_port(), directory
        self.log = open(os.path.join(directory, "stderr.log"), "ab")
        self.process = subprocess.Popen(
            [binary, "serve", "--config", os.path.join(directory, "flashsale.yaml"), "--data", os.path.join(directory, "data"),
             "--http", f"127.0.0.1:{self.port}", "--ops", f"127.0.0.1:{free_port()}"],
            stdout=subprocess.DEVNULL, stderr=self.log)

    def wait_ready(self):
        for _ in range(600):
            try:
                if Client(self.port).call("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}")
            time.sleep(0.05)
        raise RuntimeError("daemon not ready in 30 s")

    def kill(self, sig=signal.SIGKILL):
        self.process.send_signal(sig)
        self.process.wait()
        self.log.close()


def worker(port, ledger, round_no, worker_no, rng_seed, stop):
    rng = random.Random(rng_seed)
    client = Client(port)
    n = 0
    while not stop.is_set():
        n += 1
        user = f"r{round_no}w{worker_no}n{n}"
        action = rng.random()
        try:
            if action < 0.35:
                status, body = client.call("POST", "/v1/events/crash/orders", user, {"sku": "K1", "qty": 1})
                if status == 201:
                    with ledger.lock:
                        ledger.orders[body["order"]] = {"user": user, "status": "pending", "amount": body["amount"]}
            elif action < 0.55:
                with ledger.lock:
                    pending = [(k, v) for k, v in ledger.orders.items() if v["status"] == "pending"]
                if pending:
                    order, info = rng.choice(pending)
                    status, body = client.pay(order, info["amount"], f"t-{order}")
                    if status == 200 and body.get("status") in ("paid", "formed") and not body.get("late"):
                        with ledger.lock:
                            if RANK.get(body["status"], -1) > RANK.get(ledger.orders[order]["status"], 9):
                                ledger.orders[order]["status"] = body["status"]
            elif action < 0.62:
                with ledger.lock:
                    pending = [(k, v) for k, v in ledger.orders.items() if v["status"] == "pending"]
                if pending:
                    order, info = rng.choice(pending)
                    status, body = client.call("POST", f"/v1/orders/{order}/cancel", info["user"])
                    if status == 200:
                        with ledger.lock:
                            ledger.orders[order]["status"] = "canceled"
            elif action < 0.72:
                status, body = client.call("POST", "/v1/events/crashg/groups", user, {"sku": "G1"})
                if status == 201:
                    with ledger.lock:
                        ledger.groups.add(body["group"])
                        ledger.orders[body["order"]] = {"user": user, "status": "pending", "amount": None}
            elif action < 0.87:
                with ledger.lock:
                    groups = list(ledger.groups)
                if groups:
                    status, body = client.call("POST", f"/v1/groups/{rng.choice(groups)}/join", user)
                    if status == 201:
                        with ledger.lock:
                            ledger.orders[body["order"]] = {"user": user, "status": "pending", "amount": None}
            else:
                status, body = client.call("POST", "/v1/coupons/crashc/claims", user)
                if status == 201:
                    with ledger.lock:
                        ledger.coupons[body["coupon"]] = user
        except (OSError, http.client.HTTPException):
            return  # the daemon died: this worker's burst is over


def fill_group_amounts(client, ledger):
    # Group orders' amounts come from GET (the open/join answer may not carry one).
    for order, info in list(ledger.orders.items()):
        if info["amount"] is None:
            status, body = client.call("GET", f"/v1/orders/{order}", info["user"])
            if status == 200:
                info["amount"] = body["amount"]


def check(port, ledger, rng):
    """Every acknowledgement and invariant; returns a list of problems."""
    problems = []
    client = Client(port)
    with ledger.lock:
        orders = dict(ledger.orders)
        coupons = dict(ledger.coupons)
        groups = list(ledger.groups)
    for order, info in orders.items():
        status, body = client.call("GET", f"/v1/orders/{order}", info["user"])
        if status != 200:
            problems.append(f"acknowledged order {order} ({info['status']}) lost: {status} {body}")
        elif body["status"] not in ALLOWED[info["status"]]:
            problems.append(f"order {order} acknowledged {info['status']}, now {body['status']}")
        else:
            ledger.orders[order]["status"] = body["status"]
            if info["amount"] is None:
                ledger.orders[order]["amount"] = body["amount"]
    for event in ("crash", "crashg"):
        status, body = client.call("GET", f"/v1/events/{event}")
        for item in body.get("items", []):
            total, available, reserved, sold = item["total"], item["available"], item["reserved"], item["sold"]
            if total != available + reserved + sold or min(available, reserved, sold) < 0:
                problems.append(f"{event}/{item['sku']}: total {total} != {available}+{reserved}+{sold}")
            if sold > total:
                problems.append(f"{event}/{item['sku']}: oversold {sold} > {total}")
            if item["sku"] == "K1" and total != K1_STOCK:
                problems.append(f"K1 total {total} != stock {K1_STOCK}")
    paid_k1 = sum(1 for o in ledger.orders.values() if o["status"] == "paid" and o["amount"] == 500)
    status, body = client.call("GET", "/v1/events/crash")
    k1 = next((i for i in body.get("items", []) if i["sku"] == "K1"), None)
    if k1 and k1["sold"] < paid_k1:
        problems.append(f"K1 sold {k1['sold']} < acknowledged paid {paid_k1}")
    for group in groups:
        status, body = client.call("GET", f"/v1/groups/{group}", "viewer")
        if status != 200:
            problems.append(f"acknowledged group {group} lost: {status}")
        elif body["members"] > body["size"]:
            problems.append(f"group {group} has {body['members']} members > size {body['size']}")
    if len(coupons) > COUPON_TOTAL:
        problems.append(f"{len(coupons)} coupons acknowledged > total {COUPON_TOTAL}")
    # A sample of acknowledged coupons must still be usable by their owner (and are then spent).
    for code in rng.sample(sorted(coupons), min(5, len(coupons))):
        user = coupons.pop(code)
        with ledger.lock:
            ledger.coupons.pop(code, None)
        status, body = client.call("POST", "/v1/events/crash/orders", user, {"sku": "K2", "qty": 1, "coupon": code})
        if status != 201:
            problems.append(f"acknowledged coupon {code} of {user} not usable: {status} {body}")
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", ".build", "debug", "flashsaled"))
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"crash-loop: {args.rounds} rounds, seed {args.seed}, binary {args.binary}", flush=True)
    directory = tempfile.mkdtemp(prefix="flashsale-crash-loop-")
    with open(os.path.join(directory, "flashsale.yaml"), "w") as f:
        f.write(CONFIG)
    ledger = Ledger()
    passed = failed = 0
    try:
        for round_no in range(args.rounds):
            daemon = Daemon(args.binary, directory)
            try:
                daemon.wait_ready()
            except RuntimeError as error:
                # The data directory no longer starts: every later round would fail the same way.
                failed += args.rounds - round_no
                print(f"round {round_no}: FAILED (daemon does not start: {error}); stopping", flush=True)
                break
            stop = threading.Event()
            threads = [threading.Thread(target=worker, args=(daemon.port, ledger, round_no, w, rng.random(), stop))
                       for w in range(args.workers)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 1.5))
            daemon.kill(signal.SIGKILL)
            stop.set()
            for t in threads:
                t.join()
            daemon = Daemon(args.binary, directory)
            try:
                daemon.wait_ready()
                problems = check(daemon.port, ledger, rng)
            except Exception as error:  # a restart that fails is a failed round
                problems = [f"restart failed: {error!r}"]
            daemon.kill(signal.SIGTERM)
            acked = len(ledger.orders)
            if problems:
                failed += 1
                print(f"round {round_no}: FAILED ({len(problems)} problems, {acked} orders acknowledged so far)", flush=True)
                for p in problems[:20]:
                    print(f"  {p}", flush=True)
            else:
                passed += 1
                print(f"round {round_no}: ok ({acked} orders, {len(ledger.coupons)} coupons, {len(ledger.groups)} groups acknowledged so far)", flush=True)
    finally:
        if args.keep or failed:
            print(f"data directory kept: {directory}", flush=True)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"stderr of every daemon: {os.path.join(directory, 'stderr.log')}" if failed else "", flush=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
