#!/usr/bin/env bash
# Entrypoint of the sparkps image (installed as
# /opt/sparkps/bin/sparkps-entrypoint, run under tini). One image, several
# uses, chosen by the first argument:
#
#   ps-server [FLAGS]   one shard (the image's default command). Settings come
#                       from FLAGS and SPARKPS_* variables as for ps-server
#                       itself (the command line wins). Two additions:
#                       - SPARKPS_SHARD_FROM_HOSTNAME=true sets SPARKPS_SHARD
#                         to the number after the host name's last '-': a
#                         StatefulSet pod ps-3 is shard 3;
#                       - without --memory-limit/SPARKPS_MEMORY_LIMIT, the
#                         shard's table memory defaults to 3/4 of the
#                         container's memory limit (cgroup v2 or v1) instead
#                         of the host's RAM, so a define past it gets ENOMEM
#                         rather than the container being OOM-killed.
#   executor, driver    Spark on Kubernetes: what Spark's own image does with
#                       the arguments and SPARK_* variables Spark gives its
#                       pods (the JVM executor backend, or spark-submit in
#                       client mode inside the driver pod).
#   healthcheck         Docker's HEALTHCHECK: when this container runs
#                       ps-server with an HTTP endpoint (--http or
#                       SPARKPS_HTTP), GET /status must answer 200; any other
#                       use of the image has nothing to probe and passes.
#   anything else       run as given (ps-worker, ps-ctl, ps-train, bash, ...).
#
# Test seams (tests/deploy/test_entrypoint.sh): SPARKPS_CGROUP_ROOT (default
# /sys/fs/cgroup) and SPARKPS_PID1_CMDLINE (default /proc/1/cmdline).
set -euo pipefail
# The image's programs, also where a launcher replaced PATH (YARN's launch
# script runs with the NodeManager's environment).
export PATH="$PATH:/opt/sparkps/bin"

log() { echo "sparkps-entrypoint: $*" >&2; }

is_true() {
    case "${1,,}" in
    1 | true | yes | on) return 0 ;;
    *) return 1 ;;
    esac
}

