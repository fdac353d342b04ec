#!/usr/bin/env bash
# ps-ctl status/export, ps-worker predict and --init-from end to end on real
# processes, plus every entry point's answer to bad input (a clear message
# and exit status 2 for usage, 1 for runtime errors; never a crash).
#   1. two shards; a worker trains an MLP for one epoch on Gaussian blobs;
#   2. ps-ctl status (text and --json) shows the tables, meta and worker;
#   3. ps-ctl export writes a safetensors file that plain python reads;
#   4. ps-worker predict on the training data: probabilities sum to 1 and
#      the accuracy clears a floor;
#   5. a fresh cluster warm-started with --init-from starts at a much lower
#      loss than a cold start;
#   6. ps-ctl drop frees one table, then the rest of a job (status stops
#      listing them, the job's bytes fall by what drop reported, another job
#      keeps its tables); nothing to drop exits 3 (0 with --if-exists);
#   7. ps-ctl shutdown stops both shards of a cluster (each exits 0 on its
#      own and logs why); with one shard dead it exits 1 naming it and the
#      live one still stops; a worker training meanwhile exits 1 with
#      ESHUTDOWN (or a timeout), never hangs;
#   8. ps-ctl save: every shard of a cluster with --checkpoint-dir writes a
#      checkpoint and the files are printed (text and --json); a server
#      without one answers EINVAL naming the flag.
# Usage: ctl_cli.sh BIN_DIR SERVER_BIN [STREAM_GEN]
set -uo pipefail
bin=${1:?usage: ctl_cli.sh BIN_DIR SERVER_BIN}
server=${2:?usage: ctl_cli.sh BIN_DIR SERVER_BIN}
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
# shellcheck source=cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
ctl=$bin/ps-ctl
w=$bin/ps-worker



# start_cluster N PREFIX [ARGS...]: N shards (with ARGS); sets $servers
# (endpoints in order) and $cpids (their pids, in shard order).
start_cluster() {
    local n=$1 prefix=$2 i
    servers=""
    cpids=()
    for ((i = 0; i < n; i++)); do
        "$server" --shard "$i" --shards "$n" --log-level warn "${@:3}" \
            >"$dir/$prefix$i.out" 2>"$dir/$prefix$i.err" &
        pids+=($!)
        cpids+=($!)
    done
    for ((i = 0; i < n; i++)); do
        local tries=0
        until [ -s "$dir/$prefix$i.out" ]; do
            tries=$((tries + 1))
            [ "$tries" -lt 500 ] || { echo "shard $i did not start" >&2; exit 1; }
            sleep 0.01
        done
        servers+="${servers:+,}$(head -n1 "$dir/$prefix$i.out")"
    done
}

# wait_exit PID SECONDS: waits for PID (a child) to end by itself, then
# sets $exit_status (124 after SIGKILL when it did not end in time) and
# takes PID out of $pids.
wait_exit() {
    local pid=$1 secs=$2 i state
    for ((i = 0; i < secs * 20; i++)); do
        state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
        if [ -z "$state" ] || [ "$state" = Z ]; then break; fi
        sleep 0.05
    done
    if [ -n "$state" ] && [ "$state" != Z ]; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        exit_status=124
    else
        wait "$pid"
        exit_status=$?
    fi
    local keep=() p
    for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    pids=("${keep[@]}")
}

blobs_csv 3000 1 >"$dir/train.csv"
printf '1,2,3,0\n2,3,4,1\n' >"$dir/narrow.csv"

