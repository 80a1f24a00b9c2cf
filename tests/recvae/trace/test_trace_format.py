"""The trace format module: pinned bytes (golden checksums taken before the format and builder were
merged into one module), one metadata encoding for every writer, the lenient metadata reader."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import recvae.trace.build as build_module
from recvae.model import RecVAE, RecVAEConfig
from recvae.trace import format as tf
from recvae.trace.build import write_trace_for
from recvae.trace.recvae_encoder import RecVAEEncoder
from simcache.trace.io import load_requests, write_requests


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fixed_columns() -> tuple[tf.TraceColumns, np.random.Generator]:
    """Fixed trace columns, and the generator that drew them (the request test draws on from it)."""
    rng = np.random.default_rng(3)
    m = 40
    cols = tf.TraceColumns(
        timestamp=np.sort(rng.integers(0, 10**9, m)).astype(np.int64),
        user_code=rng.integers(0, 5, m).astype(np.int64),
        user_labels=np.array(["7", "11", "a", "b", "300"]),
        seq=np.arange(m, dtype=np.int32) % 4,
        n_items=np.arange(1, m + 1, dtype=np.int32),
        split_code=(np.arange(m) % 3).astype(np.int8),
        embedding=rng.normal(size=(m, 6)).astype(np.float32),
        topk=rng.integers(-1, 50, (m, 3)).astype(np.int32),
    )
    return cols, rng


FIXED_META = {"format": "simcache-trace", "format_version": 1, "dataset": "golden", "items": [1, 2, 3],
              "x": {"b": 1.5, "a": None}}


def test_trace_writer_bytes_are_pinned(tmp_path: Path) -> None:
    """Same columns and metadata, same bytes as the writer gave before it moved into format.py."""
    path = tf.write_trace(tmp_path / "t.arrow", fixed_columns()[0], FIXED_META, batch_rows=16)
    assert sha(path.read_bytes()) == "23118784debad8863eb6d57ae39e2e9977bc0e461f72cd4638a0c3f97feafade"
    with pa.memory_map(str(path)) as src:
        assert pa.ipc.open_file(src).num_record_batches == 3


def test_request_writer_bytes_are_pinned(tmp_path: Path) -> None:
    rng = fixed_columns()[1]
    v = rng.normal(size=(30, 5)).astype(np.float32)
    users = np.array([f"u{i % 4}" for i in range(30)], dtype=object)
    path = write_requests(tmp_path / "r.arrow", v, timestamp=np.arange(30, dtype=np.int64) * 3, user_id=users,
                          batch_rows=7)
    assert sha(path.read_bytes()) == "112a6a1062de379fd760b77c74dbe24abc11ee4eab167cbc1cf5a003b8566700"


def test_one_metadata_encoding_for_traces_and_request_files(tmp_path: Path) -> None:
    meta = {"source": "x", "b": [1, 2], "nested": {"z": 1, "a": "é"}}
    path = write_requests(tmp_path / "r.arrow", np.zeros((2, 3), np.float32), metadata=meta)
    raw = pa.ipc.open_file(pa.memory_map(str(path))).schema.metadata
    assert raw == tf.encode_metadata(meta)
    assert raw[tf.METADATA_KEY] == json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    assert tf.read_metadata(path) == meta == load_requests(path).metadata
    empty = write_requests(tmp_path / "e.arrow", np.zeros((2, 3), np.float32), metadata={})
    assert tf.read_metadata(empty) == {}
    none = write_requests(tmp_path / "n.arrow", np.zeros((2, 3), np.float32))
    assert pa.ipc.open_file(pa.memory_map(str(none))).schema.metadata is None


def test_metadata_reader_is_lenient_about_what_it_cannot_decode(tmp_path: Path, caplog) -> None:
    schema = pa.schema([pa.field("x", pa.int32())], metadata={tf.METADATA_KEY: b"{not json"})
    with caplog.at_level("WARNING"):
        assert tf.decode_metadata(schema, "f.arrow") == {}
    assert "f.arrow" in caplog.text and "not valid JSON" in caplog.text
    assert tf.decode_metadata(schema.with_metadata({tf.METADATA_KEY: b"[1, 2]"})) == {"value": [1, 2]}
    assert tf.decode_metadata(schema.remove_metadata()) == {}


def test_request_schema_is_the_trace_schema_restricted_to_the_columns_given(tmp_path: Path) -> None:
    full = tf.trace_schema(4, 3)
    assert full.names == ["timestamp", "user_id", "seq", "n_items", "split", "embedding", "topk"]
    some = tf.trace_schema(4, None, columns=[tf.SPLIT, tf.TIMESTAMP])
    assert some.names == ["timestamp", "split", "embedding"]
    assert all(some.field(n).type == full.field(n).type for n in some.names)
    path = write_requests(tmp_path / "r.arrow", np.zeros((2, 4), np.float32), split=np.array(["train", "test"]),
                          timestamp=np.array([1, 2]))
    assert pa.ipc.open_file(pa.memory_map(str(path))).schema.equals(some)
    with pytest.raises(ValueError, match="unknown trace columns"):
        tf.trace_schema(4, None, columns=["vector"])


def test_model_type_defaults_to_recvae_and_is_recorded_otherwise() -> None:
    assert tf.model_metadata("recvae", {"checkpoint_sha256": "x"}) == {"checkpoint_sha256": "x"}
    assert tf.model_metadata("als", {"checkpoint_sha256": "x"}) == {"checkpoint_sha256": "x", "type": "als"}
    assert tf.model_type({"model": {"checkpoint_sha256": "x"}}) == "recvae"
    assert tf.model_type({"model": {"type": "als"}}) == "als"
    assert tf.model_type({}) == "recvae"


def test_catalogue_path_is_beside_the_trace() -> None:
    assert tf.catalogue_path(Path("traces/ml20m_abc.arrow")) == Path("traces/ml20m_abc.catalogue.arrow")
    assert tf.catalogue_path("a/b.c.ipc") == Path("a/b.c.catalogue.arrow")


# ----------------------------------------------------------------------------------------------
# A whole build, pinned
# ----------------------------------------------------------------------------------------------
SYN = dict(n_users=150, n_items=200, mean_items=150, seed=7)

# Digests of the trace below as built before the builder took an encoder (commit 4d67ccc); metadata and
# file re-pinned for trace format 2 and parser version 2 (only the source digest and the checksums moved).
GOLDEN = {
    "metadata": "2262c85023def52edefaa6eb6256d55e8a29a3fbb3ab41ebe609306c0373fd87",
    "rows": "a47b247af727930c19fe138e84c4fffe5fbfb8cc9938af73b34fa65c71ff0c4d",
    "embedding": "dc9b729813f30f75f676565b70c58f37583e42ad27ccd9da0d52f5b16f4c0673",
    "topk": "14dfcedbdc96cd8bafc106ad1fc3292e6ef0e92b065f61125321c5bf6fedaed9",
    "file": "b4b5278c2a53e5e9dcdab0a28db03e30dec851ff25dfa41ade5c70f1713e541d",
}


@pytest.fixture(scope="module")
def golden_inputs(synthetic_data):
    prepared, df = synthetic_data(**SYN)
    torch.manual_seed(0)
    model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=16, latent_dim=6)).eval()
    return prepared, df, model


def golden_build(golden_inputs, out: Path, monkeypatch: pytest.MonkeyPatch, **kw):
    prepared, df, model = golden_inputs
    monkeypatch.setattr(build_module, "__version__", "0.1.0")  # the version the digests were taken with
    enc = RecVAEEncoder(model, checkpoint_sha256="a" * 64, info={"epoch": 3, "best_score": 0.25})
    return write_trace_for(prepared=prepared, interactions=df, encoder=enc, out=out, progress=False, topk=9,
                           seed=2, users=60, **kw)


def digests(path: Path) -> dict[str, str]:
    t = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    ints = b"".join(t.column(c).to_numpy().astype("<i8").tobytes() for c in ("timestamp", "seq", "n_items"))
    strs = "\n".join(t.column("user_id").to_pylist() + t.column("split").to_pylist()).encode()
    return {
        # without the checksum entry: it hashes the float columns, which are machine-dependent
        "metadata": sha(tf.encode_metadata({k: v for k, v in tf.decode_metadata(t.schema).items()
                                            if k != tf.CHECKSUM_KEY})[tf.METADATA_KEY]),
        "rows": sha(ints + strs),
        "embedding": sha(np.stack(t.column("embedding").to_numpy(zero_copy_only=False)).astype("<f4").tobytes()),
        "topk": sha(np.stack(t.column("topk").to_numpy(zero_copy_only=False)).astype("<i4").tobytes()),
        "file": sha(path.read_bytes()),
    }


def test_a_build_without_catalogue_gives_the_bytes_of_before(golden_inputs, tmp_path, monkeypatch) -> None:
    """Metadata and the exact columns are pinned everywhere; the float columns and so the whole file
    are pinned where the floating-point sums come out as on the machine that took the digests."""
    stats = golden_build(golden_inputs, tmp_path / "g.arrow", monkeypatch, catalogue=False)
    got = digests(stats.path)
    assert stats.rows > stats.users  # the schedule embeds some users more than once
    assert got["metadata"] == GOLDEN["metadata"]
    assert got["rows"] == GOLDEN["rows"]
    if got["embedding"] == GOLDEN["embedding"] and got["topk"] == GOLDEN["topk"]:
        assert got["file"] == GOLDEN["file"]
    assert stats.catalogue is None and not tf.catalogue_path(stats.path).exists()


def test_a_build_with_catalogue_differs_only_by_the_link(golden_inputs, tmp_path, monkeypatch) -> None:
    plain = golden_build(golden_inputs, tmp_path / "a.arrow", monkeypatch, catalogue=False).path
    linked = golden_build(golden_inputs, tmp_path / "b.arrow", monkeypatch).path
    ta = pa.ipc.open_file(pa.memory_map(str(plain))).read_all()
    tb = pa.ipc.open_file(pa.memory_map(str(linked))).read_all()
    assert ta.equals(tb)  # same rows, same schema (without metadata)
    meta_a, meta_b = tf.read_metadata(plain), tf.read_metadata(linked)
    assert set(meta_b) - set(meta_a) == {"catalogue"}
    plain_keys = ("catalogue", tf.CHECKSUM_KEY)  # the checksum entry hashes the metadata too
    assert {k: v for k, v in meta_b.items() if k not in plain_keys} == {k: v for k, v in meta_a.items() if k != tf.CHECKSUM_KEY}
    assert meta_a[tf.CHECKSUM_KEY]["batches"] == meta_b[tf.CHECKSUM_KEY]["batches"]
