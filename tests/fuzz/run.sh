#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, -DSPARKPS_FUZZ=ON: ASan + UBSan +
# coverage) and runs each for a bounded time from the committed seeds
# (tests/fuzz/corpus/NAME) and every past finding (tests/fuzz/regressions/
# NAME). Prints executions and coverage per harness and fails on any crash,
# leak, timeout or out-of-memory; the input that did it is kept under
# BUILD/fuzz-artifacts/ (fix the bug, then copy it into
# tests/fuzz/regressions/NAME/ so fuzz_replay keeps checking it).
#
#   tests/fuzz/run.sh [--seconds N] [--build DIR] [TARGET...]
#
# --seconds: per harness (default 30, or $FUZZ_SECONDS); --build: the build
# folder (default build-fuzz); targets default to all. New inputs libFuzzer
# finds go to BUILD/fuzz-work/NAME and are reused by the next run there.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-30}
build="$root/build-fuzz"
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --build) build=$2; shift 2 ;;
    --build=*) build=${1#*=}; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(server libsvm csv idx stream safetensors)
case "$seconds" in
'' | *[!0-9]*) echo "run.sh: --seconds wants a whole number" >&2; exit 2 ;;
esac

command -v clang >/dev/null || {
    echo "run.sh: clang not found (install-deps.sh installs clang and" \
        "libclang-rt-14-dev)" >&2
    exit 1
}
echo "fuzz: building harnesses in $build"
CC=clang cmake -S "$root" -B "$build" -DSPARKPS_FUZZ=ON -DSPARKPS_TESTS=OFF \
    -DSPARKPS_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${FUZZ_BUILD_JOBS:-2}" \
    --target "${targets[@]/#/fuzz_}" >/dev/null

summary="$build/fuzz-summary.txt"
printf '%-12s %10s %8s %6s %6s %7s  %s\n' target execs exec/s cov ft corpus \
    result >"$summary"
failed=0
for t in "${targets[@]}"; do
    work="$build/fuzz-work/$t"
    art="$build/fuzz-artifacts/$t"
    mkdir -p "$work" "$art"
    dirs=("$work" "$root/tests/fuzz/corpus/$t")
    [ -d "$root/tests/fuzz/regressions/$t" ] &&
        dirs+=("$root/tests/fuzz/regressions/$t")
    log="$build/fuzz-$t.log"
    echo "fuzz: $t for ${seconds}s"
    rc=0
    # -timeout: one input over 10 s is a hang; -rss_limit_mb: a small input
    # must not make a reader or the server allocate gigabytes.
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$art/" "${dirs[@]}" >"$log" 2>&1 || rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    [ -n "$done_line" ] ||
        done_line=$(grep -E '^#[0-9]+[[:space:]]+(INITED|NEW|REDUCE|pulse)' \
            "$log" | tail -1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="FAILED (exit $rc)"
        failed=1
        echo "fuzz: $t failed; the end of $log:" >&2
        grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" |
            head -20 >&2 || true
        echo "fuzz: reproduce with $build/tests/fuzz/fuzz_$t FILE; once" \
            "fixed, copy FILE into tests/fuzz/regressions/$t/" >&2
    fi
    printf '%-12s %10s %8s %6s %6s %7s  %s\n' "$t" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result" \
        >>"$summary"
done
cat "$summary"
exit "$failed"