# ---- usage errors (no servers needed) ----
expect ctl-help 0 "ps-ctl status" -- "$ctl" --help
expect ctl-no-command 2 "a command is needed" -- "$ctl"
expect ctl-unknown-command 2 "unknown command 'frobnicate'" -- "$ctl" frobnicate
expect ctl-status-no-servers 2 "--servers is required" -- env -u SPARKPS_SERVERS "$ctl" status
expect ctl-export-no-job 2 "--job and --out" -- "$ctl" export --servers tcp://127.0.0.1:1 --out "$dir/x"
expect ctl-unknown-flag 2 "--nope" -- "$ctl" status --nope
expect ctl-stray-arg 2 "unexpected argument" -- "$ctl" status --servers tcp://127.0.0.1:1 extra
expect ctl-bad-timeout 2 "--timeout" -- "$ctl" status --servers tcp://127.0.0.1:1 --timeout 0
expect ctl-unreachable 1 "cannot reach the servers" -- "$ctl" status --servers tcp://127.0.0.1:1 --timeout 200 --retries 0
expect ctl-bad-endpoint 2 "cannot connect to 'nonsense'" -- "$ctl" status --servers 'nonsense' --timeout 200 --retries 0
expect drop-no-job 2 "--job is required" -- "$ctl" drop --servers tcp://127.0.0.1:1
expect drop-table-no-job 2 "--job is required" -- "$ctl" drop --servers tcp://127.0.0.1:1 --table w
expect drop-no-servers 2 "--servers is required" -- env -u SPARKPS_SERVERS "$ctl" drop --job j
expect drop-empty-table 2 "--table needs a name" -- "$ctl" drop --servers tcp://127.0.0.1:1 --job j --table ''
expect drop-unknown-flag 2 "--nope" -- "$ctl" drop --servers tcp://127.0.0.1:1 --job j --nope
expect drop-bad-list 2 "server 1 of 'tcp://127.0.0.1:1,' is empty" -- "$ctl" drop --servers tcp://127.0.0.1:1, --job j
expect drop-unreachable 1 "cannot reach the servers" -- "$ctl" drop --servers tcp://127.0.0.1:1 --job j --timeout 200 --retries 0
expect shutdown-no-servers 2 "--servers is required" -- env -u SPARKPS_SERVERS "$ctl" shutdown
expect shutdown-unknown-flag 2 "--nope" -- "$ctl" shutdown --servers tcp://127.0.0.1:1 --nope
expect shutdown-stray-arg 2 "unexpected argument" -- "$ctl" shutdown --servers tcp://127.0.0.1:1 now
expect shutdown-bad-list 2 "cannot connect to 'nonsense'" -- "$ctl" shutdown --servers nonsense
expect shutdown-empty-list 2 "no servers given" -- "$ctl" shutdown --servers ''
expect shutdown-bad-list-entry 2 "server 1 of 'tcp://127.0.0.1:1,,tcp://127.0.0.1:2' is empty" -- "$ctl" shutdown --servers tcp://127.0.0.1:1,,tcp://127.0.0.1:2
expect shutdown-unreachable 1 "not running, unreachable or stuck" -- "$ctl" shutdown --servers tcp://127.0.0.1:1 --timeout 200 --retries 0
expect save-no-servers 2 "--servers is required" -- env -u SPARKPS_SERVERS "$ctl" save
expect save-bad-list 2 "cannot connect to 'nonsense'" -- "$ctl" save --servers nonsense
expect save-stray-arg 2 "unexpected argument" -- "$ctl" save --servers tcp://127.0.0.1:1 now
expect save-unreachable 1 "not running, unreachable or stuck" -- "$ctl" save --servers tcp://127.0.0.1:1 --timeout 200 --retries 0
expect predict-help 0 "CLASS,P0,P1" -- "$w" predict --help
expect predict-no-args 2 "--model-file and --data are required" -- "$w" predict
expect predict-bad-format 2 "--format" -- "$w" predict --model-file x --data y --format foo
expect predict-missing-model 1 "$dir/none.safetensors: cannot open" -- "$w" predict --model-file "$dir/none.safetensors" --format csv --data "$dir/train.csv"
printf 'not a safetensors file at all' >"$dir/garbage.safetensors"
expect predict-garbage-model 1 "header length" -- "$w" predict --model-file "$dir/garbage.safetensors" --format csv --data "$dir/train.csv"

# ---- train, status, export ----
start_cluster 2 a
cluster_a=$servers
a_pids=("${cpids[@]}")
"$w" --servers "$cluster_a" --job blobs --format csv --data "$dir/train.csv" \
    --model mlp:4-16-3 --epochs 1 --lr 0.01 --seed 3 --progress-every 0 \
    --log-level warn >"$dir/cold_a.jsonl" || fail "training worker exited $?"

out=$("$ctl" status --servers "$cluster_a" 2>&1)
if grep -q "fc1.weight" <<<"$out" && grep -q "model=mlp:4-16-3;classes=3;input_dim=4" <<<"$out" &&
    grep -qE "^0 +0 +[0-9]+ (yes|no)" <<<"$out" && grep -q "2 shard(s)" <<<"$out"; then
    echo "ok   status-text"
