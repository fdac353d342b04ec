"""Worker attempts through the connector: a task's ps-worker joins with
its task attempt id, the servers record it, and a worker of an older
attempt is refused (exit status 3) once a newer one has joined. The task
context is a stand-in here, so any attempt can be tried; the Spark tests
(test_files) run the same code with real barrier task contexts."""
import pytest

from sparkps import PSCluster
from sparkps.train import WorkerError, run_task_worker, task_attempt, worker_args, worker_argv

from conftest import FakeTaskContext, blobs


def test_attempt_is_the_task_attempt_id_not_the_attempt_number():
    # A retried barrier stage: its tasks start over at attempt number 0, with
    # task attempt ids beyond the first stage attempt's.
    ctx = FakeTaskContext(partition=1, task_attempt_id=57, attempt_number=0)
    assert task_attempt(ctx) == 57
    argv = worker_argv(ctx, "tcp://h:1", "j", ["--data", "x"], ["--epochs", "1"], "cpu")
    assert argv[argv.index("--worker-id") + 1] == "1"
    assert argv[argv.index("--attempt") + 1] == "57"
    assert task_attempt(FakeTaskContext(0, 2**40)) == 2**31 - 1


def test_attempt_reaches_the_servers_and_an_older_one_is_refused(tmp_path):
    x, y = blobs(300, seed=3)
    path = tmp_path / "blobs.csv"
    path.write_text("".join(",".join(f"{v:.4f}" for v in row) + f",{int(lab)}\n"
                            for row, lab in zip(x, y)))
    data = ["--format", "csv", "--data", str(path)]
    args = worker_args("mlp:4-8-3", epochs=1, batch_size=32, optimizer=None, lr=None)
    # The worker of attempt 2 owns worker id 0 until it has been silent for
    # the worker timeout (then the id is free for any attempt): long here.
    with PSCluster.local(num_servers=2, extra_args=["--worker-timeout", "600000"]) as ps:
        row = run_task_worker(FakeTaskContext(0, 2), ps.servers, "attempts", data, args,
                              "cpu", "ps-worker 0 (attempt 2)")
        assert row.column("status")[0].as_py() == 0
        for shard in ps.status()["shards"]:
            (w,) = shard["workers"]
            assert (w["id"], w["attempt"]) == (0, 2)
        # A task of an earlier attempt that is still around.
        with pytest.raises(WorkerError, match="(?s)exited with status 3.*a newer attempt 2 of "
                                              "worker 0 has joined; this attempt 1 stops"):
            run_task_worker(FakeTaskContext(0, 1), ps.servers, "attempts", data, args,
                            "cpu", "ps-worker 0 (attempt 1)")
        w = ps.status()["shards"][0]["workers"][0]
        assert w["attempt"] == 2 and w["superseded"] >= 1
