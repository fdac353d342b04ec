#!/usr/bin/env bash
# Bad input at the worker's entry points (flags, data files, data that does
# not fit the model) gets a clear error and a non-zero exit, never a crash.
# Also: a device group and the cpu-deferred testing device train against a
# real server (the latter to exactly the figures of cpu).
# Usage: worker_cli.sh BIN_DIR PS_SERVER  (BIN_DIR holds ps-worker, ps-train)
set -uo pipefail
bin=${1:?usage: worker_cli.sh BIN_DIR PS_SERVER}
server=${2:?usage: worker_cli.sh BIN_DIR PS_SERVER}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# shellcheck source=cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"


printf '1,2,3,4,0\n2,3,4,5,1\n3,4,5,6,2\n' >"$dir/good.csv"
printf '1,2,3,4,0\n2,3,4,5,5\n3,4,5,6,2\n' >"$dir/label5.csv"
printf '1,2,3,4,0\n2,3,x,5,1\n' >"$dir/badnum.csv"
printf '1,2,3,4,0\n2,3,4,1\n' >"$dir/short.csv"

w=$bin/ps-worker
t=$bin/ps-train
expect help 0 "--servers LIST" -- "$w" --help
expect no-args 2 "required" -- "$w"
expect bad-part 2 "--part" -- "$w" --servers tcp://127.0.0.1:1 --data x --part 2/2
expect bad-part-text 2 "--part" -- "$w" --servers tcp://127.0.0.1:1 --data x --part a
expect bad-format 2 "--format" -- "$w" --servers tcp://127.0.0.1:1 --data x --format foo
expect bad-number-flag 2 "--batch" -- "$w" --servers tcp://127.0.0.1:1 --data x --batch 0
expect unknown-flag 2 "--nope" -- "$w" --nope
expect missing-file 1 "$dir/none.csv" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/none.csv"
expect width-mismatch 1 "first width" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:5-3
# A GPU the worker cannot use is a clear error naming what is missing: the
# build (without CUDA), the driver or the device (CUDA build, no GPU), or
# the device number (cuda:99 on a machine with GPUs).
expect_re cuda-unusable 1 "device cuda:99: (sparkps was built without CUDA|no CUDA driver|no CUDA device visible|CUDA unavailable)|device cuda:99 but only [0-9]+ CUDA device" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cuda:99
# The CUDA toolkit's stub libcuda (found through LD_LIBRARY_PATH, a common
# mistake) is named as such, on a GPU machine too: LD_LIBRARY_PATH comes
# before the driver's own. Where the build has CUDA and the stub is there.
stub=/usr/local/cuda/lib64/stubs/libcuda.so
if [ -e "$stub" ] && ldd "$w" | grep -q libcudart; then
    mkdir "$dir/stub" && ln -s "$stub" "$dir/stub/libcuda.so.1"
    expect cuda-stub-driver 1 "no CUDA driver: the libcuda found is the CUDA toolkit's stub" -- env LD_LIBRARY_PATH="$dir/stub" "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cuda:0
