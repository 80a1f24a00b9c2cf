"""Reading request files: formats, columns, zero-copy/streaming, and the validation errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recvae.errors import UserError
from recvae.trace.format import trace_schema
from simcache.trace.io import load_requests, write_requests


def _trace_columns(n: int = 50, d: int = 6, k: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "vectors": rng.normal(size=(n, d)).astype(np.float32),
        "timestamp": np.sort(rng.integers(0, 1000, n)).astype(np.int64),
        "user_id": np.array([f"u{i % 7}" for i in range(n)], dtype=object),
        "seq": np.arange(n) // 7,
        "n_items": np.arange(n) + 1,
        "split": np.array(["train", "validation", "test"], dtype=object)[np.arange(n) % 3],
        "topk": rng.integers(0, 100, size=(n, k)).astype(np.int32),
    }


def _write_with_schema(path, cols: dict, metadata: dict | None = None, batches: int = 1) -> None:
    """A trace written directly with recvae.trace.format.trace_schema (as build-trace does)."""
    v, t = cols["vectors"], cols["topk"]
    meta = {b"simcache": json.dumps(metadata).encode()} if metadata is not None else None
    schema = trace_schema(v.shape[1], t.shape[1], meta)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for idx in np.array_split(np.arange(len(v)), batches):
            writer.write_batch(pa.record_batch([
                pa.array(cols["timestamp"][idx]),
                pa.array(list(cols["user_id"][idx]), type=pa.string()),
                pa.array(cols["seq"][idx], type=pa.int32()),
                pa.array(cols["n_items"][idx], type=pa.int32()),
                pa.array(list(cols["split"][idx]), type=pa.string()),
                pa.FixedSizeListArray.from_arrays(pa.array(v[idx].ravel()), v.shape[1]),
                pa.FixedSizeListArray.from_arrays(pa.array(t[idx].ravel()), t.shape[1]),
            ], schema=schema))


# ----------------------------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------------------------
def test_trace_schema_file_round_trip(tmp_path):
    cols = _trace_columns()
    path = tmp_path / "t.arrow"
    _write_with_schema(path, cols, metadata={"dataset": "x", "items": list(range(500))})
    req = load_requests(path)
    assert len(req) == 50 and req.dim == 6
    np.testing.assert_array_equal(req.vectors, cols["vectors"])
    assert req.vectors.dtype == np.float32 and req.vectors.flags.c_contiguous
    np.testing.assert_array_equal(req.timestamp, cols["timestamp"])
    assert req.timestamp.dtype == np.int64
    assert list(req.user_id) == list(cols["user_id"])
    assert list(req.split) == list(cols["split"])
    np.testing.assert_array_equal(req.seq, cols["seq"])
    np.testing.assert_array_equal(req.n_items, cols["n_items"])
    np.testing.assert_array_equal(req.topk, cols["topk"])
    assert req.topk.dtype == np.int32
    assert req.metadata == {"dataset": "x", "items": list(range(500))}
    assert req.vector_column == "embedding"
    assert req.n_chunks == 1
    assert set(req.column_names) == {"timestamp", "user_id", "seq", "n_items", "split", "topk"}


def test_single_batch_arrow_vectors_are_a_view_of_the_mapped_file(tmp_path):
    cols = _trace_columns(n=20)
    path = write_requests(tmp_path / "t.arrow", cols["vectors"])
    req = load_requests(path)
    v = req.vectors
    assert not v.flags.owndata and not v.flags.writeable  # zero-copy over the memory map
    np.testing.assert_array_equal(v, cols["vectors"])


def test_multi_batch_streams_blocks_without_joining(tmp_path):
    cols = _trace_columns(n=103)
    path = tmp_path / "t.arrow"
    _write_with_schema(path, cols, batches=4)
    req = load_requests(path)
    assert req.n_chunks == 4
    blocks = list(req.iter_vector_blocks(10))
    assert all(len(b) <= 10 for b in blocks)
    assert req._vectors is None  # streaming did not materialise the matrix
    np.testing.assert_array_equal(np.concatenate(blocks), cols["vectors"])
    np.testing.assert_array_equal(req.vectors, cols["vectors"])  # joined on demand
    np.testing.assert_array_equal(req.timestamp, cols["timestamp"])


def test_npy_is_memory_mapped(tmp_path):
    v = np.random.default_rng(1).normal(size=(30, 5)).astype(np.float32)
    np.save(tmp_path / "v.npy", v)
    req = load_requests(tmp_path / "v.npy")
    assert isinstance(req.vectors, np.memmap)
    np.testing.assert_array_equal(req.vectors, v)
    assert req.timestamp is None and req.user_id is None and req.topk is None and req.metadata == {}
    assert len(req) == 30 and req.dim == 5


def test_npy_float64_is_converted(tmp_path):
    v = np.random.default_rng(1).normal(size=(8, 3))
    np.save(tmp_path / "v.npy", v)
    req = load_requests(tmp_path / "v.npy")
    assert req.vectors.dtype == np.float32
    np.testing.assert_allclose(req.vectors, v.astype(np.float32))


def test_parquet_with_single_float_list_column(tmp_path):
    v = np.random.default_rng(2).normal(size=(12, 4)).astype(np.float32)
    table = pa.table({
        "id": np.arange(12),
        "emb": pa.array(list(v.astype(np.float64))),  # variable-size list<double>
        "timestamp": np.arange(12, dtype=np.int32),
    })
    pq.write_table(table, tmp_path / "x.parquet")
    req = load_requests(tmp_path / "x.parquet")
    assert req.vector_column == "emb" and req.dim == 4
    np.testing.assert_allclose(req.vectors, v)
    np.testing.assert_array_equal(req.timestamp, np.arange(12))
    assert req.timestamp.dtype == np.int64


def test_generic_file_ambiguous_vector_column_names_candidates(tmp_path):
    v = np.ones((3, 2), np.float32)
    table = pa.table({"a": pa.array(list(v)), "b": pa.array(list(v))})
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(UserError, match=r"x\.parquet: several vector columns \(a, b\).*--vector-column"):
        load_requests(tmp_path / "x.parquet")
    req = load_requests(tmp_path / "x.parquet", vector_column="b")
    assert req.vector_column == "b"
    with pytest.raises(UserError, match="no column 'c'"):
        load_requests(tmp_path / "x.parquet", vector_column="c")


def test_feather_file_and_arrow_stream(tmp_path):
    import pyarrow.feather as feather

    v = np.random.default_rng(3).normal(size=(9, 3)).astype(np.float32)
    table = pa.table({"vec": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), 3)})
    feather.write_feather(table, tmp_path / "x.feather", compression="uncompressed")
    np.testing.assert_array_equal(load_requests(tmp_path / "x.feather").vectors, v)
    with pa.OSFile(str(tmp_path / "s.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    np.testing.assert_array_equal(load_requests(tmp_path / "s.arrow").vectors, v)


def test_head_keeps_columns_consistent(tmp_path):
    cols = _trace_columns(n=40)
    path = tmp_path / "t.arrow"
    _write_with_schema(path, cols, batches=3)
    req = load_requests(path).head(17)
    assert len(req) == 17
    np.testing.assert_array_equal(req.vectors, cols["vectors"][:17])
    np.testing.assert_array_equal(req.timestamp, cols["timestamp"][:17])
    np.testing.assert_array_equal(req.topk, cols["topk"][:17])
    assert list(req.user_id) == list(cols["user_id"][:17])


def test_write_requests_round_trip_with_batches(tmp_path):
    cols = _trace_columns(n=25)
    path = write_requests(tmp_path / "w.arrow", cols["vectors"], timestamp=cols["timestamp"],
                          user_id=cols["user_id"], split=cols["split"], topk=cols["topk"],
                          metadata={"source": "test"}, batch_rows=10)
    req = load_requests(path)
    assert req.n_chunks == 3
    np.testing.assert_array_equal(req.vectors, cols["vectors"])
    np.testing.assert_array_equal(req.topk, cols["topk"])
    assert req.metadata == {"source": "test"}
    assert req.seq is None


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"nope\.arrow: no such file"):
        load_requests(tmp_path / "nope.arrow")


def test_unknown_extension(tmp_path):
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(UserError, match=r"x\.csv: unknown request file type '\.csv'"):
        load_requests(tmp_path / "x.csv")


def test_unreadable_contents(tmp_path):
    (tmp_path / "x.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(UserError, match=r"x\.arrow: not an Arrow IPC file"):
        load_requests(tmp_path / "x.arrow")
    (tmp_path / "x.npy").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"x\.npy"):
        load_requests(tmp_path / "x.npy")
    (tmp_path / "x.parquet").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"x\.parquet"):
        load_requests(tmp_path / "x.parquet")


def test_empty_trace(tmp_path):
    path = write_requests(tmp_path / "e.arrow", np.zeros((0, 4), np.float32), timestamp=np.zeros(0, np.int64))
    with pytest.raises(UserError, match=r"e\.arrow: the file has no requests"):
        load_requests(path)
    np.save(tmp_path / "e.npy", np.zeros((0, 4), np.float32))
    with pytest.raises(UserError, match="no requests"):
        load_requests(tmp_path / "e.npy")


def test_not_two_dimensional(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros(5, np.float32))
    with pytest.raises(UserError, match=r"v\.npy: expected a 2-D matrix.*\(5,\)"):
        load_requests(tmp_path / "v.npy")
    pq.write_table(pa.table({"x": np.arange(3.0)}), tmp_path / "s.parquet")
    with pytest.raises(UserError, match=r"s\.parquet: column 'x' has type double, not a list"):
        load_requests(tmp_path / "s.parquet", vector_column="x")


def test_non_float(tmp_path):
    np.save(tmp_path / "i.npy", np.zeros((3, 2), np.int64))
    with pytest.raises(UserError, match=r"i\.npy: vectors have dtype int64, not floating point"):
        load_requests(tmp_path / "i.npy")
    pq.write_table(pa.table({"v": pa.array([[1, 2], [3, 4]])}), tmp_path / "i.parquet")
    with pytest.raises(UserError, match="holds int64 values, not floating point"):
        load_requests(tmp_path / "i.parquet", vector_column="v")


def test_ragged_lists(tmp_path):
    pq.write_table(pa.table({"v": pa.array([[1.0, 2.0], [3.0, 4.0], [5.0]])}), tmp_path / "r.parquet")
    with pytest.raises(UserError, match=r"vectors of different lengths \(1 to 2; row 2"):
        load_requests(tmp_path / "r.parquet")


@pytest.mark.parametrize("bad,word", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")])
def test_non_finite_names_first_bad_row(tmp_path, bad, word):
    v = np.zeros((10, 3), np.float32)
    v[6, 1] = bad
    v[8, 0] = np.nan
    np.save(tmp_path / "v.npy", v)
    with pytest.raises(UserError, match=rf"v\.npy: vector of request 6 contains {word}"):
        load_requests(tmp_path / "v.npy")
    path = write_requests(tmp_path / "v.arrow", v, batch_rows=4)  # bad row in the second batch
    with pytest.raises(UserError, match=rf"v\.arrow: vector of request 6 contains {word}"):
        load_requests(path)
    assert len(load_requests(path, validate=False)) == 10  # the scan can be skipped


def test_dimension_mismatch(tmp_path):
    path = write_requests(tmp_path / "v.arrow", np.zeros((3, 4), np.float32))
    with pytest.raises(UserError, match=r"v\.arrow: vectors have dimension 4, expected 8"):
        load_requests(path, expect_dim=8)
    assert load_requests(path, expect_dim=4).dim == 4


def test_decreasing_timestamps_refused_unless_sort(tmp_path):
    cols = _trace_columns(n=12)
    ts = np.array([5, 5, 3, 9, 1, 1, 2, 7, 7, 7, 0, 8], dtype=np.int64)
    path = write_requests(tmp_path / "t.arrow", cols["vectors"], timestamp=ts, user_id=cols["user_id"],
                          topk=cols["topk"], batch_rows=5)
    with pytest.raises(UserError, match=r"t\.arrow: timestamps decrease at request 2 \(5 then 3\).*--sort"):
        load_requests(path)
    req = load_requests(path, sort=True)
    order = np.argsort(ts, kind="stable")
    # stable: requests with equal timestamps keep file order
    assert order.tolist() == [10, 4, 5, 6, 2, 0, 1, 7, 8, 9, 11, 3]
    np.testing.assert_array_equal(req.timestamp, ts[order])
    np.testing.assert_array_equal(req.vectors, cols["vectors"][order])
    np.testing.assert_array_equal(req.topk, cols["topk"][order])
    assert list(req.user_id) == list(cols["user_id"][order])
    np.testing.assert_array_equal(np.concatenate(list(req.iter_vector_blocks(4))), cols["vectors"][order])
    head = req.head(5)
    np.testing.assert_array_equal(head.vectors, cols["vectors"][order[:5]])
    assert list(head.user_id) == list(cols["user_id"][order[:5]])


def test_bad_metadata_is_ignored(tmp_path):
    v = np.zeros((2, 2), np.float32)
    table = pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), 2)})
    table = table.replace_schema_metadata({b"simcache": b"{not json"})
    with pa.OSFile(str(tmp_path / "m.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    assert load_requests(tmp_path / "m.arrow").metadata == {}
