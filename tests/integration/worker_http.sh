#!/usr/bin/env bash
# ps-worker --http end to end: a real ps-server and a ps-worker serving its
# own /metrics and /status (port 0, a bearer token) while it trains
# synthetic blobs. Checked: bad --http values exit 2 with the flag named; a
# busy port exits 1; the URL is a log line on stderr, never on stdout;
# 401 without the token, 200 with it; samples rise between scrapes (polled,
# no timing assumed); within one scrape the phase seconds add up to the
# step-duration histogram's sum, its buckets are cumulative and end at its
# count, which equals the steps; `promtool check metrics` accepts a scrape
# (when installed); /status is the same figures as JSON; every metric the
# Grafana dashboard queries is in the scrape or in the servers' sample
# (tests/deploy/sample_metrics.txt); and the stdout JSON lines of a run
# with --http have the keys of one without.
# Usage: worker_http.sh BIN_DIR PS_SERVER  (BIN_DIR holds ps-worker)
set -uo pipefail
bin=${1:?usage: worker_http.sh BIN_DIR PS_SERVER}
server=${2:?usage: worker_http.sh BIN_DIR PS_SERVER}
# shellcheck source=tests/integration/proc_lib.sh
. "$(dirname "$0")/proc_lib.sh"
# shellcheck source=tests/integration/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
w=$bin/ps-worker
logs=(server.err w.err)
poll_interval=0.2
# get URL [TOKEN]: prints "STATUS BODY..." (python3: no curl needed).
get() {
    python3 - "$@" <<'PY'
import sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    r = urllib.request.urlopen(req, timeout=10)
    print(r.status, r.read().decode(), end="")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode(), end="")
PY
}

# check_figures SCRAPE STATUS WORKER ATTEMPT MODEL: a worker's /metrics and
# /status while it trains: its identity, phases adding up to the step
# histogram's sum, a cumulative histogram, counters that agree.
check_figures() {
    python3 - "$@" <<'PY'
import json, math, re, sys
text = open(sys.argv[1]).read()
wid, att, model = sys.argv[3], sys.argv[4], sys.argv[5]
def val(pat):
    m = re.search(r"^" + pat + r" (\S+)$", text, re.M)
    if not m:
        sys.exit("no sample matching " + pat)
    return float(m.group(1))
lab = r'\{worker="%s",attempt="%s"' % (wid, att)
phases = [val(r"sparkps_trainer_step_phase_seconds_total" + lab + r',phase="%s"\}' % p)
          for p in ("compute", "wait", "input")]
hsum = val(r"sparkps_trainer_step_duration_seconds_sum" + lab + r"\}")
count = val(r"sparkps_trainer_step_duration_seconds_count" + lab + r"\}")
steps = val(r"sparkps_trainer_steps_total" + lab + r"\}")
samples = val(r"sparkps_trainer_samples_total" + lab + r"\}")
val(r'sparkps_trainer_info\{worker="%s",attempt="%s",device="cpu",model="%s",state="training"\}'
    % (wid, att, re.escape(model)))
# every phase is a step's share, so they add up to the steps' durations
if not all(p >= 0 for p in phases) or abs(sum(phases) - hsum) > 1e-6 * max(1, hsum):
    sys.exit("phases %s sum %r, histogram sum %r" % (phases, sum(phases), hsum))
buckets = [(m.group(1), float(m.group(2))) for m in re.finditer(
    r'^sparkps_trainer_step_duration_seconds_bucket' + lab + r',le="([^"]+)"\} (\S+)$', text, re.M)]
counts = [c for _, c in buckets]
if len(buckets) < 2 or buckets[-1][0] != "+Inf" or counts != sorted(counts) or counts[-1] != count:
    sys.exit("histogram not cumulative or not ending at its count: %s" % buckets)
if count != steps or steps <= 0 or samples < steps:
    sys.exit("steps %r, histogram count %r, samples %r" % (steps, count, samples))
st = json.load(open(sys.argv[2]))
if (st["worker"], st["attempt"], st["device"], st["model"], st["state"]) != (
        int(wid), int(att), "cpu", model, "training"):
    sys.exit("status identity: %s" % st)
secs = st["seconds"]
if abs(sum(secs.values()) - st["step_seconds"]["sum"]) > 1e-6 * max(1, st["step_seconds"]["sum"]):
    sys.exit("status: phases %s vs step seconds %s" % (secs, st["step_seconds"]))
share = st["wait_share"]
if not (0 <= share <= 1) or abs(share - secs["wait"] / sum(secs.values())) > 1e-6:
    sys.exit("status: wait_share %r of %s" % (share, secs))
if st["samples"] < samples or st["steps"] < steps or st["client"]["requests"] < 1:
    sys.exit("status went back: %s" % st)
if not (0 <= st["train"]["accuracy"] <= 1) or st["epoch"] < 1:
    sys.exit("status train figures: %s" % st)
print("ok   %s: %d steps: compute %.3f s, wait %.3f s, input %.3f s = histogram sum %.3f s; wait share %.2f"
      % (model, steps, *phases, hsum, share))
PY
}

