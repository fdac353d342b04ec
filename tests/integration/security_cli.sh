#!/usr/bin/env bash
# Security from the command line, on real processes: ps-keygen (files,
# modes, no overwrite, --public-of); ps-server's refusals before it binds
# (plaintext on a non-loopback address without --insecure, half a CURVE
# configuration, every kind of bad key file, bad token files); a CURVE
# server with an HTTP token: /status and /metrics answer 401 without the
# right token and 200 with it, the dashboard page is open, a bare --http
# port binds loopback; ps-ctl and ps-worker with keys (flags and
# environment) work, without or with a stranger's key they fail with
# EAUTH, and the refusals are counted in /metrics; no secret key or token
# appears in any output; a real non-loopback address inside a network
# namespace (when one can be made); ps-train --curve trains and removes its
# throwaway keys.
# Usage: security_cli.sh BIN_DIR PS_SERVER PS_KEYGEN (BIN_DIR holds
# ps-worker, ps-ctl and ps-train)
set -uo pipefail
bin=${1:?usage: security_cli.sh BIN_DIR PS_SERVER PS_KEYGEN}
server=${2:?usage: security_cli.sh BIN_DIR PS_SERVER PS_KEYGEN}
keygen=${3:?usage: security_cli.sh BIN_DIR PS_SERVER PS_KEYGEN}
# shellcheck source=tests/integration/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
# shellcheck source=tests/integration/proc_lib.sh
. "$(dirname "$0")/proc_lib.sh"
k=$dir/keys
mkdir -m 700 "$k"

# ---- ps-keygen ----
expect "keygen writes a pair" 0 "server.pub written; public key" -- "$keygen" --out "$k/server"
[ "$(stat -c %a "$k/server.key")" = 600 ] || fail "server.key is not mode 600"
[ "$(stat -c %a "$k/server.pub")" = 644 ] || fail "server.pub is not mode 644"
before=$(cat "$k/server.pub")
expect "keygen does not overwrite" 1 "exists: not overwritten (--force" -- "$keygen" --out "$k/server"
[ "$before" = "$(cat "$k/server.pub")" ] || fail "a refused keygen changed server.pub"
expect "keygen --force" 0 "written" -- "$keygen" --out "$k/server" --force
[ "$before" != "$(cat "$k/server.pub")" ] || fail "--force did not write a new pair"
for n in client stranger other; do "$keygen" --out "$k/$n" >/dev/null || fail "keygen $n"; done
key_line() { grep -v "^#" "$1"; }
expect "keygen --public-of" 0 "$(key_line "$k/client.pub")" -- "$keygen" --public-of "$k/client.key"
expect "keygen --public-of a public key" 1 "holds a public key" -- "$keygen" --public-of "$k/client.pub"
expect "keygen without --out" 2 "exactly one of --out" -- "$keygen"
expect "keygen into a missing directory" 1 "cannot create" -- "$keygen" --out "$dir/nodir/x"
expect "keygen --help" 0 "usage: ps-keygen" -- "$keygen" --help

