"""Spark Connect is refused with a clear error: the connector needs a
classic session (barrier stages, the SparkContext). Runs a real local
Connect server (Spark 4 ships its jar; `.remote("local[2]")` starts it) in
a child process, since this process already holds the classic session."""
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys
    from pyspark.sql import SparkSession
    import sparkps
    from sparkps import PSCluster
    from sparkps.ml import PSClassifier

    s = SparkSession.builder.remote("local[2]").getOrCreate()
    print("session", type(s).__module__)
    df = s.createDataFrame([(float(i % 2), [float(i), 1.0]) for i in range(8)],
                           "label double, features array<float>")
    calls = {
        "fit": lambda: PSClassifier(modelSpec="softmax", showProgress=False).fit(df),
        "fitAsync": lambda: PSClassifier(modelSpec="softmax").fitAsync(df),
        "fitFiles": lambda: PSClassifier(modelSpec="logreg").fitFiles("x", spark=s),
        "train_dataframe": lambda: sparkps.train_dataframe(
            df, PSCluster(["tcp://127.0.0.1:1"]), "softmax"),
        "PSCluster.local": lambda: PSCluster.local(1, spark=s),
    }
    for name, call in calls.items():
        try:
            call()
            print(name, "accepted")
        except RuntimeError as e:
            print(name, "refused:", e)
    s.stop()
""")


def test_connect_session_is_refused_clearly():
    pytest.importorskip("grpc", reason="Spark Connect's client (grpcio) is not installed")
    import pyspark

    jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
    if not any(j.startswith("spark-connect_") for j in os.listdir(jars)):
        pytest.skip(f"PySpark {pyspark.__version__} ships no Spark Connect server")
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    env.pop("SPARK_REMOTE", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "session pyspark.sql.connect.session" in lines, out.stdout
    want = ("refused: sparkps needs a classic Spark session (barrier execution and the "
            "SparkContext), and this is a Spark Connect session")
    for name in ("fit", "fitAsync", "fitFiles", "train_dataframe", "PSCluster.local"):
        assert any(l.startswith(f"{name} {want}") for l in lines), out.stdout
