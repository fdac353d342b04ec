#!/usr/bin/env bash
# The Spark example as a user runs it: spark-submit --master 'local[2]'
# spark-connector/examples/fashion_mnist_mlp.py (defaults: MLP
# 784-256-128-10, 2 workers, 2 servers, Adam 5e-4 cosine, 12 epochs of
# batch 32), RUNS
# times. Per run: seconds from the Spark session's start (SparkContext
# startTime) to the first held-out evaluation at 0.85, the best evaluation
# and when it came, the final model's test accuracy (transform) and the
# whole spark-submit's wall time; then the per-epoch lines of the last run.
# Extra arguments go to the example. Needs the venv of
# spark-connector/setup-venv.sh and dataset-fashion-mnist; SPARKPS_VENV
# picks another one (SPARKPS_VENV=.venv-spark4: Spark 4, made by
# setup-venv.sh --spark 4).
# Usage: spark_submit_fmnist.sh [RUNS] [example args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-3}
shift $(( $# >= 1 ? 1 : 0 ))
venv=$(cd "$root" && realpath -m "${SPARKPS_VENV:-.venv}")
[ -x "$venv/bin/spark-submit" ] || { echo "no spark-submit in $venv: run spark-connector/setup-venv.sh first" >&2; exit 1; }
export PYSPARK_PYTHON=$venv/bin/python PYSPARK_DRIVER_PYTHON=$venv/bin/python
export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '%-4s %-12s %-9s %-10s %-11s %-9s %-6s\n' run to_0.85_s best best_at_s final_acc submit_s load
for i in $(seq 1 "$runs"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(date +%s.%N)
    "$venv/bin/spark-submit" --master 'local[2]' --conf spark.ui.enabled=false \
        --conf spark.ui.showConsoleProgress=false \
        "$root/spark-connector/examples/fashion_mnist_mlp.py" "$@" >"$out" 2>/dev/null
    t1=$(date +%s.%N)
    "$venv/bin/python" - "$out" "$i" "$load" "$t0" "$t1" <<'EOF'
import json, sys
path, run, load, t0, t1 = sys.argv[1:]
wall = float(t1) - float(t0)
last = json.loads(open(path).read().strip().splitlines()[-1])
print(f"{run:<4} {last['seconds_to_target']!s:<12} {last['best_epoch_accuracy']!s:<9} "
      f"{last['seconds_to_best']!s:<10} {last['test_accuracy']!s:<11} {wall:<9.1f} {load}")
EOF
done
echo "per-epoch evaluations of the last run (seconds since the session started):"
grep '"event": "epoch"' "$out" || true
