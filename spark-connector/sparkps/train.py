"""Training with one ``ps-worker`` per Spark barrier task, in two modes.

DataFrame mode (:func:`train_dataframe`): checks the Spark version, the
columns and the task slots, gives each worker one partition
(:func:`reconcile_partitions`: balanced by a round-robin ``repartition``
by default), runs the barrier stage with
``mapInArrow(..., barrier=True)`` while a :class:`ProgressReporter` shows
the servers' view of progress and a :class:`ServerGuard` cancels the stage
if a server started on the driver dies, and returns one summary row per
worker (with its per-epoch history when the workers evaluate held-out rows:
``eval_df``, collected once into a stream file sent by broadcast).
Each task (:func:`make_train_task`) starts ``ps-worker --format stream
--data -``, converts each Arrow batch of its partition to the stream
format (vectorised, spark-connector/FORMAT.md) and writes it to the
worker's stdin. A worker that dies is noticed at the next write (EPIPE) or
when the writer finishes. An empty partition starts no worker.

Files mode (:func:`train_files`, Spark as a scheduler): the same barrier
stage over ``num_workers`` placeholder rows; each task starts ``ps-worker
--data PATH --part i/N``, which reads its share of a file every executor
can read. No rows pass through Spark.

Both share :func:`run_task_worker`: it binds the GPU Spark assigned to the
task (``CUDA_VISIBLE_DEVICES`` + ``--device cuda:0``, or a device group
``cuda:0,cuda:1,...`` when Spark gives a task several; CPU when none), fails
the task with the worker's exit status and stderr tail, and builds the
summary row. The worker gets SIGKILL when the Python task process dies, so
a killed task leaves no ps-worker behind.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Dict, Iterator, List, Optional, Sequence, Union

import pyarrow as pa

from . import find_binary
from .curve import task_env
from . import stream as st
from .cluster import ClusterError, PSCluster, _kill_with_parent, check_classic, tail
from .guard import ServerGuard
from .progress import ProgressReporter

MIN_SPARK = (3, 5)

SUMMARY_SCHEMA = (
    "worker int, host string, device string, rows long, samples long, epochs int, "
    "loss double, accuracy double, test_accuracy double, test_auc double, "
    "seconds double, status int, history string"
)


class WorkerError(RuntimeError):
    """A ps-worker exited with an error; the message carries its stderr."""


def check_spark_version(version: Optional[str] = None) -> None:
    """RuntimeError on Spark older than 3.5 (no mapInArrow(barrier=True))."""
    if version is None:
        import pyspark

        version = pyspark.__version__
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < MIN_SPARK:
        raise RuntimeError(
            f"sparkps needs Spark {MIN_SPARK[0]}.{MIN_SPARK[1]} or newer "
            f"(mapInArrow with barrier=True); this is Spark {version}")


def check_spark(session_or_df) -> None:
    """The Spark version and the session's mode (classic), before any
    server starts."""
    check_spark_version()
    check_classic(session_or_df)


def model_kind(spec: str) -> int:
    """The stream kind a model spec reads: sparse for logreg, else dense."""
    return st.SPARSE if spec.startswith("logreg") else st.DENSE


def model_input_dim(spec: str) -> Optional[int]:
    """Input width of a dense spec (``mlp:784-...``), None if it has none."""
    if spec.startswith("mlp:"):
        try:
            return int(spec[4:].split("-")[0])
        except ValueError:
            raise ValueError(f"model spec {spec!r}: expected mlp:IN-H1-...-CLASSES") from None
    return None


# ---- the worker process ----


class WorkerProcess:
    """A ps-worker child with stdin on a pipe, stdout read by a thread (the
    JSON progress lines, each stamped with ``time``, the wall clock when it
    arrived; or nothing when ``stdout_lines`` is False) and stderr in a
    temporary file whose tail goes into errors."""

    def __init__(self, argv: List[str], name: str, env: Optional[Dict[str, str]] = None,
                 stdout_lines: bool = True):
        self.name = name
        fd, self.err_path = tempfile.mkstemp(prefix="sparkps-worker-", suffix=".err")
        self.lines: List[Dict] = []
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=fd, env=env, preexec_fn=_kill_with_parent)
        finally:
            os.close(fd)
        _widen_pipe(self.proc.stdin)
        self._reader = None
        if stdout_lines:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            if isinstance(ev, dict):
                ev.setdefault("time", time.time())  # when it arrived (the epoch history)
                self.lines.append(ev)

    def write(self, data) -> None:
        """Writes to the worker's stdin; WorkerError at once if it died."""
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            raise self.failure("while it was being fed its partition") from None

    def failure(self, when: str) -> WorkerError:
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        when = f" {when}" if when else ""
        return WorkerError(f"{self.name} on {socket.gethostname()} {how}{when}; its stderr "
                           f"ends with:\n{tail(self.err_path) or '(empty)'}")

    def finish(self, timeout: Optional[float] = None) -> int:
        """Closes stdin, waits for the exit (at most ``timeout`` seconds,
        then kills it); WorkerError unless status 0."""
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self.failure(f"after running past the timeout of {timeout:g} s") from None
        if self._reader:
            self._reader.join(timeout=5)
        if rc != 0:
            raise self.failure("")
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        """Stops the process if still running and removes the stderr file."""
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        try:
            os.unlink(self.err_path)
        except OSError:
            pass


