#!/usr/bin/env bash
# The main job, shortened for CI: ps-train with its defaults (2 servers,
# 2 workers, MLP 784-256-128-10 on Fashion-MNIST) for two epochs must reach
# a test accuracy of 0.82 (measured here: 0.84-0.85). Exits 77 (ctest: skipped) with a message when the
# dataset package is not installed.
# Usage: train_fmnist.sh PS_TRAIN_BINARY
set -euo pipefail
train=${1:?usage: train_fmnist.sh PS_TRAIN}
data=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$data" ]; then
    echo "SKIP: $data missing (apt-get install dataset-fashion-mnist)" >&2
    exit 77
fi
out=$("$train" --epochs 2 --json)
echo "$out"
acc=$(printf '%s\n' "$out" | tail -n1 | sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p')
[ -n "$acc" ] || { echo "no test_accuracy in the summary" >&2; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.82) }' || { echo "test accuracy $acc < 0.82" >&2; exit 1; }
echo "fashion-mnist, 2 epochs: test accuracy $acc >= 0.82"