fi
# --device lists (a device group): each entry checked, a GPU listed twice
# refused, a GPU that cannot be used named (cuda:0 first: the list opens in
# order), and only the dense models train on several devices.
expect device-list-twice 1 "--device cuda:0,cuda:0: cuda:0 is listed twice (entries 1 and 2)" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cuda:0,cuda:0
expect device-list-cuda-alias 1 "cuda:0 is listed twice" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cuda,cuda:0
expect_re device-list-cuda-unusable 1 "device cuda:(0|99): (sparkps was built without CUDA|no CUDA driver|no CUDA device visible|CUDA unavailable)|device cuda:99 but only [0-9]+ CUDA device" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cuda:0,cuda:99
expect device-list-empty-entry 1 "--device cpu,,cpu: entry 2 is empty" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cpu,,cpu
expect device-list-bad-entry 1 "entry 2: unknown device \"gpu0\"" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cpu,gpu0
expect device-list-too-many 1 "more than 16 devices" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model mlp:4-3 --device cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu
expect device-list-logreg 1 "several devices train the dense models (softmax, mlp) only" -- "$w" --servers tcp://127.0.0.1:1 --model logreg --format libsvm --data "$dir/good.csv" --device cpu,cpu
expect bad-model 1 "cnn" -- "$w" --servers tcp://127.0.0.1:1 --format csv --data "$dir/good.csv" --model cnn
expect label-out-of-range 1 "row 1 of this worker's share: label 5" -- "$t" --format csv --data "$dir/label5.csv" --eval "" --model mlp:4-8-3 --epochs 1 --workers 1 --shards 1
expect bad-number 1 "badnum.csv:2" -- "$t" --format csv --data "$dir/badnum.csv" --eval "" --model mlp:4-8-3 --epochs 1 --workers 1 --shards 1
expect short-row 1 "short.csv:2" -- "$t" --format csv --data "$dir/short.csv" --eval "" --model mlp:4-8-3 --epochs 1 --workers 1 --shards 1
expect fmnist-missing 1 "apt-get install dataset-fashion-mnist" -- "$t" --data /usr/share/datasets/fashion-mnist/none.gz
expect eval-label-before-training 1 "label 5 is not a class of the model (0..2) in $dir/label5.csv" -- "$w" --compute-only --format csv --data "$dir/good.csv" --eval "$dir/label5.csv" --model mlp:4-3
expect bad-lr-schedule 2 "--lr-schedule 'cosine:2'" -- "$w" --servers tcp://127.0.0.1:1 --data x --lr-schedule cosine:2
expect bad-push-every 2 "--push-every" -- "$w" --servers tcp://127.0.0.1:1 --data x --push-every 0
# The schedule's factor reaches every push; an epoch line shows the lr of
# the epoch's last push: step:1:0.5 halves it each epoch.
expect lr-step-epoch2 0 '"epoch":2,"samples":6,' -- "$w" --compute-only --format csv --data "$dir/good.csv" --model mlp:4-3 --epochs 3 --lr 1 --lr-schedule step:1:0.5
expect lr-step-halves 0 '"lr":0.25' -- "$w" --compute-only --format csv --data "$dir/good.csv" --model mlp:4-3 --epochs 3 --lr 1 --lr-schedule step:1:0.5
expect eval-missing 1 "eval data" -- "$t" --format csv --data "$dir/good.csv" --eval "$dir/none.csv"
expect train-unknown-flag 2 "--nope" -- "$t" --nope
# SPARKPS_SERVERS is the client's endpoint list; ps-train must not read it
# as a count (its shard count is --shards / SPARKPS_SHARDS).
expect train-env-servers-list 1 "none.csv" -- env SPARKPS_SERVERS=tcp://127.0.0.1:7000 "$t" --format csv --data "$dir/none.csv"
# logreg: binary labels only, and sparse (libsvm) data only.
printf '1 1:1 3:2\n0 2:1\n-1 1:0.5\n' >"$dir/good.svm"
printf '1 1:1 3:2\n2 2:1\n' >"$dir/label2.svm"
expect logreg-label-2 1 "label 2 is not 0 or 1" -- "$t" --model logreg --format libsvm --data "$dir/label2.svm" --eval "" --epochs 1 --workers 1 --shards 1
expect logreg-eval-label-2 1 "label 2 is not 0 or 1" -- "$t" --model logreg --format libsvm --data "$dir/good.svm" --eval "$dir/label2.svm" --epochs 1 --workers 1 --shards 1
expect logreg-csv 1 "needs sparse data (--format libsvm or a sparse stream)" -- "$w" --servers tcp://127.0.0.1:1 --model logreg --format csv --data "$dir/good.csv"
expect logreg-bad-bits 1 "logreg:99" -- "$w" --servers tcp://127.0.0.1:1 --model logreg:99 --format libsvm --data "$dir/good.svm"
expect logreg-bad-optimizer 1 "logreg trains with" -- "$t" --model logreg --format libsvm --data "$dir/good.svm" --eval "" --optimizer momentum --epochs 1 --workers 1 --shards 1
expect logreg-schedule 1 "--lr-schedule and --warmup-steps are not supported" -- "$w" --servers tcp://127.0.0.1:1 --model logreg --format libsvm --data "$dir/good.svm" --lr-schedule cosine
expect logreg-push-every 1 "--push-every and --init-from are not supported" -- "$w" --servers tcp://127.0.0.1:1 --model logreg --format libsvm --data "$dir/good.svm" --push-every 2
expect logreg-trains 0 "test AUC" -- "$t" --model logreg --format libsvm --data "$dir/good.svm" --eval "$dir/good.svm" --epochs 1 --workers 1 --shards 1
# Ctrl-C stops ps-train and every process it started.
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "%d,%d,%d,%d,%d\n", i % 7, i % 5, i % 3, i % 2, i % 3 }' >"$dir/long.csv"
"$t" --format csv --data "$dir/long.csv" --eval "" --model mlp:4-64-3 --epochs 100000 >/dev/null 2>&1 &
train_pid=$!
sleep 2
kill -INT "$train_pid"
wait "$train_pid"
st=$?
sleep 0.5
if [ "$st" -ne 130 ] || pgrep -f "$dir/long.csv" >/dev/null; then
    echo "FAIL sigint: exit $st (want 130), leftovers: $(pgrep -f "$dir/long.csv" | tr '\n' ' ')" >&2
    pkill -f "$dir/long.csv"
    failures=$((failures + 1))