# ---- ps-server refuses before binding ----
out=$("$server" --listen tcp://0.0.0.0:0 2>/dev/null)
st=$?
if [ $st -ne 2 ] || [ -n "$out" ]; then fail "plaintext on 0.0.0.0: exit $st, stdout '$out'"; fi
expect "plaintext on 0.0.0.0 refused" 2 "is not a loopback address: refusing plaintext" -- \
    "$server" --listen tcp://0.0.0.0:0
expect "the same from SPARKPS_LISTEN" 2 "--insecure to serve plaintext" -- \
    env SPARKPS_LISTEN=tcp://0.0.0.0:0 "$server"
expect "--curve-secret-key alone" 2 "go together" -- "$server" --curve-secret-key "$k/server.key"
expect "--curve-allow alone" 2 "go together" -- "$server" --curve-allow "$k/client.pub"
curve_server() { "$server" --curve-secret-key "$1" --curve-allow "$2"; }
expect "missing key file" 2 "none.key: cannot open" -- curve_server "$k/none.key" "$k/client.pub"
printf 'abc\n' >"$dir/short.key"
printf '012345678901234567890123456789012345678"\n' >"$dir/notz85.key"
cp "$k/server.key" "$dir/open.key"
chmod 600 "$dir/short.key" "$dir/notz85.key"
chmod 644 "$dir/open.key"
expect "key of the wrong length" 2 "short.key:1: not a CurveZMQ key (expected 40 Z85 characters on the line, found 3" -- \
    curve_server "$dir/short.key" "$k/client.pub"
expect "key outside Z85" 2 "outside Z85" -- curve_server "$dir/notz85.key" "$k/client.pub"
expect "secret key readable by others" 2 "mode 0644), so it cannot hold a secret: chmod 600" -- \
    curve_server "$dir/open.key" "$k/client.pub"
expect "public key as the secret one" 2 "holds a public key, not a secret key" -- \
    curve_server "$k/server.pub" "$k/client.pub"
expect "secret key in the allow-list" 2 "holds a secret key: an allow-list takes public keys" -- \
    curve_server "$k/server.key" "$k/client.key"
mkdir "$dir/empty"
expect "empty allow-list directory" 2 "no public keys" -- curve_server "$k/server.key" "$dir/empty"
token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" >"$dir/token"
printf 'short\n' >"$dir/short.token"
cp "$dir/token" "$dir/open.token"
chmod 600 "$dir/token" "$dir/short.token"
chmod 604 "$dir/open.token"
expect "token file readable by others" 2 "chmod 600" -- "$server" --http 0 --http-token-file "$dir/open.token"
expect "token too short" 2 "16 to 4096 printable characters" -- "$server" --http 0 --http-token-file "$dir/short.token"
expect "--http-token-file without --http" 2 "needs --http" -- "$server" --http-token-file "$dir/token"

# ---- a CURVE server with an HTTP token ----
has_lines() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
wait_lines() {
    local i
    for ((i = 0; i < 100; i++)); do has_lines "$1" "$2" && return 0; sleep 0.1; done
    return 1
}
"$server" --curve-secret-key "$k/server.key" --curve-allow "$k/client.pub" \
    --http 0 --http-token-file "$dir/token" >"$dir/srv.out" 2>"$dir/srv.err" &
srv=$!
pids+=("$srv")
wait_lines "$dir/srv.out" 2 || { fail "the CURVE server did not start"; cat "$dir/srv.err" >&2; exit 1; }
ep=$(sed -n 1p "$dir/srv.out")
url=$(sed -n 2p "$dir/srv.out")
if [[ $url == http://127.0.0.1:* ]]; then
    echo "ok   a bare --http port binds loopback ($url)"
else
    fail "a bare --http port did not bind 127.0.0.1: $url"
fi
# http PATH [TOKEN]: "CODE WWW-AUTHENTICATE" on the first line, the body after.
http() {
    python3 - "$url$1" "${2:-}" <<'EOF'
import sys, urllib.error, urllib.request
req = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    r = urllib.request.urlopen(req, timeout=10)
    print(r.status, r.headers.get("WWW-Authenticate"))
    print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("WWW-Authenticate"))
EOF
}
expect "/status without the token: 401" 0 '401 Bearer realm="sparkps"' -- http /status
expect "/status with a wrong token: 401" 0 "401 Bearer" -- http /status "x$token"
expect "/metrics without the token: 401" 0 "401 Bearer" -- http /metrics
expect "/status with the token: 200" 0 '"security":{"curve":true,"insecure":false,"allowed_keys":1' -- http /status "$token"
expect "/ (the dashboard) is open" 0 "<!DOCTYPE html>" -- http /

# ---- clients ----
ctl() { "$bin/ps-ctl" "$@" --servers "$ep" --timeout 3000 --retries 1; }
expect "ps-ctl with keys from flags" 0 "cluster sparkps" -- \
    ctl status --curve-secret-key "$k/client.key" --curve-server-key "$k/server.pub"
expect "ps-ctl with keys from the environment" 0 '"shards"' -- \
    env SPARKPS_CURVE_SECRET_KEY="$k/client.key" SPARKPS_CURVE_SERVER_KEY="$k/server.pub" \
    "$bin/ps-ctl" status --json --servers "$ep"
expect "ps-ctl without keys" 1 "refused by the servers: shard 0 ($ep): EAUTH" -- ctl status
expect "ps-ctl with a stranger's key" 1 "its public key is not in the server's --curve-allow list" -- \
    ctl status --curve-secret-key "$k/stranger.key" --curve-server-key "$k/server.pub"
expect "ps-ctl with another server's key" 1 "--curve-server-key" -- \
    ctl status --curve-secret-key "$k/client.key" --curve-server-key "$k/other.pub"
expect "ps-ctl with half a key pair" 2 "only the secret key was given" -- \
    ctl status --curve-secret-key "$k/client.key"
awk 'BEGIN { srand(7); for (i = 0; i < 900; i++) { c = i % 3;
    printf "%.3f,%.3f,%.3f,%.3f,%d\n", 3*c + rand(), -3*c + rand(), 2*c + rand(), rand(), c } }' \
    >"$dir/train.csv"
worker() {
    "$bin/ps-worker" --servers "$ep" --format csv --data "$dir/train.csv" \
        --model mlp:4-8-3 --epochs 2 --batch 30 --lr 0.01 --timeout 3000 "$@"
}
expect "ps-worker with keys trains" 0 '"event":"done"' -- \
    worker --curve-secret-key "$k/client.key" --curve-server-key "$k/server.pub"
