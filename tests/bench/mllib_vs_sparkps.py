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
3. MLlib with the ``maxIter`` whose fit takes about W: its accuracy is the
   "same wall time" figure.
4. MLlib with the most iterations that fit in ``--budget`` seconds
   (at most ``--max-iter``): its accuracy, and whether it reached the
   target (MLlib reports no per-iteration model, so "time to target" is
   bounded by this run: reached within its time, or not within it).

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
    two, six = mllib(2), mllib(6)
    per_iter = max((six["fit_seconds"] - two["fit_seconds"]) / 4, 0.1)
    fixed = max(two["fit_seconds"] - 2 * per_iter, 0.0)
    emit(event="mllib_calibration", seconds_per_iteration=round(per_iter, 2),
         fixed_seconds=round(fixed, 2))
    # 3. the same wall time as ours
    same = mllib(max(1, round((ours_s - fixed) / per_iter)))
    # 4. the longest run the budget allows
    long_iters = int(min(args.max_iter, max(1, (args.budget - fixed) / per_iter)))
    longest = mllib(long_iters) if long_iters > same["max_iter"] else same
    reached = longest["test_accuracy"] >= args.target
    emit(summary=True, target=args.target,
         sparkps={"fit_seconds": ours["fit_seconds"], "test_accuracy": ours["test_accuracy"],
                  "seconds_to_target": ours["seconds_to_target"]},
         mllib_same_time={"max_iter": same["max_iter"], "fit_seconds": same["fit_seconds"],
                          "test_accuracy": same["test_accuracy"]},
         mllib_longest={"max_iter": longest["max_iter"], "fit_seconds": longest["fit_seconds"],
                        "test_accuracy": longest["test_accuracy"],
                        "target": ("reached within" if reached else "not reached in")
                        + f" {longest['fit_seconds']} s"},
         total_seconds=round(time.monotonic() - t_all, 1), load_avg_1m=os.getloadavg()[0])
    spark.stop()


if __name__ == "__main__":
    main()
