#!/usr/bin/env bash
# Installs what sparkps needs to build and test, from Debian's packages.
# Idempotent: packages already present are not reinstalled. Uses sudo when
# not run as root.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config git ca-certificates procps
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
    libopenblas-dev libcmocka-dev libmicrohttpd-dev zlib1g-dev libcjson-dev
    python3 dataset-fashion-mnist
    python3-venv openjdk-17-jre-headless
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
echo "install-deps: done"
