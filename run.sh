#!/usr/bin/env bash
# The main job: installs dependencies, builds, starts a local 2-shard
# cluster on loopback and drives it with ps-bench (push+pull round trips
# with the servers applying SGD), printing each run as it finishes.
# (Once ps-worker lands this becomes Fashion-MNIST training.)
set -euo pipefail
cd "$(dirname "$0")"
./install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

endpoints=()
for shard in 0 1; do
    out=$(mktemp)
    build/server/ps-server --listen tcp://127.0.0.1:0 --shard $shard --shards 2 >"$out" &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
    endpoints+=("$(head -n1 "$out")")
    rm -f "$out"
done
servers=$(IFS=,; echo "${endpoints[*]}")
echo "cluster up: $servers"
for bytes in 1024 65536 1048576 16777216; do
    build/tests/bench/ps-bench --servers "$servers" --op pushpull \
        --bytes $bytes --seconds 2 --json
done
