"""CurveZMQ through the connector: a fit on servers started with a
throwaway key set (the keys shipped to the executors with the job), the
refusal of a client without keys, a standalone view with the keys, and no
key material on any command line (the servers' /proc/PID/cmdline and the
argv built for each ps-worker)."""
import os
import stat

import pytest

from sparkps import PSCluster
from sparkps.cluster import ClusterError
from sparkps.curve import ENV_SECRET, ENV_SERVER, CurveKeys, generate
from sparkps.curve import task_env
from sparkps.train import train_dataframe, worker_argv

from conftest import FakeTaskContext, array_df, blobs


def _key(path):
    """The key line of a ps-keygen file."""
    return [ln for ln in open(path).read().splitlines() if not ln.startswith("#")][0]


@pytest.fixture(autouse=True)
def no_key_env(monkeypatch):
    monkeypatch.delenv(ENV_SECRET, raising=False)
    monkeypatch.delenv(ENV_SERVER, raising=False)


def test_fit_on_a_curve_cluster(spark):
    x, y = blobs(1200, seed=3)
    df = array_df(spark, x, y)
    with PSCluster.local(num_servers=2, curve=True) as ps:
        assert ps.curve is not None and "CurveZMQ" in repr(ps)
        secrets = [_key(os.path.join(ps._logdir, f)) for f in ("server.key", "client.key")]
        for p in ps._procs:  # key files by name only, never their content
            with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                cmdline = f.read().decode()
            assert "--curve-secret-key" in cmdline
            assert not any(s in cmdline for s in secrets)
        rows = train_dataframe(df, ps, "mlp:4-16-3", epochs=3, batch_size=32, lr=0.05,
                               num_workers=2, progress=False, job="curve")
        assert [r.worker for r in rows] == [0, 1]
        assert all(r.status == 0 and r.rows > 0 for r in rows)
        assert rows[0].accuracy > 0.6  # it learnt (chance: 1/3)
        st = ps.status()
        for shard in st["shards"]:
            sec = shard["security"]
            assert sec["curve"] and not sec["insecure"] and sec["allowed_keys"] == 1
            assert sec["refused_unknown_key"] == 0 and sec["refused_handshake"] == 0
            assert {w["id"] for w in shard["workers"]} == {0, 1}
        # the same servers seen by a client with the keys, and without them
        same = PSCluster.connect(ps.servers, curve=ps.curve)
        assert same.status()["shards"][0]["security"]["curve"]
        with pytest.raises(ClusterError, match="EAUTH.*require"):
            PSCluster.connect(ps.servers)
        assert ps.status()["shards"][0]["security"]["refused_handshake"] >= 1
        assert len(ps.export("curve")) > 0


def test_worker_argv_has_no_key_material(tmp_path):
    os.chmod(tmp_path, 0o700)
    skey, spub, ckey, cpub = generate(str(tmp_path))
    # a shipped or mounted copy readable by others is fine: the task copies it
    os.chmod(ckey, 0o644)
    env = {}
    argv = worker_argv(FakeTaskContext(0, 7), "tcp://h:1", "j",
                       ["--format", "stream", "--data", "-"], ["--epochs", "1"], "cpu")
    remove = task_env({"dir": str(tmp_path)}, env)
    line = " ".join(argv)
    for f in (skey, spub, ckey, cpub):
        assert _key(f) not in line
    assert ".key" not in line and ".pub" not in line and "curve" not in line
    copy = env[ENV_SECRET]
    assert env[ENV_SERVER] == spub
    assert open(copy).read() == open(ckey).read()
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    remove()
    assert not os.path.exists(copy)
    # plaintext: nothing added
    env = {}
    remove = task_env(None, env)
    assert env == {}
    remove()


def test_keys_from_dir_and_env_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="client.key missing"):
        CurveKeys.from_dir(str(tmp_path))
    monkeypatch.setenv(ENV_SECRET, "/x/client.key")
    with pytest.raises(ValueError, match="needs both"):
        CurveKeys.from_env()
    monkeypatch.setenv(ENV_SERVER, "/x/server.pub")
    assert CurveKeys.from_env() == CurveKeys("/x/client.key", "/x/server.pub", "env")


def test_plaintext_on_a_non_loopback_host_is_refused():
    with pytest.raises(ValueError, match="not loopback.*curve=True.*insecure=True"):
        PSCluster.local(num_servers=1, host="10.0.0.1", curve=False)
