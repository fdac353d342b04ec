#!/usr/bin/env bash
# End to end on real processes: ps-train starts 2 servers and 2 workers that
# train sparse logistic regression (logreg, FTRL with L1) on synthetic
# libsvm data from a planted sparse weight vector over 10^4 features (30
# nonzeros per row, labels drawn from sigmoid(w.x + b)); the trained model's
# test AUC must come within 0.01 of the planted model's on the same rows.
# Usage: train_sparse.sh PS_TRAIN_BINARY
set -euo pipefail
train=${1:?usage: train_sparse.sh PS_TRAIN}
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# 3% of the features carry weight N(0, 3): L1 (FTRL's l1, through the
# workers' SPARKPS_L1) keeps the other 97% at zero instead of fitting noise.
planted=$(python3 "$here/gen_sparse_lr.py" "$dir/train.svm" "$dir/test.svm" \
    --features 10000 --train-rows 160000 --test-rows 10000 --nnz 30 \
    --density 0.03 --scale 3 --seed 7 | sed -n 's/^planted_auc //p')
[ -n "$planted" ] || { echo "generator gave no planted AUC" >&2; exit 1; }
out=$(SPARKPS_L1=80 "$train" --model logreg --format libsvm \
    --data "$dir/train.svm" --eval "$dir/test.svm" \
    --optimizer ftrl --lr 0.2 --epochs 4 --batch 64 --json)
echo "$out"
auc=$(printf '%s\n' "$out" | tail -n1 | sed -n 's/.*"test_auc":\([0-9.]*\).*/\1/p')
[ -n "$auc" ] || { echo "no test_auc in the summary" >&2; exit 1; }
awk -v a="$auc" -v p="$planted" 'BEGIN { exit !(a >= p - 0.01) }' ||
    { echo "test AUC $auc < planted AUC $planted - 0.01" >&2; exit 1; }
echo "sparse: test AUC $auc >= planted AUC $planted - 0.01"
