#!/usr/bin/env bash
# Builds the libFuzzer targets (release, every module compiled with -sanitize=fuzzer, in
# Fuzz/.build, apart from the main package's build) and runs each on its seed corpus in
# Fuzz/corpus/<target> (new inputs go to a scratch copy, not the checked-in seeds), for
# SECONDS or until RUNS executions, whichever comes first.
# A crash leaves crash-* / timeout-* files in Fuzz/artifacts/ and makes the script exit 1.
# usage: Fuzz/run.sh [seconds] [target...]
#        Fuzz/run.sh --runs N [--seconds S] [target...]     (the full run: --runs 10000000)
set -euo pipefail
cd "$(dirname "$0")"
command -v swift >/dev/null 2>&1 || export PATH=/opt/swift/usr/bin:$PATH
seconds=60
runs=-1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; seconds=${seconds_given:-0}; shift 2 ;;
        --seconds) seconds=$2; seconds_given=$2; shift 2 ;;
        [0-9]*) seconds=$1; shift ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-json fuzz-ops-line fuzz-ops-command fuzz-ops-session fuzz-jwt fuzz-payment fuzz-config)
swift build -c release -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library
mkdir -p artifacts
status=0
for target in "${targets[@]}"; do
    scratch=$(mktemp -d)
    cp -r "corpus/$target/." "$scratch/" 2>/dev/null || true
    echo "== $target: $([ "$runs" -gt 0 ] && echo "$runs runs" || echo "${seconds}s")"
    # Inputs as long as the thing fuzzed gets: ops lines are short (the longest allowed line
    # is the line target's own business), a config is a few KiB, a body at most 16 KiB.
    case "$target" in
        fuzz-ops-command | fuzz-ops-session) max_len=512 ;;
        fuzz-config) max_len=2048 ;;
        *) max_len=4096 ;;
    esac
    limits=(-runs="$runs" -max_len="$max_len")
    [ "$seconds" -gt 0 ] && limits+=(-max_total_time="$seconds")
    start=$(date +%s)
    if ! ".build/release/$target" "$scratch" "${limits[@]}" -timeout=10 -rss_limit_mb=4096 \
        -artifact_prefix="artifacts/$target-" -print_final_stats=1 2>"artifacts/$target.log"; then
        status=1
        echo "   FAILED: see Fuzz/artifacts/$target.log"
        grep -E "ERROR|Fatal|failed|Precondition" "artifacts/$target.log" | head -5 | sed 's/^/   /' || true
    fi
    echo "   $(( $(date +%s) - start )) s"
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "artifacts/$target.log" | sed 's/^/   /' || true
    rm -rf "$scratch"
done
exit $status
