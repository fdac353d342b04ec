#!/usr/bin/env bash
# The connector's stream format end to end: a CSV turned into a stream by
# stream_gen is piped into ps-worker (--format stream --data -) against a
# real ps-server; two epochs read the second from the cache. A cut-off or
# bad stream, and --eval -, fail with a clear message.
# Usage: worker_cli_stream.sh PS_WORKER PS_SERVER STREAM_GEN
set -uo pipefail
worker=${1:?usage: worker_cli_stream.sh PS_WORKER PS_SERVER STREAM_GEN}
server=${2:?}
gen=${3:?}
dir=$(mktemp -d)
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
failures=0
fail() {
    echo "FAIL $1" >&2
    failures=$((failures + 1))
}

coproc SRV { exec "$server" --listen tcp://127.0.0.1:0 2>"$dir/server.log"; }
# shellcheck disable=SC2153 # SRV_PID is set by the coproc SRV above
srv_pid=$SRV_PID
if ! read -r -t 10 ep <&"${SRV[0]}"; then
    echo "ps-server did not start:" >&2
    cat "$dir/server.log" >&2
    exit 1
fi

# 600 rows, 4 features, 3 classes; more rows than --shuffle-rows so epoch 2
# really rewinds (and replays the cache).
awk 'BEGIN { for (i = 0; i < 600; i++) printf "%d,%d,%d,%d,%d\n", i % 7, i % 5, i % 3, i % 2, i % 3 }' >"$dir/train.csv"
mkdir "$dir/cache"
common=(--servers "$ep" --format stream --data - --model mlp:4-8-3 --batch 16
    --shuffle-rows 64 --progress-every 0 --cache-dir "$dir/cache")

"$gen" --batch 50 <"$dir/train.csv" |
    "$worker" "${common[@]}" --epochs 2 >"$dir/out.json" 2>"$dir/err.log"
st=$?
if [ "$st" -ne 0 ]; then
    fail "stream-two-epochs: exit $st"
    tail -n 5 "$dir/err.log" >&2
elif ! grep -q '"event":"epoch","worker":0,"epoch":2,"samples":1200,' "$dir/out.json" ||
    ! grep -q '"event":"done"' "$dir/out.json"; then
    fail "stream-two-epochs: no epoch 2 with 1200 samples"
    tail -n 5 "$dir/out.json" >&2
elif [ -n "$(ls -A "$dir/cache")" ]; then
    fail "stream-two-epochs: cache file left in --cache-dir"
else
    echo "ok   stream-two-epochs"
fi

# expect NAME STATUS TEXT -- COMMAND...: exit STATUS, TEXT in stderr.
expect() {
    local name=$1 want=$2 text=$3
    shift 4
    local out st
    out=$("$@" 2>&1 >/dev/null)
    st=$?
    if [ "$st" -ne "$want" ] || ! grep -qF -- "$text" <<<"$out"; then
        fail "$name: exit $st (want $want), output: $(tail -n 3 <<<"$out")"
    else
        echo "ok   $name"
    fi
}
run_piped() { # GEN_ARGS... -- WORKER_ARGS...
    local g=()
    while [ "$1" != -- ]; do g+=("$1"); shift; done
    shift
    "$gen" "${g[@]}" <"$dir/train.csv" | "$worker" "$@"
}
expect stream-cut-off 1 "stdin: batch 12: input ended without the end marker" -- \
    run_piped --batch 50 --break cut -- "${common[@]}" --epochs 1
expect stream-cut-off-2-epochs 1 "stdin: batch 12: input ended without the end marker" -- \
    run_piped --batch 50 --break cut -- "${common[@]}" --epochs 2
expect stream-nan-label 1 "stdin: batch 0: row 0: label is not finite (nan)" -- \
    run_piped --batch 50 --break nan -- "${common[@]}"
# shellcheck disable=SC2016 # $0 and $@ are the inner sh's, set from its arguments
expect stream-not-a-stream 1 "stdin: bad magic 30 2c 30 2c" -- \
    sh -c '"$0" "$@" <"'"$dir/train.csv"'"' "$worker" "${common[@]}"
# shellcheck disable=SC2016 # as above
expect stream-empty 1 "stdin: empty input (no stream header)" -- \
    sh -c '"$0" "$@" </dev/null' "$worker" "${common[@]}"
expect stream-eval-stdin 2 "--eval: stdin (-) is not accepted" -- \
    "$worker" "${common[@]}" --eval -
expect stream-bad-cache-dir 1 "cannot create a cache file in $dir/none" -- \
    run_piped --batch 50 -- "${common[@]}" --epochs 2 --cache-dir "$dir/none"

[ "$failures" -eq 0 ] || { echo "$failures case(s) failed" >&2; exit 1; }
echo "all stream worker cases passed"