# Prints the container's memory limit in bytes; fails when there is none
# (cgroup v2 "max", v1's huge "unlimited" value, or a limit at or above RAM).
cgroup_memory_limit() {
    local root=${SPARKPS_CGROUP_ROOT:-/sys/fs/cgroup} f v ram_kb
    for f in "$root/memory.max" "$root/memory/memory.limit_in_bytes"; do
        [ -r "$f" ] || continue
        read -r v <"$f" || return 1
        [[ $v =~ ^[0-9]+$ ]] && [ ${#v} -le 18 ] || return 1
        ram_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
        [ -n "$ram_kb" ] && [ "$v" -ge $((ram_kb * 1024)) ] && return 1
        echo "$v"
        return 0
    done
    return 1
}

has_flag() { # has_flag NAME ARGS...: is --NAME or --NAME=... among ARGS?
    local name=$1 a
    shift
    for a in "$@"; do
        [ "$a" = "--$name" ] || [[ $a == --$name=* ]] && return 0
    done
    return 1
}

run_server() {
    if is_true "${SPARKPS_SHARD_FROM_HOSTNAME:-}"; then
        local host=${HOSTNAME:-$(hostname)}
        if [[ ! $host =~ -([0-9]+)$ ]]; then
            log "SPARKPS_SHARD_FROM_HOSTNAME is set but the host name '$host'" \
                "does not end in -N (a StatefulSet pod's ordinal)"
            exit 2
        fi
        local ordinal=$((10#${BASH_REMATCH[1]}))
        if [[ ${SPARKPS_SHARDS:-} =~ ^[0-9]+$ ]] && [ "$ordinal" -ge "$SPARKPS_SHARDS" ]; then
            log "host $host is shard $ordinal but SPARKPS_SHARDS=$SPARKPS_SHARDS:" \
                "the StatefulSet's replicas and SPARKPS_SHARDS must be equal"
            exit 2
        fi
        export SPARKPS_SHARD=$ordinal
        log "shard=$ordinal from host name $host"
    fi
    if [ -z "${SPARKPS_MEMORY_LIMIT:-}" ] && ! has_flag memory-limit "$@"; then
        local limit
        if limit=$(cgroup_memory_limit); then
            export SPARKPS_MEMORY_LIMIT=$((limit * 3 / 4))
            log "memory-limit=$SPARKPS_MEMORY_LIMIT (3/4 of the container's limit $limit)"
        fi
    fi
    exec ps-server "$@"
}

spark_classpath() {
    local cp="${SPARK_CLASSPATH:-}${SPARK_CLASSPATH:+:}$SPARK_HOME/jars/*"
    [ -n "${SPARK_EXTRA_CLASSPATH:-}" ] && cp="$cp:$SPARK_EXTRA_CLASSPATH"
    [ -n "${HADOOP_CONF_DIR:-}" ] && cp="$HADOOP_CONF_DIR:$cp"
    echo "${SPARK_CONF_DIR:-$SPARK_HOME/conf}:$cp${SPARK_DIST_CLASSPATH:+:$SPARK_DIST_CLASSPATH}"
}

run_executor() {
    : "${SPARK_HOME:?the image sets SPARK_HOME}" "${JAVA_HOME:?the image sets JAVA_HOME}"
    local v
    for v in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES \
        SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP SPARK_RESOURCE_PROFILE_ID \
        SPARK_EXECUTOR_POD_NAME SPARK_EXECUTOR_MEMORY; do
        if [ -z "${!v:-}" ]; then
            log "executor: $v is not set (Spark on Kubernetes sets it in executor pods)"
            exit 2
        fi
    done
    # Spark passes JVM options as SPARK_JAVA_OPT_0, _1, ... in order.
    local -a opts=()
    mapfile -t opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
    exec "$JAVA_HOME/bin/java" "${opts[@]}" \
        "-Xms$SPARK_EXECUTOR_MEMORY" "-Xmx$SPARK_EXECUTOR_MEMORY" \
        -cp "$(spark_classpath)" \
        org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
        --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
        --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
        --hostname "$SPARK_EXECUTOR_POD_IP" \
        --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
        --podName "$SPARK_EXECUTOR_POD_NAME"
}

run_driver() {
    : "${SPARK_HOME:?the image sets SPARK_HOME}"
    exec "$SPARK_HOME/bin/spark-submit" \
        --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:?Spark sets it in driver pods}" \
        --deploy-mode client "$@"
}

# healthcheck: finds this entrypoint in PID 1's command line (tini, or
# docker --init then tini, come first), then its mode and --http.
healthcheck() {
    local -a cmd=()
    mapfile -d '' -t cmd <"${SPARKPS_PID1_CMDLINE:-/proc/1/cmdline}"
    local i=0
    while [ "$i" -lt "${#cmd[@]}" ] && [[ ${cmd[i]} != *sparkps-entrypoint ]]; do
        i=$((i + 1))
    done
    local -a args=("${cmd[@]:i+1}")
    if [ "$i" -ge "${#cmd[@]}" ] || { [ "${#args[@]}" -gt 0 ] && [ "${args[0]}" != ps-server ]; }; then
        echo "healthcheck: not a ps-server container; nothing to probe"
        return 0
    fi
    local http=${SPARKPS_HTTP:-} j
    for ((j = 1; j < ${#args[@]}; j++)); do
        case "${args[j]}" in
        --http) http=${args[j + 1]:-} ;;
        --http=*) http=${args[j]#--http=} ;;
        esac
    done
    if [ -z "$http" ]; then
        echo "healthcheck: ps-server runs without --http; nothing to probe"
        return 0
    fi
    local host=${http%:*} port=${http##*:}
    case "$host" in "" | 0.0.0.0 | "*") host=127.0.0.1 ;; "[::]") host=::1 ;; esac
    host=${host#[}
    host=${host%]}
    local status=""
    if exec 3<>"/dev/tcp/$host/$port"; then
        printf 'GET /status HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
        read -r -t 5 _ status _ <&3 || true
        exec 3<&-
    fi
    if [ "$status" != 200 ]; then
        echo "healthcheck: GET http://$host:$port/status answered '${status:-nothing}'"
        return 1
    fi
    echo "healthcheck: http://$host:$port/status OK"
}

mode=${1:-ps-server}
[ $# -eq 0 ] || shift
case "$mode" in
ps-server) run_server "$@" ;;
executor) run_executor ;;
driver) run_driver "$@" ;;
healthcheck) healthcheck ;;
*) exec "$mode" "$@" ;;
esac
