#!/usr/bin/env python3
"""Soak (issue 11): a release flashsaled under a steady load that makes many small commits, for
MINUTES minutes, with figures every interval, then SIGTERM and a check that it exits 0.

The load is one buyer connection at a time, one request after another (so each order is its
own journal commit): an order from a pool of buyers, then for a share of them a signed payment
notification, for another share a cancel; the rest expire after the soak config's 2 s payment
window (the expiry sweeps commit too). The buyer pool is bounded and `limit_per_user` is high,
so per-buyer tables stop growing after the first seconds: what still grows is the order table
(every order stays in memory for the daemon's life; docs/PERFORMANCE.md gives its bytes per
order).

Each interval prints: orders/s, journal commits/s, server CPU µs per order (utime + stime of
the daemon from /proc/PID/stat), context switches per order (/proc/PID/task/*/status), RSS,
open file descriptors, the journal commit p99 (from the /metrics histogram's bucket deltas)
and the orders the daemon holds. At the end it compares the first and last interval, sends
SIGTERM and waits for the exit status.

Exit status 0 when CPU per order of the last interval is within ±20% of the first, the
daemon exited 0, descriptors did not leak, and RSS grew by no more than the order table
explains (bytes per order held, second half at most twice the first half's + 64 B: tables
grow by doubling); 1 otherwise.

usage: soak.py [MINUTES] [--binary PATH] [--interval SECONDS] [--pay SHARE] [--cancel SHARE]
Standard library only.
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
import socket
import subprocess
import sys
import tempfile
import threading
import time

from flashsale_client import bearer_token, free_port

USER_SECRET = "soak-user-secret"
PAY_SECRET = "soak-payment-secret"
BUYERS = 10_000
CONFIG = """
secrets:
  user_token: soak-user-secret
  payment: soak-payment-secret
  ops: soak-ops-password
rate_limit:
  per_ip:
    rate: 1000000
    burst: 1000000
admission:
  max_inflight: 100000
payment:
  window: 2s
journal:
  synchronous: full
  checkpoint_interval: 30s
events:
  - id: soak
    kind: seckill
    starts_at: now-1m
    ends_at: now+30d
    items:
      - { sku: S1, name: Soak item, price: 990, stock: 100000000, limit_per_user: 100000 }
