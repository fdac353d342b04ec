"""PSFitHandle: a fit running in the background, with snapshots.

``PSClassifier.fitAsync(df)`` starts the servers and returns at once with
a handle; the fit (the Spark stages, then the final export) runs on one
thread of the driver. While it runs, :meth:`PSFitHandle.snapshot` exports
the job's tables from the live servers (``ps-ctl export``, the path the
final model takes) and wraps them in a Model usable with ``transform``;
:meth:`result` waits for the final model, :meth:`cancel` stops the fit.

A snapshot is point-in-time per tensor, not across tensors: export reads
the tables one after another while the workers keep pushing, so two
layers may be a few steps apart, which is what any worker's own pull of
the same weights sees under asynchronous training.

Cancelling: every Spark job the fit thread starts carries the tag
``sparkps-fit-<job>``; :meth:`cancel` cancels that tag until the thread
ends (a job submitted just after the call is cancelled too). The barrier
tasks are killed, their ps-workers die with them, and the servers started
for the fit are stopped.

Threading: the handle's methods may be called from any thread; ``_lock``
serialises a snapshot's export with the servers' stop at the end of the
fit, so a snapshot never reads from servers that are going away.
"""
from __future__ import annotations

import threading
from typing import Callable, Dict, List, Optional

from .cluster import ClusterError, PSCluster


class FitCancelled(RuntimeError):
    """The fit was cancelled by :meth:`PSFitHandle.cancel`."""


def fit_tag(job: str) -> str:
    """The Spark job tag of every job a background fit starts."""
    return f"sparkps-fit-{job}"


class PSFitHandle:
    """A running fit (``PSClassifier.fitAsync``). Like a
    ``concurrent.futures.Future``: ``done()``, ``result(timeout)``,
    ``cancel()``; plus ``snapshot()`` and ``progress()`` while it runs.
    As a context manager, leaving the block cancels a fit still running
    and waits for it to end."""

    def __init__(self, spark, cluster: PSCluster, job: str, run: Callable[[], List],
                 make_model: Callable[[bytes, List], object]):
        from pyspark import InheritableThread

        self.job = job
        self._sc = spark.sparkContext
        self._cluster = cluster
        self._run = run
        self._make_model = make_model
        self._lock = threading.Lock()  # guards _stopped and the cluster's use vs its stop
        self._stopped = False
        self._done = threading.Event()
        self._cancelled = False
        self._model = None
        self._error: Optional[BaseException] = None
        self._thread = InheritableThread(target=self._main, name=f"sparkps-fit-{job}",
                                         daemon=True)
        self._thread.start()

    @property
    def servers(self) -> str:
        """The endpoints of the servers the fit trains against."""
        return self._cluster.servers

    def _main(self) -> None:
        tag = fit_tag(self.job)
        try:
            self._sc.addJobTag(tag)  # thread-local: every job of this fit carries it
            rows = self._run()
            if self._cancelled:
                raise FitCancelled(f"the fit of job {self.job} was cancelled")
            with self._lock:
                data = self._cluster.export(self.job)
            self._model = self._make_model(data, rows)
        except BaseException as e:  # handed to result()
            if self._cancelled and not isinstance(e, FitCancelled):
                err = FitCancelled(f"the fit of job {self.job} was cancelled")
                err.__cause__ = e
                e = err
            self._error = e
        finally:
            try:
                self._sc.removeJobTag(tag)
            except Exception:  # the SparkContext is gone
                pass
            with self._lock:
                self._stopped = True
                if self._cluster.owned:
                    self._cluster.stop()
            self._done.set()

    def done(self) -> bool:
        """True once the fit has ended (model, error or cancelled)."""
        return self._done.is_set()

    def result(self, timeout: Optional[float] = None):
        """The final model, once the fit ends (at most ``timeout`` seconds:
        TimeoutError). Raises what the fit raised (FitCancelled after
        :meth:`cancel`)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the fit of job {self.job} is still running after "
                               f"{timeout:g} s")
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._model

    def snapshot(self, timeout: float = 60.0):
        """A Model of the weights on the servers now (``ps-ctl export`` of
        the live job), usable with ``transform``; its ``summary`` is empty.
        Once the fit has ended, the final model. Raises ClusterError before
        the workers have defined the model's tables, and when the export
        fails (servers gone)."""
        with self._lock:
            if not self._stopped:
                try:
                    data = self._cluster.export(self.job, timeout)
                except ClusterError as e:
                    if "has no tables" in str(e):
                        raise ClusterError(
                            f"no snapshot of job {self.job} yet: its workers have not defined "
                            "the model's tables on the servers (the fit is starting); try again "
                            "once progress() shows samples") from e
                    raise
                return self._make_model(data, [])
        return self.result()

    def progress(self) -> Dict[int, Dict]:
        """Every worker's progress as the servers know it now:
        ``{worker_id: {"samples", "epoch", "loss", "accuracy", "alive"}}``
        (training loss/accuracy as the workers report them with their
        pushes); empty before the workers report and after the fit."""
        with self._lock:
            if self._stopped:
                return {}
            st = self._cluster.status(timeout=2.0)
        out: Dict[int, Dict] = {}
        for w in st["shards"][0].get("workers", []):
            if "samples" in w:
                out[int(w["id"])] = {k: w.get(k) for k in
                                     ("samples", "epoch", "loss", "accuracy", "alive")}
        return out

    def cancel(self) -> bool:
        """Cancels the fit; False if it had already ended. The Spark jobs of
        the fit are cancelled (now, and any the fit thread submits before it
        notices), so :meth:`result` raises FitCancelled soon after."""
        if self._done.is_set():
            return False
        self._cancelled = True
        threading.Thread(target=self._keep_cancelling, name=f"sparkps-cancel-{self.job}",
                         daemon=True).start()
        return True

    def _keep_cancelling(self) -> None:
        tag = fit_tag(self.job)
        while not self._done.is_set():
            try:
                self._sc.cancelJobsWithTag(tag)
            except Exception:  # the SparkContext is gone: the fit fails anyway
                return
            self._done.wait(0.5)

    def __enter__(self) -> "PSFitHandle":
        return self

    def __exit__(self, *exc) -> None:
        if not self._done.is_set():
            self.cancel()
        self._done.wait()

    def __repr__(self) -> str:
        if not self.done():
            state = "cancelling" if self._cancelled else "running"
        elif isinstance(self._error, FitCancelled):
            state = "cancelled"
        else:
            state = "failed" if self._error is not None else "finished"
        return f"PSFitHandle(job={self.job!r}, {state}, servers={self.servers!r})"
