"""Fashion-MNIST MLP from a Spark DataFrame with sparkps.

    spark-submit --master 'local[2]' spark-connector/examples/fashion_mnist_mlp.py

Reads the IDX files (Debian package dataset-fashion-mnist), stores them as
Parquet (one array<float> column of 784 pixels), reads that back as a
DataFrame of pyspark.ml vectors, trains PSClassifier with 2 ps-workers
against 2 ps-server shards started on the driver, scores the test set on
the executors, and prints one JSON line: test_accuracy, seconds, ...

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
from pyspark.ml.functions import array_to_vector
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


def to_parquet(images, labels, path):
    """Pixels in [0, 1] as a fixed-size list column, written without a
    Python loop per row."""
    x = (images.reshape(len(images), -1) / 255.0).astype(np.float32)
    pixels = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    pq.write_table(pa.table({"label": labels.astype(np.float64), "pixels": pixels}), path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=FMNIST, help="directory of the IDX .gz files")
    ap.add_argument("--model", default="mlp:784-256-10")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--servers", type=int, default=2, help="ps-server shards on the driver")
    ap.add_argument("--train-rows", type=int, default=0, help="use the first N (0: all)")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.data, "train-images-idx3-ubyte.gz")):
        sys.exit(f"Fashion-MNIST not found in {args.data}: "
                 "sudo apt-get install dataset-fashion-mnist")

    spark = SparkSession.builder.appName("sparkps-fashion-mnist").getOrCreate()
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="fmnist-parquet-")
    n = args.train_rows or None
    to_parquet(read_idx(f"{args.data}/train-images-idx3-ubyte.gz")[:n],
               read_idx(f"{args.data}/train-labels-idx1-ubyte.gz")[:n], f"{tmp}/train.parquet")
    to_parquet(read_idx(f"{args.data}/t10k-images-idx3-ubyte.gz"),
               read_idx(f"{args.data}/t10k-labels-idx1-ubyte.gz"), f"{tmp}/test.parquet")

    def load(name):
        return spark.read.parquet(f"{tmp}/{name}.parquet").select(
            "label", array_to_vector("pixels").alias("features"))

    train, test = load("train"), load("test")
    clf = PSClassifier(modelSpec=args.model, epochs=args.epochs, batchSize=args.batch,
                       learningRate=args.lr, numWorkers=args.workers,
                       numServers=args.servers)
    model = clf.fit(train)
    scored = model.transform(test)
    acc = scored.select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
    seconds = time.monotonic() - t0
    samples = sum(r.samples for r in model.summary)
    print(json.dumps({"test_accuracy": round(acc, 4), "seconds": round(seconds, 1),
                      "train_rows": sum(r.rows for r in model.summary), "samples": samples,
                      "epochs": args.epochs, "workers": args.workers,
                      "servers": args.servers, "model": args.model}))
    spark.stop()


if __name__ == "__main__":
    main()
