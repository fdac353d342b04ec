#!/usr/bin/env bash
# Monitoring end to end with a real Prometheus: a ps-server with --http
# (BSP, 2 workers expected), scraped every second by Prometheus, while two
# ps-workers train an MLP on synthetic blobs for 2 epochs. Worker 0 starts
# alone and waits at its second step for worker 1 (BSP), so Prometheus sees
# its first samples and its parked pull before worker 1 is even started:
# the rise of sparkps_worker_samples_total is observed without any timing
# assumption. Checked: the target is up, every metric name of a scrape is
# in Prometheus, a scrape passes `promtool check metrics`, samples rose,
# staleness and parked pulls were seen, and /status over HTTP equals
# `ps-ctl status --json` (tables, workers, the per-epoch history). Worker 0
# also serves its own /metrics (--http): scraped while BSP holds it, it
# passes `promtool check metrics`, and every metric the Grafana dashboard
# queries is in the server's scrape or the worker's.
# Usage: monitor_prometheus.sh BIN_DIR PS_SERVER  (BIN_DIR holds ps-worker
# and ps-ctl)
# Exit 77 (skipped) when prometheus or promtool is not installed.
set -euo pipefail
bin=${1:?usage: monitor_prometheus.sh BIN_DIR PS_SERVER}
server=${2:?usage: monitor_prometheus.sh BIN_DIR PS_SERVER}
# shellcheck source=tests/integration/proc_lib.sh
. "$(dirname "$0")/proc_lib.sh"
need_prometheus
logs=(server.err prometheus.log w0.err w1.err)

