#!/usr/bin/env bash
# Runs the image's entrypoint (deploy/docker/entrypoint.sh) on this machine
# with stand-ins for ps-server and java: the shard from a StatefulSet host
# name, the memory limit from a cgroup file, the Spark executor command,
# pass-through, and the HEALTHCHECK against a real HTTP server.
# Usage: tests/deploy/test_entrypoint.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ep=$(dirname "$(dirname "$here")")/deploy/docker/entrypoint.sh
dir=$(mktemp -d)
http_pid=""
cleanup() {
    [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null && wait "$http_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
failures=0
fail() {
    echo "FAIL $*" >&2
    failures=$((failures + 1))
}

# Stand-ins: ps-server prints the settings it got, java its arguments.
mkdir -p "$dir/bin" "$dir/java/bin" "$dir/cg1" "$dir/cg2" "$dir/nocg"
cat >"$dir/bin/ps-server" <<'EOF'
#!/bin/sh
echo "shard=${SPARKPS_SHARD:-unset} memory=${SPARKPS_MEMORY_LIMIT:-unset} args=$*"
EOF
cat >"$dir/java/bin/java" <<'EOF'
#!/bin/sh
for a in "$@"; do echo "$a"; done
EOF
chmod +x "$dir/bin/ps-server" "$dir/java/bin/java"
echo 4294967296 >"$dir/cg1/memory.max"
echo max >"$dir/cg2/memory.max"

# check NAME WANT_STATUS PATTERN -- ENV... : runs the entrypoint with a clean
# environment plus ENV and the arguments after a second --.
check() {
    local name=$1 want=$2 pattern=$3
    shift 4
    local -a envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    local out status
    out=$(env -i PATH="$dir/bin:/usr/bin:/bin" SPARKPS_CGROUP_ROOT="$dir/nocg" \
        "${envs[@]}" bash "$ep" "$@" 2>&1)
    status=$?
    if [ "$status" != "$want" ]; then
        fail "$name: exit status $status, want $want; output: $out"
    elif ! grep -qF -- "$pattern" <<<"$out"; then
        fail "$name: output lacks '$pattern': $out"
    else
        echo "ok $name"
    fi
}

check shard-from-hostname 0 "shard=3 memory=unset args=--listen tcp://0.0.0.0:7000" -- \
    HOSTNAME=ps-3 SPARKPS_SHARDS=4 SPARKPS_SHARD_FROM_HOSTNAME=true -- ps-server --listen tcp://0.0.0.0:7000
check shard-leading-zero 0 "shard=8 " -- HOSTNAME=ps-08 SPARKPS_SHARD_FROM_HOSTNAME=1 -- ps-server
check shard-not-asked 0 "shard=unset" -- HOSTNAME=ps-3 -- ps-server
check shard-past-shards 2 "host ps-2 is shard 2 but SPARKPS_SHARDS=2" -- \
    HOSTNAME=ps-2 SPARKPS_SHARDS=2 SPARKPS_SHARD_FROM_HOSTNAME=true -- ps-server
check shard-no-ordinal 2 "the host name '3f2a1b' does not end in -N" -- \
    HOSTNAME=3f2a1b SPARKPS_SHARD_FROM_HOSTNAME=true -- ps-server
check default-command 0 "args=" -- --
check memory-from-cgroup 0 "memory=3221225472 " -- SPARKPS_CGROUP_ROOT="$dir/cg1" -- ps-server
check memory-unlimited 0 "memory=unset" -- SPARKPS_CGROUP_ROOT="$dir/cg2" -- ps-server
check memory-flag-wins 0 "memory=unset args=--memory-limit=1000" -- \
    SPARKPS_CGROUP_ROOT="$dir/cg1" -- ps-server --memory-limit=1000
check memory-env-wins 0 "memory=5000 " -- SPARKPS_CGROUP_ROOT="$dir/cg1" SPARKPS_MEMORY_LIMIT=5000 -- ps-server
check pass-through 0 "hello from echo" -- -- echo hello from echo

spark_env=(JAVA_HOME="$dir/java" SPARK_HOME=/opt/spark SPARK_DRIVER_URL=spark://d:7078
    SPARK_EXECUTOR_ID=4 SPARK_EXECUTOR_CORES=1 SPARK_APPLICATION_ID=spark-app
    SPARK_EXECUTOR_POD_IP=10.0.0.9 SPARK_RESOURCE_PROFILE_ID=0
    SPARK_EXECUTOR_POD_NAME=app-exec-4 SPARK_EXECUTOR_MEMORY=8g
    SPARK_JAVA_OPT_10=-Dten SPARK_JAVA_OPT_2=-Dtwo)
want=$(printf '%s\n' -Dtwo -Dten -Xms8g -Xmx8g -cp '/opt/spark/conf:/opt/spark/jars/*' \
    org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
    --driver-url spark://d:7078 --executor-id 4 --cores 1 --app-id spark-app \
    --hostname 10.0.0.9 --resourceProfileId 0 --podName app-exec-4)
check spark-executor 0 "$want" -- "${spark_env[@]}" -- executor
check spark-executor-missing-env 2 "executor: SPARK_EXECUTOR_POD_NAME is not set" -- \
    "${spark_env[@]}" SPARK_EXECUTOR_POD_NAME= -- executor

# HEALTHCHECK: PID 1's command line is read from a file standing in for
# /proc/1/cmdline; the ps-server is a Python HTTP server serving /status.
mkdir -p "$dir/www"
echo '{"shard":0}' >"$dir/www/status"
python3 -c '
import functools, http.server, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
h.log_message = lambda *a: None
s = http.server.HTTPServer(("127.0.0.1", 0), h)
print(s.server_address[1], flush=True)
s.serve_forever()' "$dir/www" >"$dir/port" 2>/dev/null &
http_pid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
cmdline() { printf '%s\0' "$@" >"$dir/cmdline"; }
hc=(SPARKPS_PID1_CMDLINE="$dir/cmdline")
cmdline /usr/bin/tini -- /opt/sparkps/bin/sparkps-entrypoint ps-server --http "127.0.0.1:$port"
check healthcheck-up 0 "http://127.0.0.1:$port/status OK" -- "${hc[@]}" -- healthcheck
cmdline /usr/bin/tini -- /opt/sparkps/bin/sparkps-entrypoint ps-server --listen tcp://0.0.0.0:7000
check healthcheck-env 0 "http://127.0.0.1:$port/status OK" -- "${hc[@]}" SPARKPS_HTTP="0.0.0.0:$port" -- healthcheck
check healthcheck-no-http 0 "ps-server runs without --http; nothing to probe" -- "${hc[@]}" -- healthcheck
cmdline /sbin/docker-init -- /usr/bin/tini -- /opt/sparkps/bin/sparkps-entrypoint executor
check healthcheck-executor 0 "not a ps-server container" -- "${hc[@]}" -- healthcheck
rm "$dir/www/status"
cmdline /usr/bin/tini -- /opt/sparkps/bin/sparkps-entrypoint ps-server --http="127.0.0.1:$port"
check healthcheck-404 1 "/status answered '404'" -- "${hc[@]}" -- healthcheck
kill "$http_pid" && wait "$http_pid" 2>/dev/null
http_pid=""
check healthcheck-down 1 "/status answered 'nothing'" -- "${hc[@]}" -- healthcheck

[ "$failures" -eq 0 ] || { echo "test_entrypoint: $failures case(s) failed" >&2; exit 1; }
echo "test_entrypoint: all cases passed"
