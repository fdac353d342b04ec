#!/usr/bin/env bash
# ps-worker attempts end to end (what a retried Spark barrier stage does):
# while attempt 0 of worker 0 trains, attempt 1 of worker 0 joins (through
# SPARKPS_ATTEMPT) and trains to the end; attempt 0 stops with exit status
# 3 and a message naming both attempts; an attempt 0 started afterwards is
# refused at once the same way (attempt 1 owns the worker id until it has
# been silent for the worker timeout); ps-ctl status shows the attempt in
# force; malformed --attempt values are usage errors.
# Usage: worker_attempt.sh BIN_DIR PS_SERVER  (BIN_DIR holds ps-worker,
# ps-ctl)
set -uo pipefail
bin=${1:?usage: worker_attempt.sh BIN_DIR PS_SERVER}
server=${2:?usage: worker_attempt.sh BIN_DIR PS_SERVER}
here=$(dirname "$0")
# shellcheck source=cli_lib.sh
. "$here/cli_lib.sh"
# shellcheck source=fault_lib.sh
. "$here/fault_lib.sh"
fault_init
w=$bin/ps-worker

expect bad-attempt-negative 2 "--attempt" -- "$w" --servers tcp://127.0.0.1:1 --data x --attempt -1
expect bad-attempt-text 2 "--attempt" -- "$w" --servers tcp://127.0.0.1:1 --data x --attempt one
expect bad-attempt-env 2 "SPARKPS_ATTEMPT" -- env SPARKPS_ATTEMPT=1x "$w" --servers tcp://127.0.0.1:1 --data x
expect attempt-in-help 0 "--attempt N" -- "$w" --help

awk 'BEGIN { for (i = 0; i < 20000; i++) printf "%d,%d,%d,%d,%d\n", i % 7, i % 5, i % 3, i % 2, i % 3 }' >"$dir/long.csv"
head -n 3000 "$dir/long.csv" >"$dir/short.csv"
# Attempt 1 owns worker id 0 until silent for the worker timeout: long here.
start_server "$dir/srv.out" "$dir/srv.err" "$server" --listen tcp://127.0.0.1:0 --worker-timeout 600000 ||
    exit 1
ep=$SERVER_EP
train=(--servers "$ep" --job attempts --worker-id 0 --format csv
    --model mlp:4-16-3 --progress-every 0.1 --log-level warn)

# The stale attempt: far more epochs than the test lasts.
start_bg "$dir/old.out" "$dir/old.err" "$w" "${train[@]}" --attempt 0 \
    --data "$dir/long.csv" --epochs 100000
old=$BG_PID
wait_for 60 grep -q '"samples"' "$dir/old.out" ||
    fail "attempt 0 never trained: $(tail -n3 "$dir/old.err")"

# The retried run's worker 0, its attempt from the environment.
expect new-attempt-trains 0 '"event":"done"' -- env SPARKPS_ATTEMPT=1 "$w" "${train[@]}" --data "$dir/short.csv" --epochs 1

stale="a newer attempt 1 of worker 0 has joined; this attempt 0 stops"
if ! wait_exit "$old" 60; then
    fail "attempt 0 still runs after attempt 1 joined"
elif [ "$EXIT_STATUS" -ne 3 ] || ! grep -qF "$stale" "$dir/old.err"; then
    fail "old-attempt-stops: exit $EXIT_STATUS (want 3), stderr: $(tail -n2 "$dir/old.err")"
else
    echo "ok   old-attempt-stops ($(tail -n1 "$dir/old.err"))"
fi
expect late-old-attempt-refused 3 "$stale" -- "$w" "${train[@]}" --attempt 0 --data "$dir/short.csv" --epochs 1
expect_re status-shows-attempt 0 "^0 +1 +[0-9]+ " -- "$bin/ps-ctl" status --servers "$ep"

[ "$failures" -eq 0 ] || { echo "$failures case(s) failed" >&2; exit 1; }
echo "all worker attempt cases passed"