"""


def token(user: str) -> str:
    return bearer_token(USER_SECRET, user, 30 * 86400)


class Driver(threading.Thread):
    """One keep-alive connection, one request at a time, until `stop` is set."""

    def __init__(self, port: int, pay: float, cancel: float, seed: int):
        super().__init__(daemon=True)
        self.port, self.pay, self.cancel = port, pay, cancel
        self.random = random.Random(seed)
        self.tokens = [token(f"s{n}") for n in range(BUYERS)]
        self.stop = threading.Event()
        self.counts = {"orders": 0, "paid": 0, "canceled": 0, "errors": 0}
        self.error = None

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                auth = self.tokens[n % BUYERS]
                status, body = self.post(connection, "/v1/events/soak/orders", '{"sku":"S1","qty":1}', {"Authorization": auth})
                if status != 201 and status != 200:
                    self.counts["errors"] += 1
                    if self.counts["errors"] > 100:
                        raise RuntimeError(f"order answered {status}: {body[:200]}")
                    continue
                order = json.loads(body)
                self.counts["orders"] += 1
                roll = self.random.random()
                if roll < self.pay:
                    pay_body = json.dumps({"order": order["order"], "transaction": f"t-{order['order']}", "amount": order["amount"]}, separators=(",", ":"))
                    ts, nonce = str(int(time.time())), os.urandom(8).hex()
                    signature = hmac.new(PAY_SECRET.encode(), f"{ts}\n{nonce}\n{pay_body}".encode(), hashlib.sha256).hexdigest()
                    status, body = self.post(connection, "/v1/payments/notify", pay_body,
                                             {"X-Pay-Timestamp": ts, "X-Pay-Nonce": nonce, "X-Pay-Signature": signature})
                    if status == 200:
                        self.counts["paid"] += 1
                    else:
                        self.counts["errors"] += 1
                elif roll < self.pay + self.cancel:
                    status, body = self.post(connection, f"/v1/orders/{order['order']}/cancel", "", {"Authorization": auth})
                    if status == 200:
                        self.counts["canceled"] += 1
                    else:
                        self.counts["errors"] += 1
        except Exception as error:  # reported by the monitor
            self.error = error

    @staticmethod
    def post(connection, path, body, headers):
        headers = dict(headers)
        headers["Content-Type"] = "application/json"
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def proc_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_ctxt(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def scrape(port: int):
    """(commit histogram buckets {le: count}, commit count) from /metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    buckets, count = {}, 0
    for line in text.splitlines():
        if line.startswith("flashsale_journal_commit_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("flashsale_journal_commit_seconds_count"):
            count = int(float(line.rsplit(" ", 1)[1]))
    return buckets, count


def p99(before: dict, after: dict) -> float:
    """The upper bound of the bucket holding the 99th percentile of the commits in between."""
    deltas = sorted((le, after[le] - before.get(le, 0)) for le in after)
    total = deltas[-1][1] if deltas else 0
    if total <= 0:
        return 0.0
    for le, cumulative in deltas:
        if cumulative >= 0.99 * total:
            return le
    return float("inf")


def ops_stats(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"STATS\n")
        data = b""
        while not data.endswith(b"END\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    stats = {}
    for line in data.decode().splitlines():
        if line.startswith("stat "):
            key, value = line[5:].split("=", 1)
            stats[key] = int(value)
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("minutes", nargs="?", type=float, default=30)
    parser.add_argument("--binary", default=".build/release/flashsaled")
    parser.add_argument("--interval", type=float, default=60, help="seconds between figures (default 60)")
    parser.add_argument("--pay", type=float, default=0.3, help="share of orders paid (default 0.3)")
    parser.add_argument("--cancel", type=float, default=0.1, help="share of orders canceled (default 0.1)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="flashsale-soak.")
    config = os.path.join(work, "soak.yaml")
    with open(config, "w") as f:
        f.write(CONFIG)
    http_port, ops_port = free_port(), free_port()
    log = open(os.path.join(work, "flashsaled.log"), "w")
    daemon = subprocess.Popen(
        [args.binary, "serve", "--config", config, "--data", os.path.join(work, "data"),
         "--http", f"127.0.0.1:{http_port}", "--ops", f"127.0.0.1:{ops_port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    pid = daemon.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or daemon.poll() is not None:
                print(f"soak: flashsaled did not become ready (log: {log.name})", file=sys.stderr)
                return 1
            time.sleep(0.1)

        driver = Driver(http_port, args.pay, args.cancel, args.seed)
        hz = os.sysconf("SC_CLK_TCK")
        rows = []
        print(f"soak: {args.minutes:g} min, figures every {args.interval:g} s, pid {pid}, data {work}", flush=True)
        print(f"{'min':>6} {'orders/s':>9} {'commits/s':>9} {'cpu µs/order':>12} {'ctxsw/order':>11} "
              f"{'rss MiB':>8} {'fds':>5} {'commit p99 ms':>13} {'orders held':>11}", flush=True)
        stats = ops_stats(ops_port)
        buckets, commits = scrape(http_port)
        previous = (time.monotonic(), proc_cpu_ticks(pid), proc_ctxt(pid), stats.get("orders_created", 0), commits, buckets)
        driver.start()
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end - 1:
            time.sleep(max(0.0, min(args.interval, end - time.monotonic())))
            if driver.error is not None:
                print(f"soak: driver failed: {driver.error}", file=sys.stderr)
                return 1
            now, ticks, ctxt = time.monotonic(), proc_cpu_ticks(pid), proc_ctxt(pid)
            stats = ops_stats(ops_port)
            buckets, commits = scrape(http_port)
            t0, ticks0, ctxt0, orders0, commits0, buckets0 = previous
            orders = stats.get("orders_created", 0) - orders0
            seconds = now - t0
            row = {
                "minute": (now - (end - args.minutes * 60)) / 60,
                "orders_per_s": orders / seconds,
                "commits_per_s": (commits - commits0) / seconds,
                "cpu_us_per_order": (ticks - ticks0) / hz * 1e6 / max(orders, 1),
                "ctxsw_per_order": (ctxt - ctxt0) / max(orders, 1),
                "rss_mib": proc_rss_kib(pid) / 1024,
                "fds": proc_fds(pid),
                "commit_p99_ms": p99(buckets0, buckets) * 1000,
                "orders_held": stats.get("orders_created", 0),
            }
            rows.append(row)
            print(f"{row['minute']:6.1f} {row['orders_per_s']:9.0f} {row['commits_per_s']:9.0f} {row['cpu_us_per_order']:12.1f} "
                  f"{row['ctxsw_per_order']:11.2f} {row['rss_mib']:8.1f} {row['fds']:5d} {row['commit_p99_ms']:13.2f} "
                  f"{row['orders_held']:11d}", flush=True)
            previous = (now, ticks, ctxt, stats.get("orders_created", 0), commits, buckets)
        driver.stop.set()
        driver.join(timeout=60)
        final = ops_stats(ops_port)
        _, total_commits = scrape(http_port)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            status = daemon.wait(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            status = "hung (killed)"
        log.close()

    print(f"soak: driver sent {driver.counts['orders']} orders, {driver.counts['paid']} paid, "
          f"{driver.counts['canceled']} canceled, {driver.counts['errors']} errors")
    print(f"soak: daemon stats orders_created={final.get('orders_created')} orders_paid={final.get('orders_paid')} "
          f"orders_expired={final.get('orders_expired')} orders_canceled={final.get('orders_canceled')}; "
          f"journal commits {total_commits}")
    failures = []
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        cpu_change = last["cpu_us_per_order"] / first["cpu_us_per_order"] - 1
        print(f"soak: cpu µs/order first {first['cpu_us_per_order']:.1f}, last {last['cpu_us_per_order']:.1f} ({cpu_change:+.0%})")
        if abs(cpu_change) > 0.20:
            failures.append(f"CPU per order changed {cpu_change:+.0%} (limit ±20%)")
        half = len(rows) // 2
        a, b, c = rows[0], rows[half], rows[-1]

        def per_order(x, y):
            return (y["rss_mib"] - x["rss_mib"]) * 1024 * 1024 / max(y["orders_held"] - x["orders_held"], 1)

        first_half, second_half = per_order(a, b), per_order(b, c)
        print(f"soak: rss {a['rss_mib']:.1f} → {c['rss_mib']:.1f} MiB; growth per order held: first half {first_half:.0f} B, "
              f"second half {second_half:.0f} B; fds {a['fds']} → {c['fds']}")
        # Tables grow by doubling, so one half may take a jump the other did not: only a
        # growth per order more than twice the first half's points at something besides them.
        if second_half > 2 * max(first_half, 0) + 64:
            failures.append(f"RSS per order grew from {first_half:.0f} B to {second_half:.0f} B (more than the order table)")
        if c["fds"] > a["fds"] + 16:
            failures.append(f"open descriptors grew from {a['fds']} to {c['fds']}")
    print(f"soak: flashsaled exit status after SIGTERM: {status}")
    if status != 0:
        failures.append(f"exit status {status} after SIGTERM (log: {work}/flashsaled.log)")
    for failure in failures:
        print(f"soak: FAIL {failure}")
    if not failures:
        print("soak: PASS")
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
