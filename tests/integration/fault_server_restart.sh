#!/usr/bin/env bash
# Fault test (1) of the reliability issue: one of two servers is killed
# (SIGSTOP, so requests are in flight to it, then SIGKILL) in the middle of
# training and restarted on the same port with --restore latest; the workers' requests time out, are retried against the
# restarted server, and training completes with the accuracy floor of
# train_fmnist.sh (MLP 784-256-128-10 on Fashion-MNIST, 2 servers, 2
# workers, ps-train's defaults, 2 epochs: the lower of the two workers'
# final test accuracies >= 0.82).
#
# Checked besides the accuracy: both workers exit 0, the restarted server
# says which checkpoint it restored, and the workers logged the retry
# (a warning naming the shard), not silence.
#
# Also the engine of tests/bench/fault_restart_bench.sh: EPOCHS (2), FAULT
# (1; 0: the same run without the kill), FLOOR (0.82; 0: no check) and
# KILL_AT (0.4: the kill comes once worker 0 has done this share of its
# samples) set the run; the last stdout line is a JSON summary
# {"fault":..,"test_accuracy":..,"seconds":..,"killed_at_samples":..,
#  "restored":..,"retry_warnings":..}.
# Exits 77 (ctest: skipped) when the dataset package is missing.
# Usage: fault_server_restart.sh BIN_DIR SERVER_BIN
set -uo pipefail
bin=${1:?usage: fault_server_restart.sh BIN_DIR SERVER_BIN}
server=${2:?usage: fault_server_restart.sh BIN_DIR SERVER_BIN}
epochs=${EPOCHS:-2}
fault=${FAULT:-1}
floor=${FLOOR:-0.82}
kill_at=${KILL_AT:-0.4}
data=/usr/share/datasets/fashion-mnist
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: $data missing (apt-get install dataset-fashion-mnist)" >&2
    exit 77
