#!/usr/bin/env bash
# Creates (or updates) the Python environment of the connector's tests:
# .venv at the repository root with the pinned requirements-test.txt and the
# sparkps package itself (pip install ./spark-connector, which builds the C
# programs with the project's CMake through scikit-build-core). Idempotent:
# requirements are reinstalled only when requirements-test.txt changes; the
# package is reinstalled every time (CMake rebuilds only what changed).
# Needs python3 with venv and Java 17 (install-deps.sh installs both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=$root/.venv
PY=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    echo "setup-venv: creating $venv"
    "$PY" -m venv "$venv"
fi
stamp=$venv/.requirements-test.sha256
want=$(sha256sum "$here/requirements-test.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup-venv: installing requirements-test.txt"
    "$venv/bin/pip" install -q -r "$here/requirements-test.txt"
    echo "$want" >"$stamp"
fi
echo "setup-venv: installing sparkps (builds ps-server, ps-worker, ps-ctl, ps-keygen)"
"$venv/bin/pip" install -q "$here"
(cd / && "$venv/bin/python" -c 'import sparkps, os; print("setup-venv: sparkps", sparkps.__version__, "binaries in", sparkps.bin_path()); [sparkps.find_binary(p) for p in ("ps-server", "ps-worker", "ps-ctl", "ps-keygen")]')
