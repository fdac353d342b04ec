"""The ``stream`` format (spark-connector/FORMAT.md) and the conversion of
Arrow record batches into it.

Everything here is vectorised with numpy: a batch costs a handful of array
operations whatever its number of rows, never a Python loop per row.

Writers: :class:`StreamWriter` frames rows (dense or sparse) into batches
within the format's limits. Converters: :func:`dense_rows` and
:func:`sparse_rows` turn the columns of a ``pyarrow.RecordBatch`` into the
arrays the writer takes, from ``pyspark.ml.linalg`` vectors (Arrow struct
``<type, size, indices, values>``), ``array<float|double>`` columns, or a
list of numeric columns.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

HEADER = struct.Struct("<4sHBBQ")  # magic, version, kind, reserved, dim
BATCH = struct.Struct("<IIQ")  # rows, width, payload_bytes
MAGIC = b"SPKS"
VERSION = 1
DENSE, SPARSE = 1, 2
END = bytes(16)
MAX_ROWS = 1 << 20
MAX_PAYLOAD = 1 << 28
MAX_DENSE_DIM = 1 << 24

Features = Union[str, Sequence[str]]


class StreamWriter:
    """Writes one stream to ``out`` (any object with ``write``).

    ``kind`` is :data:`DENSE` or :data:`SPARSE`; ``dim`` the features per
    dense row, or the sparse feature space (0: unknown). The header goes out
    with the first write; :meth:`close` writes the end marker (an empty
    stream is a header and the marker). Batches are split so that none
    exceeds 2^20 rows or 2^28 payload bytes. Not thread-safe.
    """

    def __init__(self, out: BinaryIO, kind: int, dim: int):
        if kind not in (DENSE, SPARSE):
            raise ValueError(f"kind must be DENSE or SPARSE, got {kind}")
        if kind == DENSE and not 1 <= dim <= MAX_DENSE_DIM:
            raise ValueError(f"dense dim must be 1..{MAX_DENSE_DIM}, got {dim}")
        self.out, self.kind, self.dim = out, kind, int(dim)
        self.rows = 0
        self._started = False
        self._closed = False

    def _start(self) -> None:
        if not self._started:
            self.out.write(HEADER.pack(MAGIC, VERSION, self.kind, 0, self.dim))
            self._started = True

    def write_dense(self, labels: np.ndarray, x: np.ndarray) -> None:
        """Appends ``len(labels)`` rows; ``x`` has shape (rows, dim)."""
        if self.kind != DENSE:
            raise ValueError("write_dense on a sparse stream")
        y = np.ascontiguousarray(labels, dtype="<f4")
        x = np.ascontiguousarray(x, dtype="<f4")
        if x.ndim != 2 or x.shape != (len(y), self.dim):
            raise ValueError(
                f"dense rows: want shape ({len(y)}, {self.dim}), got {x.shape}"
            )
        self._start()
        per = max(1, min(MAX_ROWS, MAX_PAYLOAD // (4 * (1 + self.dim))))
        for s in range(0, len(y), per):
            yb, xb = y[s : s + per], x[s : s + per]
            n = len(yb)
            self.out.write(BATCH.pack(n, self.dim, 4 * n * (1 + self.dim)))
            self.out.write(yb.data)
            self.out.write(xb.data)
        self.rows += len(y)

    def write_sparse(
        self,
        labels: np.ndarray,
        counts: np.ndarray,
        ids: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Appends rows given as per-row nonzero ``counts`` with the
        concatenated ``ids`` (strictly increasing within a row) and
        ``values`` (FORMAT.md, sparse payload)."""
        if self.kind != SPARSE:
            raise ValueError("write_sparse on a dense stream")
        y = np.ascontiguousarray(labels, dtype="<f4")
        c = np.ascontiguousarray(counts, dtype="<u4")
        i = np.ascontiguousarray(ids, dtype="<u8")
        v = np.ascontiguousarray(values, dtype="<f4")
        if len(c) != len(y) or len(i) != len(v) or int(c.sum()) != len(i):
            raise ValueError(
                f"sparse rows: {len(y)} labels, {len(c)} counts adding up to "
                f"{int(c.sum())}, {len(i)} ids, {len(v)} values"
            )
        self._start()
        self._sparse(y, c, i, v)
        self.rows += len(y)

    def _sparse(self, y, c, i, v) -> None:
        n, nnz = len(y), len(i)
        if n == 0:
            return
        payload = 8 * n + 12 * nnz
        if n > MAX_ROWS or (payload > MAX_PAYLOAD and n > 1):
            h = n // 2
            k = int(c[:h].sum())
            self._sparse(y[:h], c[:h], i[:k], v[:k])
            self._sparse(y[h:], c[h:], i[k:], v[k:])
            return
        if payload > MAX_PAYLOAD:
            raise ValueError(f"one row of {nnz} nonzeros exceeds a batch")
        self.out.write(BATCH.pack(n, nnz, payload))
        for a in (y, c, i, v):
            self.out.write(a.data)

    def close(self) -> None:
        """Writes the end marker (and the header if nothing was written).
        Idempotent; does not close ``out``."""
        if not self._closed:
            self._start()
            self.out.write(END)
            self._closed = True