else
    fail "status-text:"
    printf '%s\n' "$out" >&2
fi
"$ctl" status --servers "$cluster_a" --json >"$dir/status.json" || fail "status --json exited $?"
if python3 - "$dir/status.json" <<'EOF'; then echo "ok   status-json"; else fail "status-json"; fi
import json, sys
doc = json.load(open(sys.argv[1]))
shards = doc["shards"]
assert [s["shard"] for s in shards] == [0, 1], shards
for s in shards:
    names = {t["name"] for t in s["tables"] if t["job"] == "blobs"}
    assert names == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}, names
    t = [t for t in s["tables"] if t["name"] == "fc1.weight"][0]
    assert t["shape"] == [4, 16] and t["meta"].startswith("model=mlp:4-16-3"), t
    assert any(w["id"] == 0 and w["samples"] == 3000 for w in s["workers"]), s["workers"]
EOF

expect export-unknown-job 1 "job 'nojob' has no tables" -- "$ctl" export --servers "$cluster_a" --job nojob --out "$dir/no.safetensors"
[ -e "$dir/no.safetensors" ] && fail "export of an unknown job left a file"
expect export-unwritable 1 "cannot create" -- "$ctl" export --servers "$cluster_a" --job blobs --out "$dir/nodir/m.safetensors"
expect export 0 "exported job blobs: 4 table(s)" -- "$ctl" export --servers "$cluster_a" --job blobs --out "$dir/model.safetensors"
ls "$dir"/model.safetensors.tmp.* >/dev/null 2>&1 && fail "export left a temp file"

# The file opens with nothing but the standard library: what a numpy or
# PyTorch user does, minus the dependency.
if python3 - "$dir/model.safetensors" <<'EOF'; then echo "ok   export-python-reads"; else fail "export-python-reads"; fi
import array, json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert (8 + n) % 8 == 0
hdr = json.loads(raw[8:8 + n])
meta = hdr.pop("__metadata__")
assert meta["format"] == "sparkps" and meta["format_version"] == "1", meta
assert meta["model"] == "mlp:4-16-3" and meta["classes"] == "3", meta
assert meta["job"] == "blobs", meta
assert meta["tables"] == "fc1.weight,fc1.bias,fc2.weight,fc2.bias", meta
data = raw[8 + n:]
shapes = {"fc1.weight": [4, 16], "fc1.bias": [1, 16], "fc2.weight": [16, 3], "fc2.bias": [1, 3]}
for name, shape in shapes.items():
    t = hdr[name]
    assert t["dtype"] == "F32" and t["shape"] == shape, (name, t)
    b, e = t["data_offsets"]
    vals = array.array("f", data[b:e])
    assert len(vals) == shape[0] * shape[1]
    assert all(v == v and abs(v) < 1e6 for v in vals)
EOF

# ---- predict ----
"$w" predict --model-file "$dir/model.safetensors" --format csv --data "$dir/train.csv" \
    --out "$dir/pred.csv" 2>"$dir/pred.err" || fail "predict exited $?: $(cat "$dir/pred.err")"
if python3 - "$dir/pred.csv" "$dir/train.csv" <<'EOF'; then echo "ok   predict-output"; else fail "predict-output"; fi
import sys
pred = [l.split(",") for l in open(sys.argv[1]).read().splitlines()]
labels = [int(l.rsplit(",", 1)[1]) for l in open(sys.argv[2]).read().splitlines()]
assert len(pred) == len(labels) == 3000, (len(pred), len(labels))
right = 0
for row, y in zip(pred, labels):
    assert len(row) == 4, row
    cls, probs = int(row[0]), [float(p) for p in row[1:]]
    assert abs(sum(probs) - 1) < 1e-4, probs
    assert probs[cls] == max(probs), row
    right += cls == y
acc = right / len(labels)
print("predict accuracy %.3f" % acc)
assert acc >= 0.75, acc
EOF
grep -q "predicted rows=3000" "$dir/pred.err" || fail "predict summary missing: $(cat "$dir/pred.err")"
# The connector's Transformer feeds rows as a stream on stdin.
if [ -n "${3:-}" ]; then
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    expect predict-stream-stdin 0 "predicted rows=3000" -- bash -c '"$1" <"$2" | "$3" predict --model-file "$4" --format stream --data -' _ \
        "$3" "$dir/train.csv" "$w" "$dir/model.safetensors"
