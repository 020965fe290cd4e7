#!/usr/bin/env bash
# Side by side on this machine, with the same wrk line and the same wrk script
# (LoadTests/orders.lua: every request a valid seckill order from a distinct user):
#   A. nginx `return 200`: the HTTP ceiling
#   B. nginx + Lua (libnginx-mod-http-lua, lua-nginx-redis) + Redis (appendonly yes, appendfsync
#      everysec): the stack a shop runs today; one EVALSHA per order doing the stock check, the
#      per-user set, the decrement
#   C. flashsaled seckill orders (release, jemalloc, journal synchronous=full per perf.yaml's default)
#   D. flashsaled with the journal off (FLASHSALE_JOURNAL_ENABLED=false)
#   D2. flashsaled with one live webhook receiver (an nginx `return 200` on 127.0.0.1:18084,
#      outside the measured process tree): every order's change POSTed to it, signed
#   E. flashsaled built with glibc malloc instead of jemalloc (FLASHSALE_GLIBC_MALLOC=1, its own
#      scratch path .build-glibc: a full release build the first time; skip with --no-glibc)
# In interleaved rounds (A B C D E, A B C D E, ...; --rounds, default 3), each server started
# fresh for its run (empty data directory) and stopped by its PID after it. For every run
# LoadTests/compare.py runs wrk and prints req/s, requests, non-2xx answers, p50, p99, and the
# server's CPU µs per request and context switches per request (its whole process tree from
# /proc: nginx master and workers; for B nginx and redis-server both), then the medians per
# server and the ratios of the medians against their targets. Installs what it needs (apt);
# --no-build uses the release binaries already built.
#   LoadTests/compare.sh [--no-glibc] [--no-build] [--rounds N] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build folder (FLASHSALE_RELEASE_SCRATCH, default .build).
scratch=${FLASHSALE_RELEASE_SCRATCH:-.build}
usage="usage: LoadTests/compare.sh [--no-glibc] [--no-build] [--rounds N] [seconds]"
glibc=1 build=1 rounds=3 seconds=10
while (($#)); do
  case $1 in
    --no-glibc) glibc=0 ;;
    --no-build) build=0 ;;
    --rounds) (($# >= 2)) || { echo "$usage" >&2; exit 2; }; rounds=$2; shift ;;
    -*) echo "$usage" >&2; exit 2 ;;
    *) seconds=$1 ;;
  esac
  shift
done
[[ $rounds =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }

work=$(mktemp -d /tmp/flashsale-compare.XXXXXX)
pids=() # every server still running, killed on exit
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)
[[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ]] || need+=(libnginx-mod-http-lua)
[[ -f /usr/share/lua/5.1/nginx/redis.lua ]] || need+=(lua-nginx-redis)
if ((${#need[@]})); then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
./scripts/setup.sh
if ((build)); then
  swift build -c release --product flashsaled --scratch-path "$scratch" >/dev/null
  if ((glibc)); then
    FLASHSALE_GLIBC_MALLOC=1 swift build -c release --product flashsaled --scratch-path .build-glibc >/dev/null
  fi
fi
binaries=("$scratch"/release/flashsaled)
if ((glibc)); then binaries+=(.build-glibc/release/flashsaled); fi
for binary in "${binaries[@]}"; do
  [[ -x $binary ]] || { echo "no $binary: build it or drop --no-build" >&2; exit 1; }
done
# One token per order wrk can send, so every order is a new buyer's (limit_per_user is 1): about
# 100 000 a second is more than any server here answers on two cores.
python3 LoadTests/mint-tokens.py perf-user-secret $((seconds * 100000)) >"$work/tokens.txt"
export TOKENS="$work/tokens.txt"

# start COMMAND...: runs it in the background; its PID in $pid and in pids.
start() { "$@" & pid=$!; pids+=("$pid"); }
# stop PID: SIGTERM, wait for it, forget it.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local kept=() p
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  pids=("${kept[@]}")
}
# wait_up PID URL [curl options]: until URL answers; fails if PID died or after 10 s.
wait_up() {
  local pid=$1 url=$2; shift 2
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "server $pid for $url exited" >&2; return 1; }
    curl -s -o /dev/null "$@" "$url" && return 0
    sleep 0.1
  done
  echo "no answer from $url" >&2; return 1
}
# measure SERVER URL PID[,PID]: one wrk line for every server, 2 threads, 256 connections (wrk
# shares the 2 cores); compare.py samples the PIDs' process trees around it.
measure() {
  python3 LoadTests/compare.py measure "$work/results.jsonl" "$round" "$1" "$3" -- \
    wrk -t2 -c256 -d"${seconds}s" -s LoadTests/orders.lua "$2"
}

cat >"$work/nginx-200.conf" <<CONF
worker_processes 2;
daemon off;
pid $work/nginx-200.pid;
error_log $work/nginx-200-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18081; location / { return 200 "ok"; } } }
CONF
run_nginx_200() {
  start nginx -c "$work/nginx-200.conf"
  wait_up "$pid" http://127.0.0.1:18081/
  measure nginx http://127.0.0.1:18081/ "$pid"
  stop "$pid"
}

