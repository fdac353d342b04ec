"""CurveZMQ keys for the connector's clients (``ps-ctl`` on the driver,
``ps-worker`` on the executors).

Keys always travel as files and reach the programs through environment
variables naming those files (``SPARKPS_CURVE_SECRET_KEY``,
``SPARKPS_CURVE_SERVER_KEY``), never on a command line, where any user of
the host could read them (``/proc/PID/cmdline``). On an executor the
secret key is first copied into a private file (mode 0600) of the task,
which is removed when the task's worker ends, so a shipped or mounted copy
readable by others is never handed to ``ps-worker`` (which would refuse
it).

How executors get the keys (:attr:`CurveKeys.executors`):

``"ship"``
    the driver's files are shipped with the job (``SparkContext.addFile``,
    read back with ``SparkFiles.get``); with Spark's RPC unencrypted the
    key crosses the network in the clear, so set ``spark.authenticate``
    and ``spark.network.crypto.enabled`` or use a mounted Secret;
``"env"``
    every executor already has the two variables, naming files there (the
    Kubernetes executor pod template of ``deploy/k8s/`` mounts the Secret
    ``ps-curve-client`` and sets them);
a directory path
    ``client.key`` and ``server.pub`` exist at that path on every executor
    (a mounted Kubernetes Secret, a shared file system).
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from . import find_binary

ENV_SECRET = "SPARKPS_CURVE_SECRET_KEY"
ENV_SERVER = "SPARKPS_CURVE_SERVER_KEY"
CLIENT_KEY = "client.key"
SERVER_PUB = "server.pub"


@dataclass(frozen=True)
class CurveKeys:
    """A client's CurveZMQ key files on the driver, and how the executors
    get theirs (see the module's doc)."""

    secret_key: str  #: this client's secret key (ps-keygen's NAME.key)
    server_key: str  #: the servers' public key (their NAME.pub)
    executors: str = "ship"

    @classmethod
    def from_dir(cls, directory: str, executors: str = "ship") -> "CurveKeys":
        """``client.key`` and ``server.pub`` of ``directory``; ValueError
        naming what is missing."""
        keys = cls(os.path.join(directory, CLIENT_KEY), os.path.join(directory, SERVER_PUB),
                   executors)
        for f in (keys.secret_key, keys.server_key):
            if not os.path.isfile(f):
                raise ValueError(f"CurveZMQ key directory {directory}: {os.path.basename(f)} "
                                 f"missing (it needs {CLIENT_KEY}, this client's secret key, "
                                 f"and {SERVER_PUB}, the servers' public key; see ps-keygen)")
        return keys

    @classmethod
    def from_env(cls) -> Optional["CurveKeys"]:
        """The keys named by this process's environment, used on the
        executors the same way (``executors="env"``); None when unset."""
        sec, srv = os.environ.get(ENV_SECRET), os.environ.get(ENV_SERVER)
        if not sec and not srv:
            return None
        if not sec or not srv:
            raise ValueError(f"CurveZMQ needs both {ENV_SECRET} and {ENV_SERVER} (file names); "
                             f"only {ENV_SECRET if sec else ENV_SERVER} is set")
        return cls(sec, srv, "env")

    def env(self) -> Dict[str, str]:
        """The variables for a client on the driver, the secret key as a
        private copy (see :func:`private_copy`)."""
        return {ENV_SECRET: private_copy(self.secret_key), ENV_SERVER: self.server_key}


def generate(directory: str) -> Tuple[str, str, str, str]:
    """A throwaway set in ``directory`` (which should be private): a server
    pair and a client pair, by ``ps-keygen``. Returns (server.key,
    server.pub, client.key, client.pub)."""
    keygen = find_binary("ps-keygen")
    for name in ("server", "client"):
        r = subprocess.run([keygen, "--out", os.path.join(directory, name)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ps-keygen failed: {r.stderr.strip()}")
    return tuple(os.path.join(directory, f)  # type: ignore[return-value]
                 for f in ("server.key", "server.pub", CLIENT_KEY, "client.pub"))


# ---- private copies of secret keys ----

_copies: Dict[str, str] = {}
_copies_lock = threading.Lock()  # guards _copies
_copy_dir: Optional[str] = None


def _remove_copies() -> None:
    if _copy_dir:
        shutil.rmtree(_copy_dir, ignore_errors=True)


def private_copy(path: str) -> str:
    """A copy of the secret key ``path`` that only this user can read
    (made once per process, removed at exit): a key file mounted or shipped
    with looser permissions is accepted by the C programs then."""
    global _copy_dir
    with _copies_lock:
        if path in _copies and os.path.exists(_copies[path]):
            return _copies[path]
        if _copy_dir is None:
            _copy_dir = tempfile.mkdtemp(prefix="sparkps-keys-")  # 0700
            atexit.register(_remove_copies)
        dst = os.path.join(_copy_dir, f"{uuid.uuid4().hex}.key")
        _write_private(path, dst)
        _copies[path] = dst
        return dst


def _write_private(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        data = f.read()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


# ---- executors ----

_shipped: Dict[Tuple[int, str], Dict] = {}
_shipped_lock = threading.Lock()  # guards _shipped


def executor_spec(keys: Optional[CurveKeys], sc) -> Optional[Dict]:
    """What a task needs to find its keys (small, picklable, no key
    material): None in plaintext. With ``executors="ship"`` the files are
    added to ``sc`` once, under unique names."""
    if keys is None:
        return None
    if keys.executors == "env":
        return {"env": True}
    if keys.executors != "ship":
        return {"dir": keys.executors}
    with _shipped_lock:
        spec = _shipped.get((id(sc), keys.secret_key))
        if spec is None:
            stage = tempfile.mkdtemp(prefix="sparkps-ship-")  # 0700
            names = []
            for src, suffix in ((keys.secret_key, CLIENT_KEY), (keys.server_key, SERVER_PUB)):
                name = f"sparkps-{uuid.uuid4().hex[:12]}-{suffix}"
                _write_private(src, os.path.join(stage, name))
                sc.addFile(os.path.join(stage, name))
                names.append(name)
            spec = {"files": names}
            _shipped[(id(sc), keys.secret_key)] = spec
            atexit.register(shutil.rmtree, stage, True)
        return spec


def task_env(spec: Optional[Dict], env: Dict[str, str]) -> Callable[[], None]:
    """On an executor: sets the two variables in ``env`` (the worker's
    environment) from ``spec``, the secret key as a private copy of the
    task; returns the function that removes that copy."""
    if spec is None:
        return lambda: None
    if spec.get("env"):
        sec, srv = env.get(ENV_SECRET), env.get(ENV_SERVER)
        if not sec or not srv:
            raise RuntimeError(f"this executor has no CurveZMQ keys: {ENV_SECRET} and "
                               f"{ENV_SERVER} must name its key files")
    elif "dir" in spec:
        sec, srv = (os.path.join(spec["dir"], CLIENT_KEY), os.path.join(spec["dir"], SERVER_PUB))
    else:
        from pyspark import SparkFiles

        sec, srv = (SparkFiles.get(n) for n in spec["files"])
    fd, copy = tempfile.mkstemp(prefix="sparkps-task-", suffix=".key")  # 0600
    with os.fdopen(fd, "wb") as out, open(sec, "rb") as f:
        out.write(f.read())
    env[ENV_SECRET] = copy
    env[ENV_SERVER] = srv

    def remove() -> None:
        try:
            os.unlink(copy)
        except OSError:
            pass

    return remove
