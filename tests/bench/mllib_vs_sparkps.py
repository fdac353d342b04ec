"""sparkps against Spark MLlib's MultilayerPerceptronClassifier in the same
Spark session: Fashion-MNIST, the same layer sizes (784-256-128-10).

    .venv/bin/python tests/bench/mllib_vs_sparkps.py [--budget 600] [--target 0.84]

One local[2] session; the 60000 training and 10000 test images as
DataFrames of pyspark.ml vectors, cached before any clock starts. Then:

1. sparkps: ``PSClassifier`` with the example's defaults (2 workers, 2
   servers, Adam 5e-4, cosine schedule, 12 epochs, batch 32), the test
   rows flagged by ``validationIndicatorCol`` so every worker evaluates
   them after each epoch: wall time W of ``fit``, the test accuracy of the
   final model (``transform``), and the time from the start of ``fit`` to
   the first evaluation at ``--target``.
2. MLlib calibration: ``maxIter`` 2 and 6 (L-BFGS, the default solver)
   give the time per iteration and the fixed cost of a fit (an estimate:
   iterations differ in line-search evaluations).
3. MLlib with the ``maxIter`` whose fit takes about W (within 20 %; the
   estimate is corrected from the runs so far, at most 3 runs): its
   accuracy is the "same wall time" figure.
4. MLlib with ``--points`` (60) and the most iterations that fit in
   ``--budget`` seconds (at most ``--max-iter``, 100): MLlib reports no
   model per iteration, so its time to the target is bracketed by the
   longest run below it and the shortest run reaching it.

Each line printed is JSON; the last one sums up. Test accuracy is
computed on the driver from the prediction column, the same way for both.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

FMNIST = "/usr/share/datasets/fashion-mnist"
LAYERS = [784, 256, 128, 10]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(*dims)


def vectors(spark, images, labels, partitions):
    import pandas as pd
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql.types import ArrayType, DoubleType, FloatType, StructField, StructType

    x = (images.reshape(len(images), -1) / 255.0).astype(np.float32)
    schema = StructType([StructField("label", DoubleType()),
                         StructField("pixels", ArrayType(FloatType()))])
    df = spark.createDataFrame(pd.DataFrame({"label": labels.astype(np.float64),
                                             "pixels": list(x)}), schema)
    return df.select("label", array_to_vector("pixels").alias("features")).repartition(
        partitions).cache()


def accuracy(model, test):
    from pyspark.sql import functions as F

    return model.transform(test).select(
        F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]


def emit(**kw):
    print(json.dumps(kw), flush=True)
    return kw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", type=float, default=0.84)
    ap.add_argument("--budget", type=float, default=600.0,
                    help="seconds the long MLlib run may take (estimated from calibration)")
    ap.add_argument("--max-iter", type=int, default=100, help="cap of the long MLlib run")
    ap.add_argument("--points", default="60",
                    help="maxIter values run between the same-time and the longest run "
                         "(comma-separated), to bracket MLlib's time to the target")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.ml.classification import MultilayerPerceptronClassifier
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from sparkps.ml import PSClassifier

    t_all = time.monotonic()
    spark = (SparkSession.builder.master("local[2]").appName("mllib-vs-sparkps")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "4g")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    train = vectors(spark, read_idx(f"{FMNIST}/train-images-idx3-ubyte.gz"),
                    read_idx(f"{FMNIST}/train-labels-idx1-ubyte.gz"), 2)
    test = vectors(spark, read_idx(f"{FMNIST}/t10k-images-idx3-ubyte.gz"),
                   read_idx(f"{FMNIST}/t10k-labels-idx1-ubyte.gz"), 2)
    both = train.withColumn("is_test", F.lit(False)).unionByName(
        test.withColumn("is_test", F.lit(True))).cache()
    assert train.count() == 60000 and test.count() == 10000 and both.count() == 70000
    emit(event="data_ready", seconds=round(time.monotonic() - t_all, 1),
         load_avg_1m=os.getloadavg()[0])

    # 1. sparkps
    clf = PSClassifier(modelSpec="mlp:" + "-".join(map(str, LAYERS)), epochs=args.epochs,
                       batchSize=args.batch, learningRate=0.0005, lrSchedule="cosine",
                       numWorkers=2, numServers=2, validationIndicatorCol="is_test",
                       showProgress=False)
    t0 = time.time()
    model = clf.fit(both)
    ours_s = time.time() - t0
    hist = [e for e in model.trainingHistory(since=t0) if "test_accuracy" in e]
    hit = next((e for e in hist if e["test_accuracy"] >= args.target), None)
    ours = emit(system="sparkps", fit_seconds=round(ours_s, 1),
                test_accuracy=round(accuracy(model, test), 4),
                best_epoch_accuracy=round(max(e["test_accuracy"] for e in hist), 4),
                seconds_to_target=round(hit["seconds"], 1) if hit else None,
                epochs=args.epochs, load_avg_1m=os.getloadavg()[0])

    def mllib(iters):
        mlp = MultilayerPerceptronClassifier(layers=LAYERS, maxIter=iters, seed=1)
        t = time.monotonic()
        m = mlp.fit(train)
        secs = time.monotonic() - t
        return emit(system="mllib", max_iter=iters, fit_seconds=round(secs, 1),
                    test_accuracy=round(accuracy(m, test), 4),
                    load_avg_1m=os.getloadavg()[0])

    # 2. calibration
    runs = [mllib(2), mllib(6)]
    per_iter = max((runs[1]["fit_seconds"] - runs[0]["fit_seconds"]) / 4, 0.1)
    fixed = max(runs[0]["fit_seconds"] - 2 * per_iter, 0.0)
    emit(event="mllib_calibration", seconds_per_iteration=round(per_iter, 2),
         fixed_seconds=round(fixed, 2))
    # 3. the same wall time as ours: early L-BFGS iterations are cheaper than
    # later ones, so correct the estimate from the runs so far (secant
    # through the two runs nearest in time) until a fit lands within 20 %
    iters = max(1, round((ours_s - fixed) / per_iter))
    for _ in range(3):
        runs.append(mllib(iters))
        if abs(runs[-1]["fit_seconds"] - ours_s) <= 0.2 * ours_s:
            break
        a, b = sorted(runs, key=lambda r: abs(r["fit_seconds"] - ours_s))[:2]
        slope = (b["fit_seconds"] - a["fit_seconds"]) / ((b["max_iter"] - a["max_iter"]) or 1)
        iters = max(1, round(a["max_iter"] + (ours_s - a["fit_seconds"]) / max(slope, 0.05)))
        if any(r["max_iter"] == iters for r in runs):
            break
    same = min(runs, key=lambda r: abs(r["fit_seconds"] - ours_s))
    # 4. more iterations, up to what the budget allows, to bracket the time
    # to the target (MLlib has no per-iteration model to evaluate)
    slope = (same["fit_seconds"] - runs[0]["fit_seconds"]) / max(same["max_iter"] - 2, 1)
    long_iters = int(min(args.max_iter,
                         max(1, 2 + (args.budget - runs[0]["fit_seconds"]) / max(slope, 0.05))))
    for it in sorted({*(int(p) for p in args.points.split(",") if p), long_iters}):
        if same["max_iter"] < it <= long_iters:
            runs.append(mllib(it))
    below = [r for r in runs if r["test_accuracy"] < args.target]
    above = [r for r in runs if r["test_accuracy"] >= args.target]
    first = min(above, key=lambda r: r["max_iter"]) if above else None
    below = [r for r in below if first is None or r["max_iter"] < first["max_iter"]]
    last_below = max(below, key=lambda r: r["max_iter"]) if below else None
    longest = max(runs, key=lambda r: r["max_iter"])
    emit(summary=True, target=args.target,
         sparkps={"fit_seconds": ours["fit_seconds"], "test_accuracy": ours["test_accuracy"],
                  "seconds_to_target": ours["seconds_to_target"]},
         mllib_same_time={"max_iter": same["max_iter"], "fit_seconds": same["fit_seconds"],
                          "test_accuracy": same["test_accuracy"]},
         mllib_longest={"max_iter": longest["max_iter"], "fit_seconds": longest["fit_seconds"],
                        "test_accuracy": longest["test_accuracy"]},
         mllib_to_target=(f"between {last_below['fit_seconds'] if last_below else 0} s "
                          f"({last_below['max_iter'] if last_below else 0} iterations) and "
                          f"{first['fit_seconds']} s ({first['max_iter']} iterations)") if first
         else f"not reached in {longest['fit_seconds']} s ({longest['max_iter']} iterations)",
         total_seconds=round(time.monotonic() - t_all, 1), load_avg_1m=os.getloadavg()[0])
    spark.stop()


if __name__ == "__main__":
    main()
