"""The trace builder is model-neutral: a throwaway encoder defined here builds a valid trace through it.

``CountsLinear`` embeds a prefix as a fixed random linear map of its item indicator vector and
scores items against random item vectors: nothing of RecVAE. The trace it gives must follow the
same schedule, order and format as RecVAE's, hold exactly its embeddings and top-k lists, record
its description, and not depend on how the builder's batch is cut into chunks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from recvae.errors import UserError
from recvae.model import RecVAE, RecVAEConfig
from recvae.trace import format as tf
from recvae.trace.build import build_trace_stats, write_trace_for
from recvae.trace.catalogue import Catalogue, read_catalogue
from recvae.trace.encoder import EncoderDescription, TraceEncoder
from recvae.trace.history import build_histories
from recvae.trace.prefix import PrefixBatch
from recvae.trace.schedule import Schedule
from recvae.trace.recvae_encoder import RecVAEEncoder
from simcache.trace.io import load_requests

SYNTH = dict(n_users=200, n_items=150, mean_items=90, seed=3)
SCHEDULE = Schedule(min_history=15, initial_fraction=0.5, step=4)  # several embeddings of most users


class CountsLinear(TraceEncoder):
    """Embedding = (indicator of the prefix's items) @ M; item scores = embedding @ V.T."""

    model_type = "counts-linear"

    def __init__(self, n_items: int, dim: int = 5, seed: int = 0, chunk_rows: int = 4096) -> None:
        rng = np.random.default_rng(seed)
        self.m = rng.normal(size=(n_items, dim)).astype(np.float32)
        self.v = rng.normal(size=(n_items, dim)).astype(np.float32)
        self.chunk_rows = chunk_rows

    @property
    def dim(self) -> int:
        return self.m.shape[1]

    @property
    def n_items(self) -> int:
        return self.m.shape[0]

    def description(self) -> EncoderDescription:
        return EncoderDescription(embedding="sum of random item rows", checkpoint_sha256="c" * 64,
                                  details={"seed": 0})

    def embed(self, batch: PrefixBatch) -> np.ndarray:
        return np.stack([self.m[prefix(batch, r)].sum(axis=0) for r in range(len(batch))]).astype(np.float32)

    def item_scores(self, embeddings: np.ndarray) -> np.ndarray:
        return embeddings @ self.v.T

    def catalogue(self, item_ids: np.ndarray) -> Catalogue:
        return Catalogue(ids=item_ids, vectors=self.v, metadata={"vector": "random"})


class NoTopk(CountsLinear):
    """An encoder without item scores: no top-k lists, no catalogue."""

    model_type = "no-topk"
    item_scores = TraceEncoder.item_scores
    catalogue = TraceEncoder.catalogue


def prefix(batch: PrefixBatch, r: int) -> np.ndarray:
    start = batch.offsets[batch.owner[r]]
    return batch.items[start : start + batch.lengths[r]]


@pytest.fixture(scope="module")
def synth(synthetic_data):
    return synthetic_data(**SYNTH)


def build(synth, encoder: TraceEncoder, out: Path, **kw):
    prepared, df = synth
    kw.setdefault("schedule", SCHEDULE)
    return write_trace_for(prepared=prepared, interactions=df, encoder=encoder, out=out, progress=False, **kw)


def test_a_throwaway_encoder_builds_a_valid_trace(synth, tmp_path: Path) -> None:
    prepared, df = synth
    enc = CountsLinear(prepared.n_items)
    stats = build(synth, enc, tmp_path / "c.arrow", topk=6)
    req = load_requests(stats.path)  # the replay's reader accepts it
    assert len(req) == stats.rows > stats.users and req.dim == 5 and req.topk.shape == (stats.rows, 6)
    assert (np.diff(req.timestamp) >= 0).all()
    # the same rows, in the same order, as a RecVAE trace of the same data
    torch.manual_seed(0)
    recvae = RecVAEEncoder(RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=8, latent_dim=3)))
    ref = load_requests(build(synth, recvae, tmp_path / "r.arrow", topk=0).path)
    for col in ("timestamp", "user_id", "seq", "n_items", "split"):
        assert (getattr(req, col) == getattr(ref, col)).all()
    # every row is the encoder's embedding of that prefix, every list its best items outside the prefix
    hist = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                           val_users=prepared.val_users, test_users=prepared.test_users, threshold=3.5)
    code = pd.Index(hist.users.astype(str)).get_indexer(req.user_id)
    for r in range(len(req)):
        u = code[r]
        items = hist.items[hist.offsets[u] : hist.offsets[u] + req.n_items[r]]
        np.testing.assert_allclose(req.vectors[r], enc.m[items].sum(axis=0), rtol=1e-6, atol=1e-5)
        scores = req.vectors[r] @ enc.v.T
        scores[items] = -np.inf
        expect = np.argsort(-scores, kind="stable")[:6]
        np.testing.assert_allclose(scores[req.topk[r]], scores[expect], rtol=1e-6)
        assert not set(req.topk[r].tolist()) & set(items.tolist())
    meta = req.metadata
    assert meta["model"] == {"type": "counts-linear", "checkpoint_sha256": "c" * 64, "seed": 0}
    assert tf.model_type(meta) == "counts-linear"
    assert meta["embedding"] == "sum of random item rows" and meta["dim"] == 5 and meta["topk"] == 6
    assert stats.path.name.startswith("c.") and stats.device == "cpu"


