"""Spark ML API: ``PSClassifier`` (an Estimator) and
``PSClassificationModel`` (its Model).

``PSClassifier.fit(df)`` trains with one ps-worker per barrier task
(:func:`sparkps.train.train_dataframe`; ``fitFiles(path)``: each worker
reads its share of a file, :func:`sparkps.train.train_files`) against the servers of a
``PSCluster`` (started on the driver for the fit, or a standalone one given
by ``servers``), then exports the weights from the servers once
(``ps-ctl export``, safetensors). ``PSClassificationModel.transform(df)``
scores every partition with ``ps-worker predict`` on the executors: the
model bytes travel by broadcast, the rows in the stream format, and the
predictions come back as CSV lines parsed with numpy, a batch at a time.
"""
from __future__ import annotations

import json
import os
import queue
import struct
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.linalg import VectorUDT
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (HasFeaturesCol, HasLabelCol, HasPredictionCol,
                                     HasProbabilityCol, HasSeed, HasValidationIndicatorCol)
from pyspark.ml.util import (DefaultParamsReadable, DefaultParamsReader, DefaultParamsWritable,
                             DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter)
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DoubleType, StructField, StructType

from . import find_binary
from . import stream as st
from .stream import SchemaError
from .cluster import PSCluster, normalize_consistency
from .fit_handle import FitCancelled, PSFitHandle
from .train import (WorkerProcess, _local_model_file, check_slots, check_spark,
                    model_input_dim, model_kind, resolve_features, train_dataframe, train_files)


