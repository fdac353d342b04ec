#!/usr/bin/env bash
# What a server crash costs a training job: full Fashion-MNIST (MLP
# 784-256-128-10, 2 servers, 2 workers, ps-train's settings, 15 epochs by
# default) run without a fault and with one server killed (SIGKILL) at 40%
# of the training and restarted on the same port with --restore latest
# (checkpoints every second). Prints both runs' test accuracy (the lower of
# the two workers' final ones) and seconds, the accuracy difference in
# points, and one JSON line per run. The runs are those of
# tests/integration/fault_server_restart.sh, without its accuracy floor.
# Usage: fault_restart_bench.sh BUILD_DIR [EPOCHS] [RUNS]
set -euo pipefail
build=${1:?usage: fault_restart_bench.sh BUILD_DIR [EPOCHS] [RUNS]}
epochs=${2:-15}
runs=${3:-1}
engine=$(dirname "$0")/../integration/fault_server_restart.sh
[ -d /usr/share/datasets/fashion-mnist ] ||
    { echo "needs dataset-fashion-mnist (apt-get install dataset-fashion-mnist)" >&2; exit 77; }
printf '%-4s %-6s %-9s %-8s %s\n' run fault accuracy seconds killed_at_samples
declare -A acc
lines=()
for run in $(seq 1 "$runs"); do
    for fault in 0 1; do
        line=$(EPOCHS=$epochs FAULT=$fault FLOOR=0 \
            "$engine" "$build/worker" "$build/server/ps-server" 2>/dev/null | tail -n1)
        a=$(sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p' <<<"$line")
        s=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' <<<"$line")
        k=$(sed -n 's/.*"killed_at_samples":\([0-9a-z]*\).*/\1/p' <<<"$line")
        printf '%-4s %-6s %-9s %-8s %s\n' "$run" "$fault" "$a" "$s" "$k"
        acc[$run,$fault]=$a
        lines+=("$line")
    done
done
for run in $(seq 1 "$runs"); do
    awk -v a="${acc[$run,0]}" -v b="${acc[$run,1]}" -v r="$run" 'BEGIN {
        d = (b - a) * 100
        printf "run %d: with the fault %+.2f points (%s vs %s): %s 1 point\n",
            r, d, b, a, (d >= -1 ? "within" : "NOT within") }'
done
printf '%s\n' "${lines[@]}"