expect "ps-worker without keys fails with EAUTH" 1 "EAUTH" -- worker
metrics=$(http /metrics "$token")
if grep -Eq '^sparkps_auth_refused_total\{reason="unknown_key"\} [1-9]' <<<"$metrics" &&
    grep -Eq '^sparkps_auth_refused_total\{reason="handshake"\} [1-9]' <<<"$metrics"; then
    echo "ok   refusals counted in /metrics"
else
    fail "refusals not counted: $(grep auth_refused <<<"$metrics")"
fi
expect "ps-ctl shutdown with keys" 0 "stopping" -- \
    ctl shutdown --curve-secret-key "$k/client.key" --curve-server-key "$k/server.pub"
if wait "$srv"; then echo "ok   the CURVE server stopped with status 0"; else fail "the CURVE server exited $?"; fi
# Nothing secret in any output of this script's processes.
status=$(cat "$dir/srv.out" "$dir/srv.err")
for f in "$k"/*.key; do
    grep -qF "$(key_line "$f")" <<<"$status$metrics" && fail "$f's secret key appears in the server's output"
done
grep -qF "$token" <<<"$status$metrics" && fail "the HTTP token appears in the server's output"
if grep -q "security=curve allowed_keys=1" "$dir/srv.err"; then
    echo "ok   no secret in the server's output"
else
    fail "the server did not log its security"
fi

# ---- a real non-loopback address, in a network namespace of our own ----
netns_test() {
    # A dummy interface where the kernel has one, else a veth pair.
    ip link set lo up || return 77
    if ip link add d0 type dummy 2>/dev/null; then
        ip addr add 10.77.0.1/24 dev d0 && ip link set d0 up || return 77
    else
        ip link add v0 type veth peer name v1 && ip addr add 10.77.0.1/24 dev v0 &&
            ip link set v1 up && ip link set v0 up || return 77
    fi
    local st out
    out=$("$server" --listen tcp://10.77.0.1:0 2>&1)
    st=$?
    if [ $st -ne 2 ] || ! grep -q "not a loopback address" <<<"$out"; then
        echo "plaintext on 10.77.0.1: exit $st: $out"
        return 1
    fi
    "$server" --listen tcp://10.77.0.1:0 --insecure --http 127.0.0.1:0 >"$dir/ns.out" 2>"$dir/ns.err" &
    local p=$!
    wait_lines "$dir/ns.out" 2 || { echo "--insecure server did not start"; return 1; }
    url=$(sed -n 2p "$dir/ns.out")
    grep -q '"insecure":true' <<<"$(http /status)" || { echo "/status does not say insecure"; return 1; }
    grep -q "security=INSECURE" "$dir/ns.err" || { echo "the log does not say INSECURE"; return 1; }
    kill "$p"; wait "$p"
    "$server" --listen tcp://10.77.0.1:0 --curve-secret-key "$k/server.key" \
        --curve-allow "$k/client.pub" >"$dir/ns2.out" 2>"$dir/ns2.err" &
    p=$!
    wait_lines "$dir/ns2.out" 1 || { echo "CURVE server on 10.77.0.1 did not start"; return 1; }
    "$bin/ps-ctl" status --servers "$(sed -n 1p "$dir/ns2.out")" --curve-secret-key "$k/client.key" \
        --curve-server-key "$k/server.pub" >/dev/null || { echo "ps-ctl over 10.77.0.1 failed"; return 1; }
    kill "$p"; wait "$p"
}
if unshare -n true 2>/dev/null; then
    export -f netns_test wait_lines has_lines http
    export server bin k dir
    ns_out=$(unshare -n bash -c netns_test 2>&1)
    case $? in
    0) echo "ok   10.77.0.1 in a network namespace: plaintext refused, --insecure said, CURVE works" ;;
    77) echo "SKIP no dummy or veth interface in the network namespace: $ns_out" ;;
    *) fail "network namespace: $ns_out" ;;
    esac
else
    echo "SKIP no network namespace (unshare -n not permitted); 0.0.0.0 was checked above"
fi

# ---- ps-train --curve ----
mkdir -m 700 "$dir/tmp"
expect "ps-train --curve trains" 0 "security=curve allowed_keys=1" -- \
    env TMPDIR="$dir/tmp" "$bin/ps-train" --curve --shards 2 --workers 2 --format csv \
    --data "$dir/train.csv" --eval "" --model mlp:4-8-3 --epochs 2 --batch 30 --lr 0.01
if [ -z "$(ls -A "$dir/tmp")" ]; then
    echo "ok   ps-train removed its throwaway keys"
else
    fail "ps-train left $(ls "$dir/tmp")"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "security_cli: all passed"