PIPE_BYTES = 1 << 20


def _widen_pipe(f) -> None:
    """Grows a pipe's kernel buffer to 1 MiB (Linux; the unprivileged
    maximum by default): the feeder and the worker then take turns every
    megabyte instead of every 64 KiB, far fewer context switches when they
    share few cores. Best effort: elsewhere, or above the limit, the pipe
    keeps its size."""
    try:
        import fcntl

        fcntl.fcntl(f.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (OSError, ValueError, AttributeError):
        pass


def task_device(resources: Dict, env: Dict[str, str], device: str = "auto") -> str:
    """The ps-worker ``--device`` for a task. ``auto``: the GPUs Spark
    assigned, made the only visible ones (``CUDA_VISIBLE_DEVICES``) and
    numbered from 0: ``cuda:0`` for one, ``cuda:0,cuda:1,...`` (a device
    group: one worker, one push per step) for several; else the CPU."""
    if device != "auto":
        return device
    gpu = resources.get("gpu") if resources else None
    addrs = list(getattr(gpu, "addresses", []) or []) if gpu is not None else []
    if addrs:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(a) for a in addrs)
        return ",".join(f"cuda:{i}" for i in range(len(addrs)))
    return "cpu"


def _first_nonempty(batches: Iterator[pa.RecordBatch]):
    for b in batches:
        if b.num_rows:
            return b
    return None


def _feed(w: WorkerProcess, first: pa.RecordBatch, rest: Iterator[pa.RecordBatch],
          kind: int, dim: int, features, label) -> int:
    writer = st.StreamWriter(w, kind, dim)
    st.write_batch(writer, first, features, label)
    for b in rest:
        if w.proc.poll() is not None:
            raise w.failure("while it was being fed its partition")
        st.write_batch(writer, b, features, label)
    writer.close()
    return writer.rows


MAX_ATTEMPT = 2**31 - 1  # ps-worker --attempt's range


def task_attempt(ctx) -> int:
    """The attempt this task's ps-worker joins the servers with
    (``--attempt``): the task's attempt id, ``ctx.taskAttemptId()``.

    A barrier stage is never retried task by task: when one of its tasks
    fails, Spark kills the others and submits the whole stage again as a
    new stage attempt, whose tasks start over at ``attemptNumber()`` 0 (that
    number counts retries within one stage attempt only, so it would not
    tell a retried run from the first). The stage attempt number would, but
    PySpark's TaskContext does not expose it (``stageAttemptNumber`` exists
    only on the JVM side, in Spark 3.5 and 4.3 alike). The task attempt id does: Spark numbers every
    task it launches in one application from one increasing counter, so the
    tasks of a retried stage attempt, and of a fit the driver runs again,
    carry larger ids than the ones they replace, and the servers refuse the
    workers of the earlier attempt that are still running. (Spark retries a
    barrier stage only when it is a shuffle map stage; a failed barrier
    result stage, as a fit's is, aborts the job, and a retry is a new job.)
    Capped at ps-worker's maximum: past 2^31 - 1 tasks every attempt is
    equal, which the servers accept."""
    return min(int(ctx.taskAttemptId()), MAX_ATTEMPT)


