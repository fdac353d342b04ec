#!/usr/bin/env bash
# sweep.sh: ps-bench pushpull against zmq-echo (the raw ZeroMQ reference)
# over payload sizes, with 1 and 2 loopback shards, and the "2 shards at
# 16 MiB not below 1 shard" comparison. See tests/bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: sweep.sh [options]
Starts ps-server shards on 127.0.0.1 (port 0) and, for 1 KiB, 64 KiB,
1 MiB and 16 MiB payloads, runs zmq-echo and ps-bench --op pushpull
(inflight 1, and 8 at 1 KiB) against 1 shard, then 2 shards. Prints a
table, then the median GB/s of alternating 1-shard / 2-shard runs at 16 MiB.

options:
  --bin DIR          where ps-server, ps-bench and zmq-echo are (DIR, or the
                     build tree's server/ and tests/bench/ under it); default:
                     <repo>/build, then ../build beside the repo, then PATH.
                     PS_SERVER_BIN, PS_BENCH_BIN, ZMQ_ECHO_BIN override one.
  --seconds S        measured seconds per run (default 3)
  --runs N           runs per side in the 16 MiB comparison (default 5)
  --quick            1 s runs, 3 comparison runs (the CI smoke test)
  --json-out FILE    also write every run as one JSON line to FILE
  --tolerance F      2 shards pass when >= (1 - F) x 1 shard (default 0.05)
  --strict           exit 1 when the comparison fails (default: report it)
  --server-arg ARG   extra argument for every ps-server (repeatable)
  -h, --help         this text
Exit status: 0 done, 1 a program failed (or --strict and the comparison
failed), 2 bad usage.
EOF
}

die() {
    echo "sweep: $*" >&2
    exit 1
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
BIN_DIR=""
DURATION=3
RUNS=5
QUICK=0
JSON_OUT=""
TOLERANCE=0.05
STRICT=0
SERVER_ARGS=()

while [ $# -gt 0 ]; do
    case "$1" in
    --bin) BIN_DIR=${2:?--bin needs a directory}; shift 2 ;;
    --bin=*) BIN_DIR=${1#*=}; shift ;;
    --seconds) DURATION=${2:?--seconds needs a value}; shift 2 ;;
    --seconds=*) DURATION=${1#*=}; shift ;;
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --quick) QUICK=1; shift ;;
    --json-out) JSON_OUT=${2:?--json-out needs a file}; shift 2 ;;
    --json-out=*) JSON_OUT=${1#*=}; shift ;;
    --tolerance) TOLERANCE=${2:?--tolerance needs a value}; shift 2 ;;
    --tolerance=*) TOLERANCE=${1#*=}; shift ;;
    --strict) STRICT=1; shift ;;
    --server-arg) SERVER_ARGS+=("${2:?--server-arg needs a value}"); shift 2 ;;
    --server-arg=*) SERVER_ARGS+=("${1#*=}"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "sweep: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

WARMUP=0.5
if [ "$QUICK" = 1 ]; then
    DURATION=1
    RUNS=3
    WARMUP=0.2
fi
case "$RUNS" in '' | *[!0-9]* | 0) echo "sweep: --runs must be a positive integer" >&2; exit 2 ;; esac
command -v python3 >/dev/null || die "python3 is needed to read the JSON results"

# find_bin NAME ENVVAR: the path of one of our programs.
find_bin() {
    local name=$1 override=${!2:-} dirs=() d
    if [ -n "$override" ]; then
        [ -x "$override" ] || die "$2=$override is not an executable"
        echo "$override"
        return
    fi
    if [ -n "$BIN_DIR" ]; then
        dirs=("$BIN_DIR")
    else
        dirs=("$REPO/build" "$REPO/../build")
    fi
    for d in "${dirs[@]}"; do
        for sub in "" /server /tests/bench /bin; do
            if [ -x "$d$sub/$name" ] && [ -f "$d$sub/$name" ]; then
                echo "$d$sub/$name"
                return
            fi
        done
    done
    if [ -z "$BIN_DIR" ] && command -v "$name" >/dev/null; then
        command -v "$name"
        return
    fi
    die "cannot find $name${BIN_DIR:+ under $BIN_DIR} (build it, or pass --bin DIR)"
}

