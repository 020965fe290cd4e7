#!/usr/bin/env bash
# Runs schemathesis (a real OpenAPI client, pinned below) against a fresh daemon and the spec
# in docs/openapi.yaml: no 5xx, and every status, header, content type and body as documented.
# Buyer and public operations are tested with a buyer token, admin operations with the admin
# token. Installs schemathesis with pip when missing; uses the debug daemon (swift build).
#   scripts/schemathesis.sh [--max-examples N]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
version=4.32.5
examples=60
if [[ ${1:-} == --max-examples ]]; then examples=$2; fi
if [[ "$(schemathesis --version 2>/dev/null)" != *"$version"* ]]; then
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$version"
fi
[[ -x .build/debug/flashsaled ]] || swift build --product flashsaled
work=$(mktemp -d /tmp/flashsale-schemathesis.XXXXXX)
# The built-in demo's events and secrets, with a rate limit schemathesis will not reach.
cat >"$work/flashsale.yaml" <<YAML
secrets:
  user_token: schemathesis-user-token
  payment: schemathesis-payment-key
  ops: schemathesis-ops-password
  admin: schemathesis-admin-token
rate_limit:
  per_ip: { rate: 100000, burst: 100000 }
events:
  - id: demo
    kind: seckill
    starts_at: now-1m
    ends_at: now+24h
    items:
      - { sku: A1, name: Phone case, price: 990, stock: 100000, limit_per_user: 5 }
  - id: demo-group
    kind: groupbuy
    starts_at: now-1m
    ends_at: now+24h
    items:
      - { sku: G1, name: Tea set, price: 8800, group_price: 5900, group_size: 3, stock: 100000 }
coupons:
  - { id: demo-coupon, total: 100000, value: 500, min_spend: 0, per_user: 1000, per_ip: 100000, starts_at: now-1m, ends_at: now+24h, valid_for: 24h }
YAML
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ops=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.build/debug/flashsaled serve --config "$work/flashsale.yaml" --data "$work/data" --http "127.0.0.1:$port" --ops "127.0.0.1:$ops" 2>"$work/daemon.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$work"' EXIT
ready() { python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1).status != 200)" 2>/dev/null; }
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || { cat "$work/daemon.log"; exit 1; }
token=$(.build/debug/flashsaled token --config "$work/flashsale.yaml" --user schemathesis --ttl 3600)
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method
common=(docs/openapi.yaml --url "http://127.0.0.1:$port" --checks "$checks" --max-examples "$examples" --workers 1 --no-color)
echo "== buyer, payment and public operations"
schemathesis run "${common[@]}" --exclude-path-regex '^/v1/admin/' -H "Authorization: Bearer $token"
echo "== admin operations"
schemathesis run "${common[@]}" --phases examples,coverage,fuzzing --include-path-regex '^/v1/admin/' -H "Authorization: Bearer schemathesis-admin-token"
