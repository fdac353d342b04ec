"""PSCluster: the ps-server shards a training job talks to.

``PSCluster.local`` starts the shards as child processes of the driver, on
free ports of an address the executors can reach, and always stops them:
on ``stop()``, at the end of a ``with`` block (error and Ctrl-C included),
at interpreter exit, and, through ``PR_SET_PDEATHSIG``, when the driver
process dies without cleaning up. ``PSCluster.connect`` wraps a standalone
cluster, which it never stops.

Thread safety: ``status``/``export`` may be called from any thread (each
runs its own ``ps-ctl`` process); ``stop`` is idempotent.
"""
from __future__ import annotations

import atexit
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Union

from . import find_binary
from .curve import CurveKeys, executor_spec, generate

CONSISTENCY_HELP = "asp, ssp:S (bounded staleness S) or bsp"


class ClusterError(RuntimeError):
    """Servers that cannot be started, reached or used."""


def _die_with_parent(sig: int = signal.SIGTERM) -> None:
    """preexec_fn: the child gets ``sig`` when the thread that started it
    exits, so no server outlives a killed driver and no worker a killed
    Spark task (Linux only; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(sig))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill_with_parent() -> None:
    """preexec_fn for workers: SIGKILL when the task process dies. A worker
    whose task is gone has nobody feeding or waiting for it, and its
    servers may be gone too (SIGTERM would make it retry them first)."""
    _die_with_parent(signal.SIGKILL)


def tail(path: str, limit: int = 4000) -> str:
    """The last ``limit`` bytes of a log file, decoded ('' if unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def normalize_consistency(c: str) -> str:
    """'ASP' -> 'asp', 'ssp:3' stays; anything else is a ValueError."""
    s = c.strip().lower()
    if s in ("asp", "bsp"):
        return s
    if s.startswith("ssp:") and s[4:].isdigit():
        return s
    raise ValueError(f"consistency {c!r}: expected {CONSISTENCY_HELP}")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: where ps-server allows plaintext."""
    return host.startswith("127.") or host in ("::1", "[::1]", "localhost")


def check_classic(session_or_df) -> None:
    """RuntimeError when a SparkSession or DataFrame is Spark Connect's: the
    connector runs barrier stages and reads the SparkContext (task slots,
    stage progress, broadcasts, the driver's address), which only a classic
    session has. Read from the object's class, so Connect's client (grpc)
    is never imported."""
    if type(session_or_df).__module__.startswith("pyspark.sql.connect"):
        raise RuntimeError(
            "sparkps needs a classic Spark session (barrier execution and the "
            "SparkContext), and this is a Spark Connect session (.remote(...), "
            "SPARK_REMOTE or spark.api.mode=connect): create it with "
            "SparkSession.builder.master(...) and spark.api.mode=classic")


def reachable_host(spark=None) -> str:
    """The address servers bind to: 127.0.0.1 under a local master,
    otherwise ``spark.driver.host`` (resolved to an IP address), which the
    executors already use to reach the driver."""
    if spark is None:
        try:
            from pyspark.sql import SparkSession

            spark = SparkSession.getActiveSession()
        except ImportError:
            spark = None
    if spark is None:
        return "127.0.0.1"
    check_classic(spark)
    conf = spark.sparkContext.getConf()
    if (conf.get("spark.master") or "local").startswith("local"):
        return "127.0.0.1"
    host = conf.get("spark.driver.host") or socket.gethostname()
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


class PSCluster:
    """A set of ps-server shards, in shard order.

    Use :meth:`local` or :meth:`connect`; both work as context managers::

        with PSCluster.local(num_servers=2) as ps:
            ...  # ps.servers is "tcp://h:p0,tcp://h:p1"
    """

    def __init__(self, endpoints: Sequence[str], consistency: Optional[str] = None,
                 _procs: Optional[List[subprocess.Popen]] = None,
                 _logs: Optional[List[str]] = None, _logdir: Optional[str] = None,
                 curve: Optional[CurveKeys] = None):
        self.endpoints: List[str] = list(endpoints)
        self.consistency = consistency
        #: the client keys (None: plaintext); see :mod:`sparkps.curve`
        self.curve = curve
        self._procs = _procs if _procs is not None else []
        self._logs = _logs if _logs is not None else []
        self._logdir = _logdir
        self._lock = threading.Lock()  # guards _procs during stop
        self._owned = _procs is not None
        if self._owned:
            atexit.register(self.stop)

    # ---- construction ----

    @classmethod
    def local(cls, num_servers: int = 2, consistency: str = "asp", host: Optional[str] = None,
              spark=None, timeout: float = 30.0,
              extra_args: Sequence[str] = (), curve: Optional[bool] = None,
              insecure: bool = False) -> "PSCluster":
        """Starts ``num_servers`` shards on this host, each on a free port
        of ``host`` (default: :func:`reachable_host`), under the given
        consistency model. Waits at most ``timeout`` seconds for each
        shard's endpoint line; a shard that fails to start stops the others
        and raises ClusterError with its stderr tail.

        ``curve``: CurveZMQ with a throwaway key set made for these servers
        (in their private temporary directory, removed by :meth:`stop`);
        the client keys reach the executors with the job. None (default):
        on when ``host`` is not a loopback address, where ps-server refuses
        plaintext. ``curve=False`` on such a host needs ``insecure=True``
        (plaintext on a trusted network: ``--insecure``)."""
        if num_servers < 1:
            raise ValueError("num_servers must be at least 1")
        consistency = normalize_consistency(consistency)
        server = find_binary("ps-server")
        host = host or reachable_host(spark)
        if curve is None:
            curve = not is_loopback(host)
        if not curve and not is_loopback(host) and not insecure:
            raise ValueError(f"servers on {host} (not loopback) in plaintext: pass curve=True "
                             f"(CurveZMQ), or insecure=True on a trusted network")
        logdir = tempfile.mkdtemp(prefix="sparkps-servers-")  # 0700
        procs: List[subprocess.Popen] = []
        logs: List[str] = []
        cluster = cls([], consistency, procs, logs, logdir)
        security: List[str] = ["--insecure"] if insecure and not curve else []
        try:
            if curve:
                skey, _, ckey, cpub = generate(logdir)
                cluster.curve = CurveKeys(ckey, os.path.join(logdir, "server.pub"))
                security = ["--curve-secret-key", skey, "--curve-allow", cpub]
            for i in range(num_servers):
                log = os.path.join(logdir, f"server{i}.log")
                logs.append(log)
                with open(log, "wb") as err:
                    procs.append(subprocess.Popen(
                        [server, "--listen", f"tcp://{host}:0", "--shard", str(i),
                         "--shards", str(num_servers), "--consistency", consistency,
                         *security, *extra_args],
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                        preexec_fn=_die_with_parent))
            for i, p in enumerate(procs):
                cluster.endpoints.append(cls._endpoint(p, i, logs[i], timeout))
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @staticmethod
    def _endpoint(p: subprocess.Popen, i: int, log: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        line = b""
        fd = p.stdout.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                raise ClusterError(
                    f"ps-server shard {i} printed no endpoint within {timeout:.0f} s; "
                    f"stderr: {tail(log) or '(empty)'}")
            chunk = os.read(fd, 256)
            if not chunk:
                rc = p.wait()
                raise ClusterError(
                    f"ps-server shard {i} exited with status {rc} before printing its "
                    f"endpoint; stderr: {tail(log) or '(empty)'}")
            line += chunk
        return line.decode().strip()

    @classmethod
    def connect(cls, servers: Union[str, Sequence[str]], consistency: Optional[str] = None,
                timeout: float = 5.0,
                curve: Union[None, str, CurveKeys] = None) -> "PSCluster":
        """A standalone cluster given by its endpoints in shard order
        (``"tcp://h0:7000,tcp://h1:7000"``). Checks that every shard
        answers within ``timeout`` seconds and, when ``consistency`` is
        given, that the servers run that model; raises ClusterError
        otherwise (unreachable: after two attempts, ``2 * timeout``; a
        refused key: at once, naming why). Never stops those servers.

        ``curve``: the client's CurveZMQ keys: a directory holding
        ``client.key`` and ``server.pub`` (shipped to the executors with
        the job), or a :class:`~sparkps.curve.CurveKeys`. None: the keys
        named by ``SPARKPS_CURVE_SECRET_KEY`` / ``SPARKPS_CURVE_SERVER_KEY``
        when set (the executors then need the same variables), else
        plaintext."""
        eps = [e.strip() for e in (servers.split(",") if isinstance(servers, str) else servers)
               if e.strip()]
        if not eps:
            raise ValueError("no server endpoints given")
        keys = CurveKeys.from_dir(curve) if isinstance(curve, str) else curve
        c = cls(eps, curve=keys if keys is not None else CurveKeys.from_env())
        st = c.status(timeout=timeout)
        running = _consistency_of(st["shards"][0])
        if consistency is not None and normalize_consistency(consistency) != running:
            raise ClusterError(
                f"the servers at {c.servers} run consistency {running}, the job asks "
                f"for {normalize_consistency(consistency)}: restart them with "
                f"--consistency {normalize_consistency(consistency)} or change the job's")
        c.consistency = running
        return c

    # ---- use ----

    @property
    def servers(self) -> str:
        """The endpoints as ps-worker's ``--servers`` list."""
        return ",".join(self.endpoints)

    @property
    def owned(self) -> bool:
        """True when this object started the servers (and stops them)."""
        return self._owned

    def executor_curve(self, sc) -> Optional[Dict]:
        """What the training tasks need to find their keys (None in
        plaintext); ships the key files with the job when they travel
        that way. No key material in it."""
        return executor_spec(self.curve, sc)

    def _ctl(self, args: List[str], timeout: float) -> subprocess.CompletedProcess:
        ctl = find_binary("ps-ctl")
        env = None
        if self.curve is not None:  # key files by environment, never argv
            env = dict(os.environ)
            env.update(self.curve.env())
        try:
            return subprocess.run(
                [ctl, *args, "--servers", self.servers, "--timeout",
                 str(int(timeout * 1000)), "--retries", "1"],
                capture_output=True, timeout=3 * timeout + 10, env=env)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"ps-ctl {args[0]} got no answer from {self.servers} "
                               f"within {3 * timeout + 10:.0f} s") from None

    def status(self, timeout: float = 5.0) -> Dict:
        """Every shard's status, as ``ps-ctl status --json`` prints it
        (``{"shards": [...]}``). ClusterError when a shard is unreachable."""
        r = self._ctl(["status", "--json"], timeout)
        if r.returncode != 0:
            raise ClusterError(f"servers unreachable ({self.servers}): {_ctl_error(r)}")
        return json.loads(r.stdout)

    def export(self, job: str, timeout: float = 60.0) -> bytes:
        """The job's model as safetensors bytes (``ps-ctl export``)."""
        fd, path = tempfile.mkstemp(prefix="sparkps-export-", suffix=".safetensors")
        os.close(fd)
        try:
            r = self._ctl(["export", "--job", job, "--out", path], timeout)
            if r.returncode != 0:
                raise ClusterError(f"ps-ctl export of job {job} failed: {_ctl_error(r)}")
            with open(path, "rb") as f:
                return f.read()
        finally:
            os.unlink(path)

    def check_alive(self) -> None:
        """ClusterError naming the shard, its endpoint and how it ended if a
        server this object started has exited (a no-op for ``connect``)."""
        with self._lock:
            procs = list(self._procs)
        for i, p in enumerate(procs):
            rc = p.poll()
            if rc is not None:
                ep = self.endpoints[i] if i < len(self.endpoints) else "no endpoint yet"
                how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
                raise ClusterError(f"ps-server shard {i} ({ep}) {how}; its stderr ends with: "
                                   f"{tail(self._logs[i]) or '(empty)'}")

    def stop(self, grace: float = 10.0) -> None:
        """Stops the servers this object started (SIGTERM, then SIGKILL
        after ``grace`` seconds). Idempotent; a no-op for ``connect``."""
        with self._lock:
            procs, self._procs = self._procs, []
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        atexit.unregister(self.stop)
        if self._logdir:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None

    def __enter__(self) -> "PSCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        kind = "local" if self.owned else "standalone"
        return (f"PSCluster({kind}, {self.servers!r}, consistency={self.consistency}"
                f"{', CurveZMQ' if self.curve else ''})")


def _ctl_error(r: subprocess.CompletedProcess) -> str:
    """ps-ctl's error: its last stderr line (the log lines before it are
    the retries that led there)."""
    lines = r.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"ps-ctl exited with status {r.returncode}"


def _consistency_of(shard: Dict) -> str:
    c = str(shard.get("consistency", "asp")).lower()
    if c == "ssp":
        return f"ssp:{int(shard.get('staleness', 0))}"
    return c
