#!/usr/bin/env bash
# Fault (2): a worker SIGKILLed under SSP mid-training does not stop the
# others. Two ps-server shards run SSP with staleness 1, expecting three
# workers; three ps-worker processes train an MLP on their shares of a CSV
# file. Once worker 2 has trained for a while it is killed with SIGKILL.
# Workers 0 and 1 must finish (exit 0, a "done" event), and the servers
# must show worker 2 dropped (not alive) with the others' clocks past its
# clock + the staleness: SSP let them through only because the servers
# dropped it after its worker timeout.
# Usage: fault_kill_worker.sh BIN_DIR PS_SERVER  (BIN_DIR holds ps-worker,
# ps-ctl)
set -uo pipefail
bin=${1:?usage: fault_kill_worker.sh BIN_DIR PS_SERVER}
server=${2:?usage: fault_kill_worker.sh BIN_DIR PS_SERVER}
here=$(dirname "$0")
# shellcheck source=cli_lib.sh
. "$here/cli_lib.sh"
# shellcheck source=fault_lib.sh
. "$here/fault_lib.sh"
fault_init
STALENESS=1

blobs_csv 30000 1 >"$dir/train.csv" # 10000 rows per worker

servers=""
for i in 0 1; do
    start_server "$dir/srv$i.out" "$dir/srv$i.err" "$server" --listen tcp://127.0.0.1:0 \
        --shard "$i" --shards 2 --consistency "ssp:$STALENESS" --workers 3 \
        --worker-timeout 1500 || exit 1
    servers=${servers:+$servers,}$SERVER_EP
done
pids=()
for i in 0 1 2; do
    start_bg "$dir/w$i.out" "$dir/w$i.err" "$bin/ps-worker" --servers "$servers" \
        --job ssp-kill --worker-id "$i" --part "$i/3" --format csv --data "$dir/train.csv" \
        --model mlp:4-16-3 --batch 32 --epochs 6 --progress-every 0.05 --log-level warn
    pids+=("$BG_PID")
done

# Worker 2 trains (a progress line with samples) before it is killed.
if ! wait_for 120 grep -q '"samples":[1-9]' "$dir/w2.out"; then
    echo "FAIL worker 2 never trained: $(tail -n3 "$dir/w2.err")" >&2
    exit 1
fi
kill -KILL "${pids[2]}"
wait "${pids[2]}" 2>/dev/null
echo "killed worker 2 after $(json_field "$dir/w2.out" samples) samples"

status=0
for i in 0 1; do
    if ! wait_exit "${pids[$i]}" 240; then
        echo "FAIL worker $i still runs 240 s after worker 2 was killed" >&2
        status=1
    elif [ "$EXIT_STATUS" -ne 0 ] || ! grep -q '"event":"done"' "$dir/w$i.out"; then
        echo "FAIL worker $i: exit $EXIT_STATUS, stderr: $(tail -n3 "$dir/w$i.err")" >&2
        status=1
    else
        echo "ok   worker $i finished: $(tail -n1 "$dir/w$i.out")"
    fi
done

"$bin/ps-ctl" status --servers "$servers" --json >"$dir/status.json" || {
    echo "FAIL ps-ctl status" >&2
    exit 1
}
python3 - "$dir/status.json" "$STALENESS" <<'EOF' || status=1
import json, sys
st = json.load(open(sys.argv[1]))
staleness = int(sys.argv[2])
for shard in st["shards"]:
    w = {x["id"]: x for x in shard["workers"]}
    dead = w[2]
    print(f"shard {shard['shard']}: worker 2 clock {dead['clock']} "
          f"alive {dead['alive']}; workers 0, 1 at clocks {w[0]['clock']}, {w[1]['clock']}")
    if dead["alive"]:
        sys.exit("FAIL the killed worker still counts as alive")
    for i in (0, 1):
        if w[i]["clock"] <= dead["clock"] + staleness:
            sys.exit(f"FAIL worker {i} (clock {w[i]['clock']}) never ran past the killed "
                     f"worker's clock + staleness: the test proves nothing")
EOF
grep -h "timed out" "$dir"/srv*.err | head -n2
[ "$status" -eq 0 ] && echo "the others finished after worker 2 was killed under SSP"
exit "$status"
