"""Incremental prefix embeddings and top-k lists against the plain reference (dense rows + model.embed)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from recvae.model import RecVAE, RecVAEConfig
from recvae.trace.prefix import (
    NO_ITEM,
    PrefixBatch,
    PrefixEmbedder,
    concat_ranges,
    direct_prefix_embeddings,
    grouped_topk,
    topk_groups,
    user_aligned_chunks,
)
from recvae.trace.schedule import Schedule, schedule_many

N_ITEMS = 400


def make_model(n_items: int = N_ITEMS, seed: int = 0, scale: float = 1.0) -> RecVAE:
    """A random model; ``scale`` > 1 enlarges the encoder weights (a harsher numerical case)."""
    torch.manual_seed(seed)
    model = RecVAE(RecVAEConfig(n_items, hidden_dim=48, latent_dim=12)).eval()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.mul_(scale)
    return model


def float64_truth(model: RecVAE, batch: PrefixBatch) -> np.ndarray:
    """Embeddings computed directly in double precision: the yardstick for both float32 paths."""
    m64 = copy.deepcopy(model).double()
    x = torch.zeros(len(batch), model.cfg.n_items, dtype=torch.float64)
    for r, (u, n) in enumerate(zip(batch.owner, batch.lengths)):
        x[r, batch.items[batch.offsets[u] : batch.offsets[u] + n]] = 1.0
    return m64.embed(x).numpy()


def make_batch(seed: int = 0, n_users: int = 30, max_count: int = 320) -> PrefixBatch:
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_count, n_users)
    counts[:4] = [1, 49, 50, 57]
    seqs = [rng.choice(N_ITEMS, c, replace=False) for c in counts]
    items = np.concatenate(seqs).astype(np.int64)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    owner, lengths = schedule_many(counts, Schedule())
    return PrefixBatch(items, offsets, owner, lengths)


def assert_same_topk(model: RecVAE, batch: PrefixBatch, mu_ref: np.ndarray, ours: np.ndarray, ref: np.ndarray) -> None:
    """Equal lists, except that items whose scores tie within float32 noise may swap places."""
    scores = model.decoder(torch.from_numpy(mu_ref)).detach().numpy().astype(np.float64)
    rows = np.arange(len(batch))[:, None]
    assert (ours >= 0).all() == (ref >= 0).all()
    np.testing.assert_allclose(scores[rows, ours], scores[rows, ref], atol=2e-5, rtol=0)
    assert (ours == ref).mean() > 0.99
    # never a prefix item
    for r in range(len(batch)):
        u, n = batch.owner[r], batch.lengths[r]
        prefix = set(batch.items[batch.offsets[u] : batch.offsets[u] + n].tolist())
        assert not prefix & set(ours[r].tolist())


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(("chunk_rows", "batch_rows"), [(8192, 1024), (7, 3), (1, 1)])
def test_embeddings_equal_direct_computation(backend: str, chunk_rows: int, batch_rows: int) -> None:
    model = make_model()
    batch = make_batch()
    emb = PrefixEmbedder(model, topk=25, backend=backend, chunk_rows=chunk_rows, batch_rows=batch_rows)
    mu, top = emb(batch)
    mu_ref, top_ref = direct_prefix_embeddings(model, batch, topk=25)
    assert mu.dtype == np.float32 and mu.shape == (len(batch), 12)
    assert top.dtype == np.int32 and top.shape == (len(batch), 25)
    np.testing.assert_allclose(mu, mu_ref, atol=1e-5, rtol=0)
    assert_same_topk(model, batch, mu_ref, top, top_ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_backend_equals_direct_computation() -> None:
    model = make_model()
    batch = make_batch()
    mu_ref, top_ref = direct_prefix_embeddings(model, batch, topk=25)
    model.to("cuda")
    mu, top = PrefixEmbedder(model, topk=25, device="cuda")(batch)
    np.testing.assert_allclose(mu, mu_ref, atol=1e-5, rtol=0)
    assert_same_topk(model.cpu(), batch, mu_ref, top, top_ref)


def test_backends_agree_and_runs_are_identical() -> None:
    model = make_model(seed=3)
    batch = make_batch(seed=3)
    a = PrefixEmbedder(model, topk=10, backend="numpy", chunk_rows=16, workers=1)(batch)
    b = PrefixEmbedder(model, topk=10, backend="numpy", chunk_rows=16, workers=3)(batch)
    c = PrefixEmbedder(model, topk=10, backend="torch", chunk_rows=16)(batch)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], c[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("case", ["large weights", "long history"])
def test_at_least_as_accurate_as_the_direct_computation(backend: str, case: str) -> None:
    """Against a float64 computation, the running sums are within 1e-5 and never worse than the
    float32 direct product (which sums thousands of scaled columns in float32)."""
    if case == "large weights":
        model, batch = make_model(scale=3.0), make_batch()
    else:
        n_items = 5000
        model = make_model(n_items=n_items, seed=1, scale=3.0)
        items = np.random.default_rng(1).permutation(n_items)[:4000].astype(np.int64)
        batch = PrefixBatch(items, np.array([0, 4000]), *schedule_many(np.array([4000]), Schedule()))
    truth = float64_truth(model, batch)
    mu, _ = PrefixEmbedder(model, topk=None, backend=backend, chunk_rows=7, batch_rows=3)(batch)
    direct, _ = direct_prefix_embeddings(model, batch)
    ours_err = np.abs(mu - truth).max()
    assert ours_err < 1e-5
    assert ours_err <= np.abs(direct - truth).max()


def test_topk_pads_with_sentinel_when_few_items_remain() -> None:
    n_items = 30
    model = make_model(n_items=n_items)
    items = np.arange(n_items, dtype=np.int64)[::-1].copy()
    batch = PrefixBatch(items, np.array([0, n_items]), np.array([0, 0, 0]), np.array([5, 27, 30]))
    _, top = PrefixEmbedder(model, topk=10)(batch)
    assert (top[0] >= 0).all()
    assert (top[1, :3] >= 0).all() and (top[1, 3:] == NO_ITEM).all()
    assert (top[2] == NO_ITEM).all()
    assert set(top[1, :3].tolist()) == {2, 1, 0}


def test_without_topk_and_empty_batch() -> None:
    model = make_model()
    batch = make_batch()
    mu, top = PrefixEmbedder(model, topk=0)(batch)
    assert top is None and mu.shape[0] == len(batch)
    empty = PrefixBatch(batch.items, batch.offsets, np.zeros(0, np.int64), np.zeros(0, np.int64))
    mu, top = PrefixEmbedder(model, topk=5)(empty)
    assert mu.shape == (0, 12) and top.shape == (0, 5)


def test_embedder_leaves_thread_settings_as_they_were() -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before, blas_before = torch.get_num_threads(), blas_threads()
    PrefixEmbedder(make_model(), topk=5, backend="numpy", chunk_rows=8, workers=2)(make_batch())
    assert torch.get_num_threads() == before and blas_threads() == blas_before


@pytest.mark.parametrize(("n", "k"), [(1000, 10), (999, 7), (64, 5), (50, 40), (20108, 100)])
def test_grouped_topk_equals_full_topk(n: int, k: int) -> None:
    gen = torch.Generator().manual_seed(n + k)
    groups = topk_groups(n, k)
    n_pad = -(-n // groups) * groups
    logits = torch.full((40, n_pad), -torch.inf)
    logits[:, :n] = torch.randn(40, n, generator=gen)
    logits[1, :n] = torch.randint(0, 5, (n,), generator=gen).float()  # many ties
    logits[2, :] = -torch.inf  # nothing left
    logits[3, : n - 3] = -torch.inf  # fewer than k finite values
    values, idx = grouped_topk(logits, k, groups)
    ref_values, ref_idx = torch.topk(logits, k, dim=1)
    assert torch.equal(values, ref_values)
    assert torch.equal(torch.gather(logits, 1, idx), values)  # indices point at those values
    untied = [r for r in range(40) if r not in (1, 2, 3)]
    assert torch.equal(idx[untied], ref_idx[untied])
    assert len(set(idx[0].tolist())) == k


def test_concat_ranges() -> None:
    starts, lengths = np.array([5, 0, 10, 3]), np.array([2, 0, 3, 1])
    assert concat_ranges(starts, lengths).tolist() == [5, 6, 10, 11, 12, 3]
    assert concat_ranges(np.array([]), np.array([])).size == 0


def test_user_aligned_chunks_never_split_a_user() -> None:
    owner = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 4])
    for max_rows in (1, 2, 3, 4, 5, 100):
        chunks = user_aligned_chunks(owner, max_rows)
        assert chunks[0][0] == 0 and chunks[-1][1] == owner.size
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        for lo, hi in chunks:
            assert lo == 0 or owner[lo] != owner[lo - 1]
            assert hi - lo <= max_rows or np.unique(owner[lo:hi]).size == 1


def test_invalid_batches_are_refused() -> None:
    items, offsets = np.arange(10, dtype=np.int64), np.array([0, 4, 10])
    with pytest.raises(ValueError, match="longer"):
        PrefixBatch(items, offsets, np.array([0]), np.array([5]))
    with pytest.raises(ValueError, match="increasing"):
        PrefixBatch(items, offsets, np.array([1, 1]), np.array([4, 3]))
    with pytest.raises(ValueError, match="consecutive"):
        PrefixBatch(items, offsets, np.array([0, 1, 0]), np.array([1, 1, 2]))
    with pytest.raises(ValueError, match=">= 1"):
        PrefixBatch(items, offsets, np.array([0]), np.array([0]))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_prefix_encoder_runs_the_model_encoder_chain(backend: str) -> None:
    """One encoder chain (``Encoder.hidden``): the torch path is the model's own, bit for bit."""
    model = make_model()
    emb = PrefixEmbedder(model, topk=0, backend=backend)
    a1 = emb.first_layer(make_batch())
    with torch.no_grad():
        direct = model.encoder.from_first_layer(a1)[0]
    if backend == "torch":
        assert torch.equal(emb.encode(a1), direct)
    else:  # the same chain with BLAS products: equal up to float32 summation order
        np.testing.assert_allclose(emb.encode(a1).numpy(), direct.numpy(), rtol=0, atol=1e-5)
