#!/usr/bin/env bash
# End to end on real processes: ps-train starts 2 servers and 2 workers that
# learn a synthetic 3-class problem (Gaussian blobs, 4 features, CSV) with an
# MLP; the test accuracy reported by the workers must reach 0.95, with the
# default cadence and with gradient accumulation and a step schedule.
# Usage: train_synthetic.sh PS_TRAIN_BINARY
set -euo pipefail
train=${1:?usage: train_synthetic.sh PS_TRAIN}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# shellcheck source=cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
blobs_csv 6000 1 >"$dir/train.csv"
blobs_csv 1500 2 >"$dir/test.csv"
# train ARGS...: runs ps-train on the blobs; the test accuracy in its JSON
# summary must reach 0.95.
train() {
    local out acc
    out=$("$train" --format csv --data "$dir/train.csv" --eval "$dir/test.csv" \
        --model mlp:4-16-3 --batch 32 --json "$@")
    echo "$out"
    acc=$(printf '%s\n' "$out" | tail -n1 | sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p')
    [ -n "$acc" ] || { echo "no test_accuracy in the summary ($*)" >&2; exit 1; }
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' ||
        { echo "test accuracy $acc < 0.95 ($*)" >&2; exit 1; }
    echo "synthetic ($*): test accuracy $acc >= 0.95"
}
train --epochs 6 --lr 0.01
# Gradient accumulation, sparser pulls, a step schedule with warm-up.
train --epochs 6 --lr 0.02 --push-every 2 --pull-every 2 \
    --lr-schedule step:2:0.5 --warmup-steps 20
