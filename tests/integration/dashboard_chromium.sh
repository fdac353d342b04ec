#!/usr/bin/env bash
# The dashboard page in a real browser during a real training run:
#   1. two shards, two workers training an MLP on Gaussian blobs;
#   2. headless Chromium loads the page a few times (one profile, so the
#      page's stored points accumulate over real seconds; within one load
#      virtual time runs the 2 s polls in milliseconds), then once more with
#      a screenshot and a DOM dump;
#   3. from the DOM: the page is live, the throughput, loss and accuracy
#      charts drew points (<svg data-points="N">, N > 0), the evaluation
#      charts too when /status carries per-epoch history, and the worker
#      table lists both workers;
#   4. the page opened with no server behind it shows "server unreachable";
#   5. status objects with fields left out, nulls and odd history entries,
#      and an empty one, served as plain files under a path prefix: the
#      page still renders (state ok, the right rows and points).
# The screenshot is left in BUILD_DIR/dashboard.png for a person to look at.
#
# The page comes from shard 0's `ps-server --http 127.0.0.1:0` (its second
# stdout line is the base URL).
# Exits 77 (skipped) when Chromium is not installed.
# Usage: dashboard_chromium.sh BIN_DIR SERVER_BIN PAGE BUILD_DIR
set -uo pipefail
usage="usage: dashboard_chromium.sh BIN_DIR SERVER_BIN PAGE BUILD_DIR"
bin=${1:?$usage}
server=${2:?$usage}
page=${3:?$usage}
build=${4:?$usage}

chrome=""
for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null; then chrome=$(command -v "$c"); break; fi
done
if [ -z "$chrome" ]; then
    echo "SKIP: no chromium on PATH (Debian package chromium; install-deps.sh installs it)"
    exit 77
fi

dir=$(mktemp -d)
pids=()
# Stops the processes in the reverse order of their start: the workers
# before the servers (a worker stopped after its servers waits out its
# request timeouts).
cleanup() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null
        wait "${pids[i]}" 2>/dev/null
    done
    rm -rf "$dir"
}
trap cleanup EXIT
die() {
    echo "FAIL $*" >&2
    exit 1
}

# chrome_dom PROFILE BUDGET_MS URL [ARGS...]: headless Chromium loads URL
# with the profile directory $dir/PROFILE and BUDGET_MS of virtual time;
# the DOM on stdout, its log (the page's console too) into chrome.err.
chrome_dom() {
    local profile=$1 budget=$2 u=$3
    shift 3
    timeout 120 "$chrome" --headless --no-sandbox --disable-gpu \
        --enable-logging=stderr --no-first-run --no-default-browser-check \
        --user-data-dir="$dir/$profile" --virtual-time-budget="$budget" \
        "$@" --dump-dom "$u" 2>>"$dir/chrome.err"
}

# wait_line FILE N: until FILE has N lines (a process printed its address).
wait_line() {
    local tries=0
    until [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 1000 ] || die "no line $2 in $1: $(cat "${1%.out}.err" 2>/dev/null)"
        sleep 0.01
    done
}

# ---- cluster and training ----
servers=""
for i in 0 1; do
    "$server" --shard "$i" --shards 2 --log-level warn --http 127.0.0.1:0 \
        >"$dir/s$i.out" 2>"$dir/s$i.err" &
    pids+=($!)
done
for i in 0 1; do
    wait_line "$dir/s$i.out" 1
    servers+="${servers:+,}$(head -n1 "$dir/s$i.out")"
done

# shellcheck source=cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
blobs_csv 6000 1 1.5 >"$dir/train.csv"
head -n 1500 "$dir/train.csv" >"$dir/eval.csv"
# Far more epochs than the test lasts: the workers are stopped at the end.
for w in 0 1; do
    "$bin/ps-worker" --servers "$servers" --worker-id "$w" --part "$w/2" \
        --format csv --data "$dir/train.csv" --eval "$dir/eval.csv" \
        --model mlp:4-16-3 --epochs 100000 --batch 16 --lr 0.0005 \
        --progress-every 0 --log-level warn >"$dir/w$w.out" 2>"$dir/w$w.err" &
    pids+=($!)
done

