#!/usr/bin/env bash
# The main job: installs dependencies (Debian packages, Fashion-MNIST
# included), builds, and trains the MLP 784-256-128-10 on Fashion-MNIST with
# ps-train (2 servers, 2 workers on this machine), showing live progress and
# the final test accuracy. Extra arguments go to ps-train (e.g. --epochs 5).
set -euo pipefail
cd "$(dirname "$0")"
./install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/worker/ps-train "$@"
