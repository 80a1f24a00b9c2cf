"""Incremental sums, Gram matrices and the exact least-squares fold-in, against plain per-row references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recvae.models.als import FoldIn
from recvae.models.base import prefix_rows
from recvae.models.implicit_als import ImplicitALS
from recvae.models.linalg import group_grams, group_sums, prefix_grams, prefix_sums, ridge_solve
from recvae.trace.prefix import PrefixBatch
from recvae.trace.schedule import Schedule, schedule_many


def random_batch(rng: np.random.Generator, n_users: int, n_items: int) -> PrefixBatch:
    counts = rng.integers(1, 30, n_users)
    items = np.concatenate([rng.choice(n_items, size=c, replace=False) for c in counts]).astype(np.int64)
    owner, lengths = schedule_many(counts, Schedule(min_history=5, initial_fraction=0.4, step=4))
    return PrefixBatch(items, np.r_[0, np.cumsum(counts)].astype(np.int64), owner, lengths)


def prefix_items(batch: PrefixBatch, r: int) -> np.ndarray:
    start = batch.offsets[batch.owner[r]]
    return np.arange(start, start + batch.lengths[r])  # positions in batch.items


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6))
def test_prefix_sums_and_grams_equal_per_row_loops(seed, d):
    rng = np.random.default_rng(seed)
    batch = random_batch(rng, 6, 40)
    table = rng.normal(size=(40, d))
    weights = rng.normal(size=batch.items.size)
    sums, wsums, grams = prefix_sums(batch, table), prefix_sums(batch, table, weights), prefix_grams(batch, table)
    for r in range(len(batch)):
        pos = prefix_items(batch, r)
        rows = table[batch.items[pos]]
        np.testing.assert_allclose(sums[r], rows.sum(axis=0), atol=1e-10)
        np.testing.assert_allclose(wsums[r], (weights[pos, None] * rows).sum(axis=0), atol=1e-10)
        np.testing.assert_allclose(grams[r], rows.T @ rows, atol=1e-10)


def test_group_functions_on_csr_rows_including_empty_ones():
    rng = np.random.default_rng(0)
    keep = np.ones(30)
    keep[3] = 0  # an empty row
    m = sp.csr_matrix(sp.diags(keep) @ sp.random(30, 25, density=0.2, random_state=1, format="csr"))
    m.eliminate_zeros()
    table = rng.normal(size=(25, 4))
    starts, lengths = m.indptr[:-1], np.diff(m.indptr)
    g = group_grams(starts, lengths, m.indices, table)
    s = group_sums(starts, lengths, m.indices, table, m.data)
    for u in range(30):
        cols = m.indices[m.indptr[u] : m.indptr[u + 1]]
        np.testing.assert_allclose(g[u], table[cols].T @ table[cols], atol=1e-12)
        np.testing.assert_allclose(s[u], m.data[m.indptr[u] : m.indptr[u + 1]] @ table[cols], atol=1e-12)
    assert not g[3].any() and not s[3].any()


def test_ridge_solve_is_the_regularised_least_squares_optimum():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 12, 4))
    t = rng.normal(size=(5, 12))
    reg = rng.uniform(0.1, 2.0, size=(5, 4))
    x = ridge_solve(np.einsum("mia,mib->mab", a, a), np.einsum("mia,mi->ma", a, t), reg)
    for r in range(5):  # lstsq on the augmented system [A; sqrt(reg) I] x = [t; 0]
        aug = np.vstack([a[r], np.diag(np.sqrt(reg[r]))])
        ref = np.linalg.lstsq(aug, np.r_[t[r], np.zeros(4)], rcond=None)[0]
        np.testing.assert_allclose(x[r], ref, atol=1e-10)


@pytest.mark.parametrize("per_rating", [False, True])
@pytest.mark.parametrize("k", [0, 3])
def test_fold_in_of_every_prefix_equals_a_direct_least_squares_solve(k, per_rating):
    rng = np.random.default_rng(3 + k)
    n_items = 50
    batch = random_batch(rng, 8, n_items)
    values = rng.integers(1, 6, batch.items.size).astype(np.float64)
    mu, b = 3.4, rng.normal(0, 0.3, n_items)
    y = rng.normal(0, 0.5, (n_items, k))
    reg, bias_reg = 0.7, 0.3
    fold = FoldIn(mu, b, y, reg, bias_reg, per_rating=per_rating)
    got = fold.prefixes(batch, values)
    direct = fold.rows(prefix_rows(batch, values, n_items))
    np.testing.assert_allclose(got, direct, atol=1e-9)
    for r in range(len(batch)):
        pos = prefix_items(batch, r)
        i = batch.items[pos]
        design = np.hstack([np.ones((i.size, 1)), y[i]])  # columns: b_u, x_u
        target = values[pos] - mu - b[i]
        scale = i.size if per_rating else 1.0
        penalty = np.sqrt(scale * np.r_[bias_reg, np.full(k, reg)])
        aug = np.vstack([design, np.diag(penalty)])
        ref = np.linalg.lstsq(aug, np.r_[target, np.zeros(k + 1)], rcond=None)[0]
        np.testing.assert_allclose(got[r], ref, atol=1e-9)


def test_implicit_fold_in_equals_the_librarys_own_user_step():
    rng = np.random.default_rng(4)
    n_items, k = 60, 5
    cfg = ImplicitALS.Config(factors=k, reg=0.3, alpha=7.0, threads=1)
    model = ImplicitALS(cfg, n_items)
    model.item_factors = rng.normal(0, 0.4, (n_items, k)).astype(np.float32)
    rows = sp.random(12, n_items, density=0.15, random_state=5, format="csr", dtype=np.float32)
    rows.data[:] = 1.0
    lib = model._library_model(0)
    lib.item_factors = model.item_factors
    lib.user_factors = np.zeros((rows.shape[0], k), np.float32)
    theirs = lib.recalculate_user(np.arange(rows.shape[0]), rows)
    np.testing.assert_allclose(model.embed(rows), theirs, rtol=1e-4, atol=1e-5)