class _PSParams(HasFeaturesCol, HasLabelCol, HasPredictionCol, HasProbabilityCol, HasSeed):
    """Params shared by PSClassifier and PSClassificationModel."""

    modelSpec = Param(Params._dummy(), "modelSpec",
                      "ps-worker model: softmax, mlp:IN-H1-...-CLASSES, or logreg[:BITS] "
                      "(sparse logistic regression)", typeConverter=TypeConverters.toString)
    featureCols = Param(Params._dummy(), "featureCols",
                        "numeric columns assembled into the features, in order (when set, "
                        "featuresCol is not used)", typeConverter=TypeConverters.toListString)
    numWorkers = Param(Params._dummy(), "numWorkers",
                       "ps-workers, one per barrier task (at most the task slots)",
                       typeConverter=TypeConverters.toInt)
    numServers = Param(Params._dummy(), "numServers",
                       "ps-server shards started on the driver when servers is empty",
                       typeConverter=TypeConverters.toInt)
    servers = Param(Params._dummy(), "servers",
                    "endpoints of a standalone cluster (tcp://h0:7000,tcp://h1:7000); empty: "
                    "start numServers shards on the driver for the fit",
                    typeConverter=TypeConverters.toString)
    epochs = Param(Params._dummy(), "epochs", "passes over the data",
                   typeConverter=TypeConverters.toInt)
    batchSize = Param(Params._dummy(), "batchSize", "mini-batch rows",
                      typeConverter=TypeConverters.toInt)
    optimizer = Param(Params._dummy(), "optimizer",
                      "server-side optimizer: sgd, momentum, adagrad, adam, ftrl (empty: adam, "
                      "ftrl for logreg)", typeConverter=TypeConverters.toString)
    learningRate = Param(Params._dummy(), "learningRate",
                         "learning rate (0: ps-worker's default, 0.001; 0.05 for logreg)",
                         typeConverter=TypeConverters.toFloat)
    lrSchedule = Param(Params._dummy(), "lrSchedule",
                       "learning-rate schedule each worker follows over its epochs: constant, "
                       "step:EPOCHS:GAMMA or cosine[:FLOOR]", typeConverter=TypeConverters.toString)
    consistency = Param(Params._dummy(), "consistency",
                        "asp, ssp:S or bsp: the servers started for the fit run it; a "
                        "standalone cluster must already run it", typeConverter=TypeConverters.toString)
    device = Param(Params._dummy(), "device",
                   "auto (the GPU Spark assigned to the task, else the CPU), cpu, cpu:T",
                   typeConverter=TypeConverters.toString)
    initModelPath = Param(Params._dummy(), "initModelPath",
                          "warm start: a PSClassificationModel saved at this path",
                          typeConverter=TypeConverters.toString)
    balancePartitions = Param(Params._dummy(), "balancePartitions",
                              "repartition the data round-robin into numWorkers equal "
                              "partitions (false: coalesce/repartition only when the count "
                              "differs)", typeConverter=TypeConverters.toBoolean)
    curveDir = Param(Params._dummy(), "curveDir",
                     "CurveZMQ keys of a standalone cluster (servers set): a directory on the "
                     "driver with client.key and server.pub, shipped to the executors with the "
                     "job; empty: the keys named by SPARKPS_CURVE_SECRET_KEY and "
                     "SPARKPS_CURVE_SERVER_KEY when set, else plaintext. Servers started for "
                     "the fit use CurveZMQ when they bind a non-loopback address",
                     typeConverter=TypeConverters.toString)
    showProgress = Param(Params._dummy(), "showProgress",
                         "print a live progress line on stderr during the fit",
                         typeConverter=TypeConverters.toBoolean)

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(modelSpec="mlp:784-256-128-10", featureCols=[], numWorkers=2,
                         numServers=2, servers="", epochs=5, batchSize=64, optimizer="",
                         learningRate=0.0, lrSchedule="constant", consistency="asp",
                         device="auto", initModelPath="", balancePartitions=True,
                         showProgress=True, seed=1, curveDir="")

    def _features(self):
        cols = self.getOrDefault(self.featureCols)
        return list(cols) if cols else self.getOrDefault(self.featuresCol)

    def getModelSpec(self) -> str:
        return self.getOrDefault(self.modelSpec)

    def getFeatureCols(self) -> List[str]:
        return self.getOrDefault(self.featureCols)

    def getNumWorkers(self) -> int:
        return self.getOrDefault(self.numWorkers)

    def getNumServers(self) -> int:
        return self.getOrDefault(self.numServers)

    def getServers(self) -> str:
        return self.getOrDefault(self.servers)

    def getEpochs(self) -> int:
        return self.getOrDefault(self.epochs)

    def getBatchSize(self) -> int:
        return self.getOrDefault(self.batchSize)

    def getOptimizer(self) -> str:
        return self.getOrDefault(self.optimizer)

    def getLearningRate(self) -> float:
        return self.getOrDefault(self.learningRate)

    def getLrSchedule(self) -> str:
        return self.getOrDefault(self.lrSchedule)

    def getConsistency(self) -> str:
        return self.getOrDefault(self.consistency)

    def _worker_extra(self) -> List[str]:
        """ps-worker flags of the Params train_dataframe has no argument for."""
        return ["--lr-schedule", self.getLrSchedule()]

    def getDevice(self) -> str:
        return self.getOrDefault(self.device)

    def getInitModelPath(self) -> str:
        return self.getOrDefault(self.initModelPath)

    def getBalancePartitions(self) -> bool:
        return self.getOrDefault(self.balancePartitions)

    def getShowProgress(self) -> bool:
        return self.getOrDefault(self.showProgress)


