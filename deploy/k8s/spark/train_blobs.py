"""Trains against a standalone sparkps cluster: the deployment's end-to-end check.

    SPARKPS_SERVERS=tcp://ps-0.ps.sparkps.svc.cluster.local:7000,... \\
        spark-submit ... train_blobs.py [--workers N] [--rows R] [--epochs E]

Needs no data files: Spark itself generates Gaussian blobs (--classes
classes, --dim features, class c centred on 2.5 in feature c), so it runs
the same under any master. It fits PSClassifier (an MLP) with one
ps-worker per barrier task against the servers in SPARKPS_SERVERS (which
must run the consistency model in SPARKPS_CONSISTENCY, default asp), each
task on the GPU Spark gave it when there is one, then scores a held-out
fifth on the executors and prints one JSON line: test_accuracy, seconds,
the rows and the device each worker ran on.

It is copied into the Docker image as /opt/sparkps/examples/train_blobs.py
(deploy/k8s/spark/spark-submit.sh runs it by default).
"""
import argparse
import json
import os
import sys
import time

from pyspark.ml.functions import array_to_vector
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparkps.ml import PSClassifier


def blobs(spark, rows, dim, classes, seed):
    label = (F.col("id") % classes).cast("double")
    feats = [(F.randn(seed + j) + F.when(F.col("id") % classes == j, 2.5).otherwise(0.0))
             .cast("float") for j in range(dim)]
    return (spark.range(rows).select(label.alias("label"),
                                     array_to_vector(F.array(*feats)).alias("features")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=0,
                    help="ps-workers, one per barrier task (0: spark.executor.instances, else 2)")
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    servers = os.environ.get("SPARKPS_SERVERS", "")
    if not servers:
        sys.exit("train_blobs.py: set SPARKPS_SERVERS to the ps-server shards, in shard order "
                 "(tcp://ps-0.ps.NAMESPACE.svc.cluster.local:7000,...)")
    if not 2 <= args.classes <= args.dim:
        sys.exit("train_blobs.py: --classes must be between 2 and --dim")

    spark = SparkSession.builder.appName("sparkps-train-blobs").getOrCreate()
    workers = args.workers or int(spark.conf.get("spark.executor.instances", "2"))
    t0 = time.monotonic()
    data = blobs(spark, args.rows, args.dim, args.classes, args.seed)
    train, test = data.randomSplit([0.8, 0.2], seed=args.seed)
    clf = PSClassifier(modelSpec=f"mlp:{args.dim}-32-{args.classes}", epochs=args.epochs,
                       batchSize=64, learningRate=0.001, numWorkers=workers, servers=servers,
                       consistency=os.environ.get("SPARKPS_CONSISTENCY", "asp"))
    model = clf.fit(train)
    acc = (model.transform(test)
           .select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0])
    print(json.dumps({"test_accuracy": round(acc, 4),
                      "seconds": round(time.monotonic() - t0, 1),
                      "workers": [{k: r[k] for k in ("worker", "host", "device", "rows", "loss")}
                                  for r in model.summary],
                      "servers": servers}))
    spark.stop()


if __name__ == "__main__":
    main()
