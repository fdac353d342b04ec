# shellcheck shell=bash
# Process helpers for the fault test scripts (sourced): every process they
# start is tracked and killed on exit, and every wait polls a condition up
# to a deadline instead of sleeping a fixed time.
#
#   fault_init                  makes $dir (a temporary directory) and an
#                               EXIT trap that kills what was started, tears
#                               down the network namespaces (netns_lib.sh,
#                               when sourced) and removes $dir
#   start_bg OUT ERR CMD...     runs CMD in the background; sets BG_PID
#   start_server OUT ERR CMD... start_bg, then waits for the endpoint line a
#                               ps-server prints first; sets SERVER_PID and
#                               SERVER_EP (fails when it exits instead)
#   wait_for SECONDS CMD...     runs CMD every 0.1 s until it succeeds; 1
#                               when SECONDS pass first
#   wait_exit PID SECONDS       waits for a child to exit; sets EXIT_STATUS
#                               (1 when it still runs after SECONDS)
#   json_field FILE KEY         the last number KEY has in a JSON-lines FILE

FAULT_PIDS=()

fault_cleanup() {
    local p
    for p in "${FAULT_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    for p in "${FAULT_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if declare -F netns_teardown >/dev/null; then
        netns_teardown
    fi
    [ -n "${dir:-}" ] && rm -rf "$dir"
}

fault_init() {
    dir=$(mktemp -d)
    trap fault_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

start_bg() {
    local out=$1 err=$2
    shift 2
    # Emptied here, not only by the background job's redirection: a wait
    # on OUT must never see what an earlier process left in it.
    : >"$out"
    : >"$err"
    "$@" >>"$out" 2>>"$err" &
    BG_PID=$!
    FAULT_PIDS+=("$BG_PID")
}

start_server() {
    local out=$1
    start_bg "$@"
    # shellcheck disable=SC2034 # read by the sourcing script
    SERVER_PID=$BG_PID
    SERVER_EP=""
    wait_for 60 grep -q '^tcp://' "$out" || true
    SERVER_EP=$(head -n1 "$out")
    case "$SERVER_EP" in
    tcp://*) return 0 ;;
    esac
    echo "ps-server did not start: $(tail -n3 "$2")" >&2
    return 1
}

wait_for() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 10; i++)); do
        "$@" 2>/dev/null && return 0
        sleep 0.1
    done
    "$@" 2>/dev/null
}

wait_exit() {
    local pid=$1 secs=$2
    if ! wait_for "$secs" eval "! kill -0 $pid"; then
        EXIT_STATUS=""
        return 1
    fi
    wait "$pid"
    # shellcheck disable=SC2034 # read by the sourcing script
    EXIT_STATUS=$?
}

json_field() {
    sed -n "s/.*\"$2\":\\([-0-9.e+]*\\).*/\\1/p" "$1" | tail -n1
}