class PSClassifier(Estimator, _PSParams, HasValidationIndicatorCol, DefaultParamsReadable,
                   DefaultParamsWritable):
    """Trains a classifier on the sparkps parameter server.

    >>> clf = PSClassifier(modelSpec="mlp:784-256-128-10", epochs=5, numWorkers=2)
    >>> model = clf.fit(train_df)            # features: vector or array<float>
    >>> model.transform(test_df).select("prediction", "probability")

    ``validationIndicatorCol`` (a boolean column): its true rows are held
    out of training and every worker evaluates them after each epoch
    (``model.trainingHistory()``). ``fitAsync(df)`` runs the fit in the
    background and returns a :class:`PSFitHandle` with ``snapshot()``,
    ``result()`` and ``cancel()``.
    """

    @keyword_only
    def __init__(self, *, featuresCol: str = "features", labelCol: str = "label",
                 predictionCol: str = "prediction", probabilityCol: str = "probability",
                 modelSpec: str = "mlp:784-256-128-10", featureCols: Optional[List[str]] = None,
                 numWorkers: int = 2, numServers: int = 2, servers: str = "", epochs: int = 5,
                 batchSize: int = 64, optimizer: str = "", learningRate: float = 0.0,
                 lrSchedule: str = "constant", consistency: str = "asp", device: str = "auto",
                 initModelPath: str = "", balancePartitions: bool = True, showProgress: bool = True,
                 seed: int = 1, validationIndicatorCol: Optional[str] = None,
                 curveDir: str = "") -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> "PSClassifier":
        """Sets any of the constructor's params."""
        return self._set(**self._input_kwargs)

    def setModelSpec(self, v: str) -> "PSClassifier":
        return self._set(modelSpec=v)

    def setFeatureCols(self, v: List[str]) -> "PSClassifier":
        return self._set(featureCols=v)

    def setFeaturesCol(self, v: str) -> "PSClassifier":
        return self._set(featuresCol=v)

    def setLabelCol(self, v: str) -> "PSClassifier":
        return self._set(labelCol=v)

    def setNumWorkers(self, v: int) -> "PSClassifier":
        return self._set(numWorkers=v)

    def setNumServers(self, v: int) -> "PSClassifier":
        return self._set(numServers=v)

    def setServers(self, v: str) -> "PSClassifier":
        return self._set(servers=v)

    def setEpochs(self, v: int) -> "PSClassifier":
        return self._set(epochs=v)

    def setBatchSize(self, v: int) -> "PSClassifier":
        return self._set(batchSize=v)

    def setOptimizer(self, v: str) -> "PSClassifier":
        return self._set(optimizer=v)

    def setLearningRate(self, v: float) -> "PSClassifier":
        return self._set(learningRate=v)

    def setLrSchedule(self, v: str) -> "PSClassifier":
        return self._set(lrSchedule=v)

    def setConsistency(self, v: str) -> "PSClassifier":
        return self._set(consistency=v)

    def setDevice(self, v: str) -> "PSClassifier":
        return self._set(device=v)

    def setInitModelPath(self, v: str) -> "PSClassifier":
        return self._set(initModelPath=v)

    def setBalancePartitions(self, v: bool) -> "PSClassifier":
        return self._set(balancePartitions=v)

    def setShowProgress(self, v: bool) -> "PSClassifier":
        return self._set(showProgress=v)

    def setCurveDir(self, v: str) -> "PSClassifier":
        return self._set(curveDir=v)

    def getCurveDir(self) -> str:
        return self.getOrDefault(self.curveDir)

    def setValidationIndicatorCol(self, v: str) -> "PSClassifier":
        return self._set(validationIndicatorCol=v)

    def _cluster(self, spark) -> PSCluster:
        consistency = normalize_consistency(self.getConsistency())
        if self.getServers():
            return PSCluster.connect(self.getServers(), consistency=consistency,
                                     curve=self.getCurveDir() or None)
        return PSCluster.local(self.getNumServers(), consistency=consistency, spark=spark)

    def _fit(self, dataset) -> "PSClassificationModel":
        return self._train(dataset.sparkSession, self._dataframe_run(dataset))

    def fitAsync(self, dataset, params: Optional[Dict] = None) -> PSFitHandle:
        """Starts ``fit(dataset)`` in the background and returns at once.

        The checks of ``fit`` (Spark version, columns, task slots) and the
        servers' start happen before it returns, so their errors are raised
        here; the Spark stages and the final export run on a thread of the
        driver. The handle's ``snapshot()`` exports the live servers' weights
        as a PSClassificationModel, ``progress()`` reads the workers'
        progress, ``result()`` waits for the final model (raising what the
        fit raised) and ``cancel()`` stops it. ``params`` overrides Params
        as in ``fit``."""
        if params:
            return self.copy(params).fitAsync(dataset)
        spark = dataset.sparkSession
        run = self._dataframe_run(dataset)
        cluster, job, init = self._start(spark)
        try:
            return PSFitHandle(spark, cluster, job, lambda: run(cluster, job, init),
                               self._model_of)
        except BaseException:
            if cluster.owned:
                cluster.stop()
            raise

    def _dataframe_run(self, dataset):
        """Checks what can be checked before any server starts and returns
        ``run(cluster, job, init_bytes)`` for :meth:`_train`."""
        check_spark(dataset)
        features = self._features()
        resolve_features(dataset, features, self.getLabelCol())  # fail before servers start
        check_slots(dataset.sparkSession.sparkContext, self.getNumWorkers())
        train, held = dataset, None
        vcol = (self.getValidationIndicatorCol()
                if self.isDefined(self.validationIndicatorCol) else None)
        if vcol:
            resolve_features(dataset, [vcol], None)
            vtype = dataset.schema[vcol].dataType
            if not isinstance(vtype, BooleanType):
                raise SchemaError(f"validationIndicatorCol {vcol!r} is {vtype.simpleString()}, "
                                  "not boolean")
            train, held = dataset.filter(~F.col(vcol)), dataset.filter(F.col(vcol))
        return lambda cluster, job, init: train_dataframe(
            train, cluster, self.getModelSpec(), features=features,
            label=self.getLabelCol(), job=job, num_workers=self.getNumWorkers(),
            epochs=self.getEpochs(), batch_size=self.getBatchSize(),
            optimizer=self.getOptimizer() or None, lr=self.getLearningRate() or None,
            seed=self.getSeed(), device=self.getDevice(), init_model=init,
            progress=self.getShowProgress(), balance=self.getBalancePartitions(),
            eval_df=held, extra_args=self._worker_extra())

    def fitFiles(self, path: str, format: str = "libsvm", labels: Optional[str] = None,
                 eval: Optional[str] = None, evalLabels: Optional[str] = None,
                 spark=None, extraArgs: Sequence[str] = (),
                 timeout: Optional[float] = None) -> "PSClassificationModel":
        """Files mode (:func:`sparkps.train_files`): fits on the file at
        ``path`` (``format``: libsvm, csv, idx or stream), which every
        executor must be able to read at that path; each of the
        ``numWorkers`` barrier tasks runs one ps-worker on its share
        ``--part i/numWorkers``. The column Params are not used; the other
        Params apply as in ``fit``. ``spark``: default the active session."""
        if spark is None:
            from pyspark.sql import SparkSession

            spark = SparkSession.getActiveSession()
            if spark is None:
                raise RuntimeError("fitFiles needs a SparkSession (none is active)")
        check_spark(spark)
        check_slots(spark.sparkContext, self.getNumWorkers())
        return self._train(spark, lambda cluster, job, init: train_files(
            spark, cluster, self.getModelSpec(), path, format=format, labels=labels,
            eval=eval, eval_labels=evalLabels, num_workers=self.getNumWorkers(),
            epochs=self.getEpochs(), batch_size=self.getBatchSize(),
            optimizer=self.getOptimizer() or None, lr=self.getLearningRate() or None,
            job=job, seed=self.getSeed(), device=self.getDevice(), init_model=init,
            extra_args=[*self._worker_extra(), *extraArgs], progress=self.getShowProgress(),
            timeout=timeout))

    def _start(self, spark):
        """The warm-start bytes, a fresh job name and the fit's servers."""
        init = None
        if self.getInitModelPath():
            init = PSClassificationModel.load(self.getInitModelPath())._model_bytes
        job = f"spark-{uuid.uuid4().hex[:12]}"
        return self._cluster(spark), job, init

    def _model_of(self, data: bytes, rows: List) -> "PSClassificationModel":
        """A model of exported bytes carrying this Estimator's Params."""
        model = PSClassificationModel(data)
        self._copyValues(model)
        model.summary = rows
        return model

    def _train(self, spark, run) -> "PSClassificationModel":
        """Servers for the fit, ``run(cluster, job, init_bytes)`` (the
        summary rows), the export, and the model carrying this Estimator's
        Params."""
        cluster, job, init = self._start(spark)
        try:
            rows = run(cluster, job, init)
            data = cluster.export(job)
        finally:
            if cluster.owned:
                cluster.stop()
        return self._model_of(data, rows)