blobs_csv 3000 1 >"$dir/train.csv"
od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/token"
echo short >"$dir/short-token"
chmod 600 "$dir/token" "$dir/short-token"
token=$(cat "$dir/token")

# ---- bad flags: exit 2 naming the flag ----
s=tcp://127.0.0.1:1
expect http-no-port 2 "--http: 'localhost' has no port" -- "$w" --servers $s --data x --http localhost
expect http-port-range 2 "port '99999' is not a number 0..65535" -- "$w" --servers $s --data x --http 127.0.0.1:99999
expect http-port-text 2 "--http: " -- "$w" --servers $s --data x --http :abc
expect http-bad-host 2 "cannot resolve host" -- "$w" --servers $s --data x --http no.such.host.invalid:0
expect http-v6-brackets 2 "in brackets" -- "$w" --servers $s --data x --http ::1:80
expect token-needs-http 2 "--http-token-file needs --http" -- "$w" --servers $s --data x --http-token-file "$dir/token"
expect token-short 2 "--http-token-file: $dir/short-token: the token must be" -- "$w" --servers $s --data x --http 0 --http-token-file "$dir/short-token"
expect token-missing 2 "--http-token-file: " -- "$w" --servers $s --data x --http 0 --http-token-file "$dir/none"

# ---- a server, and a worker training long enough to be scraped ----
"$server" >"$dir/server.out" 2>"$dir/server.err" &
pids+=($!)
has_line() { [ -s "$1" ]; }
poll 100 "the server's endpoint" has_line "$dir/server.out"
endpoint=$(sed -n 1p "$dir/server.out")

# A busy port is a start-up failure (1), not a usage error.
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' >"$dir/busy.port" &
pids+=($!)
poll 100 "a busy port" has_line "$dir/busy.port"
expect http-port-busy 1 "cannot serve HTTP on 127.0.0.1:$(cat "$dir/busy.port")" -- "$w" --servers "$endpoint" --format csv --data "$dir/train.csv" --model mlp:4-8-3 --http "$(cat "$dir/busy.port")"

"$w" --servers "$endpoint" --format csv --data "$dir/train.csv" \
    --model mlp:4-16-3 --epochs 1000000 --batch 32 --progress-every 0.5 \
    --worker-id 2 --attempt 5 --http 0 --http-token-file "$dir/token" \
    >"$dir/w.out" 2>"$dir/w.err" &
pids+=($!)
wpid=$!
# url_in LOG: the URL a worker logged on stderr; has_url LOG: it did.
url_in() { sed -n 's/.*http url=\(http:[^ ]*\).*/\1/p' "$1" | head -n 1; }
has_url() { [ -n "$(url_in "$1")" ]; }
# samples_at URL [TOKEN]: the worker's sparkps_trainer_samples_total;
# started_at: above 0.
samples_at() { get "$1/metrics" "${@:2}" | sed -n 's/^sparkps_trainer_samples_total{[^}]*} \([0-9]*\)$/\1/p'; }
started_at() { [ "$(samples_at "$@")" -gt 0 ] 2>/dev/null; }
poll 150 "the worker's URL on stderr" has_url "$dir/w.err"
url=$(url_in "$dir/w.err")
grep -q "http" "$dir/w.out" && die "the URL reached stdout, the JSON-lines channel"
echo "ok   url $url (stderr)"

r=$(get "$url/metrics")
[[ $r == 401* ]] || die "/metrics without the token: ${r:0:80}"
r=$(get "$url/status" "wrong-token-0123456789")
[[ $r == 401* ]] || die "/status with a wrong token: ${r:0:80}"
r=$(get "$url/metrics" "$token")
[[ $r == 200* ]] || die "/metrics with the token: ${r:0:80}"
echo "ok   401 without or with a wrong token, 200 with it"

poll 300 "the first samples" started_at "$url" "$token"
s1=$(samples_at "$url" "$token")
rose() { [ "$(samples_at "$url" "$token")" -gt "$s1" ]; }
poll 300 "samples to rise past $s1" rose
echo "ok   samples rose past $s1"

get "$url/metrics" "$token" | sed '1s/^200 //' >"$dir/scrape.txt"
get "$url/status" "$token" | sed '1s/^200 //' >"$dir/status.json"
check_figures "$dir/scrape.txt" "$dir/status.json" 2 5 mlp:4-16-3 ||
    die "the figures do not add up"
