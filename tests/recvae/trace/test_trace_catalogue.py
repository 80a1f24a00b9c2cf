"""Item catalogues: RecVAE's is its decoder, files round-trip, bad files are one-line errors, traces link to it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recvae.errors import UserError
from recvae.model import RecVAE, RecVAEConfig
from recvae.trace import format as tf
from recvae.trace.build import write_trace_for
from recvae.trace.catalogue import Catalogue, catalogue_bytes, read_catalogue, write_catalogue
from recvae.trace.recvae_encoder import RecVAEEncoder
from simcache.trace.io import load_requests, write_requests

SYNTH = dict(n_users=200, n_items=150, seed=9)


@pytest.fixture(scope="module")
def built(synthetic_data, tmp_path_factory: pytest.TempPathFactory):
    """A RecVAE trace with its catalogue, the model that made them and the raw interactions."""
    prepared, df = synthetic_data(**SYNTH)
    torch.manual_seed(1)
    model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=16, latent_dim=8)).eval()
    enc = RecVAEEncoder(model, checkpoint_sha256="e" * 64)
    stats = write_trace_for(prepared=prepared, interactions=df, encoder=enc, progress=False, topk=5,
                            out=tmp_path_factory.mktemp("trace") / "small.arrow")
    return prepared, model, stats, df


def test_recvae_catalogue_is_the_decoder(built) -> None:
    prepared, model, stats, _ = built
    cat = read_catalogue(stats.catalogue)
    assert cat.vectors.dtype == np.float32 and cat.vectors.shape == (prepared.n_items, 8)
    np.testing.assert_array_equal(cat.vectors, model.decoder.weight.detach().numpy())
    np.testing.assert_array_equal(cat.bias, model.decoder.bias.detach().numpy())
    assert cat.ids.dtype == object and list(cat.ids) == [str(i) for i in prepared.items.tolist()]
    # the catalogue's scores of the trace's embeddings are the model's item scores
    req = load_requests(stats.path)
    x = req.vectors[:50]
    expect = model.decoder(torch.from_numpy(np.array(x))).detach().numpy()
    np.testing.assert_allclose(x @ cat.vectors.T + cat.bias, expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cat.scores(x), expect, rtol=1e-5, atol=1e-5)
    # and of a directly embedded user too
    row = torch.zeros(1, prepared.n_items)
    row[0, :7] = 1.0
    mu = model.embed(row).numpy()
    np.testing.assert_allclose(cat.scores(mu), model.score(row).numpy(), rtol=1e-5, atol=1e-5)


def test_catalogue_metadata_ties_it_to_the_trace(built) -> None:
    prepared, _, stats, _ = built
    cat = read_catalogue(stats.catalogue)
    trace_meta = tf.read_metadata(stats.path)
    m = cat.metadata
    assert m["kind"] == "catalogue" and m["model"] == "recvae" and m["dim"] == 8
    assert m["n_items"] == prepared.n_items and m["checkpoint_sha256"] == "e" * 64
    assert m["checkpoint_sha256"] == trace_meta["model"]["checkpoint_sha256"]
    assert m["vocabulary_sha256"] == tf.vocabulary_sha256(prepared.items)
    assert m["vocabulary_sha256"][:16] == prepared.vocabulary_fingerprint() == trace_meta["vocabulary_fingerprint"]
    link = trace_meta["catalogue"]
    assert stats.catalogue == tf.catalogue_path(stats.path) == stats.path.with_name("small.catalogue.arrow")
    assert link["sha256"] == hashlib.sha256(stats.catalogue.read_bytes()).hexdigest()
    assert link["vocabulary_sha256"] == m["vocabulary_sha256"]
    assert link["file"] == "<trace stem>.catalogue.arrow" and link["bias"] is True
    assert (link["n_items"], link["dim"]) == (prepared.n_items, 8)


def test_the_catalogue_is_not_mistaken_for_requests_and_is_memory_mapped(built) -> None:
    _, _, stats, _ = built
    with pa.memory_map(str(stats.catalogue)) as src:
        reader = pa.ipc.open_file(src)
        assert reader.num_record_batches == 1
        assert reader.schema.names == ["item_id", "vector", "bias"]
    cat = read_catalogue(stats.catalogue)
    assert not cat.vectors.flags.writeable and not cat.vectors.flags.owndata  # a view of the mapped file


def test_catalogue_is_written_after_the_trace_and_not_at_all_when_the_trace_fails(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared, model, _, df = built

    def failing(*args, **kwargs):
        raise KeyboardInterrupt("interrupted while writing the trace")

    monkeypatch.setattr(tf, "write_trace", failing)
    with pytest.raises(KeyboardInterrupt):
        write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(model), progress=False, topk=0,
                        out=tmp_path / "t.arrow")
    assert list(tmp_path.iterdir()) == []


ids_st = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=12, unique=True)


@settings(max_examples=30, deadline=None)
@given(ids=ids_st, dim=st.integers(1, 5), with_bias=st.booleans(), seed=st.integers(0, 2**16),
       meta=st.dictionaries(st.sampled_from(["model", "note", "checkpoint_sha256"]), st.text(max_size=5)))
def test_round_trip(tmp_path_factory, ids, dim, with_bias, seed, meta) -> None:
    rng = np.random.default_rng(seed)
    n = len(ids)
    cat = Catalogue(ids=np.array(ids, dtype=object), vectors=rng.normal(size=(n, dim)).astype(np.float32),
                    bias=rng.normal(size=n).astype(np.float32) if with_bias else None, metadata=dict(meta))
    path = write_catalogue(tmp_path_factory.mktemp("rt") / "c.arrow", cat)
    back = read_catalogue(path)
    assert list(back.ids) == ids
    np.testing.assert_array_equal(back.vectors, cat.vectors)
    if with_bias:
        np.testing.assert_array_equal(back.bias, cat.bias)
    else:
        assert back.bias is None
    assert back.metadata == {**meta, "kind": "catalogue", "dim": dim, "n_items": n}
    assert path.read_bytes() == catalogue_bytes(cat)


def test_catalogue_checks_its_arrays() -> None:
    with pytest.raises(ValueError, match="vectors must be"):
        Catalogue(ids=np.array(["a", "b"]), vectors=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="bias must be"):
        Catalogue(ids=np.array(["a"]), vectors=np.zeros((1, 2)), bias=np.zeros(2))
    cat = Catalogue(ids=np.array([5, 7]), vectors=np.ones((2, 3), np.float64))
    assert list(cat.ids) == ["5", "7"] and cat.vectors.dtype == np.float32 and cat.dim == 3 and len(cat) == 2


def _write_table(path: Path, columns: dict, metadata: dict | None = None) -> Path:
    table = pa.table(columns)
    if metadata is not None:
        table = table.replace_schema_metadata(tf.encode_metadata(metadata))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    return path


def _text_file(path: Path) -> Path:
    path.write_text("not arrow")
    return path


def _vec(rows: list[list[float]], typ=pa.float32()) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ravel(rows), type=typ), len(rows[0]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.arrow", "no such catalogue file"),
        (lambda p: _text_file(p / "t.arrow"), "not an Arrow IPC file"),
        (lambda p: write_requests(p / "r.arrow", np.zeros((2, 3), np.float32)), "a trace, not a catalogue"),
        (lambda p: _write_table(p / "a.arrow", {"x": [1, 2]}), "needs columns 'item_id' and 'vector'"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a"], "vector": _vec([[1.0]], pa.float64())}),
         "expected fixed_size_list<float32>"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": [1], "vector": _vec([[1.0]])}), "expected string"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": pa.array([], pa.string()),
                                                "vector": pa.FixedSizeListArray.from_arrays(
                                                    pa.array([], pa.float32()), 2)}), "the catalogue is empty"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a", "a"], "vector": _vec([[1.0], [2.0]])}),
         "item id 'a' appears 2 times"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a", None], "vector": _vec([[1.0], [2.0]])}),
         "'item_id' has missing values"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a", "b"], "vector": _vec([[1.0], [np.nan]])}),
         r"vector of item 'b' \(row 1\) is not finite"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a"], "vector": _vec([[1.0]]),
                                                "bias": pa.array([np.inf], pa.float32())}),
         r"bias of item 'a' \(row 0\) is not finite"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a"], "vector": _vec([[1.0]]),
                                                "bias": pa.array([1.0], pa.float64())}), "'bias' has type double"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a"], "vector": _vec([[1.0]])}, {"kind": "trace"}),
         "not a catalogue .its metadata says kind 'trace'"),
        (lambda p: _write_table(p / "a.arrow", {"item_id": ["a"], "vector": _vec([[1.0]])}, {"dim": 4}),
         "metadata says dim 4 but the file holds 1"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(UserError, match=message) as err:
        read_catalogue(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_catalogue_written_by_another_tool_without_metadata_is_read(tmp_path: Path) -> None:
    path = _write_table(tmp_path / "a.arrow", {"item_id": ["x", "y"], "vector": _vec([[1.0, 2.0], [3.0, 4.0]])})
    cat = read_catalogue(path)
    assert cat.metadata == {} and cat.bias is None and cat.vectors.tolist() == [[1.0, 2.0], [3.0, 4.0]]