def read_safetensors_metadata(data: bytes) -> Dict[str, str]:
    """The ``__metadata__`` of a safetensors file (model, classes, ...)."""
    if len(data) < 8:
        raise ValueError("not a safetensors file (too short)")
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        raise ValueError("not a safetensors file (bad header length)")
    return json.loads(data[8:8 + n]).get("__metadata__", {})


class PSClassificationModel(Model, _PSParams, MLReadable, MLWritable):
    """A model trained by PSClassifier: safetensors bytes exported from the
    servers. ``transform`` adds ``predictionCol`` (double) and
    ``probabilityCol`` (vector) computed by ``ps-worker predict`` on the
    executors. ``summary`` holds the fit's per-worker rows."""

    def __init__(self, modelBytes: bytes = b"") -> None:
        super().__init__()
        self._model_bytes = bytes(modelBytes)
        self._bc = None
        self.summary: List = []

    def modelBytes(self) -> bytes:
        """The model as a safetensors file's bytes (``ps-ctl export``)."""
        return self._model_bytes

    @property
    def metadata(self) -> Dict[str, str]:
        return read_safetensors_metadata(self._model_bytes)

    @property
    def numClasses(self) -> int:
        return int(self.metadata.get("classes", 2))

    def trainingHistory(self, since: Optional[float] = None) -> List[Dict]:
        """The fit's per-epoch records, every worker's, in time order:
        dicts with ``worker``, ``epoch``, ``time`` (wall clock when the task
        read the worker's epoch line, seconds since 1970), ``samples``,
        ``loss``, ``accuracy`` and, when the workers evaluated held-out rows
        (``validationIndicatorCol``; ``eval`` in files mode),
        ``test_loss``/``test_accuracy`` (``test_auc`` for logreg). With
        ``since`` (e.g. ``spark.sparkContext.startTime / 1000``) each also
        has ``seconds``, its time since then. Empty for a snapshot or a
        loaded model."""
        out = []
        for r in self.summary:
            for e in json.loads(getattr(r, "history", None) or "[]"):
                e = dict(e, worker=int(r.worker))
                if since is not None and "time" in e:
                    e["seconds"] = e["time"] - since
                out.append(e)
        return sorted(out, key=lambda e: (e.get("time", 0.0), e["worker"]))

    def setFeaturesCol(self, v: str) -> "PSClassificationModel":
        return self._set(featuresCol=v)

    def setFeatureCols(self, v: List[str]) -> "PSClassificationModel":
        return self._set(featureCols=v)

    def setPredictionCol(self, v: str) -> "PSClassificationModel":
        return self._set(predictionCol=v)

    def setProbabilityCol(self, v: str) -> "PSClassificationModel":
        return self._set(probabilityCol=v)

    def _broadcast(self, sc):
        # One broadcast per model and SparkContext, kept alive with the model
        # since a transformed DataFrame is evaluated lazily, maybe many times.
        if self._bc is None or self._bc[0] is not sc:
            self._bc = (sc, sc.broadcast(self._model_bytes))
        return self._bc[1]

    def _transform(self, dataset):
        check_spark(dataset)
        meta = self.metadata
        spec = meta.get("model", self.getModelSpec())
        features = self._features()
        resolve_features(dataset, features, None)
        kind = model_kind(spec)
        dim = int(meta.get("input_dim", 0) or model_input_dim(spec) or 0)
        if kind == st.DENSE and dim == 0:
            raise ValueError(f"model {spec}: input width unknown (no input_dim in the file)")
        pred, prob = self.getPredictionCol(), self.getProbabilityCol()
        for c in (pred, prob):
            if c in dataset.columns:
                raise ValueError(f"output column {c!r} already exists in the DataFrame")
        schema = StructType(dataset.schema.fields + [StructField(pred, DoubleType()),
                                                     StructField(prob, VectorUDT())])
        bc = self._broadcast(dataset.sparkSession.sparkContext)
        return dataset.mapInArrow(_make_predict_task(bc, kind, dim, features, pred, prob),
                                  schema)

    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)


