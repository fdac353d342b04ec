"""The errors users hit, on a real local[2] Spark with real processes: each
asserts the message a user reads, and (autouse fixture, plus explicit
checks where a process was killed) that no ps-server/ps-worker is left."""
import os
import threading
import time

import pytest

import sparkps
from sparkps import PSCluster
from sparkps.cluster import ClusterError
from sparkps.ml import PSClassifier
from sparkps.stream import SchemaError
from sparkps.train import check_spark_version, train_dataframe

from conftest import array_df, blobs, sparkps_pids, wait_no_processes


@pytest.fixture
def executor_env(spark):
    """Sets variables in the executors' environment for one test, as
    ``--conf spark.executorEnv.NAME=VALUE`` does: Python functions shipped
    afterwards carry them, and Spark starts Python workers with them."""
    env = spark.sparkContext.environment
    saved = dict(env)
    yield env
    env.clear()
    env.update(saved)


def test_worker_binary_missing_on_executors(spark, executor_env, tmp_path):
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    executor_env["SPARKPS_BIN_DIR"] = str(empty)
    x, y = blobs(100)
    with pytest.raises(Exception) as e:
        # the servers start on the driver, which still finds ps-server
        PSClassifier(modelSpec="mlp:4-8-3", epochs=1, showProgress=False).fit(
            array_df(spark, x, y))
    msg = str(e.value)
    assert f"ps-worker not found on host {os.uname().nodename}" in msg
    assert f"(looked in SPARKPS_BIN_DIR={empty})" in msg
    assert "--archives env.tar.gz#env" in msg
    assert "spark.executorEnv.SPARKPS_BIN_DIR" in msg


def test_bin_dir_is_the_only_place_looked_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARKPS_BIN_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"looked in SPARKPS_BIN_DIR={tmp_path}"):
        sparkps.find_binary("ps-ctl")
    monkeypatch.setenv("SPARKPS_BIN_DIR", sparkps.bin_path())
    assert sparkps.find_binary("ps-ctl") == os.path.join(sparkps.bin_path(), "ps-ctl")


def _shard_pid(ps, shard):
    """Pid of the ps-server serving ``shard`` of ``ps``, from the process
    table (its command line names the shard)."""
    for pid in sparkps_pids():
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd[0].endswith(b"ps-server") and cmd[cmd.index(b"--shard") + 1] == str(shard).encode():
            return pid
    raise AssertionError(f"no ps-server for shard {shard}")


def test_server_killed_mid_fit_fails_the_fit_naming_it(spark):
    x, y = blobs(40000, dim=32)
    df = array_df(spark, x, y).cache()
    df.count()
    killed = []
    with PSCluster.local(num_servers=2) as ps:
        victim = ps.endpoints[1]

        def kill_when_training():
            # both workers pushing: the servers report samples for them
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    workers = ps.status(timeout=2.0)["shards"][0].get("workers", [])
                except ClusterError:
                    workers = []
                if sum(1 for w in workers if w.get("samples", 0) > 0) == 2:
                    os.kill(_shard_pid(ps, 1), 9)
                    killed.append(time.monotonic())
                    return
                time.sleep(0.1)

        t = threading.Thread(target=kill_when_training)
        t.start()
        try:
            with pytest.raises(ClusterError) as e:
                # far longer than the test: only the lost server ends it
                train_dataframe(df, ps, "mlp:32-64-3", epochs=1000, batch_size=16,
                                progress=False)
        finally:
            t.join()
            df.unpersist()
        assert killed, "the workers never reported progress"
        print(f"fit failed {time.monotonic() - killed[0]:.1f} s after the kill")
    msg = str(e.value)
    assert "the training stage of job" in msg and "was cancelled" in msg
    assert f"ps-server shard 1 ({victim}) was killed by signal 9" in msg
    assert wait_no_processes() == []


def test_spark_older_than_3_5_is_refused(spark, monkeypatch):
    import pyspark

    x, y = blobs(20)
    df = array_df(spark, x, y)
    monkeypatch.setattr(pyspark, "__version__", "3.4.1")
    want = (r"sparkps needs Spark 3\.5 or newer \(mapInArrow with barrier=True\); "
            r"this is Spark 3\.4\.1")
    with pytest.raises(RuntimeError, match=want):
        PSClassifier(showProgress=False).fit(df)
    with pytest.raises(RuntimeError, match=want):
        PSClassifier(showProgress=False).fitAsync(df)
    with pytest.raises(RuntimeError, match=want):
        sparkps.train_files(spark, PSCluster(["tcp://127.0.0.1:1"]), "logreg", "x")
    assert sparkps_pids() == []  # refused before any server started


@pytest.mark.parametrize("version,ok", [("3.5.0", True), ("3.5.7", True), ("4.0.1", True),
                                        ("4.1.0.dev0", True), ("4.3.0", True),
                                        ("3.4.4", False),
                                        ("3.3.0", False), ("2.4.8", False)])
def test_version_check_reads_major_minor(version, ok):
    if ok:
        check_spark_version(version)
    else:
        with pytest.raises(RuntimeError, match=f"this is Spark {version}"):
            check_spark_version(version)


def test_more_workers_than_slots_fails_before_servers_start(spark):
    x, y = blobs(20)
    with pytest.raises(ValueError, match="3 workers requested but the cluster runs at most 2 "
                                         "tasks at once; a barrier stage needs them all"):
        PSClassifier(numWorkers=3, showProgress=False).fit(array_df(spark, x, y))
    with pytest.raises(ValueError, match="3 workers requested"):
        PSClassifier(numWorkers=3, showProgress=False).fitFiles("/nonexistent", spark=spark)
    assert sparkps_pids() == []


def test_unreachable_standalone_servers_through_fit(spark):
    x, y = blobs(20)
    # nothing listens on port 1: ps-ctl's two attempts time out (5 s each)
    with pytest.raises(ClusterError, match=r"servers unreachable \(tcp://127\.0\.0\.1:1\): "
                                           r".*shard 0 \(tcp://127\.0\.0\.1:1\)"):
        PSClassifier(servers="tcp://127.0.0.1:1", showProgress=False).fit(array_df(spark, x, y))


def test_validation_indicator_must_be_boolean(spark):
    from pyspark.sql import functions as F

    x, y = blobs(20)
    df = array_df(spark, x, y).withColumn("held", F.lit(1))
    with pytest.raises(SchemaError, match="validationIndicatorCol 'held' is int, not boolean"):
        PSClassifier(validationIndicatorCol="held", showProgress=False).fit(df)
    with pytest.raises(SchemaError, match="'heldout' not in the DataFrame"):
        PSClassifier(validationIndicatorCol="heldout", showProgress=False).fit(df)
