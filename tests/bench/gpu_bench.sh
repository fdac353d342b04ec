#!/usr/bin/env bash
# The GPU issue's benchmark: one ps-worker training the Fashion-MNIST MLP
# (784-256-128-10) on each device given, at batch 64, 256 and 1024, first
# without servers (--compute-only), then against one ps-server with and
# without --overlap. Prints samples/s, the ratio to that device's
# compute-only rate and the share of step time spent waiting on the
# network (the worker's wait_share), plus one JSON line per run with
# --json-out. On a GPU the server round trip, not the compute, should be
# the limit: wait_share near 1 with the servers.
#
# Usage: gpu_bench.sh [--build DIR] [--epochs E] [--json-out FILE] [DEVICE...]
#   DEVICE: anything ps-worker --device takes (default: cpu cuda:0); a
#   device that cannot be opened (no GPU, no driver) is reported and
#   skipped, so the script runs anywhere.
set -euo pipefail
build=$(cd "$(dirname "$0")/../.." && pwd)/build
epochs=1
json_out=""
devices=()
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=${2:?--build needs a directory}; shift 2 ;;
    --epochs) epochs=${2:?--epochs needs a number}; shift 2 ;;
    --json-out) json_out=${2:?--json-out needs a file}; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu_bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) devices+=("$1"); shift ;;
    esac
done
[ ${#devices[@]} -gt 0 ] || devices=(cpu cuda:0)
case "$epochs" in '' | *[!0-9]* | 0) echo "gpu_bench: --epochs must be a positive integer" >&2; exit 2 ;; esac
data=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
[ -f "$data" ] || { echo "gpu_bench: $data missing (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
worker=$build/worker/ps-worker
server=$build/server/ps-server
for b in "$worker" "$server"; do
    [ -x "$b" ] || { echo "gpu_bench: $b not built (--build DIR)" >&2; exit 1; }
done
[ -z "$json_out" ] || : >"$json_out"
pid=""
tmp=$(mktemp -d)
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
printf '1,2,3,4,0\n5,6,7,8,1\n1,1,1,1,2\n2,2,2,2,0\n' >"$tmp/probe.csv"

# field NAME: NAME's number in the worker's "done" line on stdin.
field() { grep '"event":"done"' | sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p"; }

# run DEVICE BATCH MODE [ps-worker args...]: one training run; prints its
# row and appends its JSON line.
run() {
    local device=$1 batch=$2 mode=$3
    shift 3
    if ! "$worker" --device "$device" --data "$data" --batch "$batch" --epochs "$epochs" \
        --progress-every 1000 "$@" >"$tmp/out" 2>"$tmp/err"; then
        echo "gpu_bench: $device batch $batch $mode failed: $(tail -n1 "$tmp/err")" >&2
        return 1
    fi
    local rate share
    rate=$(field samples_per_s <"$tmp/out")
    share=$(field wait_share <"$tmp/out")
    [ "$mode" = compute-only ] && base=$rate
    printf '%-14s %-6s %-22s %12.0f %8.2f %10.3f\n' "$device" "$batch" "$mode" "$rate" \
        "$(awk -v a="$rate" -v b="$base" 'BEGIN { print a / b }')" "$share"
    [ -z "$json_out" ] || printf '{"device":"%s","batch":%s,"mode":"%s","samples_per_s":%s,"wait_share":%s,"epochs":%s}\n' \
        "$device" "$batch" "$mode" "$rate" "$share" "$epochs" >>"$json_out"
}

# with_server DEVICE BATCH MODE [args...]: run against a fresh ps-server.
with_server() {
    "$server" --listen tcp://127.0.0.1:0 >"$tmp/srv" 2>/dev/null &
    pid=$!
    for _ in $(seq 200); do [ -s "$tmp/srv" ] && break; sleep 0.05; done
    local ep rc=0
    ep=$(head -n1 "$tmp/srv")
    run "$@" --servers "$ep" || rc=1
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    pid=""
    return $rc
}

printf '%-14s %-6s %-22s %12s %8s %10s\n' device batch mode samples/s vs-comp wait_share
for device in "${devices[@]}"; do
    # A device that cannot be opened says why once and is skipped.
    if ! "$worker" --device "$device" --compute-only --format csv --data "$tmp/probe.csv" \
        --model mlp:4-8-3 --batch 4 --epochs 1 >/dev/null 2>"$tmp/probe"; then
        echo "gpu_bench: skipping $device: $(tail -n1 "$tmp/probe")" >&2
        continue
    fi
    for batch in 64 256 1024; do
        base=""
        run "$device" "$batch" compute-only --compute-only || continue
        with_server "$device" "$batch" "server" || true
        with_server "$device" "$batch" "server --overlap" --overlap || true
    done
done
