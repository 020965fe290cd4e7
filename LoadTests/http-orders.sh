#!/usr/bin/env bash
# HTTP throughput of seckill orders against nginx `return 200`, in one run, same wrk line.
# Prints req/s, p50, p99 for: nginx, flashsaled (journal synchronous=full), flashsaled
# (journal off), and the ratios. Installs wrk and nginx if missing; release build.
#   LoadTests/http-orders.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build folder (FLASHSALE_RELEASE_SCRATCH, default .build).
scratch=${FLASHSALE_RELEASE_SCRATCH:-.build}
seconds=${1:-10}
work=$(mktemp -d /tmp/flashsale-perf.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v wrk >/dev/null && command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null; }
./scripts/setup.sh
swift build -c release --product flashsaled --scratch-path "$scratch" >/dev/null
python3 LoadTests/mint-tokens.py perf-user-secret 400000 > "$work/tokens.txt"
export TOKENS="$work/tokens.txt"
wrk_line() { wrk -t2 -c256 -d"${seconds}s" -s LoadTests/orders.lua "$1" 2>&1 | awk '/Requests\/sec/ {print $2} /^p50=/ {print}' | paste -sd' '; }

cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18081; location / { return 200 "ok"; } } }
CONF
nginx -c "$work/nginx.conf"
sleep 0.5
nginx_result=$(wrk_line http://127.0.0.1:18081/)
kill "$(cat "$work/nginx.pid")"

run_daemon() { # label, env...
  local label=$1; shift
  rm -rf "$work/data"
  env "$@" "$scratch"/release/flashsaled serve --config LoadTests/perf.yaml --data "$work/data" \
    --http 127.0.0.1:18082 --ops 127.0.0.1:17072 2> "$work/$label.log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf 127.0.0.1:18082/readyz >/dev/null && break; sleep 0.1; done
  wrk_line http://127.0.0.1:18082/
  kill -TERM "$pid"; wait "$pid" || true
}
full=$(run_daemon full)
off=$(run_daemon off FLASHSALE_JOURNAL_ENABLED=false)
echo "nginx return 200:              $nginx_result"
echo "flashsaled, journal full:      $full"
echo "flashsaled, journal off:       $off"
python3 - "$nginx_result" "$full" "$off" <<'PY'
import sys
rate = lambda s: float(s.split()[0])
n, f, o = (rate(a) for a in sys.argv[1:])
print(f"orders (journal full) / nginx = {f / n:.2f}")
print(f"journal full / journal off    = {f / o:.2f}")
PY
