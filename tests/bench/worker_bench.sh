#!/usr/bin/env bash
# Worker throughput with communication against the same worker's
# compute-only throughput (same model, batch and thread count, no servers):
# one ps-worker, one ps-server, MLP 784-256-128-10 on Fashion-MNIST (one
# epoch each), for several batch sizes and pull cadences. Prints one line
# per run and the ratio to compute-only.
# Usage: worker_bench.sh [BUILD_DIR] [EPOCHS]
set -euo pipefail
build=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build}
epochs=${2:-1}
data=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
[ -f "$data" ] || { echo "worker_bench: $data missing (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
worker=$build/worker/ps-worker
server=$build/server/ps-server
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

rate() { grep '"event":"done"' | sed -n 's/.*"samples_per_s":\([0-9.]*\).*/\1/p'; }

printf '%-6s %-22s %12s %8s\n' batch mode samples/s ratio
for batch in 64 256; do
    base=$("$worker" --compute-only --data "$data" --batch "$batch" --epochs "$epochs" --progress-every 1000 2>/dev/null | rate)
    printf '%-6s %-22s %12.0f %8s\n' "$batch" compute-only "$base" 1.00
    for cadence in "1 true" "1 false" "4 true"; do
        read -r pull overlap <<<"$cadence"
        out=$(mktemp)
        "$server" --listen tcp://127.0.0.1:0 >"$out" 2>/dev/null &
        pid=$!
        for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
        ep=$(head -n1 "$out"); rm -f "$out"
        r=$("$worker" --servers "$ep" --data "$data" --batch "$batch" --epochs "$epochs" \
            --pull-every "$pull" --overlap="$overlap" --progress-every 1000 2>/dev/null | rate)
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
        printf '%-6s %-22s %12.0f %8.2f\n' "$batch" "pull-every $pull overlap=$overlap" "$r" \
            "$(awk -v a="$r" -v b="$base" 'BEGIN { print a / b }')"
    done
done
