#!/usr/bin/env bash
# Runs flashsaled on the built-in demo config (HTTP 127.0.0.1:8080, ops 127.0.0.1:7070,
# data in ./data), after installing missing system packages. Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
./scripts/setup.sh
swift build --product flashsaled
exec .build/debug/flashsaled serve "$@"