# Both workers have reported progress to shard 0.
tries=0
until "$bin/ps-ctl" status --servers "$servers" --json 2>/dev/null |
    python3 -c 'import json, sys
ws = json.load(sys.stdin)["shards"][0]["workers"]
sys.exit(0 if sum(1 for w in ws if w.get("samples", 0) > 0) >= 2 else 1)'; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || die "the workers did not start: $(tail -n 3 "$dir"/w*.err)"
    sleep 0.1
done

wait_line "$dir/s0.out" 2
url=$(sed -n 2p "$dir/s0.out")
[ -n "$url" ] || die "no dashboard URL on shard 0's second stdout line"
echo "dashboard at $url/"

# The page served is the page in the source tree (for the real server: the
# embedded copy is up to date).
python3 - "$url/" "$page" <<'EOF' || die "GET / is not $page"
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    served = r.read()
    ctype = r.headers.get("Content-Type", "")
assert served == open(sys.argv[2], "rb").read(), "different bytes"
assert ctype.startswith("text/html"), ctype
EOF

# Within one load, virtual time runs the page's 2 s polls in milliseconds;
# the loads themselves are seconds apart, and the points the page keeps in
# the shared profile make the charts span them.
for i in 1 2 3; do
    chrome_dom profile 5000 "$url/" >"$dir/dom$i.html" ||
        die "chromium exited $?: $(tail -n 5 "$dir/chrome.err")"
done
rm -f "$build/dashboard.png"
chrome_dom profile 5000 "$url/" --window-size=1400,1500 --hide-scrollbars \
    --screenshot="$build/dashboard.png" >"$dir/dom.html" ||
    die "chromium exited $?: $(tail -n 5 "$dir/chrome.err")"
[ -s "$build/dashboard.png" ] || die "no screenshot at $build/dashboard.png"

# Does /status carry per-epoch history (mon's addition)? Then the
# evaluation charts must have drawn too.
history=$(python3 - "$url/status" <<'EOF'
import json, sys, urllib.request
doc = json.load(urllib.request.urlopen(sys.argv[1], timeout=10))
print(int(any(w.get("history") for w in doc.get("workers", []))))
EOF
) || die "GET /status failed"

# check_dom FILE EXPECT_STATE NEED_HISTORY: the assertions, on a DOM dump.
check_dom() {
    python3 - "$@" <<'EOF'
import sys
from html.parser import HTMLParser

path, want_state, need_history = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.points, self.workers, self.body, self.banner = {}, [], {}, ""
        self.in_banner = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "svg" and a.get("id", "").startswith("chart-"):
            self.points[a["id"][6:]] = int(a.get("data-points", "0"))
        if tag == "tr" and "data-worker" in a:
            self.workers.append(a["data-worker"])
        self.in_banner = a.get("id") == "banner"

    def handle_data(self, data):
        if self.in_banner:
            self.banner += data

d = Dom()
d.feed(open(path, encoding="utf-8").read())
errors = []
state = d.body.get("data-state")
if state != want_state:
    errors.append(f"data-state={state!r}, want {want_state!r} (banner: {d.banner!r})")
if want_state == "ok":
    need = ["rate", "loss", "accuracy"] + (["eval-accuracy", "eval-loss"] if need_history else [])
    for c in need:
        if d.points.get(c, 0) <= 0:
            errors.append(f"chart {c} drew no points")
    if sorted(d.workers) != ["0", "1"]:
        errors.append(f"worker rows {d.workers}, want 0 and 1")
else:
    if "Server unreachable" not in d.banner:
        errors.append(f"banner {d.banner!r} does not say the server is unreachable")
print(f"{path}: state {state}, points {d.points}, worker rows {d.workers}, "
      f"polls {d.body.get('data-polls')}")
if errors:
    print("\n".join("FAIL " + e for e in errors), file=sys.stderr)
    sys.exit(1)
EOF
}
check_dom "$dir/dom.html" ok "$history" ||
    die "the live dashboard (screenshot: $build/dashboard.png)"
echo "ok   live dashboard: screenshot in $build/dashboard.png"

# No server behind the page: the fetch fails and the page says so.
cp "$page" "$dir/offline.html"
chrome_dom profile-offline 3000 "file://$dir/offline.html" >"$dir/offline.dom" ||
    die "chromium exited $?"
