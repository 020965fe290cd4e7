#!/usr/bin/env bash
# Soak: a release flashsaled under a steady load of small commits (one order per commit,
# payments, cancels and expiries mixed in) for MINUTES minutes (default 30), figures every
# minute, then SIGTERM expecting exit 0. Exit status 1 if CPU per order drifts past ±20%,
# RSS grows beyond the order table, descriptors leak, or the daemon does not exit 0.
#   LoadTests/soak.sh [minutes] [soak.py options, e.g. --interval 10]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
# The release build folder (FLASHSALE_RELEASE_SCRATCH, default .build).
scratch=${FLASHSALE_RELEASE_SCRATCH:-.build}
./scripts/setup.sh
swift build -c release --product flashsaled --scratch-path "$scratch" >/dev/null
exec python3 LoadTests/soak.py "${1:-30}" --binary "$scratch/release/flashsaled" "${@:2}"
