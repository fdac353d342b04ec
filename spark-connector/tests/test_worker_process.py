"""WorkerProcess, the child process a task feeds (no Spark needed)."""
import fcntl
import sys

import pytest

from sparkps.train import PIPE_BYTES, WorkerError, WorkerProcess


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
