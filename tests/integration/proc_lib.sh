# shellcheck shell=bash
# Shared by the scripts that start background processes (sourced): a
# scratch directory $dir, the pids to stop in ${pids[@]}, and a trap that
# stops them and removes $dir on any exit. `need_prometheus` exits 77
# (skipped) without the Debian package prometheus.

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

need_prometheus() {
    local tool
    for tool in prometheus promtool; do
        if ! command -v "$tool" >/dev/null; then
            echo "SKIP: $tool is not installed (Debian package prometheus)"
            exit 77
        fi
    done
}