# ---- transform on the executors ----


class _Lines:
    """Reads whole lines from a pipe, n at a time, into one bytes block."""

    def __init__(self, f) -> None:
        self.fd = f.fileno()
        self.buf = bytearray()
        self.count = 0  # newlines in buf

    def take(self, n: int) -> Optional[bytes]:
        while self.count < n:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
            self.count += chunk.count(b"\n")
        nl = np.flatnonzero(np.frombuffer(self.buf, dtype=np.uint8) == 10)
        end = int(nl[n - 1]) + 1
        out = bytes(self.buf[:end])
        del self.buf[:end]
        self.count -= n
        return out


def _parse_predictions(block: bytes, n: int) -> np.ndarray:
    """``n`` lines of ``CLASS,P0,...`` -> float64 array [n, 1 + C]."""
    width = block[: block.index(b"\n")].count(b",") + 1
    vals = np.array(block.replace(b"\n", b",").split(b",")[:-1], dtype=np.float64)
    if vals.size != n * width:
        raise ValueError(f"ps-worker predict: malformed output ({vals.size} values for "
                         f"{n} rows of {width})")
    return vals.reshape(n, width)


def _probability_array(p: np.ndarray) -> pa.StructArray:
    """Dense pyspark.ml vectors (Arrow struct) from rows of probabilities."""
    n, c = p.shape
    offsets = pa.array(np.arange(0, (n + 1) * c, c, dtype=np.int32))
    values = pa.ListArray.from_arrays(offsets, pa.array(p.ravel(), pa.float64()))
    return pa.StructArray.from_arrays(
        [pa.array(np.ones(n, np.int8)), pa.nulls(n, pa.int32()),
         pa.nulls(n, pa.list_(pa.int32())), values],
        names=["type", "size", "indices", "values"])