check_dom "$dir/offline.dom" unreachable 0 || die "the page without a server"
echo "ok   unreachable state"

# Fields left out (proto2 optional fields unset), nulls (non-finite loss),
# odd history entries, and an empty object: the page still renders. Plain
# files behind a path prefix (/sparse/status, /empty/status), which the
# page's relative "status" must follow.
mkdir -p "$dir/www/sparse" "$dir/www/empty"
cp "$page" "$dir/www/sparse/index.html"
cp "$page" "$dir/www/empty/index.html"
cat >"$dir/www/sparse/status" <<'JSON'
{"cluster_id":"","uptime_ms":1000,"min_clock":-1,"tables":[{"name":"w"}],
 "workers":[{"id":3,"clock":2,"alive":false,"idle_ms":20000},
            {"id":4,"samples":10,"epoch":1,"loss":null,"accuracy":null,
             "history":[{"epoch":1},{"epoch":2,"accuracy":0.5},{}]}],
 "requests":{},"errors":{"EINVAL":2}}
JSON
echo '{}' >"$dir/www/empty/status"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$dir/www" \
    >"$dir/files.out" 2>"$dir/files.err" &
pids+=($!)
tries=0
until port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$dir/files.out") && [ -n "$port" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 1000 ] || die "python3 -m http.server did not start: $(cat "$dir/files.err")"
    sleep 0.01
done
for case in sparse empty; do
    chrome_dom "profile-$case" 3000 "http://127.0.0.1:$port/$case/" \
        >"$dir/$case.dom" || die "chromium exited $?"
done
python3 - "$dir/sparse.dom" "$dir/empty.dom" <<'PY' || die "the page on partial status objects"
import re, sys
sparse, empty = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])

def points(dom, chart):
    m = re.search(r'<svg[^>]*id="chart-%s"[^>]*>' % chart, dom)
    return int(re.search(r'data-points="(\d+)"', m.group(0)).group(1))

for dom, what in ((sparse, "sparse"), (empty, "empty")):
    state = re.search(r'<body[^>]*data-state="(\w+)"', dom).group(1)
    assert state == "ok", f"{what}: data-state {state}"
rows = re.findall(r'data-worker="(\d+)"', sparse)
assert rows == ["3", "4"], f"sparse: worker rows {rows}"
assert points(sparse, "eval-accuracy") == 1, "sparse: eval-accuracy points"
assert points(sparse, "loss") == 0, "sparse: loss points"
assert "no workers have connected" in empty, "empty: the empty worker table"
PY
echo "ok   partial and empty status objects"

# A server with --http-token-file: the page is open, its /status polls
# carry the token of the URL's fragment (#token=...), and without it the
# page says the server wants its token.
od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/token"
chmod 600 "$dir/token"
"$server" --log-level warn --http 127.0.0.1:0 --http-token-file "$dir/token" \
    >"$dir/tok.out" 2>"$dir/tok.err" &
pids+=($!)
wait_line "$dir/tok.out" 2
tok_url=$(sed -n 2p "$dir/tok.out")
chrome_dom profile-token 3000 "$tok_url/#token=$(cat "$dir/token")" >"$dir/token.dom" ||
    die "chromium exited $?"
chrome_dom profile-notoken 3000 "$tok_url/" >"$dir/notoken.dom" || die "chromium exited $?"
python3 - "$dir/token.dom" "$dir/notoken.dom" <<'PY' || die "the page against a server with a token"
import re, sys
with_token, without = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
state = lambda dom: re.search(r'<body[^>]*data-state="(\w+)"', dom).group(1)
assert state(with_token) == "ok", f"with #token=: data-state {state(with_token)}"
assert state(without) != "ok", "without the token the page says it is live"
assert "HTTP 401" in without and "#token=TOKEN" in without, "no 401 hint in the page"
PY
echo "ok   a server with a token: the page polls with #token=, says 401 without"

# The page's console: no uncaught JavaScript error in any of the loads.
if grep -q "Uncaught" "$dir/chrome.err"; then
    grep "Uncaught" "$dir/chrome.err" >&2
    die "JavaScript errors in the page"
fi
echo "ok   no JavaScript errors"
