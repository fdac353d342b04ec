"""sparkps: the Spark connector of the sparkps parameter server.

``PSCluster`` starts ``ps-server`` shards on the driver (or connects to a
standalone cluster); :func:`sparkps.train_dataframe` trains from a
DataFrame with one ``ps-worker`` per Spark barrier task, and
:func:`sparkps.train_files` from files every executor can read (each task
only runs ``ps-worker --data PATH --part i/N``); ``sparkps.ml`` has
the Spark ML Estimator/Model pair ``PSClassifier``/``PSClassificationModel``.

The C programs (``ps-server``, ``ps-worker``, ``ps-ctl``, ``ps-keygen``) are
built by ``pip install`` and live inside the package, in :func:`bin_path`.
CurveZMQ keys: :mod:`sparkps.curve`.
"""
from __future__ import annotations

import os
import shutil
import socket

__version__ = "0.1.0"

_PROGRAMS = ("ps-server", "ps-worker", "ps-ctl", "ps-keygen")

SHIP_HINT = (
    "Install sparkps where the executors run, the way PySpark dependencies "
    "are shipped: pack the environment that has it (venv-pack -o env.tar.gz, "
    "or conda-pack) and pass it with spark-submit --archives "
    "env.tar.gz#env --conf spark.pyspark.python=./env/bin/python; or use the "
    "project's Docker image (deploy/docker/); or install the programs on "
    "every host and point the executors at them with --conf "
    "spark.executorEnv.SPARKPS_BIN_DIR=DIR."
)


def bin_path() -> str:
    """The directory holding this installation's ``ps-server``,
    ``ps-worker`` and ``ps-ctl`` (``sparkps/bin`` inside the package).

    It may not exist when the package was copied without its binaries; use
    :func:`find_binary` to locate a program with fallbacks and a clear
    error.
    """
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")


def find_binary(name: str) -> str:
    """Path of the program ``name`` (``ps-server``, ``ps-worker``,
    ``ps-ctl`` or ``ps-keygen``). When ``$SPARKPS_BIN_DIR`` is set, only that directory:
    a setting that points at the wrong place is an error, never quietly
    replaced by another copy. Otherwise :func:`bin_path`, then ``PATH``.

    Raises FileNotFoundError naming the program, the host and where it
    looked, and saying how to ship the binaries.
    """
    if name not in _PROGRAMS:
        raise ValueError(f"unknown sparkps program {name!r}")
    pinned = os.environ.get("SPARKPS_BIN_DIR")
    if pinned:
        cand = os.path.join(pinned, name)
        if os.access(cand, os.X_OK):
            return cand
        looked = f"SPARKPS_BIN_DIR={pinned}"
    else:
        cand = os.path.join(bin_path(), name)
        if os.access(cand, os.X_OK):
            return cand
        found = shutil.which(name)
        if found:
            return found
        looked = f"{bin_path()}, PATH"
    raise FileNotFoundError(
        f"{name} not found on host {socket.gethostname()} (looked in "
        f"{looked}). {SHIP_HINT}"
    )


from .cluster import PSCluster  # noqa: E402  (needs find_binary above)
from .curve import CurveKeys  # noqa: E402

_LAZY = {"train_dataframe", "train_files"}  # sparkps.train imports pyarrow


def __getattr__(name: str):
    if name in _LAZY:
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module 'sparkps' has no attribute {name!r}")


__all__ = ["CurveKeys", "PSCluster", "bin_path", "find_binary", "train_dataframe", "train_files",
           "__version__"]