fi
expect predict-stdout 0 "," -- "$w" predict --model-file "$dir/model.safetensors" --format csv --data "$dir/train.csv" --batch 7
expect predict-width-mismatch 1 "has 3 features per row, but the model" -- "$w" predict --model-file "$dir/model.safetensors" --format csv --data "$dir/narrow.csv"
expect predict-missing-data 1 "$dir/none.csv" -- "$w" predict --model-file "$dir/model.safetensors" --format csv --data "$dir/none.csv"
# A model this build cannot score yet, and files missing pieces.
python3 - "$dir" <<'EOF'
import json, struct, sys
def write(path, tensors, meta):
    hdr, data = {}, b""
    for name, (shape, payload) in tensors.items():
        hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
d = sys.argv[1]
write(d + "/cnn.safetensors", {"w": ([4], b"\0" * 16)}, {"model": "cnn:3"})
write(d + "/logreg-nokeys.safetensors", {"w": ([4], b"\0" * 16)}, {"model": "logreg:20"})
write(d + "/partial.safetensors", {"fc1.weight": ([4, 16], b"\0" * 256)}, {"model": "mlp:4-16-3", "classes": "3"})
write(d + "/nometa.safetensors", {"fc1.weight": ([4, 16], b"\0" * 256)}, {})
EOF
expect predict-unsupported-model 1 "model 'cnn:3' not supported by predict" -- "$w" predict --model-file "$dir/cnn.safetensors" --format csv --data "$dir/train.csv"
expect predict-logreg-no-keys 1 "no tensor 'logreg.weight.keys'" -- "$w" predict --model-file "$dir/logreg-nokeys.safetensors" --format libsvm --data "$dir/train.csv"

# ---- logreg: train, export the sparse table, predict ----
# Feature 1 means class 1, feature 2 class 0; features 3..30 are noise.
awk 'BEGIN { s = 7; for (i = 0; i < 4000; i++) {
        s = (s * 1103515245 + 12345) % 2147483648; y = s % 2
        line = y " " (y ? "1:1" : "2:1")
        s = (s * 1103515245 + 12345) % 2147483648; line = line " " (3 + s % 28) ":1"
        print line } }' >"$dir/lr.svm"
"$w" --servers "$cluster_a" --job lr --model logreg:16 --format libsvm --data "$dir/lr.svm" \
    --epochs 2 --progress-every 0 --log-level warn >/dev/null || fail "logreg worker exited $?"
expect export-logreg 0 "exported job lr: 1 table(s)" -- "$ctl" export --servers "$cluster_a" --job lr --out "$dir/lr.safetensors"
expect predict-logreg-csv 1 "needs sparse rows" -- "$w" predict --model-file "$dir/lr.safetensors" --format csv --data "$dir/train.csv"
"$w" predict --model-file "$dir/lr.safetensors" --format libsvm --data "$dir/lr.svm" \
    --out "$dir/lr.pred" 2>"$dir/lr.err" || fail "logreg predict exited $?: $(cat "$dir/lr.err")"
if awk -F, 'NR == FNR { split($0, a, " "); y[FNR] = a[1]; next }
    { if (NF != 3 || ($2 + $3) < 0.999 || ($2 + $3) > 1.001) bad++; ok += ($1 == y[FNR]); n++ }
    END { printf "logreg predict accuracy %.3f over %d rows\n", ok / n, n; exit !(n == 4000 && !bad && ok / n >= 0.95) }' \
    "$dir/lr.svm" "$dir/lr.pred"; then echo "ok   predict-logreg"; else fail "predict-logreg"; fi
# The same on cpu-deferred (copies at sync, host buffers NaN at first):
# identical output, or the predictor broke the backend's copy contract.
if "$w" predict --model-file "$dir/lr.safetensors" --format libsvm --data "$dir/lr.svm" \
    --device cpu-deferred --batch 300 --out "$dir/lr-deferred.pred" 2>"$dir/lr.err" &&
    "$w" predict --model-file "$dir/lr.safetensors" --format libsvm --data "$dir/lr.svm" \
        --batch 300 --out "$dir/lr-300.pred" 2>>"$dir/lr.err" &&
    cmp -s "$dir/lr-300.pred" "$dir/lr-deferred.pred" && cmp -s "$dir/lr.pred" "$dir/lr-300.pred"; then
    echo "ok   predict-logreg-deferred"
