"""Sparse logistic regression on a libsvm file with sparkps.

    spark-submit --master 'local[2]' spark-connector/examples/sparse_lr_libsvm.py [PATH]

Reads PATH with Spark's libsvm reader (spark.read.format("libsvm"): label,
features as sparse vectors; a label -1 becomes 0), splits off a held-out
set, trains PSClassifier(modelSpec="logreg") with 2 ps-workers against 2
ps-server shards started on the driver (FTRL on the servers, hashed
feature ids), scores the held-out rows on the executors and prints one
JSON line: test_auc (exact, ties averaged, computed on the driver from the
probability column), seconds, ... Without PATH it first writes a small
synthetic set (a planted sparse weight vector, labels drawn from its
sigmoid) into a temporary directory and also prints the planted model's
AUC on the held-out rows, the best any model can do.

On a GPU cluster (one task per GPU), submit with e.g.:

    spark-submit --master spark://MASTER:7077 \\
      --conf spark.executor.resource.gpu.amount=1 \\
      --conf spark.task.resource.gpu.amount=1 \\
      --conf spark.executor.cores=1 \\
      --conf spark.executor.resource.gpu.discoveryScript=/path/to/sparkps/deploy/spark/getGpusResources.sh \\
      --archives env.tar.gz#env --conf spark.pyspark.python=./env/bin/python \\
      sparse_lr_libsvm.py hdfs:///data/train.svm --workers 4

(see the README's "Spark" section for what each setting does). PATH may
be any URL Spark reads; the rows reach the workers through Spark. For a
file every executor can read at the same local path, files mode skips
Spark's rows altogether: PSClassifier(...).fitFiles(PATH, format="libsvm").
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparkps.ml import PSClassifier


def auc(scores, labels):
    """Exact ROC AUC, ties averaged: the rank-sum (Mann-Whitney) statistic
    over one sort of the scores."""
    scores = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(labels) == 1
    npos, nneg = int(pos.sum()), int((~pos).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    _, inv, counts = np.unique(scores, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based, ties averaged
    ranks = avg_rank[inv.ravel()]
    return float((ranks[pos].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def synthetic(path, rows, features, nnz, seed, bias=-0.2):
    """Writes ``rows`` libsvm lines (1-based ids, labels 0/1): each row has
    up to ``nnz`` distinct ids with value 1 and its label drawn from
    sigmoid(w.x + bias), w the planted weights (20 % of the ids nonzero,
    N(0, 1)); returns the planted model as a function of a row's ids."""
    rng = np.random.default_rng(seed)
    w = np.where(rng.random(features) < 0.2, rng.normal(size=features), 0.0)
    draws = rng.integers(0, features, size=(rows, nnz))
    u = rng.random(rows)
    with open(path, "w") as f:
        for r, ui in zip(draws, u):
            ids = np.unique(r)
            lab = int(ui < 1.0 / (1.0 + np.exp(-(w[ids].sum() + bias))))
            f.write(f"{lab} " + " ".join(f"{i}:1" for i in ids + 1) + "\n")
    return lambda ids0: float(w[ids0].sum() + bias)  # Spark's ids are 0-based


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", nargs="?", help="libsvm file (default: a synthetic one)")
    ap.add_argument("--rows", type=int, default=40000, help="synthetic rows")
    ap.add_argument("--features", type=int, default=2000, help="synthetic feature ids")
    ap.add_argument("--nnz", type=int, default=20, help="synthetic ids per row")
    ap.add_argument("--model", default="logreg:20", help="logreg[:BITS]")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1, help="FTRL alpha")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--servers", type=int, default=2, help="ps-server shards on the driver")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    t0 = time.monotonic()
    planted = None
    path = args.path
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="sparse-lr-"), "data.svm")
        planted = synthetic(path, args.rows, args.features, args.nnz, args.seed)

    spark = SparkSession.builder.appName("sparkps-sparse-lr").getOrCreate()
    reader = spark.read.format("libsvm")
    if planted is not None:
        reader = reader.option("numFeatures", args.features)  # else one pass to find it
    df = reader.load(path).select(
        F.when(F.col("label") < 0, 0.0).otherwise(F.col("label")).alias("label"), "features")
    train, test = df.randomSplit([1 - args.test_fraction, args.test_fraction], seed=args.seed)

    clf = PSClassifier(modelSpec=args.model, epochs=args.epochs, batchSize=args.batch,
                       learningRate=args.lr, numWorkers=args.workers,
                       numServers=args.servers)
    model = clf.fit(train)
    scored = (model.transform(test)
              .select("label", "features", vector_to_array("probability")[1].alias("p1"))
              .collect())
    scores = np.array([r.p1 for r in scored])
    labels = np.array([int(r.label) for r in scored])
    out = {"test_auc": round(auc(scores, labels), 4),
           "seconds": round(time.monotonic() - t0, 1),
           "train_rows": sum(r.rows for r in model.summary), "test_rows": len(scored),
           "epochs": args.epochs, "workers": args.workers, "servers": args.servers,
           "model": args.model}
    if planted is not None:
        out["planted_auc"] = round(auc([planted(r.features.indices) for r in scored], labels), 4)
    print(json.dumps(out))
    spark.stop()


if __name__ == "__main__":
    main()
