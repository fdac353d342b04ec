"""The stream writer against FORMAT.md's worked examples, and the Arrow
conversions (vectors, arrays, numeric columns) it is fed from."""
import io

import numpy as np
import pyarrow as pa
import pytest

from sparkps import stream as st

DENSE_EXAMPLE = bytes.fromhex(
    "53504b53 0100 01 00 0200000000000000"
    "02000000 02000000 1800000000000000"
    "0000803f 00000000"
    "0000003f 000000c0 00000000 00004040"
    + "00" * 16)

SPARSE_EXAMPLE = bytes.fromhex(
    "53504b53 0100 02 00 0000000000000000"
    "02000000 02000000 2800000000000000"
    "0000803f 00000000"
    "02000000 00000000"
    "0300000000000000 0700000000000000"
    "0000003f 0000803f"
    + "00" * 16)

VEC = pa.struct([("type", pa.int8()), ("size", pa.int32()),
                 ("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.float64()))])


def vectors(rows):
    """Arrow form of pyspark.ml vectors: a list of dense lists or
    (size, indices, values) tuples."""
    out = []
    for r in rows:
        if isinstance(r, tuple):
            out.append({"type": 0, "size": r[0], "indices": r[1], "values": r[2]})
        else:
            out.append({"type": 1, "size": None, "indices": None, "values": r})
    return pa.array(out, VEC)


def test_dense_worked_example():
    buf = io.BytesIO()
    w = st.StreamWriter(buf, st.DENSE, 2)
    w.write_dense(np.array([1.0, 0.0]), np.array([[0.5, -2.0], [0.0, 3.0]]))
    w.close()
    assert buf.getvalue() == DENSE_EXAMPLE
    assert len(DENSE_EXAMPLE) == 72


def test_sparse_worked_example():
    buf = io.BytesIO()
    w = st.StreamWriter(buf, st.SPARSE, 0)
    w.write_sparse(np.array([1.0, 0.0]), np.array([2, 0]), np.array([3, 7]),
                   np.array([0.5, 1.0]))
    w.close()
    assert buf.getvalue() == SPARSE_EXAMPLE


def test_sparse_example_from_arrow_sparse_vectors():
    b = pa.RecordBatch.from_pydict({"label": [1.0, 0.0],
                                    "features": vectors([(8, [3, 7], [0.5, 1.0]),
                                                         (8, [], [])])})
    got = st.encode(st.SPARSE, 0, [b], "features", "label")
    assert got == SPARSE_EXAMPLE


def test_dense_example_from_vectors_arrays_and_columns():
    label = pa.array([1.0, 0.0])
    by_vector = pa.RecordBatch.from_pydict({"label": label,
                                            "features": vectors([[0.5, -2.0], [0.0, 3.0]])})
    by_sparse = pa.RecordBatch.from_pydict({"label": label, "features": vectors(
        [(2, [0, 1], [0.5, -2.0]), (2, [1], [3.0])])})
    by_array = pa.RecordBatch.from_pydict({"label": label, "features": pa.array(
        [[0.5, -2.0], [0.0, 3.0]], pa.list_(pa.float32()))})
    by_cols = pa.RecordBatch.from_pydict({"label": pa.array([1, 0]), "a": [0.5, 0.0],
                                          "b": [-2, 3]})
    for b, f in ((by_vector, "features"), (by_sparse, "features"), (by_array, "features"),
                 (by_cols, ["a", "b"])):
        assert st.encode(st.DENSE, 2, [b], f, "label") == DENSE_EXAMPLE, f


def test_mixed_dense_and_sparse_vectors_densify():
    b = pa.RecordBatch.from_pydict({"label": [0.0, 1.0, 2.0], "features": vectors(
        [[1.0, 2.0, 3.0], (3, [2], [9.0]), [0.0, 0.0, 4.0]])})
    y, x = st.dense_rows(b, "features", "label")
    np.testing.assert_array_equal(x, [[1, 2, 3], [0, 0, 9], [0, 0, 4]])
    np.testing.assert_array_equal(y, [0, 1, 2])
    y, c, i, v, dim = st.sparse_rows(b, "features", "label")
    np.testing.assert_array_equal(c, [3, 1, 1])  # dense rows keep their nonzeros
    np.testing.assert_array_equal(i, [0, 1, 2, 2, 2])
    np.testing.assert_array_equal(v, [1, 2, 3, 9, 4])
    assert dim == 3


def test_sliced_batch_honours_offsets():
    b = pa.RecordBatch.from_pydict({"label": [0.0, 1.0, 2.0], "features": vectors(
        [[1.0, 2.0], (2, [1], [5.0]), [7.0, 8.0]])}).slice(1, 2)
    y, x = st.dense_rows(b, "features", "label")
    np.testing.assert_array_equal(x, [[0, 5], [7, 8]])
    np.testing.assert_array_equal(y, [1, 2])


def test_sliced_dense_vectors_take_the_fast_path_with_offsets():
    b = pa.RecordBatch.from_pydict({"label": [0.0, 1.0, 2.0], "features": vectors(
        [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])}).slice(1, 2)
    assert st._all_dense_values(b.column(1)) is not None
    y, x = st.dense_rows(b, "features", "label")
    np.testing.assert_array_equal(x, [[3, 4], [5, 6]])
    assert x.dtype == np.float32
    np.testing.assert_array_equal(y, [1, 2])


def test_empty_stream_is_header_and_end_marker():
    buf = io.BytesIO()
    st.StreamWriter(buf, st.DENSE, 3).close()
    assert buf.getvalue() == st.HEADER.pack(b"SPKS", 1, 1, 0, 3) + bytes(16)


def test_large_dense_input_is_split_within_the_limits(monkeypatch):
    monkeypatch.setattr(st, "MAX_ROWS", 4)
    buf = io.BytesIO()
    w = st.StreamWriter(buf, st.DENSE, 1)
    w.write_dense(np.arange(10), np.arange(10).reshape(10, 1))
    w.close()
    raw = buf.getvalue()
    rows = []
    at = 16
    while True:
        n, width, payload = st.BATCH.unpack_from(raw, at)
        at += 16 + payload
        if n == 0:
            break
        rows.append(n)
    assert rows == [4, 4, 2] and at == len(raw)


def test_errors_name_the_column():
    b = pa.RecordBatch.from_pydict({"label": [1.0], "x": ["a"]})
    with pytest.raises(st.SchemaError, match="'nope' not found.*label, x"):
        st.dense_rows(b, "nope", "label")
    with pytest.raises(st.SchemaError, match="'x' is string"):
        st.dense_rows(b, "x", "label")
    ragged = pa.RecordBatch.from_pydict({"label": [1.0, 0.0], "f": [[1.0], [1.0, 2.0]]})
    with pytest.raises(st.SchemaError, match="rows of 1 and 2 features"):
        st.dense_rows(ragged, "f", "label")
    nan = pa.RecordBatch.from_pydict({"label": [float("nan")], "f": [[1.0]]})
    with pytest.raises(st.SchemaError, match="row 0 is not finite"):
        st.dense_rows(nan, "f", "label")
