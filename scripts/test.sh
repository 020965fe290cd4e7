#!/usr/bin/env bash
# Runs every test: installs missing system packages, builds everything (the crash test
# starts the real flashsaled binary), then runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
./scripts/setup.sh
swift build --build-tests
swift test --skip-build "$@"
# A short crash loop against the real daemon (LoadTests/crash-loop; N=50 in docs/RELIABILITY.md).
python3 LoadTests/crash-loop.py 3
