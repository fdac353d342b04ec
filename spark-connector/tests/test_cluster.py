"""PSCluster: local servers on free ports, stopped on every exit path;
connect() checks reachability and the consistency model."""
import pytest

import sparkps
from sparkps import PSCluster
from sparkps.cluster import ClusterError

from conftest import sparkps_pids


def test_bin_path_holds_the_programs():
    for p in ("ps-server", "ps-worker", "ps-ctl", "ps-keygen"):
        assert sparkps.find_binary(p).startswith(sparkps.bin_path())


def test_missing_binary_says_how_to_ship(monkeypatch, tmp_path):
    monkeypatch.setattr(sparkps, "bin_path", lambda: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ps-worker not found on host.*--archives"):
        sparkps.find_binary("ps-worker")


def test_local_cluster_starts_and_stops():
    with PSCluster.local(num_servers=2, consistency="ssp:2") as ps:
        assert len(ps.endpoints) == 2
        assert all(e.startswith("tcp://127.0.0.1:") for e in ps.endpoints)
        st = ps.status()
        assert [s["shard"] for s in st["shards"]] == [0, 1]
        assert len(sparkps_pids()) == 2
        # a standalone view of the same servers checks the model they run
        same = PSCluster.connect(ps.servers, consistency="ssp:2")
        assert same.consistency == "ssp:2" and not same.owned
        with pytest.raises(ClusterError, match="run consistency ssp:2.*asks for bsp"):
            PSCluster.connect(ps.servers, consistency="bsp")
    assert sparkps_pids() == []


def test_error_inside_the_block_stops_the_servers():
    with pytest.raises(KeyboardInterrupt):
        with PSCluster.local(num_servers=1):
            raise KeyboardInterrupt
    assert sparkps_pids() == []


def test_unreachable_servers_fail_clearly():
    with pytest.raises(ClusterError, match="servers unreachable"):
        PSCluster.connect("tcp://127.0.0.1:1", timeout=0.5)


def test_bad_consistency_is_refused_before_starting():
    with pytest.raises(ValueError, match="expected asp, ssp:S"):
        PSCluster.local(num_servers=1, consistency="eventual")
