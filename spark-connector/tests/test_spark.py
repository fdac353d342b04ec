"""End to end on a real local[2] Spark with real ps-server/ps-worker
processes: fit from vector, array, numeric and sparse columns, transform,
save/load, empty partitions, and the errors users hit."""
import os
import threading
import time

import numpy as np
import pytest
from pyspark.sql import functions as F

from sparkps import PSCluster
from sparkps.ml import PSClassificationModel, PSClassifier
from sparkps.stream import SchemaError
from sparkps.train import train_dataframe

from conftest import BLOBS_FIT, array_df, blobs, sparkps_pids, vector_df, wait_no_processes

FMNIST_FLOOR = 0.80  # 12000 rows, 5 epochs, mlp:784-128-10; measured 0.84


def accuracy(pred_df, label="label"):
    return pred_df.select(F.avg((F.col("prediction") == F.col(label)).cast("double"))).first()[0]


@pytest.fixture(scope="module")
def fmnist_model(spark, fmnist):
    xtr, ytr, xte, yte = fmnist
    train = vector_df(spark, xtr, ytr).cache()
    test = vector_df(spark, xte, yte).cache()
    clf = PSClassifier(modelSpec="mlp:784-128-10", epochs=5, batchSize=64, numWorkers=2,
                       learningRate=0.001, showProgress=False)
    t0 = time.monotonic()
    model = clf.fit(train)
    return model, test, time.monotonic() - t0


def test_fashion_mnist_fit_transform(fmnist_model):
    model, test, seconds = fmnist_model
    assert [r.worker for r in model.summary] == [0, 1]
    assert sum(r.rows for r in model.summary) == 12000
    assert all(r.status == 0 and r.device == "cpu" for r in model.summary)
    out = model.transform(test)
    assert out.columns == ["label", "features", "prediction", "probability"]
    acc = accuracy(out)
    print(f"fashion-mnist subset: fit {seconds:.1f} s, test accuracy {acc:.4f}")
    assert acc >= FMNIST_FLOOR
    p = out.select("probability").first()[0]
    assert len(p) == 10 and abs(sum(p) - 1) < 1e-4


def test_held_out_rows_give_a_per_epoch_history(spark, fmnist):
    xtr, ytr, xte, yte = fmnist
    df = vector_df(spark, xtr, ytr).withColumn("held", F.lit(False)).unionByName(
        vector_df(spark, xte, yte).withColumn("held", F.lit(True)))
    t0 = time.time()
    model = PSClassifier(modelSpec="mlp:784-64-10", epochs=3, batchSize=64, numWorkers=2,
                         learningRate=0.001, validationIndicatorCol="held",
                         showProgress=False).fit(df)
    seconds = time.time() - t0
    assert sum(r.rows for r in model.summary) == len(ytr)  # held-out rows never trained on
    hist = model.trainingHistory(since=t0)
    assert sorted((e["worker"], e["epoch"]) for e in hist) == [
        (w, e) for w in (0, 1) for e in (1, 2, 3)]
    assert [e["seconds"] for e in hist] == sorted(e["seconds"] for e in hist)
    for e in hist:
        assert 0 < e["seconds"] < seconds
        assert 0.1 < e["test_accuracy"] <= 1 and e["test_loss"] > 0 and e["loss"] > 0
    # the worker finishing last evaluated (nearly) the final model on the
    # same rows transform scores
    last = max(hist, key=lambda e: e["time"])["test_accuracy"]
    test = vector_df(spark, xte, yte)
    acc = accuracy(model.transform(test))
    print(f"held-out accuracy by epoch: {[round(e['test_accuracy'], 4) for e in hist]}; "
          f"transform: {acc:.4f}")
    assert abs(last - acc) < 0.02
    assert model.summary[0].test_accuracy == pytest.approx(
        [e for e in hist if e["worker"] == 0][-1]["test_accuracy"])


def test_save_load_gives_identical_predictions(fmnist_model, tmp_path):
    model, test, _ = fmnist_model
    path = str(tmp_path / "model")
    model.save(path)
    loaded = PSClassificationModel.load(path)
    assert loaded.modelBytes() == model.modelBytes()
    assert loaded.getModelSpec() == "mlp:784-128-10"
    a = model.transform(test).select("prediction", "probability").collect()
    b = loaded.transform(test).select("prediction", "probability").collect()
    assert a == b


def test_array_column_and_pipeline(spark):
    from pyspark.ml import Pipeline, PipelineModel

    x, y = blobs(600)
    df = array_df(spark, x, y)
    clf = PSClassifier(modelSpec="mlp:4-16-3", numWorkers=2, showProgress=False, **BLOBS_FIT)
    pm = Pipeline(stages=[clf]).fit(df)
    assert accuracy(pm.transform(df)) > 0.9


