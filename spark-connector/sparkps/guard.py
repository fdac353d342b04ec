"""ServerGuard: fails a training stage fast when one of its servers dies.

A ps-server started by ``PSCluster.local`` holds its shard of the weights
in memory; once it is gone the job cannot finish, but each worker would
only notice through its own request timeouts and retries (tens of seconds
to minutes). The guard watches those server processes from the driver
(``PSCluster.check_alive``, no network) every ``interval`` seconds while
the stage runs; when one has exited it keeps the ClusterError naming the
shard, its endpoint and stderr, and calls ``on_lost`` (the stage's Spark
jobs are cancelled by tag) until the guard stops, so a job submitted just
after the loss is cancelled too. The caller raises :attr:`error` in place
of Spark's "job cancelled" exception.

A standalone cluster (``PSCluster.connect``) is not watched: its servers
may be restarted by their supervisor and the workers reconnect, so only
the workers' timeouts decide there.

Threading: one daemon thread per guard; ``on_lost`` runs on it.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

from .cluster import ClusterError, PSCluster


class ServerGuard:
    """Context manager watching ``cluster``'s own server processes."""

    def __init__(self, cluster: PSCluster, on_lost: Callable[[], None],
                 interval: float = 0.5):
        self.cluster, self.on_lost, self.interval = cluster, on_lost, interval
        self.error: Optional[ClusterError] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def check(self) -> None:
        """One check now; raises the ClusterError if a server is gone."""
        self.cluster.check_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.error is None:
                try:
                    self.check()
                    continue
                except ClusterError as e:
                    self.error = e
            try:
                self.on_lost()
            except Exception:  # Spark stopping under us: the stage fails anyway
                pass

    def __enter__(self) -> "ServerGuard":
        if self.cluster.owned:
            self.check()
            self._thread = threading.Thread(target=self._run, name="sparkps-guard",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