cat >"$work/redis.conf" <<CONF
bind 127.0.0.1
port 16379
dir $work/redis
appendonly yes
appendfsync everysec
save ""
daemonize no
CONF
# KEYS[1] stock counter, KEYS[2] buyers of the SKU; ARGV[1] buyer. 1 = order, 0 = sold out, -1 = limit.
seckill_script="
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1"
run_lua() {
  rm -rf "$work/redis" && mkdir "$work/redis" # fresh: no stock taken, no buyers
  start redis-server "$work/redis.conf" >"$work/redis.log" 2>&1
  local redis_pid=$pid
  for _ in $(seq 1 50); do redis-cli -p 16379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p 16379 set stock:P1 10000000 >/dev/null
  local sha
  sha=$(redis-cli -p 16379 script load "$seckill_script")
  cat >"$work/nginx-lua.conf" <<CONF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 2;
daemon off;
pid $work/nginx-lua.pid;
error_log $work/nginx-lua-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  lua_package_path "/usr/share/lua/5.1/?.lua;;";
  server { listen 127.0.0.1:18083;
    location ~ ^/v1/events/[^/]+/orders\$ {
      content_by_lua_block {
        -- The buyer is the bearer token's text (no signature check: that favours this stack).
        local buyer = ngx.var.http_authorization or ""
        ngx.req.read_body()
        local redis = require "nginx.redis"
        local red = redis:new()
        red:set_timeout(1000)
        local ok, err = red:connect("127.0.0.1", 16379)
        if not ok then ngx.status = 503; ngx.say('{"error":"unavailable"}'); return end
        local res, err = red:evalsha("$sha", 2, "stock:P1", "buyers:P1", buyer)
        red:set_keepalive(10000, 1024)
        if res == 1 then ngx.status = 201; ngx.say('{"status":"pending"}')
        elseif res == -1 then ngx.status = 409; ngx.say('{"error":"limit_exceeded"}')
        elseif res == 0 then ngx.status = 409; ngx.say('{"error":"sold_out"}')
        else ngx.status = 503; ngx.say('{"error":"unavailable"}') end
      }
    }
  } }
CONF
  start nginx -c "$work/nginx-lua.conf"
  wait_up "$pid" http://127.0.0.1:18083/
  measure lua http://127.0.0.1:18083/ "$pid,$redis_pid"
  stop "$pid"
  stop "$redis_pid"
}

run_daemon() { # server, binary, env...
  local server=$1 binary=$2; shift 2
  local config=LoadTests/perf.yaml
  [[ $server == webhook ]] && config=$work/perf-webhook.yaml
  rm -rf "$work/data"
  start env "$@" "$binary" serve --config "$config" --data "$work/data" \
    --http 127.0.0.1:18082 --ops 127.0.0.1:17072 2>"$work/flashsaled.log"
  wait_up "$pid" http://127.0.0.1:18082/readyz -f
  measure "$server" http://127.0.0.1:18082/ "$pid"
  stop "$pid"
}

# The webhook receiver: nginx answering 200 to every POST.
cat >"$work/nginx-hook.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx-hook.pid;
error_log $work/nginx-hook-error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; client_body_buffer_size 16k;
  server { listen 127.0.0.1:18084; location / { return 200 "ok"; } } }
CONF
{ cat LoadTests/perf.yaml; printf 'webhooks:\n  receivers:\n    - { url: "http://127.0.0.1:18084/hook", secret: perf-webhook-secret-0123 }\n'; } >"$work/perf-webhook.yaml"
run_webhook() {
  start nginx -c "$work/nginx-hook.conf"
  local hook_pid=$pid
  wait_up "$hook_pid" http://127.0.0.1:18084/
  run_daemon webhook "$scratch"/release/flashsaled
  stop "$hook_pid"
}

echo "machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
  "$rounds round(s) of wrk -t2 -c256 -d${seconds}s -s LoadTests/orders.lua"
for round in $(seq 1 "$rounds"); do
  run_nginx_200
  run_lua
  run_daemon flashsaled "$scratch"/release/flashsaled
  run_daemon journal-off "$scratch"/release/flashsaled FLASHSALE_JOURNAL_ENABLED=false
  run_webhook
  if ((glibc)); then run_daemon glibc .build-glibc/release/flashsaled; fi
done
python3 LoadTests/compare.py report "$work/results.jsonl"
