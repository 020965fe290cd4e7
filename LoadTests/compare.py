#!/usr/bin/env python3
"""compare.sh's measuring half (standard library only).

  compare.py measure RESULTS ROUND SERVER PID[,PID...] -- wrk ARGS...
      Samples the CPU time and context switches of the process tree of every PID (the PID and
      all its descendants, e.g. nginx's workers), runs the wrk command, samples again, prints
      one line and appends it as JSON to RESULTS. Exits with wrk's status if wrk fails.
  compare.py report RESULTS
      Prints the medians per server over the rounds and the ratios with their targets.

CPU: utime + stime (/proc/PID/stat fields 14, 15) of every process in the trees, plus cutime +
cstime (16, 17), so a process that exits and is reaped during the run is still counted (its time
moves to its parent's cutime); clock ticks, os.sysconf('SC_CLK_TCK'). Context switches:
voluntary + nonvoluntary over /proc/PID/task/*/status of every process in the trees. Both are
after minus before, divided by the requests wrk completed.
"""
import json
import os
import re
import statistics
import subprocess
import sys

SERVERS = {  # key: label, in the order compare.sh runs them
    "nginx": "nginx return 200",
    "lua": "nginx + Lua + Redis",
    "flashsaled": "flashsaled (journal on)",
    "journal-off": "flashsaled, journal off",
    "webhook": "flashsaled + 1 webhook receiver",
    "glibc": "flashsaled, glibc malloc",
}


def proc_stat(pid):
    """(ppid, utime + stime + cutime + cstime) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
    return int(fields[1]), sum(int(fields[n - 3]) for n in (14, 15, 16, 17))


def ctxt_switches(pid):
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass  # the thread exited meanwhile
    return total


def tree_sample(roots):
    """(CPU ticks, context switches) summed over roots and all their descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat:
                stats[int(entry)] = stat
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = set(), [pid for pid in roots if pid in stats]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, []))
    missing = [pid for pid in roots if pid not in stats]
    if missing:
        sys.exit(f"compare.py: server process {missing} is not running")
    return sum(stats[pid][1] for pid in tree), sum(ctxt_switches(pid) for pid in tree)


def parse_wrk(out):
    def number(pattern, default=None):
        match = re.search(pattern, out, re.MULTILINE)
        if match:
            return float(match.group(1))
        if default is None:
            sys.exit(f"compare.py: no {pattern!r} in wrk's output:\n{out}")
        return default
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": number(r"^Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"^\s*(\d+) requests in")),
        "non2xx": int(number(r"Non-2xx or 3xx responses: (\d+)", 0)),
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "p50_ms": number(r"^p50=([\d.]+)ms"),
        "p99_ms": number(r"p99=([\d.]+)ms"),
    }


def measure(results, round_no, server, pids, command):
    roots = [int(pid) for pid in pids.split(",")]
    hz = os.sysconf("SC_CLK_TCK")
    ticks0, ctxt0 = tree_sample(roots)
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ticks1, ctxt1 = tree_sample(roots)
    if run.returncode != 0:
        sys.stderr.write(run.stdout)
        sys.exit(run.returncode)
    row = parse_wrk(run.stdout)
    requests = max(row["requests"], 1)
    row.update(round=int(round_no), server=server,
               cpu_us=(ticks1 - ticks0) * 1e6 / hz / requests,
               ctxsw=(ctxt1 - ctxt0) / requests)
    with open(results, "a") as f:
        f.write(json.dumps(row) + "\n")
    extra = f"  socket errors {row['socket_errors']}" if row["socket_errors"] else ""
    print(f"round {row['round']}  {SERVERS[server]:<26}{row['rps']:>10.0f} req/s {row['requests']:>9} req"
          f"  non-2xx {row['non2xx']:<6} p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:7.2f} ms"
          f"  cpu {row['cpu_us']:6.1f} µs/req  ctxsw {row['ctxsw']:5.2f}/req{extra}", flush=True)


def report(results):
    rows = [json.loads(line) for line in open(results)]
    median = {}
    print(f"\nmedians over the rounds        req/s     p50 ms   p99 ms  CPU µs/req  ctxsw/req  rounds")
    for server, label in SERVERS.items():
        runs = [row for row in rows if row["server"] == server]
        if not runs:
            continue
        m = {key: statistics.median(row[key] for row in runs)
             for key in ("rps", "p50_ms", "p99_ms", "cpu_us", "ctxsw")}
        median[server] = m
        print(f"{label:<26}{m['rps']:>10.0f} {m['p50_ms']:>10.2f} {m['p99_ms']:>8.2f}"
              f" {m['cpu_us']:>11.1f} {m['ctxsw']:>10.2f} {len(runs):>7}")

    def ratio(label, value, target=None, higher_better=True, goal=None):
        mark = ""
        if target is not None:
            met = value >= target if higher_better else value <= target
            goal_text = f", goal {goal}" if goal is not None else ""
            mark = f"(target {'>=' if higher_better else '<='} {target}{goal_text}: {'met' if met else 'MISSED'})"
        print(f"{label:<52}= {value:5.2f}   {mark}")

    fs = median["flashsaled"]
    print("\nratios of the medians")
    ratio("flashsaled / nginx return 200, req/s", fs["rps"] / median["nginx"]["rps"], 0.5, goal=0.8)
    ratio("flashsaled / nginx+Lua+Redis, req/s", fs["rps"] / median["lua"]["rps"], 2.0)
    ratio("flashsaled / nginx+Lua+Redis, CPU µs per order", fs["cpu_us"] / median["lua"]["cpu_us"],
          0.5, higher_better=False)
    ratio("nginx+Lua+Redis / nginx return 200, req/s", median["lua"]["rps"] / median["nginx"]["rps"])
    ratio("journal on / journal off, req/s", fs["rps"] / median["journal-off"]["rps"], 0.8)
    if "webhook" in median:
        ratio("with one webhook receiver / without, req/s", median["webhook"]["rps"] / fs["rps"], 0.9)
    if "glibc" in median:
        ratio("jemalloc / glibc malloc, req/s", fs["rps"] / median["glibc"]["rps"])
    refused = sum(row["non2xx"] + row["socket_errors"] for row in rows)
    if refused:
        print(f"\nnote: {refused} non-2xx answers or socket errors in all: those runs did not only take orders")


def main():
    args = sys.argv[1:]
    if len(args) >= 7 and args[0] == "measure" and args[5] == "--" and args[3] in SERVERS:
        measure(args[1], args[2], args[3], args[4], args[6:])
    elif len(args) == 2 and args[0] == "report":
        report(args[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
