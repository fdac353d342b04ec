"""WorkerProcess, the child process a task feeds (no Spark needed)."""
import fcntl
import sys

import pytest

from sparkps.train import PIPE_BYTES, WorkerError, WorkerProcess, task_device


def max_pipe():
    try:
        return int(open("/proc/sys/fs/pipe-max-size").read())
    except OSError:
        return 0


@pytest.mark.skipif(not sys.platform.startswith("linux") or max_pipe() < PIPE_BYTES,
                    reason="needs Linux pipes that grow to 1 MiB")
def test_stdin_pipe_holds_a_megabyte():
    w = WorkerProcess(["cat"], "cat", stdout_lines=False)
    try:
        assert fcntl.fcntl(w.proc.stdin.fileno(), 1032) == PIPE_BYTES  # F_GETPIPE_SZ
    finally:
        w.close()


def test_events_are_stamped_and_failures_carry_stderr():
    w = WorkerProcess([sys.executable, "-c",
                       "import sys; print('{\"event\": \"epoch\", \"epoch\": 1}'); "
                       "sys.stdout.flush(); sys.stderr.write('bad things\\n'); sys.exit(3)"],
                      "fake worker")
    try:
        with pytest.raises(WorkerError, match="fake worker on .* exited with status 3; its "
                                              "stderr ends with:\nbad things"):
            w.finish(timeout=30)
        assert w.lines[0]["epoch"] == 1 and w.lines[0]["time"] > 0
    finally:
        w.close()


class _Gpu:
    def __init__(self, addresses):
        self.addresses = addresses


def test_task_device_maps_spark_gpus_to_visible_devices():
    env = {}
    assert task_device({}, env) == "cpu" and "CUDA_VISIBLE_DEVICES" not in env
    assert task_device({"gpu": _Gpu(["3"])}, env) == "cuda:0"
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
    # Several GPUs for one task: one worker with a device group over them.
    assert task_device({"gpu": _Gpu(["1", "5"])}, env) == "cuda:0,cuda:1"
    assert env["CUDA_VISIBLE_DEVICES"] == "1,5"
    env = {}
    assert task_device({"gpu": _Gpu(["2"])}, env, "cpu:4") == "cpu:4" and not env
