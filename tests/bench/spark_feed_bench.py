"""Connector feed rate: rows/s and MB/s from a cached DataFrame into
ps-worker, against ps-worker reading the same rows from a local file.

    .venv/bin/python tests/bench/spark_feed_bench.py [--repeat 3] [--rows 60000]

Fashion-MNIST's training images (784 float32 pixels a row; the label
folded to 2 classes), repeated --copies times (3: 180000 rows, 565 MB of
stream payload), in a cached DataFrame of N partitions (--workers,
default 2 on local[2]), as array<float> and as pyspark.ml vectors (double
values in Arrow). Each measurement runs N processes at once, after one
unmeasured warm-up stage per column type; every repeat runs the file
baseline and the Spark modes back to back (a burst of load from elsewhere
hits all of them), and the medians are printed, one JSON line each, then
the ratios.

- ``spark->ps-worker``: a barrier stage like the connector's own; each task
  runs ``sparkps.train.run_task_worker`` with the connector's feeder
  (Arrow batch -> numpy -> stream format -> the worker's stdin) into
  ``ps-worker --compute-only --format stream --data - --model softmax
  --classes 2 --batch 1024 --epochs 1``.
- ``file->ps-worker``: the same ps-worker command reading its share of the
  rows from a local stream-format file (``--data FILE``), no Spark.
- ``spark->/dev/null``: the feeder alone, writing into ``cat >/dev/null``
  (the writer side's ceiling: Spark's Arrow batches, the conversion, the
  pipe).
- ``compute-only from memory`` is not separate: ``file->ps-worker`` is
  the worker's read plus compute, the reference the feed is compared with.

The worker's compute is made negligible, not removed: softmax with 2
classes costs about 6 flops per input value (forward and backward), so a
worker consumes rows far faster than a pipe or a file delivers them, and
``--compute-only`` skips the servers. Timing: per task, from the moment
the task holds its first Arrow batch (Spark's scan of the cached
partition has started) to the worker's exit, so the Python worker's and
the stage's start-up are left out; the rate of a run is all rows divided
by the longest task. The stage's own wall time is printed too. MB are
10^6 bytes of the stream payload (4 bytes per value, label included).
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

FMNIST = "/usr/share/datasets/fashion-mnist"
WORKER_ARGS = ["--compute-only", "--model", "softmax", "--classes", "2", "--batch", "1024",
               "--epochs", "1", "--progress-every", "1000", "--log-level", "warn"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(*dims)


def load(rows):
    x = read_idx(f"{FMNIST}/train-images-idx3-ubyte.gz")[:rows]
    y = read_idx(f"{FMNIST}/train-labels-idx1-ubyte.gz")[:rows]
    return (x.reshape(len(x), -1) / 255.0).astype(np.float32), (y % 2).astype(np.float64)


def make_task(mode, dim):
    """The barrier task: 'worker' feeds ps-worker through the connector's
    run_task_worker; 'null' feeds ``cat >/dev/null``. Yields one row of
    timings (wall clock, so tasks of one stage compare)."""

    def task(batches):
        import pyarrow as pa
        from pyspark import BarrierTaskContext

        from sparkps import stream as st
        from sparkps.train import WorkerProcess, _feed, _first_nonempty, run_task_worker

        ctx = BarrierTaskContext.get()
        first = _first_nonempty(batches)
        t_first = time.time()
        if mode == "worker":
            fed = {}

            def feed(w):
                fed["rows"] = _feed(w, first, batches, st.DENSE, dim, "features", "label")
                return fed["rows"]

            row = run_task_worker(ctx, "tcp://127.0.0.1:1", "bench",
                                  ["--format", "stream", "--data", "-"], WORKER_ARGS, "cpu",
                                  "ps-worker (feed bench)", feed=feed)
            rows = fed["rows"]
            status = int(row.column("status")[0].as_py())
        else:
            w = WorkerProcess(["sh", "-c", "cat >/dev/null"], "cat", stdout_lines=False)
            try:
                rows = _feed(w, first, batches, st.DENSE, dim, "features", "label")
                status = w.finish()
            finally:
                w.close()
        yield pa.RecordBatch.from_pydict({
            "rows": pa.array([rows], pa.int64()), "t_first": [t_first],
            "t_end": [time.time()], "status": pa.array([status], pa.int32())})

    return task


def spark_run(df, mode, dim):
    t0 = time.time()
    out = df.mapInArrow(make_task(mode, dim), "rows long, t_first double, t_end double, "
                        "status int", barrier=True).collect()
    wall = time.time() - t0
    assert all(r.status == 0 for r in out), out
    rows = sum(r.rows for r in out)
    start = min(r.t_first for r in out)
    return rows, max(r.t_end for r in out) - start, wall


def file_run(paths, worker):
    t0 = time.time()
    procs = [subprocess.Popen([worker, "--format", "stream", "--data", p, *WORKER_ARGS],
                              stdout=subprocess.DEVNULL) for p in paths]
    rcs = [p.wait() for p in procs]
    secs = time.time() - t0
    assert rcs == [0] * len(rcs), rcs
    return secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--copies", type=int, default=3,
                    help="the rows repeated this many times (a longer, steadier measurement)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--columns", default="array,vector",
                    help="feature column types to measure: array (array<float>), vector")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    import pandas as pd
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import SparkSession
    from pyspark.sql.types import ArrayType, DoubleType, FloatType, StructField, StructType

    import sparkps
    from sparkps import stream as st

    x, y = load(args.rows)
    x, y = np.tile(x, (args.copies, 1)), np.tile(y, args.copies)
    n, dim = x.shape
    row_bytes = 4 * (dim + 1)
    spark = (SparkSession.builder.master(f"local[{args.workers}]").appName("feed-bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "3g")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    tmp = tempfile.mkdtemp(prefix="feed-bench-")
    paths = []
    for i, (xs, ys) in enumerate(zip(np.array_split(x, args.workers),
                                     np.array_split(y, args.workers))):
        paths.append(os.path.join(tmp, f"part{i}.stream"))
        with open(paths[-1], "wb") as f:
            w = st.StreamWriter(f, st.DENSE, dim)
            w.write_dense(ys, xs)
            w.close()
    schema = StructType([StructField("label", DoubleType()),
                         StructField("features", ArrayType(FloatType()))])
    base = spark.createDataFrame(pd.DataFrame({"label": y, "features": list(x)}), schema)
    worker = sparkps.find_binary("ps-worker")
    results = {}

    def report(name, rows, secs, wall=None):
        rec = {"mode": name, "rows": rows, "seconds": round(secs, 3),
               "rows_per_s": round(rows / secs), "mb_per_s": round(rows * row_bytes / secs / 1e6, 1)}
        if wall is not None:
            rec["stage_wall_s"] = round(wall, 3)
        print(json.dumps(rec), flush=True)
        results[name] = rec

    # Interleaved: every repeat runs the file baseline and both Spark modes
    # back to back, so a burst of load from elsewhere hits all of them.
    file_runs = []
    for col in args.columns.split(","):
        df = base if col == "array" else base.select(
            "label", array_to_vector("features").alias("features"))
        df = df.repartition(args.workers).cache()
        assert df.count() == n
        spark_run(df, "worker", dim)  # warm-up: Python workers started, JIT warm
        runs = {"null": [], "worker": []}
        for _ in range(args.repeat):
            file_runs.append(file_run(paths, worker))
            for mode in runs:
                runs[mode].append(spark_run(df, mode, dim))
        for mode, name in (("null", f"spark({col})->/dev/null"),
                           ("worker", f"spark({col})->ps-worker")):
            report(name, n, statistics.median(r[1] for r in runs[mode]),
                   statistics.median(r[2] for r in runs[mode]))
        df.unpersist()
    report("file->ps-worker", n, statistics.median(file_runs))
    file_rate = results["file->ps-worker"]["rows_per_s"]
    for name, rec in results.items():
        if name.endswith("->ps-worker") and name != "file->ps-worker":
            print(json.dumps({"ratio": name + " / file->ps-worker",
                              "value": round(rec["rows_per_s"] / file_rate, 3)}))
    print(json.dumps({"load_avg_1m_end": os.getloadavg()[0], "cores": os.cpu_count(),
                      "workers": args.workers, "repeat": args.repeat}))
    spark.stop()


if __name__ == "__main__":
    main()