else
    echo "ok   sigint"
fi
# SIGTERM stops a worker at once even when its server is gone: its client
# gives up (ECANCELED) instead of waiting out 6 attempts of 5 s each.
"$server" --listen tcp://127.0.0.1:0 >"$dir/srv.out" 2>/dev/null &
srv=$!
for _ in $(seq 500); do [ -s "$dir/srv.out" ] && break; sleep 0.01; done
"$w" --servers "$(head -n1 "$dir/srv.out")" --format csv --data "$dir/long.csv" \
    --model mlp:4-64-3 --epochs 100000 --progress-every 0.1 >"$dir/wk.out" 2>"$dir/wk.err" &
wk=$!
# Training for real (a progress line) before the server goes: the case is a
# worker blocked on a push to a dead server.
for _ in $(seq 600); do grep -qs '"samples"' "$dir/wk.out" && break; sleep 0.1; done
kill -KILL "$srv"
wait "$srv" 2>/dev/null
sleep 0.3
kill -TERM "$wk"
for _ in $(seq 100); do kill -0 "$wk" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$wk" 2>/dev/null; then
    echo "FAIL sigterm-server-gone: the worker still runs 10 s after SIGTERM" >&2
    kill -KILL "$wk"
    failures=$((failures + 1))
else
    wait "$wk"
    echo "ok   sigterm-server-gone (exit $?: $(tail -n1 "$dir/wk.err"))"
fi
# A worker that fails stops the whole job (ps-train exits 1, nothing left).
printf '1,2,3,4,0\n' >"$dir/one.csv"
for _ in $(seq 3000); do printf '1,2,3,4,0\n'; done >>"$dir/one.csv"
printf '1,2,3,4,9\n' >>"$dir/one.csv"
expect worker-failure-stops-job 1 "a worker failed" -- "$t" --format csv --data "$dir/one.csv" --eval "" --model mlp:4-8-3 --epochs 3 --workers 2 --shards 1

# A device group trains as one worker against a real server: two CPU
# replicas (the host communicator) on the synthetic blobs reach the test
# accuracy floor of train_synthetic.sh (0.95).
blobs_csv 6000 1 >"$dir/blobs.csv"
blobs_csv 1500 2 >"$dir/blobs_test.csv"
"$server" --listen tcp://127.0.0.1:0 >"$dir/srv2.out" 2>/dev/null &
srv=$!
for _ in $(seq 500); do [ -s "$dir/srv2.out" ] && break; sleep 0.01; done
"$w" --servers "$(head -n1 "$dir/srv2.out")" --format csv --data "$dir/blobs.csv" \
    --eval "$dir/blobs_test.csv" --model mlp:4-16-3 --batch 32 --epochs 6 \
    --lr 0.01 --device cpu,cpu >"$dir/group.out" 2>"$dir/group.err"
st=$?
kill "$srv"
wait "$srv" 2>/dev/null
acc=$(tail -n1 "$dir/group.out" | sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p')
if [ "$st" -ne 0 ] || ! grep -q "device group devices=cpu,cpu replicas=2 comm=host" "$dir/group.err" ||
    ! awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 0.95) }'; then
    echo "FAIL device-group-trains: exit $st, test accuracy '${acc}' (want >= 0.95)" >&2
    cat "$dir/group.err" >&2
    failures=$((failures + 1))
