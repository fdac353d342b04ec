# shellcheck shell=bash
# A faulty network for the fault tests (sourced), built from what this
# machine's kernel has (no netem): two test hosts in network namespaces
# joined by a veth pair, random packet loss with iptables' statistic match,
# a rate limit with the tbf qdisc, and latency from delay_proxy.py.
#
#   netns_check                 0 when namespaces can be made here; else
#                               prints what is missing (callers skip, 77)
#   netns_setup                 creates the hosts: servers in $NETNS_SRV at
#                               $NETNS_SRV_IP, clients in $NETNS_CLI at
#                               $NETNS_CLI_IP, loopback up in both
#   netns_loss NS PROBABILITY   drops that share of the packets NS receives
#                               over the veth (loopback traffic is spared)
#   netns_rate NS RATE          limits what NS sends over the veth (tbf,
#                               e.g. 20mbit)
#   netns_faulty LOSS RATE      netns_setup, then that loss and rate limit
#                               on both sides of the link
#   netns_faulty_or_skip LOSS RATE
#                               netns_faulty for a test script: exits 77
#                               (skip) with the reason when namespaces
#                               cannot be made, 1 when the network fails
#                               (fault_init must have run)
#   netns_drops                 packets the loss rules dropped so far
#   netns_proxy NS DELAY_MS OUT LISTEN=TARGET...
#                               runs delay_proxy.py in NS; sets PROXY_PID and
#                               PROXY_ADDRS (HOST:PORT per map, in order)
#   netns_teardown              stops the proxy, deletes both namespaces
#                               (their veth ends go with them); idempotent
#
# Needs root, iproute2 (ip, tc) and iptables. Names carry this shell's pid,
# so parallel tests never share a namespace; call netns_teardown from an
# EXIT trap.

NETNS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETNS_SRV=""
NETNS_CLI=""
NETNS_SRV_IP=10.77.0.1
NETNS_CLI_IP=10.77.0.2
NETNS_DEV_SRV=""
NETNS_DEV_CLI=""
PROXY_PID=""
PROXY_ADDRS=()

netns_check() {
    local probe="sparkps-probe-$$" why
    if ! command -v ip >/dev/null; then
        echo "no 'ip' command (Debian package iproute2)"
        return 1
    fi
    if ! why=$(ip netns add "$probe" 2>&1); then
        echo "cannot create a network namespace (ip netns add: $why)"
        return 1
    fi
    if ! why=$(ip netns exec "$probe" ip link set lo up 2>&1); then
        ip netns del "$probe" 2>/dev/null
        echo "cannot enter a network namespace (ip netns exec: $why)"
        return 1
    fi
    ip netns del "$probe"
}

netns_setup() {
    NETNS_SRV="sparkps-s-$$"
    NETNS_CLI="sparkps-c-$$"
    NETNS_DEV_SRV="sps$$"
    NETNS_DEV_CLI="spc$$"
    ip netns add "$NETNS_SRV" &&
        ip netns add "$NETNS_CLI" &&
        ip link add "$NETNS_DEV_SRV" type veth peer name "$NETNS_DEV_CLI" &&
        ip link set "$NETNS_DEV_SRV" netns "$NETNS_SRV" &&
        ip link set "$NETNS_DEV_CLI" netns "$NETNS_CLI" &&
        ip -n "$NETNS_SRV" addr add "$NETNS_SRV_IP/24" dev "$NETNS_DEV_SRV" &&
        ip -n "$NETNS_CLI" addr add "$NETNS_CLI_IP/24" dev "$NETNS_DEV_CLI" &&
        ip -n "$NETNS_SRV" link set lo up &&
        ip -n "$NETNS_CLI" link set lo up &&
        ip -n "$NETNS_SRV" link set "$NETNS_DEV_SRV" up &&
        ip -n "$NETNS_CLI" link set "$NETNS_DEV_CLI" up
}

# The veth end inside namespace $1.
netns_dev() {
    if [ "$1" = "$NETNS_SRV" ]; then echo "$NETNS_DEV_SRV"; else echo "$NETNS_DEV_CLI"; fi
}

netns_loss() {
    local ns=$1 p=$2
    if ! command -v iptables >/dev/null; then
        echo "netns_loss: no iptables (apt-get install iptables; install-deps.sh does)" >&2
        return 1
    fi
    ip netns exec "$ns" iptables -A INPUT -i "$(netns_dev "$ns")" \
        -m statistic --mode random --probability "$p" -j DROP
}

netns_rate() {
    local ns=$1 rate=$2
    # burst: a few full-size frames; latency bounds the queue (the excess is
    # dropped, as on a congested link).
    tc -n "$ns" qdisc add dev "$(netns_dev "$ns")" root tbf rate "$rate" \
        burst 64kb latency 100ms
}

netns_faulty() {
    local ns
    netns_setup || return 1
    for ns in "$NETNS_SRV" "$NETNS_CLI"; do
        netns_loss "$ns" "$1" || return 1
        netns_rate "$ns" "$2" || return 1
    done
}

netns_drops() {
    local ns n total=0
    for ns in "$NETNS_SRV" "$NETNS_CLI"; do
        n=$(ip netns exec "$ns" iptables -L INPUT -v -n -x |
            awk '$3 == "DROP" { s += $1 } END { print s + 0 }')
        total=$((total + n))
    done
    echo "$total"
}

netns_proxy() {
    local ns=$1 delay=$2 out=$3 maps=() m
    shift 3
    for m in "$@"; do maps+=(--map "$m"); done
    ip netns exec "$ns" python3 "$NETNS_LIB_DIR/delay_proxy.py" \
        --delay-ms "$delay" "${maps[@]}" >"$out" 2>&1 &
    PROXY_PID=$!
    local addr='^[0-9.]+:[0-9]+$'
    for _ in $(seq 300); do
        [ "$(grep -cE "$addr" "$out" 2>/dev/null)" -ge $# ] && break
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    mapfile -t PROXY_ADDRS < <(grep -E "$addr" "$out")
    if [ ${#PROXY_ADDRS[@]} -ne $# ]; then
        echo "netns_proxy: the delay proxy did not start: $(cat "$out")" >&2
        return 1
    fi
}

netns_teardown() {
    if [ -n "$PROXY_PID" ]; then
        kill -TERM "$PROXY_PID" 2>/dev/null
        wait "$PROXY_PID" 2>/dev/null
        PROXY_PID=""
    fi
    local ns
    for ns in "$NETNS_SRV" "$NETNS_CLI"; do
        [ -n "$ns" ] || continue
        # Whatever still runs inside would keep using the namespace.
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    NETNS_SRV=""
    NETNS_CLI=""
}

netns_faulty_or_skip() {
    local why
    if ! why=$(netns_check); then
        echo "SKIP: $why"
        exit 77
    fi
    fault_init
    netns_faulty "$1" "$2" || {
        echo "FAIL: cannot build the lossy, rate-limited test network" >&2
        exit 1
    }
}