def worker_argv(ctx, servers: str, job: str, data_args: List[str], args: List[str],
                device: str) -> List[str]:
    """The ps-worker command line of a task: worker id = the task's
    partition, attempt = :func:`task_attempt`."""
    return [find_binary("ps-worker"), "--servers", servers, "--job", job,
            "--worker-id", str(ctx.partitionId()), "--attempt", str(task_attempt(ctx)),
            *data_args, "--device", device, *args]


def run_task_worker(ctx, servers: str, job: str, data_args: List[str], args: List[str],
                    device: str, name: str, init_bc=None, feed=None,
                    timeout: Optional[float] = None, eval_bc=None,
                    curve: Optional[Dict] = None) -> pa.RecordBatch:
    """Runs this barrier task's ps-worker to its end and returns its summary
    row; shared by the DataFrame (stream) and the files mode. Binds the
    task's GPU (:func:`task_device`), starts ``ps-worker --servers ...
    --worker-id <partition> --attempt <task attempt id> DATA_ARGS --device D
    ARGS [--init-from F] [--eval E]`` (:func:`worker_argv`; ``eval_bc``: a
    broadcast stream file, written to this host once), calls ``feed(w)``
    (the number of rows it wrote to stdin;
    None: the worker reads a file, and ``rows`` is its samples per epoch),
    waits for the exit (at most ``timeout`` seconds) and raises WorkerError
    with the stderr tail on failure. The process never outlives this call."""
    wid = ctx.partitionId()
    t0 = time.monotonic()
    env = dict(os.environ)
    dev = task_device(ctx.resources(), env, device)
    argv = worker_argv(ctx, servers, job, data_args, args, dev)
    # CurveZMQ keys go into env as files named by variables, never on the
    # command line (sparkps.curve); remove_key deletes the private copy.
    remove_key = task_env(curve, env)
    if init_bc is not None:
        argv += ["--init-from", _local_model_file(init_bc.value)]
    if eval_bc is not None:
        argv += ["--eval", _local_file(eval_bc.value, ".stream")]
    try:
        w = WorkerProcess(argv, name, env)
    except BaseException:
        remove_key()
        raise
    try:
        rows = feed(w) if feed is not None else None
        rc = w.finish(timeout)
        done = next((e for e in reversed(w.lines) if e.get("event") == "done"),
                    w.lines[-1] if w.lines else {})
        if rows is None:
            epochs = done.get("epoch") or 1
            rows = int(done.get("samples", 0)) // max(int(epochs), 1)
        return _summary(wid, socket.gethostname(), dev, rows, done, time.monotonic() - t0, rc,
                        epoch_history(w.lines))
    finally:
        w.close()
        remove_key()


HISTORY_KEYS = ("epoch", "time", "samples", "loss", "accuracy", "test_loss", "test_accuracy",
                "test_auc")


def epoch_history(events: List[Dict]) -> str:
    """The worker's ``epoch`` events as a JSON list, each with the wall
    clock ``time`` (seconds since 1970) when the task read it: the
    per-epoch record (training loss/accuracy, and the held-out figures when
    the worker evaluates)."""
    return json.dumps([{k: e[k] for k in HISTORY_KEYS if k in e}
                       for e in events if e.get("event") == "epoch"])


def make_train_task(servers: str, job: str, args: List[str], kind: int, dim: int,
                    features, label: str, device: str, init_bc=None, eval_bc=None,
                    curve: Optional[Dict] = None):
    """The function each barrier task runs (a closure shipped to executors):
    its partition goes to ``ps-worker --format stream --data -``."""

    def _train_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        wid = ctx.partitionId()
        first = _first_nonempty(batches)
        if first is None:
            yield _summary(wid, socket.gethostname(), "none", 0, {}, 0.0, 0)
            return
        yield run_task_worker(
            ctx, servers, job, ["--format", "stream", "--data", "-"], args, device,
            f"ps-worker {wid} (partition {wid}, job {job})", init_bc,
            feed=lambda w: _feed(w, first, batches, kind, dim, features, label),
            eval_bc=eval_bc, curve=curve)

    return _train_task


