#!/usr/bin/env bash
# Side-by-side, in one run on this machine, with the same wrk line and the same wrk script
# (LoadTests/orders.lua: every request a valid seckill order from a distinct user):
#   1. flashsaled seckill orders (release, jemalloc, journal synchronous=full per perf.yaml's default)
#   2. nginx `return 200`: the HTTP ceiling
#   3. nginx + Lua (libnginx-mod-http-lua, lua-nginx-redis) + Redis (appendonly yes): the stack a
#      shop runs today; one EVALSHA per order doing the stock check, the per-user set, the decrement
#   4. flashsaled with the journal off
#   5. flashsaled built with glibc malloc instead of jemalloc (FLASHSALE_GLIBC_MALLOC=1, its own
#      scratch path .build-glibc: a full release build the first time; skip with --no-glibc)
# Prints req/s, p50, p99 for each and every ratio. Installs what it needs (apt), starts each
# server on loopback and stops each by its PID.
#   LoadTests/compare.sh [--no-glibc] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build folder (FLASHSALE_RELEASE_SCRATCH, default .build).
scratch=${FLASHSALE_RELEASE_SCRATCH:-.build}
glibc=1
if [[ "${1:-}" == "--no-glibc" ]]; then glibc=0; shift; fi
seconds=${1:-10}
work=$(mktemp -d /tmp/flashsale-compare.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
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
swift build -c release --product flashsaled --scratch-path "$scratch" >/dev/null
if ((glibc)); then
  FLASHSALE_GLIBC_MALLOC=1 swift build -c release --product flashsaled --scratch-path .build-glibc >/dev/null
fi
python3 LoadTests/mint-tokens.py perf-user-secret 400000 >"$work/tokens.txt"
export TOKENS="$work/tokens.txt"
# One wrk line for every server: 2 threads, 256 connections (wrk shares the 2 cores).
wrk_line() { wrk -t2 -c256 -d"${seconds}s" -s LoadTests/orders.lua "$1" 2>&1 | awk '/Requests\/sec/ {print $2} /^p50=/ {print}' | paste -sd' '; }
wait_http() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

# 2. nginx return 200
cat >"$work/nginx-200.conf" <<CONF
worker_processes 2;
daemon off;
pid $work/nginx-200.pid;
error_log $work/nginx-200-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18081; location / { return 200 "ok"; } } }
CONF
nginx -c "$work/nginx-200.conf" & pid=$!; pids+=("$pid")
wait_http http://127.0.0.1:18081/
nginx_result=$(wrk_line http://127.0.0.1:18081/)
stop "$pid"

# 3. nginx + Lua + Redis
cat >"$work/redis.conf" <<CONF
bind 127.0.0.1
port 16379
dir $work
appendonly yes
appendfsync everysec
save ""
daemonize no
CONF
redis-server "$work/redis.conf" >"$work/redis.log" 2>&1 & redis_pid=$!; pids+=("$redis_pid")
for _ in $(seq 1 50); do redis-cli -p 16379 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p 16379 set stock:P1 10000000 >/dev/null
# KEYS[1] stock counter, KEYS[2] buyers of the SKU; ARGV[1] buyer. 1 = order, 0 = sold out, -1 = limit.
sha=$(redis-cli -p 16379 script load "
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1")
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
nginx -c "$work/nginx-lua.conf" & pid=$!; pids+=("$pid")
wait_http http://127.0.0.1:18083/
lua_result=$(wrk_line http://127.0.0.1:18083/)
lua_sold=$((10000000 - $(redis-cli -p 16379 get stock:P1)))
stop "$pid"
stop "$redis_pid"

# 1, 4, 5. flashsaled
run_daemon() { # binary, env...
  local binary=$1; shift
  rm -rf "$work/data"
  env "$@" "$binary" serve --config LoadTests/perf.yaml --data "$work/data" \
    --http 127.0.0.1:18082 --ops 127.0.0.1:17072 2>"$work/flashsaled.log" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do curl -sf 127.0.0.1:18082/readyz >/dev/null && break; sleep 0.1; done
  wrk_line http://127.0.0.1:18082/
  stop "$pid"
}
full=$(run_daemon "$scratch"/release/flashsaled)
off=$(run_daemon "$scratch"/release/flashsaled FLASHSALE_JOURNAL_ENABLED=false)
glibc_result=""
((glibc)) && glibc_result=$(run_daemon .build-glibc/release/flashsaled)

echo "machine: $(nproc) cores, $(uname -r), wrk -t2 -c256 -d${seconds}s -s LoadTests/orders.lua"
echo "                                  req/s     latency"
echo "flashsaled orders (jemalloc):     $full"
echo "nginx return 200:                 $nginx_result"
echo "nginx + Lua + Redis seckill:      $lua_result   (orders taken: $lua_sold)"
echo "flashsaled, journal off:          $off"
[[ -n "$glibc_result" ]] && echo "flashsaled, glibc malloc:         $glibc_result"
python3 - "$full" "$nginx_result" "$lua_result" "$off" "$glibc_result" <<'PY'
import sys
rate = lambda s: float(s.split()[0]) if s else None
full, nginx, lua, off, glibc = (rate(a) for a in sys.argv[1:])
print(f"flashsaled / nginx return 200      = {full / nginx:.2f}   (target >= 0.6, goal 0.8)")
print(f"flashsaled / nginx+Lua+Redis       = {full / lua:.2f}   (target >= 1.5, goal 2)")
print(f"nginx+Lua+Redis / nginx return 200 = {lua / nginx:.2f}")
print(f"journal on / journal off           = {full / off:.2f}   (target >= 0.8)")
if glibc:
    print(f"jemalloc / glibc malloc            = {full / glibc:.2f}")
PY
