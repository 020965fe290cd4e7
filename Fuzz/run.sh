#!/usr/bin/env bash
# Builds the libFuzzer targets (every module compiled with -sanitize=fuzzer, in Fuzz/.build,
# apart from the main package's build) and runs each for SECONDS (default 60) on its seed
# corpus in Fuzz/corpus/<target> (new inputs go to a scratch copy, not the checked-in seeds).
# A crash leaves crash-* / timeout-* files in Fuzz/artifacts/ and makes the script exit 1.
# usage: Fuzz/run.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")"
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-json fuzz-ops-line fuzz-jwt fuzz-payment fuzz-config)
swift build -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library
mkdir -p artifacts
status=0
for target in "${targets[@]}"; do
    scratch=$(mktemp -d)
    cp -r "corpus/$target/." "$scratch/" 2>/dev/null || true
    echo "== $target: ${seconds}s"
    if ! ".build/debug/$target" "$scratch" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -artifact_prefix="artifacts/$target-" -print_final_stats=1 2>"artifacts/$target.log"; then
        status=1
        echo "   FAILED: see Fuzz/artifacts/$target.log"
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "artifacts/$target.log" | sed 's/^/   /' || true
    rm -rf "$scratch"
done
exit $status
