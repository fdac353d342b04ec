#!/usr/bin/env bash
# A real Prometheus scraping a ps-server whose /metrics wants a bearer
# token (--http-token-file), with the scrape config of
# deploy/prometheus/prometheus-static.yml (authorization, credentials_file
# beside the configuration): the job with the right token is up and its
# samples are stored; a job with a wrong token is down with a 401.
# Usage: prometheus_token.sh PS_SERVER
# Exit 77 (skipped) when prometheus or promtool is not installed.
set -euo pipefail
server=${1:?usage: prometheus_token.sh PS_SERVER}
# shellcheck source=tests/integration/proc_lib.sh
. "$(dirname "$0")/proc_lib.sh"
need_prometheus
logs=(server.err prometheus.log)

od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/sparkps-token"
echo "not-the-token-0123456789" >"$dir/wrong-token"
chmod 600 "$dir/sparkps-token" "$dir/wrong-token"
"$server" --http 127.0.0.1:0 --http-token-file "$dir/sparkps-token" \
    >"$dir/server.out" 2>"$dir/server.err" &
pids+=($!)
for _ in $(seq 100); do [ "$(wc -l <"$dir/server.out")" -ge 2 ] && break; sleep 0.1; done
url=$(sed -n 2p "$dir/server.out")
[[ $url == http://127.0.0.1:* ]] || die "no URL line from the server"
target=${url#http://}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prom=http://127.0.0.1:$port

# The deployed scrape job, pointed at our server, and a copy with a wrong token.
job=$(sed -n '/^  - job_name: sparkps$/,/^    static_configs:/p' \
    "$(dirname "$0")/../../deploy/prometheus/prometheus-static.yml" | grep -v static_configs)
grep -q "credentials_file: sparkps-token" <<<"$job" || die "the deployed job sends no token"
{
    printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n'
    printf '%s\n    static_configs:\n      - targets: ["%s"]\n' "$job" "$target"
    sed -e 's/job_name: sparkps$/job_name: sparkps-wrong/' \
        -e 's/credentials_file: sparkps-token/credentials_file: wrong-token/' <<<"$job"
    printf '    static_configs:\n      - targets: ["%s"]\n' "$target"
} >"$dir/prometheus.yml"
promtool check config "$dir/prometheus.yml" >/dev/null || die "promtool rejects $(cat "$dir/prometheus.yml")"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)

# health JOB WANT [ERROR]: the job's target has health WANT (and lastError
# holding ERROR).
health() {
    python3 - "$prom" "$@" <<'EOF'
import json, sys, urllib.request
prom, job, want = sys.argv[1:4]
err = sys.argv[4] if len(sys.argv) > 4 else ""
try:
    r = json.load(urllib.request.urlopen(prom + "/api/v1/targets", timeout=5))
except Exception:
    sys.exit(1)
t = [t for t in r["data"]["activeTargets"] if t["labels"]["job"] == job]
sys.exit(0 if t and t[0]["health"] == want and err in t[0]["lastError"] else 1)
EOF
}
stored() {
    python3 - "$prom" <<'EOF'
import json, sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"query": 'sparkps_uptime_seconds{job="sparkps"}'})
r = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/query?" + q, timeout=5))
sys.exit(0 if r["data"]["result"] else 1)
EOF
}
wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < 240; i++)); do "$@" && return 0; sleep 0.5; done
    die "gave up waiting for $what"
}
wait_for "the job with the token to be up" health sparkps up
wait_for "its samples in Prometheus" stored
echo "ok   Prometheus scrapes /metrics with the bearer token"
wait_for "the job with a wrong token to be down with a 401" health sparkps-wrong down 401
echo "ok   a wrong token is refused (401)"
if grep -qF "$(cat "$dir/sparkps-token")" "$dir/server.err" "$dir/prometheus.log"; then
    die "the token appears in a log"
fi
echo "prometheus_token: all passed"
