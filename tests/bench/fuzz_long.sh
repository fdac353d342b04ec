#!/usr/bin/env bash
# A longer fuzzing run than CI's: every harness of tests/fuzz for N minutes
# (default 5), continuing from the inputs earlier runs in the same build
# folder found. Prints each harness's executions, edges covered (cov),
# features (ft) and corpus size, and writes them as JSON lines to
# BUILD/fuzz-long.jsonl. Fails like tests/fuzz/run.sh on any finding.
#
#   tests/bench/fuzz_long.sh [--minutes N] [--build DIR] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
minutes=5
build="$root/build-fuzz"
rest=()
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) rest+=("$1"); shift ;;
    esac
done
case "$minutes" in
'' | *[!0-9]*) echo "fuzz_long.sh: --minutes wants a whole number" >&2; exit 2 ;;
esac
rc=0
"$root/tests/fuzz/run.sh" --seconds $((minutes * 60)) --build "$build" \
    ${rest[@]+"${rest[@]}"} || rc=$?
# target execs exec/s cov ft corpus result
tail -n +2 "$build/fuzz-summary.txt" | while read -r t e r c f n res; do
    printf '{"target":"%s","minutes":%s,"execs":%s,"exec_per_s":%s,' \
        "$t" "$minutes" "$e" "$r"
    printf '"cov":%s,"ft":%s,"corpus":%s,"result":"%s"}\n' "$c" "$f" "$n" \
        "$res"
done | tee "$build/fuzz-long.jsonl"
exit "$rc"
