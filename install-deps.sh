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
    # fuzzing (tests/fuzz/run.sh): clang and its libFuzzer runtime
    clang libclang-rt-14-dev
    python3-venv openjdk-17-jre-headless
    # deployment checks (tests/deploy/check.sh); promtool comes with the
    # prometheus package, which on a systemd host also starts a Prometheus
    # server on :9090 (sudo systemctl disable --now prometheus stops it)
    yamllint shellcheck prometheus
    # the dashboard page in a headless browser (dashboard_chromium.sh)
    chromium fonts-dejavu-core
    # the fault tests' lossy network: namespaces, veth, tbf; packet loss
    iproute2 iptables
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# Spark binds its driver-side servers to "localhost"; every installed Debian
# resolves it through /etc/hosts, but a bare container or chroot may have no
# such file.
if ! getent hosts localhost >/dev/null; then
    echo "install-deps: adding 127.0.0.1 localhost to /etc/hosts"
    echo "127.0.0.1 localhost" | $SUDO tee -a /etc/hosts >/dev/null
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
echo "install-deps: done"