else
    fail "predict-logreg-deferred: $(cat "$dir/lr.err")"
fi
expect predict-missing-tensor 1 "no tensor 'fc1.bias'" -- "$w" predict --model-file "$dir/partial.safetensors" --format csv --data "$dir/train.csv" --out "$dir/bad.out"
[ -e "$dir/bad.out" ] && fail "failed predict left its output file"
expect predict-no-model-meta 1 "no \"model\" in the metadata" -- "$w" predict --model-file "$dir/nometa.safetensors" --format csv --data "$dir/train.csv"

# ---- warm start ----
start_cluster 2 b
cluster_b=$servers
expect init-from-missing 1 "$dir/none.safetensors" -- "$w" --servers "$cluster_b" --job warmx --format csv --data "$dir/train.csv" --model mlp:4-16-3 --init-from "$dir/none.safetensors"
expect init-from-shape-mismatch 1 "'fc1.weight' has shape [4,16], the model needs [4,8]" -- "$w" --servers "$cluster_b" --job warm8 --format csv --data "$dir/train.csv" --model mlp:4-8-3 --init-from "$dir/model.safetensors"
first_loss() { sed -n '1s/.*"loss":\([0-9.e+-]*\).*/\1/p' "$1"; }
"$w" --servers "$cluster_b" --job cold --format csv --data "$dir/train.csv" \
    --model mlp:4-16-3 --epochs 1 --lr 0.01 --seed 3 --progress-every 0 \
    --log-level warn >"$dir/cold.jsonl" || fail "cold worker exited $?"
"$w" --servers "$cluster_b" --job warm --format csv --data "$dir/train.csv" \
    --model mlp:4-16-3 --epochs 1 --lr 0.01 --seed 3 --progress-every 0 \
    --init-from "$dir/model.safetensors" >"$dir/warm.jsonl" 2>"$dir/warm.err" ||
    fail "warm worker exited $?: $(tail -n 3 "$dir/warm.err")"
cold=$(first_loss "$dir/cold.jsonl")
warm=$(first_loss "$dir/warm.jsonl")
grep -q "warm start file=" "$dir/warm.err" || fail "warm start not logged"
if [ -n "$cold" ] && [ -n "$warm" ] && awk -v c="$cold" -v w="$warm" 'BEGIN { exit !(w < 0.6 * c) }'; then
    echo "ok   init-from-lower-first-loss (cold $cold, warm $warm)"
else
    fail "init-from-lower-first-loss: cold '$cold', warm '$warm'"
fi
# A second warm start on the same (now trained) job changes nothing: its
# assign is skipped on every shard, and its first loss stays low.
"$w" --servers "$cluster_b" --job warm --format csv --data "$dir/train.csv" \
    --model mlp:4-16-3 --epochs 1 --lr 0.01 --seed 3 --progress-every 0 \
    --init-from "$dir/model.safetensors" >"$dir/warm2.jsonl" 2>"$dir/warm2.err" ||
    fail "second warm worker exited $?"
grep -q "skipped_pieces=8" "$dir/warm2.err" || fail "second warm start was not skipped: $(grep 'warm start' "$dir/warm2.err")"

# ---- drop ----
# Cluster b holds the jobs cold and warm, four tables each.
# job_sum STATUS_JSON JOB: "TABLES BYTES" of JOB over every shard.
job_sum() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
ts = [t for s in doc["shards"] for t in s["tables"] if t["job"] == sys.argv[2]]
print(len({t["name"] for t in ts}), sum(t["bytes"] for t in ts))
EOF
}
"$ctl" status --servers "$cluster_b" --json >"$dir/b0.json" || fail "status of cluster b exited $?"
read -r cold_n cold_bytes < <(job_sum "$dir/b0.json" cold)
read -r warm_n warm_bytes < <(job_sum "$dir/b0.json" warm)
if [ "$cold_n" != 4 ] || [ "$warm_n" != 4 ]; then
    fail "cluster b: jobs cold/warm hold $cold_n/$warm_n tables, want 4/4"
