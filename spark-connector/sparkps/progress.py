"""Live training progress in the driver, read from the servers.

A :class:`ProgressReporter` polls ``ps-ctl status --json`` once per
``interval`` in a background thread while a Spark stage trains, and keeps
one line on stderr up to date: per worker its samples, loss and samples/s
(from the change in samples between polls), and the totals. On a terminal
the line is rewritten in place; otherwise a line is printed every
``log_every`` seconds. The servers know every worker's progress because
workers attach it to their pushes, so the driver sees it while the stage
runs, not at its end.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Dict, List, Optional, TextIO

from .cluster import ClusterError, PSCluster


class ProgressReporter:
    """Context manager; ``snapshots`` keeps every poll's per-worker dict
    (``{worker_id: {"samples", "loss", "epoch", "samples_per_s"}}``)."""

    def __init__(self, cluster: PSCluster, num_workers: int, epochs: int,
                 interval: float = 1.0, stream: Optional[TextIO] = None,
                 log_every: float = 5.0, enabled: bool = True):
        self.cluster, self.num_workers, self.epochs = cluster, num_workers, epochs
        self.interval, self.log_every = interval, log_every
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.snapshots: List[Dict[int, Dict]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._last: Dict[int, tuple] = {}  # worker -> (time, samples)
        self._printed = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._wrote = False

    def poll(self) -> Dict[int, Dict]:
        """One status read; returns the per-worker progress."""
        st = self.cluster.status(timeout=2.0)
        now = time.monotonic()
        workers: Dict[int, Dict] = {}
        for w in st["shards"][0].get("workers", []):
            wid = int(w["id"])
            if wid >= self.num_workers or "samples" not in w:
                continue
            samples = float(w["samples"])
            t0, s0 = self._last.get(wid, (None, None))
            rate = (samples - s0) / (now - t0) if t0 is not None and now > t0 else 0.0
            self._last[wid] = (now, samples)
            workers[wid] = {"samples": samples, "loss": w.get("loss"),
                            "epoch": w.get("epoch", 0), "samples_per_s": max(rate, 0.0),
                            "alive": w.get("alive", True)}
        self.snapshots.append(workers)
        return workers

    def line(self, workers: Dict[int, Dict]) -> str:
        if not workers:
            return "sparkps: waiting for workers to report"
        parts = []
        for wid in sorted(workers):
            w = workers[wid]
            loss = w["loss"]
            parts.append(f"w{wid} {w['samples']:.0f} ({w['samples_per_s']:.0f}/s, loss "
                         f"{loss:.4f})" if isinstance(loss, (int, float)) else
                         f"w{wid} {w['samples']:.0f}")
        total = sum(w["samples"] for w in workers.values())
        rate = sum(w["samples_per_s"] for w in workers.values())
        epoch = max(int(w["epoch"]) for w in workers.values())
        return (f"sparkps: epoch {epoch}/{self.epochs}  {total:.0f} samples  "
                f"{rate:.0f} samples/s  |  " + "  ".join(parts))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                text = self.line(self.poll())
            except (ClusterError, ValueError, KeyError):
                continue  # a missed poll is not an error; the stage reports failures
            now = time.monotonic()
            if self._tty:
                self.stream.write("\r" + text + "\033[K")
                self.stream.flush()
                self._wrote = True
            elif now - self._printed >= self.log_every:
                self.stream.write(text + "\n")
                self.stream.flush()
                self._printed = now

    def __enter__(self) -> "ProgressReporter":
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="sparkps-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)
        if self._wrote:
            self.stream.write("\n")
            self.stream.flush()
