#!/usr/bin/env bash
# Checks the files in deploy/ against the real daemon (the debug build):
#  - `promtool check metrics` on a live /metrics, scraped from the metrics listener after an
#    order, with a webhook receiver configured;
#  - `promtool check config` on deploy/prometheus.yml and `promtool check rules` on the alerts;
#  - every series the Grafana dashboard and the alerts name is one the daemon exports;
#  - `systemd-analyze verify` on deploy/flashsaled.service, and the daemon started under the
#    unit's LimitNOFILE keeps its full connection cap.
# Installs promtool (Debian `prometheus`), systemd-analyze (`systemd`) and curl when missing.
#   scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if ((${#missing[@]})); then
  echo "check-deploy: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ -x .build/debug/flashsaled ]] || swift build --product flashsaled
binary=$(pwd)/.build/debug/flashsaled
work=$(mktemp -d /tmp/flashsale-deploy.XXXXXX)
daemon=
trap '[[ -n $daemon ]] && { kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; }; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port) ops=$(free_port) metrics=$(free_port) nobody=$(free_port)
cat >"$work/flashsale.yaml" <<YAML
metrics: 127.0.0.1:$metrics
secrets:
  user_token: deploy-check-user-token
  payment: deploy-check-payment-key
  ops: deploy-check-ops-password
  admin: deploy-check-admin-token
webhooks:
  - { url: "http://127.0.0.1:$nobody/hook", secret: deploy-check-webhook-secret }
events:
  - id: demo
    kind: seckill
    starts_at: now-1m
    ends_at: now+1h
    items:
      - { sku: A1, name: Phone case, price: 990, stock: 100, limit_per_user: 1 }
YAML

echo "== the daemon under the unit's LimitNOFILE"
nofile=$(sed -n 's/^LimitNOFILE=//p' deploy/flashsaled.service)
prlimit --nofile="$nofile:$nofile" "$binary" serve --config "$work/flashsale.yaml" --data "$work/data" \
  --http "127.0.0.1:$http" --ops "127.0.0.1:$ops" 2>"$work/daemon.log" &
daemon=$!
ready() { curl -sf -o /dev/null "http://127.0.0.1:$metrics/readyz"; }
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || { cat "$work/daemon.log"; exit 1; }
if grep -q "lowered" "$work/daemon.log"; then
  echo "LimitNOFILE=$nofile is below what the connection cap needs:" >&2; grep "lowered" "$work/daemon.log" >&2; exit 1
fi
echo "LimitNOFILE=$nofile: $(grep -o 'connections_max=[0-9]*' "$work/daemon.log" | head -1)"

token=$("$binary" token --config "$work/flashsale.yaml" --user deploy-check)
curl -sf -o /dev/null -X POST -H "Authorization: Bearer $token" -d '{"sku":"A1","qty":1}' "http://127.0.0.1:$http/v1/events/demo/orders"
curl -sf "http://127.0.0.1:$metrics/metrics" >"$work/metrics.txt"
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http/metrics")
[[ $status == 404 ]] || { echo "the buyer port answered /metrics with $status, expected 404 with a metrics listener" >&2; exit 1; }

echo "== promtool check metrics (a live scrape, $(grep -c '^# TYPE' "$work/metrics.txt") families)"
promtool check metrics <"$work/metrics.txt"

echo "== promtool check config / rules"
cp deploy/prometheus.yml deploy/flashsale-alerts.yml "$work/"
promtool check config "$work/prometheus.yml"
promtool check rules deploy/flashsale-alerts.yml

echo "== every series the dashboard and the alerts name is exported"
python3 - "$work/metrics.txt" deploy/grafana/flashsale.json deploy/flashsale-alerts.yml <<'PY'
import json, re, sys
scrape, dashboard, alerts = sys.argv[1:4]
families = {line.split()[2] for line in open(scrape) if line.startswith("# TYPE ")}
exported = set(families)
for line in open(scrape):
    if line.startswith("# TYPE ") and line.split()[3] == "histogram":
        name = line.split()[2]
        exported |= {name + "_bucket", name + "_sum", name + "_count"}
exprs = []
def walk(node):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str): exprs.append(("dashboard", node["expr"]))
        for value in node.values(): walk(value)
    elif isinstance(node, list):
        for value in node: walk(value)
walk(json.load(open(dashboard)))
exprs += [("alerts", m) for m in re.findall(r"expr:\s*\|?\s*\n?((?:.*\n)*?)(?=\s+(?:for|labels|annotations):)", open(alerts).read())]
functions = {"sum", "rate", "increase", "histogram_quantile", "by", "le", "without", "avg", "max", "min", "count", "irate", "abs"}
names, missing = set(), []
for where, expr in exprs:
    stripped = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", expr)
    for name in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", stripped):
        if name in functions or name == "up" or re.fullmatch(r"[a-z]+", name) and name in {"outcome", "route", "status_class", "url", "state", "event", "sku"}:
            continue
        if not (name.startswith("flashsale_") or name.startswith("process_")):
            continue
        names.add(name)
        if name not in exported: missing.append(f"{where}: {name} in {expr.strip()}")
if missing:
    print("series named but not exported:\n  " + "\n  ".join(missing)); sys.exit(1)
print(f"{len(exprs)} queries name {len(names)} series, all exported")
PY

echo "== systemd-analyze verify"
sed "s|^ExecStart=/usr/local/bin/flashsaled|ExecStart=$binary|" deploy/flashsaled.service >"$work/flashsaled.service"
# It exits 0 on an unknown key or a bad value and only says so: any output is a failure.
verify=$(systemd-analyze verify --man=no "$work/flashsaled.service" 2>&1) || { echo "$verify" >&2; exit 1; }
[[ -z $verify ]] || { echo "$verify" >&2; exit 1; }
echo "deploy files: OK"