fi
"$ctl" drop --servers "$cluster_b" --job cold --table fc1.weight --json >"$dir/drop1.json" 2>"$dir/drop1.err"
st=$?
"$ctl" status --servers "$cluster_b" --json >"$dir/b1.json" || fail "status of cluster b exited $?"
if python3 - "$st" "$dir/drop1.json" "$dir/b1.json" "$cold_bytes" "$warm_bytes" <<'EOF'; then echo "ok   drop-table-json"; else fail "drop-table-json: $(cat "$dir/drop1.err")"; fi
import json, sys
st, drop, status = int(sys.argv[1]), json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
cold0, warm0 = int(sys.argv[4]), int(sys.argv[5])
assert st == 0, st
assert drop["job"] == "cold" and drop["table"] == "fc1.weight", drop
assert drop["dropped_tables"] == 1, drop
assert [s["shard"] for s in drop["shards"]] == [0, 1], drop
for s in drop["shards"]:
    assert s["status"] == "OK" and s["tables"] == 1 and s["bytes"] > 0, s
    assert s["endpoint"].startswith("tcp://"), s
freed = sum(s["bytes"] for s in drop["shards"])
assert freed == drop["freed_bytes"] and freed >= 4 * 16 * 4, drop
tables = [t for s in status["shards"] for t in s["tables"]]
cold = [t for t in tables if t["job"] == "cold"]
assert {t["name"] for t in cold} == {"fc1.bias", "fc2.weight", "fc2.bias"}, cold
# The memory the shards account to the job fell by exactly what was freed.
assert sum(t["bytes"] for t in cold) == cold0 - freed, (cold0, freed, cold)
assert sum(t["bytes"] for t in tables if t["job"] == "warm") == warm0
EOF
expect drop-job-text 0 "dropped job cold: 3 table(s) on 2 shard(s)" -- "$ctl" drop --servers "$cluster_b" --job cold
"$ctl" status --servers "$cluster_b" --json >"$dir/b2.json" || fail "status of cluster b exited $?"
read -r cold_n _ < <(job_sum "$dir/b2.json" cold)
read -r warm_n warm_now < <(job_sum "$dir/b2.json" warm)
if [ "$cold_n" = 0 ] && [ "$warm_n" = 4 ] && [ "$warm_now" = "$warm_bytes" ]; then
    echo "ok   drop-job-leaves-other-job"
else
    fail "drop-job-leaves-other-job: cold $cold_n tables, warm $warm_n tables $warm_now bytes (was $warm_bytes)"
fi
expect drop-missing-table 3 "no table 'nope' in job 'warm' on any shard: nothing dropped" -- "$ctl" drop --servers "$cluster_b" --job warm --table nope
expect drop-missing-job 3 "job 'cold' has no tables on any shard: nothing dropped" -- "$ctl" drop --servers "$cluster_b" --job cold
expect drop-missing-if-exists 0 "nothing to drop: job 'cold' has no tables" -- "$ctl" drop --servers "$cluster_b" --job cold --if-exists
expect drop-missing-table-if-exists 0 "nothing to drop: no table 'nope' in job 'warm'" -- "$ctl" drop --servers "$cluster_b" --job warm --table nope --if-exists
expect drop-missing-json 3 '"dropped_tables":0' -- "$ctl" drop --servers "$cluster_b" --job cold --json

# ---- save ----
expect save-no-checkpoint-dir 1 "EINVAL: this server takes no checkpoints: start it with --checkpoint-dir" -- "$ctl" save --servers "$cluster_a"
start_cluster 2 e --checkpoint-dir "$dir/ck"
cluster_e=$servers
expect_re save-two-shards 0 "^1 +tcp://[^ ]+ +[0-9]+ +$dir/ck/shard-1-0000000001\.ckpt$" -- "$ctl" save --servers "$cluster_e"
"$ctl" save --servers "$cluster_e" --json >"$dir/save.json" 2>"$dir/save.err"
st=$?
if python3 - "$st" "$dir/save.json" <<'EOF'; then echo "ok   save-json"; else fail "save-json: $(cat "$dir/save.err")"; fi
import json, os, sys
st, doc = int(sys.argv[1]), json.load(open(sys.argv[2]))
assert st == 0, st
for i, s in enumerate(doc["shards"]):
    assert s["shard"] == i and s["status"] == "OK", s
    assert s["file"].endswith("shard-%d-0000000002.ckpt" % i), s
    assert os.path.getsize(s["file"]) == s["bytes"], s
EOF
expect_re save-in-status 0 "shard 1: 2 written, 0 failed, last $dir/ck/shard-1-0000000002\.ckpt \(" -- "$ctl" status --servers "$cluster_e"