PS_SERVER=$(find_bin ps-server PS_SERVER_BIN)
PS_BENCH=$(find_bin ps-bench PS_BENCH_BIN)
ZMQ_ECHO=$(find_bin zmq-echo ZMQ_ECHO_BIN)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ps-sweep.XXXXXX")
SERVER_PIDS=()

# shellcheck disable=SC2317 # stop_server and cleanup run from the trap
stop_server() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317
cleanup() {
    local pid
    for pid in ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}; do
        stop_server "$pid"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server SHARD SHARDS: starts one shard and sets ENDPOINT to the line
# it prints first. The server writes into a FIFO, so we wait for exactly
# that line (or its exit) rather than for some time.
start_server() {
    local shard=$1 shards=$2 fifo="$TMP/server-$2-$1.fifo"
    local err="$TMP/server-$2-$1.err" fd line=""
    mkfifo "$fifo"
    "$PS_SERVER" --listen tcp://127.0.0.1:0 --shard "$shard" \
        --shards "$shards" ${SERVER_ARGS[@]+"${SERVER_ARGS[@]}"} \
        >"$fifo" 2>"$err" &
    SERVER_PIDS+=($!)
    exec {fd}<"$fifo"
    if ! read -r -t 15 -u "$fd" line || [ -z "$line" ]; then
        exec {fd}<&-
        cat "$err" >&2 || true
        die "ps-server shard $shard of $shards did not print its endpoint"
    fi
    # Keep draining its stdout so a chatty server can never block on it.
    cat <&"$fd" >>"$TMP/server-$2-$1.out" &
    exec {fd}<&-
    ENDPOINT=$line
}

# run_json CMD...: runs a benchmark and prints its JSON line.
run_json() {
    local out
    if ! out=$("$@" 2>"$TMP/last.err"); then
        cat "$TMP/last.err" >&2
        die "failed: $*"
    fi
    printf '%s\n' "$out" | tail -n 1
}

# field JSON KEY...: the values of KEYs, space-separated.
field() {
    python3 -c 'import json, sys
d = json.loads(sys.argv[1])
print(" ".join(str(d[k]) for k in sys.argv[2:]))' "$@"
}

# save JSON EXTRA_JSON: appends JSON merged with EXTRA_JSON to --json-out.
save() {
    [ -n "$JSON_OUT" ] || return 0
    python3 -c 'import json, sys
d = json.loads(sys.argv[1])
d.update(json.loads(sys.argv[2]))
print(json.dumps(d, separators=(",", ":")))' "$1" "$2" >>"$JSON_OUT"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "nan" }'
}

human_size() {
    case "$1" in
    1024) echo 1KiB ;;
    65536) echo 64KiB ;;
    1048576) echo 1MiB ;;
    16777216) echo 16MiB ;;
    *) echo "$1" ;;
    esac
}

echo_run() {
    run_json "$ZMQ_ECHO" --bytes "$1" --inflight "$2" --seconds "$DURATION" \
        --warmup "$WARMUP" --json
}

bench_run() { # SERVERS BYTES INFLIGHT [extra flags]
    local servers=$1 bytes=$2 inflight=$3
    shift 3
    run_json "$PS_BENCH" --servers "$servers" --op pushpull --bytes "$bytes" \
        --inflight "$inflight" --seconds "$DURATION" --warmup "$WARMUP" \
        --json "$@"
}

if [ -n "$JSON_OUT" ]; then
    : >"$JSON_OUT" || die "cannot write $JSON_OUT"
fi

SIZES=(1024 65536 1048576 16777216)
CONFIGS=()
for s in "${SIZES[@]}"; do
    CONFIGS+=("$s:1")
    [ "$s" = 1024 ] && CONFIGS+=("$s:8")
