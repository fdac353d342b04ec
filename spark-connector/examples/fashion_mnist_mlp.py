"""Fashion-MNIST MLP from a Spark DataFrame with sparkps.

    spark-submit --master 'local[2]' spark-connector/examples/fashion_mnist_mlp.py

Reads the IDX files (Debian package dataset-fashion-mnist), stores the
training and test images as one Parquet file (label, an array<float>
column of 784 pixels, is_test), reads that back as a DataFrame, trains
PSClassifier (MLP 784-256-128-10, Adam 5e-4 with a cosine schedule, 12
epochs of batch 32) with 2 ps-workers against 2 ps-server shards started
on the driver, the test images flagged by validationIndicatorCol so every
worker evaluates them after each epoch, then scores the test set on the
executors. It prints one JSON line per evaluation (worker, epoch, seconds
since the Spark session started, test accuracy) and a last line:
test_accuracy (transform), seconds, seconds_to_target (first evaluation
at --target, 0.85), best_epoch_accuracy and seconds_to_best, ...

On a GPU cluster (one task per GPU), submit with e.g.:

    spark-submit --master spark://MASTER:7077 \\
      --conf spark.executor.resource.gpu.amount=1 \\
      --conf spark.task.resource.gpu.amount=1 \\
      --conf spark.executor.cores=1 \\
      --conf spark.executor.resource.gpu.discoveryScript=/path/to/sparkps/deploy/spark/getGpusResources.sh \\
      --archives env.tar.gz#env --conf spark.pyspark.python=./env/bin/python \\
      fashion_mnist_mlp.py --workers 4

(see the README's "Spark" section for what each setting does).
"""
import argparse
import gzip
import json
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparkps.ml import PSClassifier

FMNIST = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(*dims)


def write_parquet(path, parts):
    """One Parquet file of ``(images, labels, is_test)`` parts: pixels in
    [0, 1] as a fixed-size list<float> column, written without a Python loop
    per row. Plain encoding, uncompressed (a fast write; this file is read
    once), in row groups of 10000, so a filter on is_test skips the others."""
    tables = []
    for images, labels, is_test in parts:
        x = (images.reshape(len(images), -1) / 255.0).astype(np.float32)
        pixels = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
        tables.append(pa.table({"label": labels.astype(np.float64), "pixels": pixels,
                                "is_test": np.full(len(labels), is_test)}))
    pq.write_table(pa.concat_tables(tables), path, compression="none", use_dictionary=False,
                   row_group_size=10000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=FMNIST, help="directory of the IDX .gz files")
    ap.add_argument("--model", default="mlp:784-256-128-10")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.0005)
    ap.add_argument("--lr-schedule", default="cosine",
                    help="constant, step:EPOCHS:GAMMA or cosine[:FLOOR]")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--servers", type=int, default=2, help="ps-server shards on the driver")
    ap.add_argument("--train-rows", type=int, default=0, help="use the first N (0: all)")
    ap.add_argument("--target", type=float, default=0.85,
                    help="report when the held-out accuracy first reaches this")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.data, "train-images-idx3-ubyte.gz")):
        sys.exit(f"Fashion-MNIST not found in {args.data}: "
                 "sudo apt-get install dataset-fashion-mnist")

    spark = SparkSession.builder.appName("sparkps-fashion-mnist").getOrCreate()
    session_start = spark.sparkContext.startTime / 1000.0  # wall clock, seconds
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="fmnist-parquet-")
    n = args.train_rows or None
    write_parquet(f"{tmp}/fmnist.parquet", [
        (read_idx(f"{args.data}/train-images-idx3-ubyte.gz")[:n],
         read_idx(f"{args.data}/train-labels-idx1-ubyte.gz")[:n], False),
        (read_idx(f"{args.data}/t10k-images-idx3-ubyte.gz"),
         read_idx(f"{args.data}/t10k-labels-idx1-ubyte.gz"), True)])
    # label, pixels (array<float>: PSClassifier reads it as is; a
    # pyspark.ml vector column works too), is_test
    data = spark.read.parquet(f"{tmp}/fmnist.parquet")
    test = data.filter("is_test")
    # the test rows stay in, flagged: every worker evaluates them after each
    # epoch (model.trainingHistory()) and never trains on them
    clf = PSClassifier(modelSpec=args.model, featuresCol="pixels", epochs=args.epochs,
                       batchSize=args.batch, learningRate=args.lr,
                       lrSchedule=args.lr_schedule, numWorkers=args.workers,
                       numServers=args.servers, validationIndicatorCol="is_test")
    fit_start = time.time() - session_start
    model = clf.fit(data)
    history = model.trainingHistory(since=session_start)
    for e in history:
        print(json.dumps({"event": "epoch", "worker": e["worker"], "epoch": e["epoch"],
                          "seconds_since_session_start": round(e["seconds"], 1),
                          "test_accuracy": e.get("test_accuracy")}))
    scored = model.transform(test)
    acc = scored.select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
    seconds = time.monotonic() - t0
    samples = sum(r.samples for r in model.summary)
    evals = [e for e in history if e.get("test_accuracy") is not None]
    hit = next((e for e in evals if e["test_accuracy"] >= args.target), None)
    best = max(evals, key=lambda e: e["test_accuracy"], default=None)
    print(json.dumps({
        "test_accuracy": round(acc, 4), "seconds": round(seconds, 1),
        "seconds_to_target": round(hit["seconds"], 1) if hit else None,
        "target": args.target,
        "best_epoch_accuracy": round(best["test_accuracy"], 4) if best else None,
        "seconds_to_best": round(best["seconds"], 1) if best else None,
        "fit_start_since_session_start": round(fit_start, 1),
        "fit_end_since_session_start": round(max(e["seconds"] for e in history), 1)
        if history else None,
        "train_rows": sum(r.rows for r in model.summary), "samples": samples,
        "epochs": args.epochs, "workers": args.workers, "servers": args.servers,
        "model": args.model}))
    spark.stop()


if __name__ == "__main__":
    main()