def test_numeric_columns_by_name(spark, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import SQLTransformer

    x, y = blobs(400, seed=3)
    df = array_df(spark, x, y).select(
        "label", *[F.col("features")[i].alias(f"f{i}") for i in range(4)])
    clf = PSClassifier(modelSpec="mlp:4-8-3", featureCols=["f0", "f1", "f2", "f3"], numWorkers=2,
                       showProgress=False, **BLOBS_FIT)
    pm = Pipeline(stages=[SQLTransformer(statement="SELECT * FROM __THIS__"), clf]).fit(df)
    pm.save(str(tmp_path / "pipe"))
    again = PipelineModel.load(str(tmp_path / "pipe"))
    assert accuracy(again.transform(df)) > 0.9


def test_sparse_vectors_with_logreg(spark):
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import DoubleType, StructField, StructType

    # label 1 when feature 1000 is present; a little noise on other ids
    rng = np.random.default_rng(5)
    rows = []
    for i in range(800):
        lab = i % 2
        ids = sorted(set(rng.integers(0, 999, size=3).tolist()) | ({1000} if lab else {1001}))
        rows.append((float(lab), Vectors.sparse(2000, ids, [1.0] * len(ids))))
    schema = StructType([StructField("label", DoubleType()), StructField("features", VectorUDT())])
    df = spark.createDataFrame(rows, schema).repartition(2)
    clf = PSClassifier(modelSpec="logreg:18", epochs=3, numWorkers=2, batchSize=32,
                       showProgress=False)
    model = clf.fit(df)
    assert model.numClasses == 2
    assert accuracy(model.transform(df)) > 0.95


def test_empty_partition(spark):
    x, y = blobs(300)
    # hash-partitioned on a constant: every row in one partition, one empty
    two = array_df(spark, x, y).repartition(2, F.lit(1))
    assert sorted(len(p) for p in two.rdd.glom().collect()) == [0, 300]
    with PSCluster.local(num_servers=1) as ps:
        rows = train_dataframe(two, ps, "mlp:4-8-3", features="features", num_workers=2,
                               epochs=2, batch_size=16, lr=0.01, progress=False,
                               balance=False)
    assert sorted(r.rows for r in rows) == [0, 300]
    assert [r.device for r in rows if r.rows == 0] == ["none"]


def test_missing_column_fails_before_anything_starts(spark):
    x, y = blobs(20)
    df = array_df(spark, x, y)
    with pytest.raises(SchemaError, match="'pixels' not in the DataFrame; its columns are "
                                          "label, features"):
        PSClassifier(featuresCol="pixels", showProgress=False).fit(df)


def test_more_workers_than_slots(spark):
    x, y = blobs(20)
    with PSCluster.local(num_servers=1) as ps:
        with pytest.raises(ValueError, match="3 workers requested but the cluster runs at "
                                             "most 2 tasks"):
            train_dataframe(array_df(spark, x, y), ps, "mlp:4-8-3", num_workers=3,
                            progress=False)


def test_wrong_width_fails_with_the_workers_message(spark):
    x, y = blobs(50)
    with pytest.raises(Exception, match="features have 4 values per row, the model takes 5"):
        PSClassifier(modelSpec="mlp:5-8-3", epochs=1, showProgress=False).fit(
            array_df(spark, x, y))


def test_killed_worker_fails_the_stage_with_its_stderr(spark):
    x, y = blobs(40000, dim=32)
    df = array_df(spark, x, y).cache()
    df.count()
    killed = []

    def kill_one():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for pid in sparkps_pids():
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                except OSError:
                    continue
                if b"--worker-id" in cmd and cmd[cmd.index(b"--worker-id") + 1] == b"1":
                    time.sleep(1.0)  # mid-run: it is training
                    os.kill(pid, 9)
                    killed.append(pid)
                    return
            time.sleep(0.1)

    t = threading.Thread(target=kill_one)
    t.start()
    try:
        with pytest.raises(Exception) as e:
            # long enough that the kill always lands mid-run, however fast
            # the machine; the failed stage stops it early anyway
            PSClassifier(modelSpec="mlp:32-64-3", epochs=200, batchSize=16,
                         showProgress=False).fit(df)
    finally:
        t.join()
        df.unpersist()
    assert killed, "no worker 1 appeared"
    msg = str(e.value)
    assert "ps-worker 1 (partition 1" in msg
    assert "killed by signal 9" in msg
    assert "its stderr ends with" in msg
    assert wait_no_processes() == []


def test_warm_start_and_standalone_cluster(spark, tmp_path):
    x, y = blobs(600, seed=7)
    df = array_df(spark, x, y).cache()
    base = PSClassifier(modelSpec="mlp:4-16-3", showProgress=False, **BLOBS_FIT).fit(df)
    path = str(tmp_path / "base")
    base.save(path)
    assert accuracy(base.transform(df)) > 0.9
    with PSCluster.local(num_servers=2, consistency="ssp:1") as ps:
        with pytest.raises(Exception, match="run consistency ssp:1, the job asks for asp"):
            PSClassifier(servers=ps.servers, showProgress=False).fit(df)
        # a learning rate too small to learn anything in one epoch: the
        # accuracy can only come from the initial weights
        warm = PSClassifier(modelSpec="mlp:4-16-3", epochs=1, batchSize=16, learningRate=1e-7,
                            servers=ps.servers, consistency="ssp:1", initModelPath=path,
                            showProgress=False).fit(df)
        assert len(sparkps_pids()) == 2  # a standalone cluster is not stopped
    assert accuracy(warm.transform(df)) > 0.9
    df.unpersist()
