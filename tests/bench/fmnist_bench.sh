#!/usr/bin/env bash
# The main job's target: default ps-train (2 servers, 2 workers, MLP
# 784-256-128-10, cosine schedule) on full Fashion-MNIST, run with several
# seeds; prints test accuracy, wall seconds and samples/s per run, then the
# minimum and median accuracy. Extra arguments go to every ps-train run.
# Usage: fmnist_bench.sh BUILD_DIR [RUNS] [ps-train args...]
set -euo pipefail
build=${1:?usage: fmnist_bench.sh BUILD_DIR [RUNS] [ps-train args...]}
runs=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
train=$build/worker/ps-train
[ -d /usr/share/datasets/fashion-mnist ] ||
    { echo "needs dataset-fashion-mnist (apt-get install dataset-fashion-mnist)" >&2; exit 77; }
accs=()
printf '%-5s %-9s %-8s %-10s\n' seed accuracy seconds samples/s
for seed in $(seq 1 "$runs"); do
    line=$("$train" --seed "$seed" --json "$@" 2>/dev/null | tail -n1)
    acc=$(sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p' <<<"$line")
    secs=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' <<<"$line")
    rate=$(sed -n 's/.*"samples_per_s":\([0-9.]*\).*/\1/p' <<<"$line")
    printf '%-5s %-9s %-8s %-10s\n' "$seed" "$acc" "$secs" "$rate"
    accs+=("$acc")
done
printf '%s\n' "${accs[@]}" | sort -n | awk '{ a[NR] = $1 }
    END { printf "min %.4f  median %.4f  over %d runs (target >= 0.89)\n", a[1], a[int((NR + 1) / 2)], NR }'
