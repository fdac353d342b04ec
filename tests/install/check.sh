#!/usr/bin/env bash
# Installs a build into a temporary prefix, checks the layout, builds the
# example user program with pkg-config against it and runs it on an
# installed ps-server. Usage: tests/install/check.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$prefix"; }
trap cleanup EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/ps-server bin/ps-bench include/sparkps.h include/sparkps_err.h \
         lib/libsparkps.so lib/pkgconfig/sparkps.pc; do
    [ -e "$prefix/$f" ] || { echo "install: $f missing" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$prefix/example" "$here/example.c" $(pkg-config --cflags --libs sparkps)
out=$(mktemp)
"$prefix/bin/ps-server" --listen tcp://127.0.0.1:0 >"$out" 2>/dev/null &
server=$!
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
got=$(SPARKPS_SERVERS=$(head -n1 "$out") LD_LIBRARY_PATH="$prefix/lib" "$prefix/example")
rm -f "$out"
[ "$got" = "-0.100 0.100 -0.100 0.100" ] || { echo "install: example printed '$got'" >&2; exit 1; }
echo "install: layout, pkg-config build and example run OK"
