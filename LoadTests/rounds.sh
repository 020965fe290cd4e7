#!/usr/bin/env bash
# CPU per order as the daemon ages: one client ordering back to back (`wrk -t1 -c1`, valid
# orders, `limit_per_user` high enough that none is refused), in 10-second rounds; prints each
# round's orders/s, server CPU µs per order (utime + stime from /proc/PID/stat) and RSS, then
# stops the daemon with SIGTERM and prints its exit status.
#   LoadTests/rounds.sh [rounds] [flashsaled binary]      (defaults: 16, release build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-16}
binary=${2:-}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -z "$binary" ]; then
  ./scripts/setup.sh
  swift build -c release --product flashsaled >/dev/null
  binary=.build/release/flashsaled
fi
work=$(mktemp -d /tmp/flashsale-rounds.XXXXXX)
trap 'rm -rf "$work"' EXIT
sed 's/limit_per_user: 1 }/limit_per_user: 100000 }/' LoadTests/perf.yaml > "$work/rounds.yaml"
python3 LoadTests/mint-tokens.py perf-user-secret 1000 > "$work/tokens.txt"
export TOKENS="$work/tokens.txt"
"$binary" serve --config "$work/rounds.yaml" --data "$work/data" --http 127.0.0.1:18093 --ops 127.0.0.1:17093 2> "$work/log" &
pid=$!
for _ in $(seq 1 100); do curl -sf 127.0.0.1:18093/readyz >/dev/null && break; sleep 0.1; done
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
for round in $(seq 1 "$rounds"); do
  before=$(cpu)
  out=$(wrk -t1 -c1 -d10s -s LoadTests/orders.lua http://127.0.0.1:18093/ 2>&1)
  after=$(cpu)
  orders=$(echo "$out" | awk '/requests in/ {print $1}')
  refused=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  echo "round $round: $orders orders (non-2xx ${refused:-0}), $((orders / 10))/s, cpu $(((after - before) * 1000000 / hz / orders)) µs/order, rss $((rss / 1024)) MiB"
done
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
echo "flashsaled exit status after SIGTERM: $status"
tail -n 3 "$work/log"
[ "$status" -eq 0 ]
