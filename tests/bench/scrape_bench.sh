#!/usr/bin/env bash
# scrape_bench.sh: what scraping /metrics costs the push/pull throughput of
# a shard. One ps-server with --http on 127.0.0.1 holds 20 extra tables
# (so /metrics has some size); for each request kind, ps-bench runs with no
# scraper, then with ps-scrape fetching /metrics at 10 Hz and 100 Hz, RUNS
# times each (interleaved, so drift hits every rate alike). Prints the
# median ops/s per rate and its ratio to no scraping, and what the scrapes
# cost: the server loop's own time on HTTP (sparkps_http_busy_seconds_total,
# per scrape and as a share of the run; this figure does not depend on how
# loaded the machine is) and the scrapes' latency. Measures only: nothing
# passes or fails on speed.
# Usage: scrape_bench.sh [BUILD_DIR] [RUNS] [SECONDS]
#   BUILD_DIR  the CMake build tree (default: <repo>/build)
#   RUNS       runs per rate and kind (default 3)
#   SECONDS    measured seconds per run (default 3)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
runs=${2:-3}
seconds=${3:-3}
server=$build/server/ps-server
bench=$build/tests/bench/ps-bench
scrape=$build/tests/bench/ps-scrape
for b in "$server" "$bench" "$scrape"; do
    [ -x "$b" ] || { echo "scrape_bench: $b not built" >&2; exit 2; }
done
dir=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

"$server" --http 127.0.0.1:0 >"$dir/server.out" 2>"$dir/server.err" &
server_pid=$!
for _ in $(seq 100); do
    [ "$(wc -l <"$dir/server.out")" -ge 2 ] && break
    sleep 0.1
done
endpoint=$(sed -n 1p "$dir/server.out")
url=$(sed -n 2p "$dir/server.out")
[ -n "$url" ] || { echo "scrape_bench: the server printed no URL" >&2; exit 1; }
for i in $(seq 20); do
    "$bench" --servers "$endpoint" --table "extra$i" --keep-table \
        --bytes 4096 --seconds 0.01 --warmup 0 >/dev/null
done

# The loop's HTTP time so far, in seconds.
busy() {
    python3 -c 'import re, sys, urllib.request
t = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
print(re.search(r"^sparkps_http_busy_seconds_total (\S+)$", t, re.M).group(1))' "$url/metrics"
}

# kind label, then ps-bench arguments
kinds=("pushpull-4KiB --op pushpull --bytes 4096 --clients 2 --inflight 4"
    "pushpull-1MiB --op pushpull --bytes 1048576 --clients 1 --inflight 2"
    "push-4KiB --op push --bytes 4096 --clients 2 --inflight 4")
rates=(0 10 100)
: >"$dir/results"
for ((r = 0; r < runs; r++)); do
    for kind in "${kinds[@]}"; do
        read -r -a args <<<"$kind"
        for hz in "${rates[@]}"; do
            scr=""
            if [ "$hz" -gt 0 ]; then
                b0=$(busy)
                # Scrapes cover the warmup and the whole measured window.
                "$scrape" --url "$url/metrics" --hz "$hz" \
                    --seconds "$(awk -v s="$seconds" 'BEGIN { print s + 1 }')" \
                    --json >"$dir/scrape.json" &
                scr=$!
            fi
            out=$("$bench" --servers "$endpoint" "${args[@]:1}" \
                --seconds "$seconds" --warmup 0.5 --json)
            ops=$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' <<<"$out")
            p99=$(sed -n 's/.*"p99_us":\([0-9.]*\).*/\1/p' <<<"$out")
            sbytes=- slat=- n=0 per=- share=-
            if [ -n "$scr" ]; then
                wait "$scr"
                b1=$(busy)
                s=$(cat "$dir/scrape.json")
                n=$(sed -n 's/.*"scrapes":\([0-9]*\).*/\1/p' <<<"$s")
                sbytes=$(sed -n 's/.*"bytes_per_scrape":\([0-9]*\).*/\1/p' <<<"$s")
                slat=$(sed -n 's/.*"latency_us_mean":\([0-9.]*\).*/\1/p' <<<"$s")
                secs=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' <<<"$s")
                # The first busy() read is inside the difference: n + 1.
                per=$(awk -v a="$b0" -v b="$b1" -v n="$n" 'BEGIN { printf "%.0f", (b - a) * 1e6 / (n + 1) }')
                share=$(awk -v a="$b0" -v b="$b1" -v t="$secs" 'BEGIN { printf "%.2f", (b - a) * 100 / t }')
            fi
            echo "${args[0]} $hz $ops $p99 $n $sbytes $slat $per $share" >>"$dir/results"
        done
    done
done

echo "scrape cost on one shard (median of $runs runs of ${seconds} s; /metrics of $(
    sed -n 's/.*"bytes_per_scrape":\([0-9]*\).*/\1/p' "$dir/scrape.json") bytes)"
printf '%-15s %5s %10s %7s %8s %8s %11s %12s %9s\n' kind hz ops_per_s vs_0Hz \
    p99_us scrapes scrape_us loop_us/scr loop_pct
awk '
    { key = $1 " " $2; n[key]++; i = n[key]
      ops[key, i] = $3; p99[key, i] = $4; sc[key] += $5; lat[key, i] = $7
      per[key, i] = $8; share[key, i] = $9 }
    function median(arr, key, cnt,    i, j, t, v) {
        for (i = 1; i <= cnt; i++) v[i] = arr[key, i]
        for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++)
            if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
        return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
    }
    END {
        for (key in n) med[key] = median(ops, key, n[key])
        for (key in n) {
            split(key, k, " ")
            base = med[k[1] " 0"]
            if (k[2] == 0) { l = "-"; pu = "-"; sh = "-" }
            else {
                l = sprintf("%.0f", median(lat, key, n[key]))
                pu = sprintf("%.0f", median(per, key, n[key]))
                sh = sprintf("%.2f", median(share, key, n[key]))
            }
            printf "%-15s %5s %10.0f %7.3f %8.0f %8.0f %11s %12s %9s\n", k[1],
                k[2], med[key], base ? med[key] / base : 0,
                median(p99, key, n[key]), sc[key] / n[key], l, pu, sh
        }
    }' "$dir/results" | sort -k1,1 -k2,2n