def test_the_trace_does_not_depend_on_the_chunking(synth, tmp_path: Path) -> None:
    prepared, _ = synth
    a = build(synth, CountsLinear(prepared.n_items), tmp_path / "a.arrow", topk=4).path
    b = build(synth, CountsLinear(prepared.n_items, chunk_rows=1), tmp_path / "b.arrow", topk=4).path
    assert a.read_bytes() == b.read_bytes()
    assert tf.catalogue_path(a).read_bytes() == tf.catalogue_path(b).read_bytes()


def test_its_catalogue_is_written_and_linked(synth, tmp_path: Path) -> None:
    prepared, _ = synth
    enc = CountsLinear(prepared.n_items)
    stats = build(synth, enc, tmp_path / "c.arrow", topk=0)
    cat = read_catalogue(stats.catalogue)
    assert stats.catalogue == tf.catalogue_path(stats.path)
    np.testing.assert_array_equal(cat.vectors, enc.v)
    assert cat.bias is None and list(cat.ids) == [str(i) for i in prepared.items]
    assert cat.metadata["model"] == "counts-linear" and cat.metadata["vector"] == "random"
    assert tf.read_metadata(stats.path)["catalogue"]["bias"] is False


def test_an_encoder_without_scores_gives_no_topk_and_no_catalogue(synth, tmp_path: Path) -> None:
    prepared, _ = synth
    enc = NoTopk(prepared.n_items)
    assert not enc.supports_topk and CountsLinear(3).supports_topk
    with pytest.raises(UserError, match="no-topk model gives no top-k lists; pass --topk 0"):
        build(synth, enc, tmp_path / "x.arrow", topk=5)
    stats = build(synth, enc, tmp_path / "y.arrow", topk=0)
    t = pa.ipc.open_file(pa.memory_map(str(stats.path))).read_all()
    assert tf.TOPK not in t.column_names and stats.catalogue is None
    assert "catalogue" not in tf.read_metadata(stats.path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.arrow"]


class WrongShape(CountsLinear):
    def embed(self, batch: PrefixBatch) -> np.ndarray:
        return super().embed(batch)[:, :-1]


class SkipsRows(CountsLinear):
    def iter_chunks(self, batch: PrefixBatch, topk: int):
        chunks = list(super().iter_chunks(batch, topk))
        return iter(chunks[:-1])


def test_an_encoder_breaking_the_contract_is_a_bug_not_a_trace(synth, tmp_path: Path) -> None:
    prepared, _ = synth
    with pytest.raises(ValueError, match=r"gave embeddings float32\(\d+, 4\)"):
        build(synth, WrongShape(prepared.n_items), tmp_path / "x.arrow", topk=0)
    with pytest.raises(ValueError, match="stopped at row"):
        build(synth, SkipsRows(prepared.n_items, chunk_rows=50), tmp_path / "y.arrow", topk=0)
    with pytest.raises(UserError, match="input items"):
        build(synth, CountsLinear(prepared.n_items + 1), tmp_path / "z.arrow", topk=0)
    assert list(tmp_path.iterdir()) == []


def test_build_trace_takes_an_encoder_instead_of_a_checkpoint(synth, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    prepared, _ = synth
    monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(tmp_path / "cache"))
    enc = CountsLinear(prepared.n_items)
    stats = build_trace_stats("synthetic", encoder=enc, out=tmp_path / "t.arrow", topk=3, device="cpu",
                              progress=False, prepare_params=SYNTH, min_history=SCHEDULE.min_history,
                              initial_fraction=SCHEDULE.initial_fraction, step=SCHEDULE.step)
    direct = build(synth, enc, tmp_path / "d.arrow", topk=3, dataset="synthetic")
    assert stats.path.read_bytes() == direct.path.read_bytes()
    assert stats.catalogue.is_file()
    with pytest.raises(UserError, match="either a checkpoint"):
        build_trace_stats("synthetic", encoder=enc, model=tmp_path / "m.pt", progress=False)