# ---- shutdown ----
# Both shards of cluster a stop because they were asked (no signal) and
# exit 0; their logs say why.
expect_re shutdown-two-shards 0 "^1 +tcp://[^ ]+ +stopping$" -- "$ctl" shutdown --servers "$cluster_a"
for i in 0 1; do
    wait_exit "${a_pids[$i]}" 15
    if [ "$exit_status" -eq 0 ] && grep -q "shutdown requested over the wire" "$dir/a$i.err"; then
        echo "ok   shutdown-shard-$i-exits-0"
    else
        fail "shutdown-shard-$i-exits-0: exit $exit_status, log: $(tail -n 3 "$dir/a$i.err")"
    fi
done
expect shutdown-then-unreachable 1 "cannot reach the servers" -- "$ctl" status --servers "$cluster_a" --timeout 200 --retries 0

# A shard already gone: named, exit 1, and the live one still stops.
start_cluster 2 c
cluster_c=$servers
c_pids=("${cpids[@]}")
kill -KILL "${c_pids[1]}"
wait_exit "${c_pids[1]}" 5
"$ctl" shutdown --servers "$cluster_c" --json --timeout 300 --retries 0 >"$dir/sd_c.json" 2>"$dir/sd_c.err"
st=$?
if python3 - "$st" "$dir/sd_c.json" <<'EOF' && grep -q "1 of 2 shard(s) did not confirm" "$dir/sd_c.err"; then echo "ok   shutdown-dead-shard"; else fail "shutdown-dead-shard: $(cat "$dir/sd_c.err")"; fi
import json, sys
st, doc = int(sys.argv[1]), json.load(open(sys.argv[2]))
assert st == 1, st
s0, s1 = doc["shards"]
assert s0["shard"] == 0 and s0["status"] == "OK" and s0["stopping"] is True, s0
assert s1["shard"] == 1 and s1["status"] == "ETIMEDOUT" and s1["stopping"] is False, s1
assert s1["error"], s1
EOF
wait_exit "${c_pids[0]}" 15
[ "$exit_status" -eq 0 ] || fail "shutdown-dead-shard: the live shard exited $exit_status"

# A worker training when the cluster is shut down exits 1 with a clear
# error (ESHUTDOWN, or a timeout), not a hang.
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "%d,%d,%d,%d,%d\n", i % 7, i % 5, i % 3, i % 2, i % 3 }' >"$dir/long.csv"
start_cluster 2 d
cluster_d=$servers
d_pids=("${cpids[@]}")
"$w" --servers "$cluster_d" --job long --format csv --data "$dir/long.csv" \
    --model mlp:4-16-3 --epochs 100000 --timeout 1000 --progress-every 0.1 \
    --log-level warn >"$dir/long.jsonl" 2>"$dir/long.err" &
wpid=$!
pids+=("$wpid")
for ((i = 0; i < 600; i++)); do
    [ -s "$dir/long.jsonl" ] && break
    sleep 0.05
done
[ -s "$dir/long.jsonl" ] || fail "the training worker reported no progress: $(cat "$dir/long.err")"
expect shutdown-while-training 0 "stopping" -- "$ctl" shutdown --servers "$cluster_d"
wait_exit "$wpid" 30
if [ "$exit_status" -eq 1 ] && grep -qE "ESHUTDOWN|ETIMEDOUT" "$dir/long.err"; then
    echo "ok   shutdown-worker-exits-1 ($(grep -oE "ESHUTDOWN|ETIMEDOUT" "$dir/long.err" | head -n 1))"
else
    fail "shutdown-worker-exits-1: exit $exit_status, stderr: $(tail -n 3 "$dir/long.err")"
fi
for i in 0 1; do
    wait_exit "${d_pids[$i]}" 15
    [ "$exit_status" -eq 0 ] || fail "shutdown-while-training: shard $i exited $exit_status"
done

# Every server survived all of the above and stops cleanly (a sanitizer
# build reports through their stderr).
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || fail "a server exited $? on SIGTERM"; done
pids=()
if grep -lE "AddressSanitizer|runtime error|LeakSanitizer" "$dir"/*.err 2>/dev/null; then
    fail "sanitizer reports above"
fi

[ "$failures" -eq 0 ] || { echo "$failures case(s) failed" >&2; exit 1; }
echo "all ps-ctl / predict / init-from cases passed"
