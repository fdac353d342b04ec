"""Files mode (Spark as a scheduler): each barrier task only runs
``ps-worker --data PATH --part i/N`` on a file the test writes (local files
are readable by the local[2] executors)."""
import numpy as np
import pytest
from pyspark.sql import functions as F

import sparkps
from sparkps import PSCluster
from sparkps.ml import PSClassificationModel, PSClassifier, read_safetensors_metadata

from conftest import BLOBS_FIT, array_df, blobs, wait_no_processes

AUC_FLOOR = 0.95  # separable by one feature; measured 1.0


def write_libsvm(path, n, seed):
    """label 1 when feature 1001 is present, 0 when 1002 is; three noise
    ids in 1..999 per row (1-based ids, labels 0/1)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for i in range(n):
            lab = i % 2
            ids = sorted(set(rng.integers(1, 1000, size=3).tolist()) | {1001 if lab else 1002})
            f.write(f"{lab} " + " ".join(f"{j}:1" for j in ids) + "\n")


def write_csv(path, x, y):
    with open(path, "w") as f:
        for row, lab in zip(x, y):
            f.write(",".join(f"{v:.5f}" for v in row) + f",{int(lab)}\n")


def test_libsvm_files_two_workers(spark, tmp_path):
    train, test = str(tmp_path / "train.svm"), str(tmp_path / "test.svm")
    write_libsvm(train, 1000, seed=1)
    write_libsvm(test, 400, seed=2)
    with PSCluster.local(num_servers=2) as ps:
        rows = sparkps.train_files(spark, ps, "logreg:18", train, format="libsvm", eval=test,
                                   num_workers=2, epochs=3, batch_size=32, job="files-lr",
                                   progress=False)
        data = ps.export("files-lr")
        # Each worker joined with its own task's attempt id.
        joined = {w["id"]: w["attempt"] for w in ps.status()["shards"][0]["workers"]}
    assert sorted(joined) == [0, 1] and joined[0] != joined[1], joined
    assert [r.worker for r in rows] == [0, 1]
    # --part i/2: every other record, 500 each, 3 epochs
    assert [r.rows for r in rows] == [500, 500]
    assert [r.samples for r in rows] == [1500, 1500]
    assert all(r.status == 0 and r.device == "cpu" and r.epochs == 3 for r in rows)
    for r in rows:
        assert r.test_auc >= AUC_FLOOR, rows
    # Accuracy needs calibrated weights, not only their ranking: a worker that
    # finishes first evaluates before the other's last pushes, the last one
    # to finish evaluates the final model.
    assert max(r.test_accuracy for r in rows) >= 0.9, rows
    assert read_safetensors_metadata(data)["model"] == "logreg:18"


def test_csv_files_through_the_classifier(spark, tmp_path):
    x, y = blobs(600, seed=4)
    path = str(tmp_path / "blobs.csv")
    write_csv(path, x, y)
    clf = PSClassifier(modelSpec="mlp:4-16-3", numWorkers=2, showProgress=False, **BLOBS_FIT)
    model = clf.fitFiles(path, format="csv")
    assert isinstance(model, PSClassificationModel)
    assert sorted(r.rows for r in model.summary) == [300, 300]
    scored = model.transform(array_df(spark, x, y))
    acc = scored.select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
    assert acc > 0.9


def test_missing_file_fails_with_the_workers_message(spark, tmp_path):
    missing = str(tmp_path / "no-such.svm")
    with PSCluster.local(num_servers=1) as ps:
        with pytest.raises(Exception) as e:
            sparkps.train_files(spark, ps, "logreg:18", missing, format="libsvm",
                                num_workers=2, progress=False)
    msg = str(e.value)
    assert "its stderr ends with" in msg
    assert f"{missing}: cannot open: No such file or directory" in msg
    assert wait_no_processes() == []


def test_timeout_kills_the_worker(spark, tmp_path):
    x, y = blobs(2000, seed=5)
    path = str(tmp_path / "blobs.csv")
    write_csv(path, x, y)
    with PSCluster.local(num_servers=1) as ps:
        with pytest.raises(Exception, match="running past the timeout of 2 s; its stderr "
                                            "ends with:\nps-worker: stopped by a signal"):
            sparkps.train_files(spark, ps, "mlp:4-16-3", path, format="csv", num_workers=2,
                                epochs=100000, batch_size=16, progress=False, timeout=2)
    assert wait_no_processes() == []


def test_bad_arguments(spark):
    with PSCluster.local(num_servers=1) as ps:
        with pytest.raises(ValueError, match="format 'parquet'"):
            sparkps.train_files(spark, ps, "logreg", "x", format="parquet")
        with pytest.raises(ValueError, match="3 workers requested"):
            sparkps.train_files(spark, ps, "logreg", "x", num_workers=3)