else
    echo "ok   device-group-trains (--device cpu,cpu: test accuracy $acc)"
fi

# The host-memory contract (backend.h: an uploaded array unchanged and a
# downloaded one unread until sync) is what a GPU with pinned buffers
# needs. cpu-deferred runs the CPU arithmetic only at sync, like a GPU
# stream, so a breach changes the numbers: the same seed must give exactly
# the figures of cpu (and of cpu,cpu for the group), with overlap and
# accumulation too, and with --compute-only.
figures() { # the done line's loss/accuracy fields
    tail -n1 "$1" | grep -o '"\(loss\|accuracy\|test_loss\|test_accuracy\)":[^,]*' | tr '\n' ' '
}
train_run() { # NAME WORKER-ARGS...: one server, one worker
    local name=$1 st
    shift
    "$server" --listen tcp://127.0.0.1:0 >"$dir/srv-$name.out" 2>/dev/null &
    local s=$!
    for _ in $(seq 500); do [ -s "$dir/srv-$name.out" ] && break; sleep 0.01; done
    "$w" --servers "$(head -n1 "$dir/srv-$name.out")" "$@" >"$dir/$name.out" 2>"$dir/$name.err"
    st=$?
    kill "$s"
    wait "$s" 2>/dev/null
    [ "$st" -eq 0 ] || { cat "$dir/$name.err" >&2; return 1; }
}
train_figures() { # NAME DEVICE EXTRA...: the MLP on blobs, 2 epochs
    local name=$1 dev=$2
    shift 2
    train_run "$name" --format csv --data "$dir/blobs.csv" \
        --eval "$dir/blobs_test.csv" --model mlp:4-16-3 --batch 32 --epochs 2 \
        --lr 0.01 --seed 7 --device "$dev" "$@"
}
same_figures() { # CASE A B: the runs A and B reported identical figures
    local fa fb
    fa=$(figures "$dir/$2.out")
    fb=$(figures "$dir/$3.out")
    if [ -z "$fa" ] || [ "$fa" != "$fb" ]; then
        fail "$1: $2 reported '$fa', $3 '$fb'"
    else
        echo "ok   $1 ($fa)"
    fi
}
for extra in "" "--overlap --push-every 2"; do
    tag=${extra:+-overlap}
    for dev in cpu cpu-deferred cpu,cpu cpu-deferred,cpu-deferred; do
        # shellcheck disable=SC2086
        train_figures "dev-$dev$tag" "$dev" $extra || fail "deferred-device $dev $extra: training failed"
    done
    same_figures "deferred-same-figures$tag" "dev-cpu$tag" "dev-cpu-deferred$tag"
    same_figures "deferred-group-same-figures$tag" "dev-cpu,cpu$tag" "dev-cpu-deferred,cpu-deferred$tag"
done
# logreg: its batch arrays, pulled weights and gradient live in the
# backend's host memory too.
awk 'BEGIN { srand(5); for (i = 0; i < 600; i++) { y = i % 2; f = 1 + int(rand() * 40);
    printf "%d %d:%.3f %d:1 %d:1\n", y, f, rand(), 100 + y, 200 + int(rand() * 30) } }' >"$dir/sparse.svm"
for dev in cpu cpu-deferred; do
    train_run "lr-$dev" --format libsvm --data "$dir/sparse.svm" --eval "$dir/sparse.svm" \
        --model logreg:12 --batch 16 --epochs 2 --lr 0.1 --seed 7 --device "$dev" ||
        fail "logreg $dev: training failed"
done
same_figures deferred-logreg-same-figures lr-cpu lr-cpu-deferred
for dev in cpu cpu-deferred cpu-deferred,cpu-deferred; do
    "$w" --compute-only --format csv --data "$dir/blobs.csv" --eval "$dir/blobs_test.csv" \
        --model mlp:4-16-3 --batch 32 --epochs 1 --seed 7 --device "$dev" \
        >"$dir/co-$dev.out" 2>"$dir/co-$dev.err" || fail "compute-only $dev: exit $?"
done
same_figures deferred-compute-only co-cpu co-cpu-deferred
same_figures deferred-group-compute-only co-cpu co-cpu-deferred,cpu-deferred

[ "$failures" -eq 0 ] || { echo "$failures case(s) failed" >&2; exit 1; }
echo "all worker CLI cases passed"
