#!/usr/bin/env bash
# What CurveZMQ costs: ps-bench pushpull against one ps-server in plaintext
# and with CURVE (a throwaway key set; the client's keys by environment),
# for 1 KiB and 1 MiB payloads. Prints one JSON line per run and a ratio.
# Usage: curve_bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
build=${1:-build}
secs=${2:-3}
server=$build/server/ps-server
bench=$build/tests/bench/ps-bench
keygen=$build/common/ps-keygen
dir=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$dir"' EXIT
chmod 700 "$dir"
"$keygen" --out "$dir/server" >/dev/null
"$keygen" --out "$dir/client" >/dev/null
# run MODE BYTES: one ps-bench run; prints its JSON line with "mode" added.
run() {
    local mode=$1 bytes=$2 args=() env=()
    if [ "$mode" = curve ]; then
        args=(--curve-secret-key "$dir/server.key" --curve-allow "$dir/client.pub")
        env=(SPARKPS_CURVE_SECRET_KEY="$dir/client.key" SPARKPS_CURVE_SERVER_KEY="$dir/server.pub")
    fi
    "$server" "${args[@]}" >"$dir/out" 2>/dev/null &
    srv=$!
    for _ in $(seq 100); do [ -s "$dir/out" ] && break; sleep 0.05; done
    env "${env[@]}" "$bench" --servers "$(head -n1 "$dir/out")" --op pushpull \
        --bytes "$bytes" --seconds "$secs" --json | tail -n1 |
        sed "s/^{/{\"mode\":\"$mode\",/"
    kill "$srv"
    wait "$srv" || true
    srv=
}
for bytes in 1024 1048576; do
    plain=$(run plain "$bytes")
    curve=$(run curve "$bytes")
    echo "$plain"
    echo "$curve"
    python3 - "$plain" "$curve" <<'PY'
import json, sys
p, c = (json.loads(a) for a in sys.argv[1:3])
print(f"# {p['bytes']} B pushpull: curve/plain ops/s {c['ops_per_s'] / p['ops_per_s']:.2f}, "
      f"p50 {p['p50_us']} -> {c['p50_us']} us")
PY
done