done


declare -A ECHO_OPS ECHO_GBS
sweep_phase() { # SHARDS SERVERS
    local shards=$1 servers=$2 c bytes inflight e b eo eg po pg p50 p99 r
    for c in "${CONFIGS[@]}"; do
        bytes=${c%:*}
        inflight=${c#*:}
        if [ -z "${ECHO_OPS[$c]:-}" ]; then
            e=$(echo_run "$bytes" "$inflight")
            read -r eo eg <<<"$(field "$e" ops_per_s gbytes_per_s)"
            ECHO_OPS[$c]=$eo
            ECHO_GBS[$c]=$eg
            save "$e" '{"phase":"sweep"}'
        fi
        eo=${ECHO_OPS[$c]}
        eg=${ECHO_GBS[$c]}
        b=$(bench_run "$servers" "$bytes" "$inflight" --shards-check)
        read -r po pg p50 p99 <<<"$(field "$b" ops_per_s gbytes_per_s p50_us p99_us)"
        r=$(ratio "$po" "$eo")
        save "$b" "{\"phase\":\"sweep\",\"echo_ops_per_s\":$eo,\"ratio\":$r}"
        row "$(human_size "$bytes")" "$inflight" "$shards" "$eo" "$eg" \
            "$po" "$pg" "$r" "$p50" "$p99"
    done
}

start_server 0 1
ONE=$ENDPOINT
row() {
    printf '%-6s %8s %6s %11s %9s %11s %9s %6s %9s %9s\n' "$@"
}
row size inflight shards "echo rt/s" "echo GB/s" "ps ops/s" "ps GB/s" \
    ratio "p50 us" "p99 us"
sweep_phase 1 "$ONE"

start_server 0 2
TWO=$ENDPOINT
start_server 1 2
TWO="$TWO,$ENDPOINT"
sweep_phase 2 "$TWO"

# The comparison: alternate so drift (thermal, other load) hits both sides.
BIG=16777216
G1=()
G2=()
for i in $(seq "$RUNS"); do
    b=$(bench_run "$ONE" "$BIG" 1)
    G1+=("$(field "$b" gbytes_per_s)")
    save "$b" "{\"phase\":\"compare\",\"run\":$i}"
    b=$(bench_run "$TWO" "$BIG" 1)
    G2+=("$(field "$b" gbytes_per_s)")
    save "$b" "{\"phase\":\"compare\",\"run\":$i}"
done
read -r M1 M2 VERDICT <<<"$(python3 -c 'import statistics, sys
n = int(sys.argv[1]); tol = float(sys.argv[2]); v = sys.argv[3:]
m1 = statistics.median(map(float, v[:n]))
m2 = statistics.median(map(float, v[n:]))
print(m1, m2, "yes" if m2 >= (1 - tol) * m1 else "NO")' \
    "$RUNS" "$TOLERANCE" "${G1[@]}" "${G2[@]}")"
echo
echo "16MiB pushpull, $RUNS alternating runs: 1 shard GB/s: ${G1[*]}"
echo "                                  2 shards GB/s: ${G2[*]}"
echo "median 1 shard $M1 GB/s, 2 shards $M2 GB/s (ratio $(ratio "$M2" "$M1"));" \
    "2 shards not below 1 shard (tolerance $TOLERANCE): $VERDICT"
if [ -n "$JSON_OUT" ]; then
    printf '{"op":"compare","bytes":%s,"runs":%s,"median_gbytes_per_s_1shard":%s,"median_gbytes_per_s_2shards":%s,"tolerance":%s,"pass":%s}\n' \
        "$BIG" "$RUNS" "$M1" "$M2" "$TOLERANCE" \
        "$([ "$VERDICT" = yes ] && echo true || echo false)" >>"$JSON_OUT"
fi
if [ "$VERDICT" != yes ] && [ "$STRICT" = 1 ]; then
    exit 1
fi
exit 0