# ---- Arrow columns -> arrays ----


class SchemaError(ValueError):
    """A column is missing or has a type the connector cannot read."""


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    idx = batch.schema.get_field_index(name)
    if idx < 0:
        raise SchemaError(
            f"column {name!r} not found; the columns are "
            f"{', '.join(batch.schema.names)}"
        )
    col = batch.column(idx)
    if col.null_count:
        raise SchemaError(f"column {name!r} has {col.null_count} null rows")
    return col


def is_vector_type(t: pa.DataType) -> bool:
    """True for the Arrow form of a ``pyspark.ml.linalg`` vector."""
    return pa.types.is_struct(t) and {t.field(k).name for k in range(t.num_fields)} >= {
        "type",
        "size",
        "indices",
        "values",
    }


def _is_list(t: pa.DataType) -> bool:
    return (
        pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    )


def labels_of(batch: pa.RecordBatch, label: Optional[str]) -> np.ndarray:
    """The label column as float32 (zeros when ``label`` is None)."""
    if label is None:
        return np.zeros(batch.num_rows, dtype="<f4")
    col = _column(batch, label)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
            or pa.types.is_boolean(col.type)):
        raise SchemaError(f"label column {label!r} is {col.type}, not numeric")
    y = col.to_numpy(zero_copy_only=False).astype("<f4")
    bad = ~np.isfinite(y)
    if bad.any():
        raise SchemaError(
            f"label column {label!r}: row {int(np.argmax(bad))} is not finite"
        )
    return y


def _list_parts(arr: pa.Array) -> Tuple[np.ndarray, np.ndarray]:
    """(lengths, flat values) of a list array, slices and nulls honoured."""
    lengths = arr.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    flat = arr.flatten().to_numpy(zero_copy_only=False)
    return lengths.astype(np.int64), flat


def _vector_elements(col: pa.Array):
    """Decodes a vector column into per-element arrays: the row of every
    stored value, its feature id, the value, whether it came from a sparse
    vector, and each row's vector size."""
    parts = dict(zip([col.type.field(k).name for k in range(col.type.num_fields)],
                     col.flatten()))
    kind = parts["type"].to_numpy(zero_copy_only=False)
    lengths, vals = _list_parts(parts["values"])
    n = len(kind)
    sparse_row = kind == 0
    row = np.repeat(np.arange(n), lengths)
    starts = np.cumsum(lengths) - lengths
    ids = np.arange(len(vals)) - np.repeat(starts, lengths)  # dense: position
    from_sparse = sparse_row[row]
    if sparse_row.any():
        _, ind = _list_parts(parts["indices"])
        if len(ind) != int(from_sparse.sum()):
            raise SchemaError("sparse vectors with indices and values of different lengths")
        ids[from_sparse] = ind
        size = parts["size"].fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        sizes = np.where(sparse_row, size, lengths)
    else:
        sizes = lengths
    return row, ids, vals, from_sparse, sizes