def _summary(wid, host, dev, rows, done, seconds, rc, history: str = "[]") -> pa.RecordBatch:
    def num(k, default=float("nan")):
        v = done.get(k)
        return float(v) if isinstance(v, (int, float)) else default

    return pa.RecordBatch.from_pydict({
        "worker": pa.array([wid], pa.int32()), "host": [host], "device": [dev],
        "rows": pa.array([rows], pa.int64()),
        "samples": pa.array([int(num("samples", 0))], pa.int64()),
        "epochs": pa.array([int(num("epoch", 0))], pa.int32()),
        "loss": [num("loss")], "accuracy": [num("accuracy")],
        "test_accuracy": [num("test_accuracy")], "test_auc": [num("test_auc")],
        "seconds": [seconds],
        "status": pa.array([rc], pa.int32()),
        "history": [history]})


def _local_file(data: bytes, suffix: str) -> str:
    """Writes bytes to a file on this host once (named by content) and
    returns its path; later tasks on the host reuse it."""
    import hashlib

    digest = hashlib.sha256(data).hexdigest()[:20]
    path = os.path.join(tempfile.gettempdir(), f"sparkps-{digest}{suffix}")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".sparkps-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path


def _local_model_file(data: bytes) -> str:
    """A model's bytes as a local safetensors file (:func:`_local_file`)."""
    return _local_file(data, ".safetensors")


# ---- driver side ----


def task_slots(sc) -> int:
    """Tasks that can run at once (what a barrier stage needs), from the
    scheduler's own count when reachable, else defaultParallelism."""
    try:
        jsc = sc._jsc.sc()
        rp = jsc.resourceProfileManager().defaultResourceProfile()
        return int(jsc.maxNumConcurrentTasks(rp))
    except Exception:  # py4j or a Spark without that method
        return int(sc.defaultParallelism)


def resolve_features(df, features: Union[str, Sequence[str]], label: Optional[str]) -> List[str]:
    """The columns training reads; SchemaError naming the missing ones."""
    wanted = [features] if isinstance(features, str) else list(features)
    if label is not None:
        wanted.append(label)
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise st.SchemaError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} not in "
            f"the DataFrame; its columns are {', '.join(df.columns)}")
    return wanted


def reconcile_partitions(df, num_workers: int, balance: bool = True):
    """One partition per worker. ``balance`` (the default): always
    ``repartition(num_workers)``, a round-robin shuffle that gives every
    worker the same number of rows (Spark's own partitions can be very
    uneven, e.g. one Parquet row group in one split). Without it the data
    moves only when the count differs: ``coalesce`` (no shuffle) when there
    are more partitions, ``repartition`` when there are fewer; a worker may
    then get an empty partition, which starts no ps-worker."""
    if balance:
        return df.repartition(num_workers)
    n = df.rdd.getNumPartitions()
    if n > num_workers:
        return df.coalesce(num_workers)
    if n < num_workers:
        return df.repartition(num_workers)
    return df


def worker_args(model: str, epochs: int, batch_size: int, optimizer: Optional[str],
                lr: Optional[float], seed: int = 1, extra: Sequence[str] = ()) -> List[str]:
    args = ["--model", model, "--epochs", str(epochs), "--batch", str(batch_size),
            "--seed", str(seed)]
    if optimizer:
        args += ["--optimizer", optimizer]
    if lr:
        args += ["--lr", repr(float(lr))]
    return args + list(extra)


