#!/usr/bin/env bash
# Runs every test: installs missing system packages, builds everything (the crash test
# starts the real flashsaled binary), then runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
./scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
# A short crash loop against the real daemon: start, burst, SIGKILL, restart, check every
# acknowledgement (LoadTests/crash-loop; docs/RELIABILITY.md runs N=50). FLASHSALE_CRASH_LOOP=N
# changes the number of rounds (0 skips it).
rounds=${FLASHSALE_CRASH_LOOP:-3}
if [ "$rounds" != 0 ]; then python3 LoadTests/crash-loop.py "$rounds" --binary .build/debug/flashsaled; fi
