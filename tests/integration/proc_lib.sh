# shellcheck shell=bash
# Shared by the scripts that start background processes (sourced): a
# scratch directory $dir, the pids to stop in ${pids[@]}, and a trap that
# stops them and removes $dir on any exit. `need_prometheus` exits 77
# (skipped) without the Debian package prometheus. `die MSG` fails with the
# tails of the logs named in ${logs[@]} (files in $dir); `poll TRIES WHAT
# COMMAND...` runs COMMAND every $poll_interval s (0.5) until it succeeds,
# dying naming WHAT after TRIES attempts.

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

need_prometheus() {
    local tool
    for tool in prometheus promtool; do
        if ! command -v "$tool" >/dev/null; then
            echo "SKIP: $tool is not installed (Debian package prometheus)"
            exit 77
        fi
    done
}

logs=()
poll_interval=0.5
die() {
    echo "FAIL: $*" >&2
    local f
    for f in "${logs[@]}"; do
        [ -s "$dir/$f" ] && { echo "--- $f (end):" >&2; tail -n 15 "$dir/$f" >&2; }
    done
    exit 1
}
poll() {
    local tries=$1 what=$2 i
    shift 2
    for ((i = 0; i < tries; i++)); do
        "$@" && return 0
        sleep "$poll_interval"
    done
    die "gave up waiting for $what"
}