def train_dataframe(df, cluster: PSCluster, model: str, features: Union[str, Sequence[str]] = "features",
                    label: str = "label", num_workers: int = 2, epochs: int = 1,
                    batch_size: int = 64, optimizer: Optional[str] = None,
                    lr: Optional[float] = None, job: Optional[str] = None, seed: int = 1,
                    device: str = "auto", init_model: Optional[bytes] = None,
                    extra_args: Sequence[str] = (), progress: bool = True,
                    balance: bool = True, eval_df=None) -> List:
    """DataFrame mode: trains ``model`` on ``df`` with ``num_workers`` ps-workers against
    ``cluster``; returns the summary rows (one per worker, see
    SUMMARY_SCHEMA). The job's tables stay on the servers under ``job``
    (default: a fresh ``spark-<id>``), ready for ``cluster.export(job)``.

    ``eval_df`` (same columns): held-out rows every worker evaluates after
    each of its epochs; they are collected on the driver once, as a stream
    file that reaches the executors by broadcast. Each summary row's
    ``history`` is then the worker's per-epoch record (JSON: epoch, wall
    clock ``time``, loss, accuracy, test_loss, test_accuracy).

    Raises SchemaError for missing/unreadable columns, ValueError when
    ``num_workers`` exceeds the task slots, ClusterError when the servers
    do not answer or one started by ``cluster`` dies during the stage
    (the stage is then cancelled at once), and the Spark exception of the
    failed stage (carrying the worker's stderr) when a worker fails."""
    check_spark(df)
    spark = df.sparkSession
    sc = spark.sparkContext
    check_slots(sc, num_workers)
    cols = resolve_features(df, features, label)
    if eval_df is not None:
        resolve_features(eval_df, features, label)
    kind = model_kind(model)
    dim = model_input_dim(model) or 0
    if kind == st.DENSE and dim == 0:
        dim = _width_from_df(df, features)
    cluster.status(timeout=5.0)  # unreachable servers: a clear error before the stage
    job = job or f"spark-{uuid.uuid4().hex[:12]}"
    eval_bc = None
    if eval_df is not None:
        eval_bc = sc.broadcast(collect_stream(eval_df.select(*cols), kind, dim, features, label))
    init_bc = sc.broadcast(init_model) if init_model is not None else None
    task = make_train_task(cluster.servers, job,
                           worker_args(model, epochs, batch_size, optimizer, lr, seed, extra_args),
                           kind, dim, features, label, device, init_bc, eval_bc,
                           cluster.executor_curve(sc))
    data = reconcile_partitions(df.select(*cols), num_workers, balance)
    return _run_stage(sc, data, task, cluster, model, num_workers, epochs, job, progress,
                      [b for b in (init_bc, eval_bc) if b is not None])


def collect_stream(df, kind: int, dim: int, features, label: str) -> bytes:
    """The rows of ``df`` as one stream file (FORMAT.md), built on the
    driver from the Arrow batches Spark sends it (``toArrow``, Spark 4; the
    same private call ``toPandas`` makes on 3.5), converted with numpy: no
    Python worker starts for it."""
    import io

    to_arrow = getattr(df, "toArrow", None)
    if to_arrow is not None:
        batches = to_arrow().to_batches()
    else:
        batches = df._collect_as_arrow()
    buf = io.BytesIO()
    w = st.StreamWriter(buf, kind, dim)
    for b in batches:
        st.write_batch(w, b, features, label)
    if w.rows == 0:
        raise ValueError("the evaluation DataFrame is empty")
    w.close()
    return buf.getvalue()


def check_slots(sc, num_workers: int) -> None:
    """ValueError unless ``num_workers`` barrier tasks can run at once."""
    if num_workers < 1:
        raise ValueError("num_workers must be at least 1")
    slots = task_slots(sc)
    if num_workers > slots:
        raise ValueError(
            f"{num_workers} workers requested but the cluster runs at most {slots} tasks at "
            "once; a barrier stage needs them all at the same time: lower num_workers or "
            "add executors/cores (with GPUs: one slot per GPU)")


def job_tag(job: str) -> str:
    """The Spark job tag of a sparkps job's stages (``cancelJobsWithTag``)."""
    return f"sparkps-{job}"


def _run_stage(sc, data, task, cluster: PSCluster, model: str, num_workers: int, epochs: int,
               job: str, progress: bool, broadcasts: Sequence = ()) -> List:
    """Runs ``task`` over ``data``'s partitions as one barrier stage, tagged
    :func:`job_tag`, while the progress line is kept up to date and a
    :class:`ServerGuard` cancels the stage if a server of ``cluster`` dies
    (raising its ClusterError instead); the summary rows by worker."""
    sc.setJobDescription(f"sparkps: train {model} ({num_workers} workers, job {job})")
    tag = job_tag(job)
    sc.addJobTag(tag)
    try:
        with ServerGuard(cluster, lambda: sc.cancelJobsWithTag(tag)) as guard, \
                ProgressReporter(cluster, num_workers, epochs, enabled=progress):
            try:
                rows = data.mapInArrow(task, SUMMARY_SCHEMA, barrier=True).collect()
            except Exception as e:
                if guard.error is not None:
                    raise ClusterError(f"the training stage of job {job} was cancelled: "
                                       f"{guard.error}") from e
                raise
    finally:
        sc.removeJobTag(tag)
        sc.setJobDescription(None)
        for b in broadcasts:
            b.destroy()
    return sorted(rows, key=lambda r: r.worker)


# ---- files mode: Spark as a scheduler ----