def _make_predict_task(bc, kind: int, dim: int, features, pred: str, prob: str):
    def _predict(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        it = iter(batches)
        first = next((b for b in it if b.num_rows), None)
        if first is None:
            return
        argv = [find_binary("ps-worker"), "predict", "--model-file",
                _local_model_file(bc.value), "--format", "stream", "--data", "-",
                "--log-level", "warn"]
        w = WorkerProcess(argv, "ps-worker predict", stdout_lines=False)
        pending: "queue.Queue" = queue.Queue(maxsize=64)

        def feed() -> None:
            try:
                writer = st.StreamWriter(w, kind, dim)
                st.write_batch(writer, first, features, None)
                pending.put(first)
                for b in it:
                    if b.num_rows:
                        st.write_batch(writer, b, features, None)
                        pending.put(b)
                writer.close()
                w.proc.stdin.close()
                pending.put(None)
            except BaseException as e:  # handed to the reading thread
                pending.put(e)

        feeder = threading.Thread(target=feed, name="sparkps-predict-feed", daemon=True)
        feeder.start()
        lines = _Lines(w.proc.stdout)
        try:
            while True:
                b = pending.get()
                if b is None:
                    break
                if isinstance(b, BaseException):
                    raise b
                block = lines.take(b.num_rows)
                if block is None:
                    raise w.failure("before writing all predictions")
                out = _parse_predictions(block, b.num_rows)
                yield pa.RecordBatch.from_arrays(
                    list(b.columns) + [pa.array(out[:, 0]), _probability_array(out[:, 1:])],
                    names=b.schema.names + [pred, prob])
            w.finish()
        finally:
            w.close()  # an early stop (limit, error) unblocks the feeder's writes
            deadline = time.monotonic() + 10
            while feeder.is_alive() and time.monotonic() < deadline:
                try:
                    pending.get_nowait()  # a full queue must not hold it either
                except queue.Empty:
                    feeder.join(0.05)

    return _predict


# ---- persistence ----


class _ModelWriter(MLWriter):
    """Params as Spark ML metadata, the model bytes as one parquet row, so
    any Hadoop file system works."""

    def __init__(self, instance: PSClassificationModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sc,
                                         extraMetadata={"modelFormat": "safetensors"})
        self.sparkSession.createDataFrame(
            [(bytearray(self.instance._model_bytes),)], "model binary"
        ).coalesce(1).write.parquet(path.rstrip("/") + "/data")


class _ModelReader(MLReader):
    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> PSClassificationModel:
        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        row = self.sparkSession.read.parquet(path.rstrip("/") + "/data").first()
        model = self.cls(bytes(row[0]))
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model
