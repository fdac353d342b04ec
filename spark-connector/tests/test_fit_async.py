"""fitAsync: snapshots of the live servers while a fit runs, the final
model, and cancelling (real Spark, real servers and workers)."""
import time

import numpy as np
import pytest
from pyspark.sql import functions as F

from sparkps.ml import FitCancelled, PSClassificationModel, PSClassifier, PSFitHandle

from conftest import array_df, blobs, vector_df, wait_no_processes


def accuracy(pred_df):
    return pred_df.select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]


def wait_for_samples(handle, at_least, limit=120.0):
    """Polls the servers until every worker reported ``at_least`` samples;
    the progress then, or fails if the fit ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        p = handle.progress()
        if p and all(w["samples"] >= at_least for w in p.values()):
            return p
        if handle.done():
            handle.result()  # raises the fit's error, if any
            pytest.fail("the fit ended before the workers reported progress")
        time.sleep(0.1)
    pytest.fail(f"no progress from the workers within {limit:.0f} s")


def test_snapshot_mid_fit_transforms_and_the_final_model_is_better(spark, fmnist):
    xtr, ytr, xte, yte = fmnist
    train = vector_df(spark, xtr, ytr).cache()
    test = vector_df(spark, xte, yte).cache()
    train.count(), test.count()
    # one worker: the barrier stage takes one of the two task slots, so the
    # snapshot's transform runs on the other while the fit goes on
    clf = PSClassifier(modelSpec="mlp:784-64-10", numWorkers=1, epochs=8, batchSize=64,
                       learningRate=0.001, showProgress=False)
    handle = clf.fitAsync(train)
    assert isinstance(handle, PSFitHandle) and handle.servers.startswith("tcp://")
    early = wait_for_samples(handle, 1)
    snap = handle.snapshot()
    assert isinstance(snap, PSClassificationModel) and snap.summary == []
    assert snap.getModelSpec() == "mlp:784-64-10" and snap.numClasses == 10
    scored = snap.transform(test).select("prediction", "probability").collect()
    assert len(scored) == len(yte)
    preds = np.array([r.prediction for r in scored])
    probs = np.array([r.probability.toArray() for r in scored])
    assert set(np.unique(preds)) <= set(range(10))
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert (probs.argmax(axis=1) == preds).all()
    snap_acc = accuracy(snap.transform(test))

    final = handle.result()
    assert handle.done() and not handle.cancel()
    assert final.modelBytes() != snap.modelBytes()
    assert final.summary[0].samples == 8 * 12000 > early[0]["samples"]
    final_acc = accuracy(final.transform(test))
    print(f"snapshot after {early[0]['samples']:.0f} samples: accuracy {snap_acc:.4f}; "
          f"final: {final_acc:.4f}")
    assert final_acc > snap_acc
    # after the fit, a snapshot is the final model
    assert handle.snapshot().modelBytes() == final.modelBytes()
    assert handle.progress() == {}
    train.unpersist()
    test.unpersist()


def test_cancel_stops_the_fit_and_its_processes(spark):
    x, y = blobs(20000, dim=16)
    df = array_df(spark, x, y).cache()
    df.count()
    handle = PSClassifier(modelSpec="mlp:16-32-3", epochs=100000, batchSize=16,
                          showProgress=False).fitAsync(df)
    wait_for_samples(handle, 1)
    assert handle.cancel()
    with pytest.raises(FitCancelled, match=f"the fit of job {handle.job} was cancelled"):
        handle.result(timeout=120)
    assert handle.done() and "cancelled" in repr(handle)
    assert wait_no_processes() == []
    df.unpersist()


def test_leaving_the_block_cancels_a_running_fit(spark):
    x, y = blobs(2000)
    df = array_df(spark, x, y)
    with PSClassifier(modelSpec="mlp:4-8-3", epochs=100000, batchSize=16,
                      showProgress=False).fitAsync(df) as handle:
        wait_for_samples(handle, 1)
    assert handle.done()
    with pytest.raises(FitCancelled):
        handle.result()
    assert wait_no_processes() == []


def test_errors_before_the_start_are_raised_by_fit_async(spark):
    x, y = blobs(20)
    with pytest.raises(Exception, match="'pixels' not in the DataFrame"):
        PSClassifier(featuresCol="pixels", showProgress=False).fitAsync(array_df(spark, x, y))


def test_a_failing_fit_raises_from_result(spark):
    x, y = blobs(50)
    handle = PSClassifier(modelSpec="mlp:5-8-3", epochs=1, showProgress=False).fitAsync(
        array_df(spark, x, y))
    with pytest.raises(Exception, match="features have 4 values per row, the model takes 5"):
        handle.result(timeout=120)
    assert handle.done() and "failed" in repr(handle)
