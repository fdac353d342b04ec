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
# Deterministic blobs: class c centred at (3c, -3c, 2c, 0) with unit noise
# from a fixed LCG, so the run is repeatable.
gen() {
    awk -v n="$1" -v seed="$2" 'BEGIN {
        s = seed
        for (i = 0; i < n; i++) {
            c = i % 3
            line = ""
            for (f = 0; f < 4; f++) {
                u = 0
                for (k = 0; k < 12; k++) { s = (s * 1103515245 + 12345) % 2147483648; u += s / 2147483648 }
                centre = (f == 0 ? 3 * c : (f == 1 ? -3 * c : (f == 2 ? 2 * c : 0)))
                line = line sprintf("%.4f,", centre + (u - 6))
            }
            print line c
        }
    }'
}
gen 6000 1 >"$dir/train.csv"
gen 1500 2 >"$dir/test.csv"
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