def _all_dense_values(col: pa.Array) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(lengths, flat values) of a vector column whose rows are all dense
    vectors; None when one is sparse."""
    names = [col.type.field(k).name for k in range(col.type.num_fields)]
    parts = dict(zip(names, col.flatten()))
    kind = parts["type"].to_numpy(zero_copy_only=False)
    if len(kind) == 0 or not (kind == 1).all():
        return None
    return _list_parts(parts["values"])


def dense_rows(
    batch: pa.RecordBatch, features: Features, label: Optional[str]
) -> Tuple[np.ndarray, np.ndarray]:
    """(labels float32 [n], features float32 [n, dim]) of a record batch.

    ``features``: a vector column (dense and sparse rows may mix), an
    ``array<float|double>`` column, or a list of numeric column names.
    Every row must have the same width."""
    y = labels_of(batch, label)
    n = batch.num_rows
    if not isinstance(features, str):
        cols = []
        for name in features:
            c = _column(batch, name)
            if not (pa.types.is_integer(c.type) or pa.types.is_floating(c.type)
                    or pa.types.is_boolean(c.type)):
                raise SchemaError(f"feature column {name!r} is {c.type}, not numeric")
            cols.append(c.to_numpy(zero_copy_only=False).astype("<f4"))
        x = np.column_stack(cols) if cols else np.zeros((n, 0), "<f4")
        return y, x
    col = _column(batch, features)
    if is_vector_type(col.type):
        dense = _all_dense_values(col)
        if dense is not None:  # the common case: no index arrays to build
            lengths, vals = dense
            return y, vals.astype("<f4").reshape(n, _one_width(lengths, features))
        row, ids, vals, from_sparse, sizes = _vector_elements(col)
        dim = _one_width(sizes, features)
        if not from_sparse.any():
            return y, vals.astype("<f4").reshape(n, dim)
        x = np.zeros((n, dim), dtype="<f4")
        x[row, ids] = vals
        return y, x
    if _is_list(col.type):
        lengths, flat = _list_parts(col)
        dim = _one_width(lengths, features)
        return y, flat.astype("<f4").reshape(n, dim)
    raise SchemaError(
        f"features column {features!r} is {col.type}; expected a vector "
        "(pyspark.ml.linalg), array<float|double>, or a list of numeric columns"
    )


def _one_width(widths: np.ndarray, name: str) -> int:
    if len(widths) == 0:
        return 0
    lo, hi = int(widths.min()), int(widths.max())
    if lo != hi:
        raise SchemaError(f"features column {name!r} has rows of {lo} and {hi} features")
    return lo


def sparse_rows(
    batch: pa.RecordBatch, features: Features, label: Optional[str]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(labels, counts, ids, values, dim) of a record batch for a sparse
    stream. Sparse vectors keep their stored entries; dense rows (dense
    vectors, arrays, numeric columns) keep their nonzeros."""
    n = batch.num_rows
    if isinstance(features, str):
        col = _column(batch, features)
        if is_vector_type(col.type):
            y = labels_of(batch, label)
            row, ids, vals, from_sparse, sizes = _vector_elements(col)
            keep = from_sparse | (vals != 0)
            row, ids, vals = row[keep], ids[keep], vals[keep]
            counts = np.bincount(row, minlength=n)
            dim = int(sizes.max()) if len(sizes) else 0
            return y, counts, ids, vals, dim
    y, x = dense_rows(batch, features, label)
    row, ids = np.nonzero(x)
    counts = np.bincount(row, minlength=n)
    return y, counts, ids, x[row, ids], x.shape[1]


def write_batch(
    w: StreamWriter, batch: pa.RecordBatch, features: Features, label: Optional[str]
) -> None:
    """Converts one record batch and appends it to ``w``."""
    if batch.num_rows == 0:
        return
    if w.kind == DENSE:
        y, x = dense_rows(batch, features, label)
        if x.shape[1] != w.dim:
            raise SchemaError(
                f"features have {x.shape[1]} values per row, the model takes {w.dim}"
            )
        w.write_dense(y, x)
    else:
        y, c, i, v, _ = sparse_rows(batch, features, label)
        w.write_sparse(y, c, i, v)


def feature_width(batch: pa.RecordBatch, features: Features) -> int:
    """Features per row of a batch (dense width, or the largest vector
    size for sparse vectors)."""
    if not isinstance(features, str):
        return len(features)
    col = _column(batch, features)
    if is_vector_type(col.type):
        return int(_vector_elements(col)[4].max()) if batch.num_rows else 0
    if _is_list(col.type):
        lengths, _ = _list_parts(col)
        return _one_width(lengths, features)
    raise SchemaError(f"features column {features!r} is {col.type}")


def encode(kind: int, dim: int, batches: List[pa.RecordBatch], features: Features,
           label: Optional[str]) -> bytes:
    """The whole stream of some record batches, as bytes (tests, files)."""
    import io

    buf = io.BytesIO()
    w = StreamWriter(buf, kind, dim)
    for b in batches:
        write_batch(w, b, features, label)
    w.close()
    return buf.getvalue()
