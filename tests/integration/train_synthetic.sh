#!/usr/bin/env bash
# End to end on real processes: ps-train starts 2 servers and 2 workers that
# learn a synthetic 3-class problem (Gaussian blobs, 4 features, CSV) with an
# MLP; the test accuracy reported by the workers must reach 0.95, with the
# default cadence, with two devices per worker (--device cpu,cpu), and
# with gradient accumulation and a step schedule.
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
# Each worker a group of two CPU replicas (ps-train passes --device on).
train --epochs 6 --lr 0.01 --workers 2 --device cpu,cpu
# Gradient accumulation, sparser pulls, a step schedule with warm-up.
train --epochs 6 --lr 0.02 --push-every 2 --pull-every 2 \
    --lr-schedule step:2:0.5 --warmup-steps 20

# --http: shard 0 serves the dashboard while training runs, its URL on
# stderr, and its /status lists both workers with their progress (workers
# report on pushes to every shard, so one page shows the whole job).
"$train" --format csv --data "$dir/train.csv" --eval "$dir/test.csv" \
    --model mlp:4-16-3 --batch 8 --epochs 60 --lr 0.01 --json \
    --http 127.0.0.1:0 >"$dir/http.out" 2>"$dir/http.err" &
pid=$!
url=""
for _ in $(seq 300); do
    url=$(sed -n 's|^ps-train: dashboard \(http://[^ ]*\)/ .*|\1|p' "$dir/http.err")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { kill "$pid"; echo "ps-train --http printed no dashboard URL" >&2; cat "$dir/http.err" >&2; exit 1; }
seen=""
for _ in $(seq 300); do
    status=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$url/status" 2>/dev/null || true)
    if python3 -c 'import json, sys; w = json.loads(sys.argv[1])["workers"]; sys.exit(not (len(w) == 2 and all(x.get("samples", 0) > 0 for x in w)))' "$status" 2>/dev/null; then
        seen=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
page=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$url/" 2>/dev/null || true)
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true
[ -n "$seen" ] || { echo "the dashboard's /status never listed 2 training workers" >&2; exit 1; }
grep -q "<html" <<<"$page" || { echo "no dashboard page at $url/" >&2; exit 1; }
echo "ps-train --http: dashboard at $url listed both workers while they trained"
# A bad --http value: ps-train stops, naming it (the server's message).
if out=$("$train" --format csv --data "$dir/train.csv" --eval "" --model mlp:4-16-3 \
    --epochs 1 --http nonsense 2>&1); then
    echo "ps-train --http nonsense succeeded" >&2
    exit 1
fi
grep -q -- "--http: 'nonsense' has no port" <<<"$out" ||
    { echo "ps-train --http nonsense: unclear error: $out" >&2; exit 1; }
echo "ps-train --http nonsense: refused, naming the flag"