# Prometheus' HTTP API through python3 (no curl needed): prints the value
# of an instant query's first sample, or nothing.
prom_value() {
    python3 - "$prom" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
r = json.load(urllib.request.urlopen(url, timeout=10))
if r["status"] == "success" and r["data"]["result"]:
    print(r["data"]["result"][0]["value"][1])
EOF
}
# prom_ge QUERY MIN: the query's value is >= MIN.
prom_ge() {
    local v
    v=$(prom_value "$1") && [ -n "$v" ] && awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }'
}
fetch() {
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# shellcheck source=tests/integration/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
blobs_csv 4000 1 >"$dir/train.csv"
blobs_csv 600 2 >"$dir/test.csv"

# The server: endpoint on line 1 of stdout, HTTP URL on line 2.
"$server" --http 127.0.0.1:0 --consistency bsp --workers 2 \
    --worker-timeout 120000 >"$dir/server.out" 2>"$dir/server.err" &
pids+=($!)
server_pid=$!
has_lines() { [ "$(wc -l <"$1")" -ge "$2" ]; }
poll 40 "the server's two stdout lines" has_lines "$dir/server.out" 2
endpoint=$(sed -n 1p "$dir/server.out")
url=$(sed -n 2p "$dir/server.out")
[[ $endpoint == tcp://127.0.0.1:* && $url == http://127.0.0.1:* ]] ||
    die "unexpected stdout lines: $endpoint / $url"
target=${url#http://}

port=$(free_port)
prom=http://127.0.0.1:$port
cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sparkps
    static_configs:
      - targets: ['$target']
EOF
promtool check config "$dir/prometheus.yml" >/dev/null || die "promtool rejects the config"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)

target_up() {
    python3 - "$prom" <<'EOF'
import json, sys, urllib.request
try:
    r = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/targets", timeout=5))
except Exception:
    sys.exit(1)
t = r["data"]["activeTargets"]
sys.exit(0 if t and t[0]["health"] == "up" and not t[0]["lastError"] else 1)
EOF
}
poll 120 "Prometheus to report the target up (scrape errors: see prometheus.log)" target_up
echo "ok   target $target up in Prometheus at $prom"

# Worker 0 alone: BSP holds its second step until worker 1 exists. It
# serves its own /metrics (URL on its stderr).
worker() {
    "$bin/ps-worker" --servers "$endpoint" --worker-id "$1" --part "$1/2" \
        --format csv --data "$dir/train.csv" --eval "$dir/test.csv" \
        --model mlp:4-16-3 --epochs 2 --batch 32 --lr 0.01 --optimizer adam \
        --progress-every 0.2 "${@:2}"
}
worker 0 --http 127.0.0.1:0 >"$dir/w0.out" 2>"$dir/w0.err" &
pids+=($!)
w0=$!
poll 120 "Prometheus to see worker 0's first samples" prom_ge 'sparkps_worker_samples_total{worker="0"}' 1
v1=$(prom_value 'sparkps_worker_samples_total{worker="0"}')
poll 120 "Prometheus to see worker 0's parked pull" prom_ge 'sparkps_pending_pulls' 1
kill -0 "$w0" 2>/dev/null || die "worker 0 finished alone: BSP did not hold it"
prom_ge 'max_over_time(sparkps_worker_staleness{worker="0"}[10m])' 1 ||
    die "no staleness seen for the worker ahead"
echo "ok   worker 0 at $v1 samples, parked, ahead of worker 1"

# Worker 0's own /metrics while it waits: at least one step counted.
has_url() { grep -q "http url=http://127.0.0.1:" "$dir/w0.err"; }
poll 120 "worker 0's URL on its stderr" has_url
wurl=$(sed -n 's/.*http url=\(http:[^ ]*\).*/\1/p' "$dir/w0.err" | head -n 1)
stepped() {
    fetch "$wurl/metrics" >"$dir/worker_scrape.txt" &&
        grep -Eq '^sparkps_trainer_steps_total\{worker="0",attempt="[0-9]+"\} [1-9]' "$dir/worker_scrape.txt"
}
poll 120 "a step in worker 0's /metrics ($wurl)" stepped
kill -0 "$w0" 2>/dev/null || die "worker 0 finished alone: BSP did not hold it"
promtool check metrics <"$dir/worker_scrape.txt" || die "promtool check metrics failed on worker 0's scrape"
echo "ok   worker 0's /metrics at $wurl scraped while it waits; promtool accepts it"

worker 1 >"$dir/w1.out" 2>"$dir/w1.err" &
pids+=($!)
w1=$!
wait "$w0" || die "worker 0 failed"
wait "$w1" || die "worker 1 failed"
final=$(sed -n 's/.*"event":"done".*"samples":\([0-9]*\).*/\1/p' "$dir/w0.out")
[ -n "$final" ] || die "no done line from worker 0"
poll 120 "Prometheus to see worker 0's final samples ($final)" prom_ge 'sparkps_worker_samples_total{worker="0"}' "$final"
v2=$(prom_value 'sparkps_worker_samples_total{worker="0"}')
awk -v a="$v1" -v b="$v2" 'BEGIN { exit !(b > a) }' || die "samples did not rise: $v1 -> $v2"
echo "ok   sparkps_worker_samples_total{worker=\"0\"} rose $v1 -> $v2"
prom_ge 'sparkps_request_duration_seconds_count{type="pushpull"}' 1 || die "no pushpull latency"
prom_ge 'sparkps_worker_accuracy{worker="1"}' 0.5 || die "no evaluation accuracy for worker 1"
# Our job label arrives as exported_job (Prometheus keeps the target's).
prom_ge 'sparkps_table_values{exported_job="default",table="fc1.weight"}' 64 ||
    die "no sparkps_table_values for fc1.weight"

# A scrape through promtool, and every metric name in it in Prometheus
# (after a scrape that followed it).
fetched_at=$(date +%s.%N)
fetch "$url/metrics" >"$dir/scrape.txt"
promtool check metrics <"$dir/scrape.txt" || die "promtool check metrics failed on a scrape"
# Every metric the Grafana dashboard queries is in a live scrape: the
# server's or the worker's (the Workers row).
python3 "$(dirname "$0")/../deploy/check_grafana.py" \
    "$(dirname "$0")/../../deploy/grafana/sparkps.json" "$dir/scrape.txt" \
    "$dir/worker_scrape.txt" ||
    die "deploy/grafana/sparkps.json queries metrics neither ps-server nor ps-worker exports"
poll 120 "a Prometheus scrape after ours" prom_ge 'timestamp(up)' "$fetched_at"
python3 - "$prom" "$dir/scrape.txt" <<'EOF' || die "metric names missing in Prometheus"
import json, re, sys, urllib.request
prom, path = sys.argv[1], sys.argv[2]
names = {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", open(path).read(), re.M)}
have = set(json.load(urllib.request.urlopen(prom + "/api/v1/label/__name__/values", timeout=10))["data"])
missing = sorted(names - have)
print("scrape: %d metric names, all in Prometheus" % len(names) if not missing else "missing: %s" % missing)
sys.exit(1 if missing or len(names) < 25 else 0)
EOF

# /status over HTTP is the wire Status as ps-ctl renders it.
fetch "$url/status" >"$dir/http_status.json"
"$bin/ps-ctl" status --servers "$endpoint" --json >"$dir/ctl_status.json" || die "ps-ctl status failed"
python3 - "$dir/http_status.json" "$dir/ctl_status.json" <<'EOF' || die "/status differs from ps-ctl status --json"
import json, sys
http = json.load(open(sys.argv[1]))
ctl = json.load(open(sys.argv[2]))["shards"][0]
def strip(s):
    # ps-ctl's own connection moves the peer counters
    for k in ("uptime_ms", "bytes_in", "bytes_out", "peers_accepted",
              "peers_disconnected"):
        s.pop(k)
    for w in s["workers"]:
        w.pop("idle_ms")
    for k in ("STATUS", "HELLO"):  # ps-ctl's own requests
        s["requests"].pop(k)
    return s
a, b = strip(http), strip(ctl)
if a != b:
    for k in a:
        if a[k] != b.get(k):
            print("field %s: http %s\n ps-ctl %s" % (k, a[k], b.get(k)))
    sys.exit(1)
for w in a["workers"]:
    epochs = [e["epoch"] for e in w["history"]]
    if epochs != [1, 2]:
        print("worker %d history epochs %s, want [1, 2]" % (w["id"], epochs))
        sys.exit(1)
    if not all(0 < e["accuracy"] <= 1 and e["time_ms"] > 0 for e in w["history"]):
        print("bad history entries", w["history"])
        sys.exit(1)
print("/status equals ps-ctl: %d tables, %d workers, history %s" % (
    len(a["tables"]), len(a["workers"]), [len(w["history"]) for w in a["workers"]]))
EOF
kill "$server_pid"
wait "$server_pid" || die "ps-server did not exit 0 on SIGTERM"
echo "monitoring with Prometheus: all checks passed"
