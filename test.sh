#!/usr/bin/env bash
# Every test: installs dependencies, builds with warnings as errors, runs the
# cmocka unit and multi-process integration tests (ctest), the same tests in
# an ASan+UBSan build, every libFuzzer harness for a bounded time (clang;
# FUZZ_SECONDS per harness, default 20), and a short benchmark smoke run.
# Each stage prints its
# duration; then the Python environment (.venv), the deployment checks
# (deploy/, every shell script) and the Spark connector's pytest suite on a
# real local Spark 3.5, then the same suite on Spark 4 (.venv-spark4).
# Usage: ./test.sh [--no-sanitize] [--no-fuzz] [--no-bench] [--no-spark]
#                  [--no-spark4] [--no-deploy]
# (--no-spark skips the pytest suite on Spark 3.5; .venv is still set up for
# the deploy checks unless --no-deploy is given too; --no-spark4 skips
# .venv-spark4 and the suite on Spark 4)
set -euo pipefail
cd "$(dirname "$0")"
SANITIZE=1
FUZZ=1
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
BENCH=1
SPARK=1
SPARK4=1
DEPLOY=1
for a in "$@"; do
    case "$a" in
    --no-sanitize) SANITIZE=0 ;;
    --no-fuzz) FUZZ=0 ;;
    --no-bench) BENCH=0 ;;
    --no-spark) SPARK=0 ;;
    --no-spark4) SPARK4=0 ;;
    --no-deploy) DEPLOY=0 ;;
    *) echo "test.sh: unknown option $a" >&2; exit 2 ;;
    esac
done
JOBS=$(nproc)

stage() {
    local name=$1; shift
    local t0=$SECONDS
    echo "=== $name"
    "$@"
    echo "=== $name: $((SECONDS - t0)) s"
}

stage "install dependencies" ./install-deps.sh
stage "build (-Werror)" bash -c "cmake -S . -B build-ci -DSPARKPS_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build-ci -j$JOBS"
stage "unit tests" ctest --test-dir build-ci -L unit --output-on-failure -j"$JOBS"
stage "install and link a user program" tests/install/check.sh build-ci
stage "integration tests" ctest --test-dir build-ci -L integration --output-on-failure -j"$JOBS"
# Runs on a GPU machine; without a device the test says why and is skipped.
stage "GPU tests (ctest -L gpu)" ctest --test-dir build-ci -L gpu --output-on-failure --no-tests=ignore
if [ $SANITIZE = 1 ]; then
    stage "build (ASan+UBSan)" bash -c "cmake -S . -B build-asan -DSPARKPS_WERROR=ON '-DSPARKPS_SANITIZE=address;undefined' -DCMAKE_BUILD_TYPE=Debug >/dev/null && cmake --build build-asan -j$JOBS"
    stage "tests under ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -j"$JOBS"
fi
if [ $FUZZ = 1 ]; then
    stage "fuzzing ($FUZZ_SECONDS s per harness)" tests/fuzz/run.sh --seconds "$FUZZ_SECONDS" --build build-fuzz
fi
if [ $BENCH = 1 ]; then
    stage "benchmark smoke (sweep --quick)" tests/bench/sweep.sh --bin build-ci --quick
fi
if [ $SPARK = 1 ] || [ $DEPLOY = 1 ]; then
    # .venv: pinned PySpark/pyarrow/numpy/pytest, the deploy checks' linters,
    # and sparkps itself, built by pip through scikit-build-core
    stage "Python environment (setup-venv.sh)" spark-connector/setup-venv.sh
fi
if [ $DEPLOY = 1 ]; then
    stage "deploy checks" tests/deploy/check.sh
fi
if [ $SPARK = 1 ]; then
    stage "Python/Spark tests" .venv/bin/pytest spark-connector/tests -q
fi
if [ $SPARK4 = 1 ]; then
    # .venv-spark4: PySpark 4 with its pandas/pyarrow/numpy (and Spark
    # Connect's client, for the test that refuses a Connect session)
    stage "Python environment, Spark 4 (setup-venv.sh --spark 4)" spark-connector/setup-venv.sh --spark 4
    stage "Python/Spark tests on Spark 4" .venv-spark4/bin/pytest spark-connector/tests -q
fi
echo "all tests passed"