FILE_FORMATS = ("libsvm", "csv", "idx", "stream")


def make_files_task(servers: str, job: str, args: List[str], data_args: List[str],
                    num_workers: int, device: str, init_bc=None,
                    timeout: Optional[float] = None, curve: Optional[Dict] = None):
    """The function each barrier task of :func:`train_files` runs: its
    ps-worker reads the share ``--part <partition>/<num_workers>`` of the
    files itself (the task's input, one placeholder row, is ignored)."""

    def _files_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import BarrierTaskContext

        for _ in batches:
            pass
        ctx = BarrierTaskContext.get()
        wid = ctx.partitionId()
        part = f"{wid}/{num_workers}"
        yield run_task_worker(
            ctx, servers, job, [*data_args, "--part", part], args, device,
            f"ps-worker {wid} (part {part}, job {job})", init_bc, timeout=timeout,
            curve=curve)

    return _files_task


def train_files(spark, cluster: PSCluster, model: str, data: str, *, format: str = "libsvm",
                labels: Optional[str] = None, eval: Optional[str] = None,
                eval_labels: Optional[str] = None, num_workers: int = 2, epochs: int = 1,
                batch_size: int = 64, optimizer: Optional[str] = None,
                lr: Optional[float] = None, job: Optional[str] = None, seed: int = 1,
                device: str = "auto", init_model: Optional[bytes] = None,
                extra_args: Sequence[str] = (), progress: bool = True,
                timeout: Optional[float] = None) -> List:
    """Files mode, Spark as a scheduler: a barrier stage of ``num_workers``
    tasks, each starting ``ps-worker --data DATA --format FORMAT --part
    i/num_workers`` against ``cluster`` (plus ``--labels``, ``--eval``,
    ``--eval-labels`` when given). No rows go through Spark: every worker
    reads its own share of the file, so ``data`` (and ``labels``, ``eval``)
    must be readable at that path on every executor (a local file under a
    ``local`` master, else a shared file system such as NFS mounted at the
    same place); ``hdfs://`` or ``s3://`` URLs are not read.

    Like :func:`train_dataframe`: the task's GPU is bound the same way, the
    progress line runs on the driver, the job's tables stay on the servers
    under ``job`` (``cluster.export(job)``), and the return value is one
    summary row per worker (SUMMARY_SCHEMA; ``rows`` is the worker's
    samples per epoch, ``test_accuracy``/``test_auc`` its last evaluation
    on ``eval``). A worker that fails (a missing file, a bad record) fails
    the stage with its stderr tail; ``timeout`` (seconds) kills a worker
    that runs longer. ``extra_args`` go to every ps-worker as given (e.g.
    ``["--csv-header", "--l1", "1"]``)."""
    check_spark(spark)
    if format not in FILE_FORMATS:
        raise ValueError(f"format {format!r}: expected one of {', '.join(FILE_FORMATS)}")
    if not data or data == "-":
        raise ValueError("train_files needs a file path (stdin is the DataFrame mode's)")
    sc = spark.sparkContext
    check_slots(sc, num_workers)
    cluster.status(timeout=5.0)  # unreachable servers: a clear error before the stage
    data_args = ["--format", format, "--data", data]
    for flag, path in (("--labels", labels), ("--eval", eval), ("--eval-labels", eval_labels)):
        if path:
            data_args += [flag, path]
    job = job or f"spark-{uuid.uuid4().hex[:12]}"
    init_bc = sc.broadcast(init_model) if init_model is not None else None
    task = make_files_task(cluster.servers, job,
                           worker_args(model, epochs, batch_size, optimizer, lr, seed, extra_args),
                           data_args, num_workers, device, init_bc, timeout,
                           cluster.executor_curve(sc))
    # one placeholder row per task; the workers read the files themselves
    slots = spark.range(0, num_workers, 1, num_workers)
    return _run_stage(sc, slots, task, cluster, model, num_workers, epochs, job, progress,
                      [init_bc] if init_bc is not None else [])


def _width_from_df(df, features) -> int:
    """Feature width from the first row."""
    if not isinstance(features, str):
        return len(features)
    row = df.select(features).first()
    if row is None:
        raise ValueError("the DataFrame is empty")
    v = row[0]
    return int(v.size) if hasattr(v, "size") and not isinstance(v, list) else len(v)