fi
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
die() {
    echo "FAIL: $*" >&2
    for f in "$dir"/*.err; do
        echo "--- $f" >&2
        tail -n 8 "$f" >&2
    done
    exit 1
}

# start_shard I LISTEN: one shard with checkpoints every second, restoring
# the newest one of its own when there is one (the same command line for
# the first start and the restart); sets srv_pid[I].
srv_pid=()
start_shard() {
    local i=$1 listen=$2 n
    n=0
    while [ -e "$dir/s$i.$n.err" ]; do n=$((n + 1)); done
    "$server" --listen "$listen" --shard "$i" --shards 2 --cluster-id fault \
        --checkpoint-dir "$dir/ck" --checkpoint-every 1 --restore latest \
        >"$dir/s$i.$n.out" 2>"$dir/s$i.$n.err" &
    srv_pid[i]=$!
    pids+=($!)
    local tries=0
    until [ -s "$dir/s$i.$n.out" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 3000 ] || die "shard $i did not start"
        kill -0 "${srv_pid[$i]}" 2>/dev/null || die "shard $i exited at start"
        sleep 0.01
    done
    endpoint[i]=$(head -n1 "$dir/s$i.$n.out")
}

endpoint=()
start_shard 0 tcp://127.0.0.1:0
start_shard 1 tcp://127.0.0.1:0
servers="${endpoint[0]},${endpoint[1]}"

start=$(date +%s.%N)
wpids=()
for i in 0 1; do
    "$bin/ps-worker" --servers "$servers" --worker-id "$i" --part "$i/2" \
        --data "$data/train-images-idx3-ubyte.gz" \
        --eval "$data/t10k-images-idx3-ubyte.gz" \
        --model mlp:784-256-128-10 --epochs "$epochs" --batch 64 \
        --optimizer adam --lr 0.0005 --lr-schedule cosine \
        --timeout 2000 --progress-every 0.2 \
        >"$dir/w$i.jsonl" 2>"$dir/w$i.err" &
    wpids[i]=$!
    pids+=($!)
done

# The last "samples" worker 0 reported.
samples() {
    grep -o '"samples":[0-9]*' "$dir/w0.jsonl" 2>/dev/null | tail -n1 | cut -d: -f2
}

killed_at=null
restored=null
if [ "$fault" = 1 ]; then
    # Fashion-MNIST has 60000 training rows; worker 0 sees half per epoch.
    target=$(awk -v e="$epochs" -v k="$kill_at" 'BEGIN { printf "%d", 30000 * e * k }')
    until [ "${s:=0}" -ge "$target" ] && ls "$dir"/ck/shard-1-*.ckpt >/dev/null 2>&1; do
        kill -0 "${wpids[0]}" 2>/dev/null || die "worker 0 ended before the kill"
        sleep 0.1
        s=$(samples)
        s=${s:-0}
    done
    killed_at=$s
    # Stopped first, the shard reads nothing more, so each worker's next
    # request to it is surely in flight (in the dead server's socket) when
    # the kill comes, and the timeout and retry path must run. Killed
    # between two requests, a server back within milliseconds could take
    # the next ones from libzmq's queue and no request would be lost.
    kill -STOP "${srv_pid[1]}"
    sleep 0.5
    kill -KILL "${srv_pid[1]}"
    wait "${srv_pid[1]}" 2>/dev/null
    echo "killed shard 1 (SIGKILL) at worker 0's sample $killed_at" >&2
    port=${endpoint[1]##*:}
    start_shard 1 "tcp://127.0.0.1:$port"
    [ "${endpoint[1]}" = "tcp://127.0.0.1:$port" ] || die "shard 1 came back on ${endpoint[1]}"
    restored=$(grep -ho 'restored checkpoint file=[^ ]*' "$dir"/s1.1.err | cut -d= -f2)
    [ -n "$restored" ] || die "the restarted shard restored no checkpoint"
    echo "shard 1 restarted on port $port from $restored" >&2
fi

for i in 0 1; do
    wait "${wpids[$i]}"
    st=$?
    [ "$st" -eq 0 ] || die "worker $i exited $st"
done
end=$(date +%s.%N)
for i in 0 1; do
    grep -q '"event":"done"' "$dir/w$i.jsonl" || die "worker $i did not finish"
done
# The lower of the two workers' final test accuracies (ps-train reports
# the one that finished last: this is never kinder).
acc=$(for i in 0 1; do
    grep -o '"test_accuracy":[0-9.]*' "$dir/w$i.jsonl" | tail -n1 | cut -d: -f2
done | sort -n | head -n1)
[ -n "$acc" ] || die "no test_accuracy in the workers' output"
warnings=$(grep -c "reconnecting shard=1" "$dir"/w*.err | awk -F: '{ s += $NF } END { print s + 0 }')
if [ "$fault" = 1 ] && [ "$warnings" -eq 0 ]; then
    die "the workers logged no retry against the restarted shard"
fi
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
for p in "${srv_pid[@]}"; do kill -TERM "$p"; done
for p in "${srv_pid[@]}"; do wait "$p" || die "a server exited $? on SIGTERM"; done
pids=()
if grep -lE "AddressSanitizer|runtime error|LeakSanitizer" "$dir"/*.err 2>/dev/null; then
    die "sanitizer reports above"
fi
if [ "$floor" != 0 ]; then
    awk -v a="$acc" -v f="$floor" 'BEGIN { exit !(a >= f) }' ||
        die "test accuracy $acc < $floor"
fi
echo "fashion-mnist, $epochs epoch(s), fault=$fault: test accuracy $acc (the lower of the two workers' final ones), ${secs} s, retry warnings $warnings"
printf '{"fault":%s,"epochs":%s,"test_accuracy":%s,"seconds":%s,"killed_at_samples":%s,"restored":%s,"retry_warnings":%s}\n' \
    "$([ "$fault" = 1 ] && echo true || echo false)" "$epochs" "$acc" "$secs" \
    "$killed_at" "$([ "$restored" = null ] && echo null || echo "\"$restored\"")" "$warnings"
