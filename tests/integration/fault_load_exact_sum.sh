#!/usr/bin/env bash
# Fault (4): under load, through a lossy, slow network and across a
# graceful server restart, nothing is lost and nothing is applied twice.
# Two ps-server shards run in one network namespace with checkpoints on;
# fault_load runs 16 client connections in another, reaching the servers
# through the faulty link of netns_lib.sh (5% loss each way, a rate limit,
# a delay proxy), pushing small integer gradients (SGD, lr = 1) for
# FAULT_SECONDS. A third of the way in, shard 1 gets SIGTERM (it writes a
# checkpoint as it stops) and is started again on the same address with
# --restore latest while the clients keep pushing. fault_load then checks
# that the tables hold the exact sum of every acknowledged push and that
# retries fired (a test of retries that never retried proves nothing), the
# restarted shard must have served pushes of the run, and the load figures
# are printed. Skipped (77) where network namespaces cannot be created.
# Usage: fault_load_exact_sum.sh FAULT_LOAD PS_SERVER PS_CTL
# Environment: FAULT_SECONDS (30), FAULT_CLIENTS (16), LOSS (0.05),
# RATE (50mbit), DELAY_MS (10); FAULT_RESTART=0 leaves the restart out
# (for servers without checkpoints; not for CI).
set -uo pipefail
load=${1:?usage: fault_load_exact_sum.sh FAULT_LOAD PS_SERVER PS_CTL}
server=${2:?usage: fault_load_exact_sum.sh FAULT_LOAD PS_SERVER PS_CTL}
ctl=${3:?usage: fault_load_exact_sum.sh FAULT_LOAD PS_SERVER PS_CTL}
here=$(dirname "$0")
# shellcheck source=fault_lib.sh
. "$here/fault_lib.sh"
# shellcheck source=netns_lib.sh
. "$here/netns_lib.sh"
SECS=${FAULT_SECONDS:-30}
CLIENTS=${FAULT_CLIENTS:-16}
LOSS=${LOSS:-0.05}
RATE=${RATE:-50mbit}
DELAY_MS=${DELAY_MS:-10}
RESTART=${FAULT_RESTART:-1}

netns_faulty_or_skip "$LOSS" "$RATE"

# start_shard I LISTEN [ARGS...]: ps-server shard I of 2 in the servers'
# namespace, with its checkpoint directory when the restart is on.
start_shard() {
    local i=$1 listen=$2 ckpt=()
    shift 2
    [ "$RESTART" = 1 ] && ckpt=(--checkpoint-dir "$dir/ckpt$i")
    start_server "$dir/srv$i.out" "$dir/srv$i.err" ip netns exec "$NETNS_SRV" \
        "$server" --listen "$listen" --shard "$i" --shards 2 --insecure "${ckpt[@]}" "$@"
}
maps=()
eps=()
for i in 0 1; do
    mkdir -p "$dir/ckpt$i"
    start_shard "$i" "tcp://$NETNS_SRV_IP:0" || exit 1
    eps+=("$SERVER_EP")
    spids+=("$SERVER_PID")
    maps+=("127.0.0.1:0=${SERVER_EP#tcp://}")
done
netns_proxy "$NETNS_CLI" "$DELAY_MS" "$dir/proxy.out" "${maps[@]}" || exit 1
servers="tcp://${PROXY_ADDRS[0]},tcp://${PROXY_ADDRS[1]}"
echo "network: loss $LOSS each way, rate $RATE, delay ${DELAY_MS} ms each way;" \
    "$CLIENTS clients for $SECS s through $servers"

start_bg "$dir/load.out" "$dir/load.err" ip netns exec "$NETNS_CLI" "$load" \
    --servers "$servers" --clients "$CLIENTS" --seconds "$SECS" --timeout-ms 300 \
    --retries 300 --min-retries 1
load_pid=$BG_PID
if ! wait_for 120 grep -q '^running' "$dir/load.out"; then
    echo "FAIL fault_load did not start: $(tail -n3 "$dir/load.err")" >&2
    exit 1
fi

status=0
if [ "$RESTART" = 1 ]; then
    # Not a synchronisation: where in the run the fault lands.
    sleep $((SECS / 3))
    t0=${EPOCHREALTIME/./}
    kill -TERM "${spids[1]}"
    if ! wait_exit "${spids[1]}" 120 || [ "$EXIT_STATUS" -ne 0 ]; then
        echo "FAIL shard 1 did not stop cleanly on SIGTERM (exit ${EXIT_STATUS:-none}):" \
            "$(tail -n3 "$dir/srv1.err")" >&2
        exit 1
    fi
    if [ -z "$(ls -A "$dir/ckpt1")" ]; then
        echo "FAIL shard 1 wrote no checkpoint into $dir/ckpt1 on SIGTERM" >&2
        exit 1
    fi
    cp "$dir/srv1.err" "$dir/srv1.first.err"
    start_shard 1 "${eps[1]}" --restore latest || exit 1
    echo "shard 1 stopped, checkpointed and restarted from its checkpoint in" \
        "$(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
    restarted=1
    if ! kill -0 "$load_pid" 2>/dev/null; then
        echo "FAIL the load ended before the restart was over: raise FAULT_SECONDS" >&2
        status=1
    fi
else
    echo "FAULT_RESTART=0: no server restart in this run"
fi

if ! wait_exit "$load_pid" $((SECS + 600)); then
    echo "FAIL fault_load still runs $((SECS + 600)) s after it started" >&2
    exit 1
fi
load_status=$EXIT_STATUS
drops=$(netns_drops)
grep -v "reconnecting shard" "$dir/load.err" >&2
echo "load: $(tail -n1 "$dir/load.out")"
echo "client warnings 'no answer from shard in time, reconnecting':" \
    "$(grep -c "reconnecting shard" "$dir/load.err")"
echo "packets dropped by the lossy link: $drops"
if [ "$load_status" -ne 0 ]; then
    echo "FAIL fault_load exited $load_status (see above)" >&2
    status=1
fi
if [ "${restarted:-0}" = 1 ]; then
    # The restarted process counts its own requests: pushes of the run.
    pushes=$(ip netns exec "$NETNS_SRV" "$ctl" status --servers "${eps[0]},${eps[1]}" --json |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["shards"][1]["requests"]["PUSH"])')
    echo "pushes served by shard 1 after its restart: ${pushes:-none}"
    if [ "${pushes:-0}" -eq 0 ]; then
        echo "FAIL the restarted shard 1 served no push of the run" >&2
        status=1
    fi
fi
if [ "$drops" -eq 0 ]; then
    echo "FAIL no packet was dropped: the network was not lossy" >&2
    status=1
fi
[ "$status" -eq 0 ] && echo "exact sum: nothing lost, nothing applied twice"
exit "$status"