if command -v promtool >/dev/null; then
    promtool check metrics <"$dir/scrape.txt" || die "promtool check metrics failed on a scrape"
    echo "ok   promtool check metrics"
else
    echo "skip promtool check metrics (Debian package prometheus not installed)"
fi
# The dashboard's Workers row against this real scrape; the servers' names
# against their sample (monitor_prometheus.sh checks both live).
top=$(dirname "$0")/../..
python3 "$top/tests/deploy/check_grafana.py" "$top/deploy/grafana/sparkps.json" \
    "$top/tests/deploy/sample_metrics.txt" "$dir/scrape.txt" ||
    die "deploy/grafana/sparkps.json queries worker metrics ps-worker does not export"
kill "$wpid"
wait "$wpid"
st=$?
[ "$st" -eq 1 ] || die "worker stopped by SIGTERM exited $st (want 1)"
grep -q "stopped by a signal" "$dir/w.err" || die "no 'stopped by a signal' on stderr"

# ---- a logreg worker (the sparse trainer) fills the same figures ----
awk 'BEGIN { srand(7); for (i = 0; i < 3000; i++) { y = i % 2; printf "%d", y
    for (j = 0; j < 5; j++) printf " %d:1", y * 50 + j * 10 + int(rand() * 10) + 1
    print "" } }' >"$dir/train.svm"
"$w" --servers "$endpoint" --model logreg --format libsvm --data "$dir/train.svm" \
    --epochs 1000000 --batch 64 --progress-every 0.5 --worker-id 3 --attempt 1 \
    --job lr --http 0 >"$dir/lr.out" 2>"$dir/lr.err" &
pids+=($!)
lpid=$!
poll 150 "the logreg worker's URL on stderr" has_url "$dir/lr.err"
lurl=$(url_in "$dir/lr.err")
poll 300 "the logreg worker's first samples" started_at "$lurl"
get "$lurl/metrics" | sed '1s/^200 //' >"$dir/lr-scrape.txt"
get "$lurl/status" | sed '1s/^200 //' >"$dir/lr-status.json"
check_figures "$dir/lr-scrape.txt" "$dir/lr-status.json" 3 1 logreg ||
    die "the logreg worker's figures do not add up"
kill "$lpid"
wait "$lpid" && die "the logreg worker ignored SIGTERM"
"$w" --servers "$endpoint" --model logreg --format libsvm --data "$dir/train.svm" \
    --epochs 2 --progress-every 0 --job lr2 >"$dir/lr-done.out" 2>"$dir/lr-done.err" ||
    die "logreg run failed: $(tail -n1 "$dir/lr-done.err")"
python3 - "$dir/lr-done.out" <<'PY' || die "logreg done line"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1])][-1]
total = d["compute_s"] + d["wait_s"] + d["input_s"]
if d["event"] != "done" or d["compute_s"] <= 0 or d["wait_s"] <= 0 or \
        abs(d["wait_share"] - d["wait_s"] / total) > 1e-3:
    sys.exit("done line: %s" % d)
print("ok   logreg done line: compute %.3f s, wait %.3f s, input %.3f s, wait share %.2f"
      % (d["compute_s"], d["wait_s"], d["input_s"], d["wait_share"]))
PY

# ---- stdout: the same JSON lines with and without --http ----
run() {
    "$w" --servers "$endpoint" --format csv --data "$dir/train.csv" \
        --model mlp:4-16-3 --epochs 2 --batch 64 --progress-every 0 --job "$1" "${@:2}"
}
run plain >"$dir/plain.out" 2>"$dir/plain.err" || die "plain run failed"
run served --http 127.0.0.1:0 >"$dir/served.out" 2>"$dir/served.err" || die "run with --http failed"
python3 - "$dir/plain.out" "$dir/served.out" <<'PY' || die "stdout differs with --http"
import json, sys
def shape(path):
    return [(e["event"], sorted(e)) for e in map(json.loads, open(path))]
a, b = shape(sys.argv[1]), shape(sys.argv[2])
if a != b:
    sys.exit("without --http: %s\nwith: %s" % (a, b))
done = [json.loads(l) for l in open(sys.argv[2])][-1]
if done["event"] != "done" or not 0 <= done["wait_share"] <= 1 or \
        abs(done["wait_share"] - done["wait_s"] / (done["compute_s"] + done["wait_s"] + done["input_s"])) > 1e-3:
    sys.exit("done line: %s" % done)
print("ok   stdout: %d JSON lines of the same keys with and without --http; done wait_share %.2f" % (len(b), done["wait_share"]))
PY

[ "$failures" -eq 0 ] || { echo "$failures failed" >&2; exit 1; }
echo "all worker --http checks passed"
