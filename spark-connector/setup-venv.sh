#!/usr/bin/env bash
# Creates (or updates) a Python environment of the connector's tests at the
# repository root with pinned requirements and the sparkps package itself
# (pip install ./spark-connector, which builds the C programs with the
# project's CMake through scikit-build-core):
#   setup-venv.sh             .venv         requirements-test.txt (Spark 3.5,
#                                           plus the deploy checks' tools)
#   setup-venv.sh --spark 4   .venv-spark4  requirements-spark4.txt
# Idempotent: requirements are reinstalled only when their file changes; the
# package is reinstalled every time (CMake rebuilds only what changed).
# Needs python3 with venv and Java 17 (install-deps.sh installs both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=$root/.venv
requirements=$here/requirements-test.txt
while [ $# -gt 0 ]; do
    case "$1" in
    --spark)
        case "${2:-}" in
        3 | 3.5) ;;
        4)
            venv=$root/.venv-spark4
            requirements=$here/requirements-spark4.txt
            ;;
        *) echo "setup-venv: --spark takes 3.5 or 4, not '${2:-}'" >&2; exit 2 ;;
        esac
        shift 2
        ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup-venv: unknown option $1 (usage: setup-venv.sh [--spark 3.5|4])" >&2; exit 2 ;;
    esac
done
PY=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    echo "setup-venv: creating $venv"
    "$PY" -m venv "$venv"
fi
stamp=$venv/.requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup-venv: installing $(basename "$requirements") into $venv"
    "$venv/bin/pip" install -q -r "$requirements"
    echo "$want" >"$stamp"
fi
echo "setup-venv: installing sparkps (builds ps-server, ps-worker, ps-ctl, ps-keygen)"
"$venv/bin/pip" install -q "$here"
(cd / && "$venv/bin/python" -c 'import sparkps, os; print("setup-venv: sparkps", sparkps.__version__, "binaries in", sparkps.bin_path()); [sparkps.find_binary(p) for p in ("ps-server", "ps-worker", "ps-ctl", "ps-keygen")]')
