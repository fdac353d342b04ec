#!/usr/bin/env bash
# Sparse logistic regression throughput on a 10^6-feature synthetic set:
# (a) the server's apply rate in keys/s: ps-bench pushes K random keys of
#     dim 1 (drawn from 10^6 distinct keys) to one ps-server applying FTRL;
# (b) one ps-worker training logreg against one ps-server, samples/s, with
#     and without overlapping the exchange with compute, and the same
#     worker's compute-only rate (no servers).
# Usage: sparse_bench.sh [BUILD_DIR] [TRAIN_ROWS] [EPOCHS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
rows=${2:-200000}
epochs=${3:-2}
bench=$build/tests/bench/ps-bench
worker=$build/worker/ps-worker
server=$build/server/ps-server
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

start_server() {
    "$server" --listen tcp://127.0.0.1:0 >"$dir/ep" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do [ -s "$dir/ep" ] && break; sleep 0.05; done
    ep=$(head -n1 "$dir/ep")
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
rate() { grep '"event":"done"' | field samples_per_s; }

echo "generating $rows rows over 10^6 features (40 per row) ..." >&2
python3 "$root/tests/integration/gen_sparse_lr.py" "$dir/train.svm" "$dir/test.svm" \
    --features 1000000 --train-rows "$rows" --test-rows 1000 --nnz 40 \
    --density 0.05 --scale 2 --seed 3 >/dev/null

echo "(a) server apply rate: FTRL pushes, dim 1, keys from 10^6"
printf '%-8s %-9s %12s %14s %10s\n' keys inflight ops/s keys/s p50_us
for keys in 1024 16384; do
    for inflight in 1 4; do
        start_server
        out=$("$bench" --servers "$ep" --sparse --dim 1 --keys "$keys" \
            --key-space 1000000 --op push --optimizer ftrl --lr 0.05 \
            --inflight "$inflight" --seconds 3 --json 2>/dev/null)
        stop_server
        ops=$(field ops_per_s <<<"$out")
        printf '%-8s %-9s %12.0f %14.0f %10s\n' "$keys" "$inflight" "$ops" \
            "$(awk -v o="$ops" -v k="$keys" 'BEGIN { print o * k }')" \
            "$(field p50_us <<<"$out")"
    done
done

echo "(b) worker samples/s, logreg (2^24 keys), $rows rows x $epochs epochs"
printf '%-6s %-16s %12s %8s\n' batch mode samples/s ratio
for batch in 256 1024; do
    common=(--model logreg --format libsvm --data "$dir/train.svm" --batch "$batch"
        --epochs "$epochs" --progress-every 1000)
    base=$("$worker" --compute-only "${common[@]}" 2>/dev/null | rate)
    printf '%-6s %-16s %12.0f %8s\n' "$batch" compute-only "$base" 1.00
    for overlap in true false; do
        start_server
        r=$("$worker" --servers "$ep" --overlap="$overlap" "${common[@]}" 2>/dev/null | rate)
        stop_server
        printf '%-6s %-16s %12.0f %8.2f\n' "$batch" "overlap=$overlap" "$r" \
            "$(awk -v a="$r" -v b="$base" 'BEGIN { print a / b }')"
    done
done
