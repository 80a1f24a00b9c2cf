"""Kernels against plain references: the dense search (top-m selection, candidates, Gram matrix)
and row normalisation."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from simcache.cache import kernels as K
from tests.simcache.cache.reference_policies import normalise


def reference_top_m(g, qnorm2, slot_norm2, n0, slot_req, m):
    """(slots, reqs, values) per request: the m smallest float32 |q|^2 + |y|^2 - 2 g, ties by slot."""
    two = np.float32(2.0)
    h = g.shape[1]
    slots = np.full((h, m), -1, np.int64)
    reqs = np.full((h, m), -1, np.int64)
    vals = np.full((h, m), np.inf, np.float32)
    for j in range(h):
        a = [(qnorm2[j] + slot_norm2[s] - two * g[s, j], s) for s in range(n0)]
        for p, (v, s) in enumerate(sorted(a)[:m]):
            slots[j, p], reqs[j, p], vals[j, p] = s, slot_req[s], v
    return slots, reqs, vals


@settings(max_examples=150, deadline=None)
@given(
    n0=st.integers(0, 400),
    h=st.integers(1, 20),
    m=st.sampled_from([1, 2, 8, 16, 17, 40]),
    levels=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_top_m_block_equals_sorting(n0, h, m, levels, seed):
    """Same lists as sorting every value (few distinct ``levels`` force ties; groups of 1 to 16
    slots; fewer groups than m; n0 < m)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, levels, size=(n0, h)).astype(np.float32) / 4
    qnorm2 = rng.integers(0, levels, size=h).astype(np.float32)
    slot_norm2 = rng.integers(0, levels, size=n0).astype(np.float32)
    slot_req = rng.permutation(1000)[:n0].astype(np.int64)
    want = reference_top_m(g, qnorm2, slot_norm2, n0, slot_req, m)

    rows = h + 3  # the block's requests start at row r0 = 3 of the candidate arrays
    cand_slot = np.zeros((rows, m), np.int64)
    cand_req = np.zeros((rows, m), np.int64)
    cand_sq = np.zeros((rows, m), np.float32)
    qn = np.concatenate([np.zeros(3, np.float32), qnorm2])
    groups = max(4 * m, -(-n0 // K.TOP_GROUP))  # the bound top_m_groups documents
    K.top_m_block(g.copy(), qn, slot_norm2, n0, slot_req, 3, np.full((groups, h), np.nan, np.float32),
                  np.empty((m, h), np.float32), np.empty(h, np.float32), np.empty(groups, np.int64),
                  np.empty(n0, np.int64), cand_slot, cand_req, cand_sq)  # fmt: skip
    np.testing.assert_array_equal(cand_slot[3:], want[0])
    np.testing.assert_array_equal(cand_req[3:], want[1])
    np.testing.assert_array_equal(cand_sq[3:], want[2])


def test_dense_search_block_finds_the_nearest_and_the_gram_matrix():
    """A block's candidates against a static cache are its m nearest by exact distance (random
    data: no near-ties), the Gram matrix is q @ q.T, and both thread variants agree bit for bit."""
    rng = np.random.default_rng(7)
    cap, d, block, m, n = 60, 24, 16, 8, 40
    cache = rng.standard_normal((cap, d)).astype(np.float32)
    q = rng.standard_normal((n, d)).astype(np.float32)
    slot_rows = np.zeros((cap + block, d), np.float32)
    slot_rows[:cap] = cache
    slot_req = np.arange(100, 100 + cap, dtype=np.int64)
    counters = np.zeros(K.N_COUNTERS, np.int64)
    counters[K.N_USED] = cap
    slot_norm2 = (cache.astype(np.float64) ** 2).sum(1).astype(np.float32)
    qnorm2 = (q.astype(np.float64) ** 2).sum(1).astype(np.float32)
    b0, b1 = 16, 30  # a partial block
    results = []
    for parallel in (True, False):
        scratch = K.dense_scratch(cap, block, m)
        out = K.dense_search_block(q, qnorm2, b0, b1, parallel, slot_rows, slot_req, counters, slot_norm2, scratch)
        results.append([a.copy() for a in out])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    gram, cand_slot, cand_req, cand_sq = results[0]
    exact = ((q[b0:b1, None, :].astype(np.float64) - cache[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_array_equal(cand_slot, np.argsort(exact, axis=1)[:, :m])
    np.testing.assert_array_equal(cand_req, slot_req[cand_slot])
    np.testing.assert_allclose(cand_sq, np.sort(exact, axis=1)[:, :m], rtol=1e-4, atol=1e-4)
    qb = q[b0:b1].astype(np.float64)
    low = np.tril_indices(b1 - b0, -1)
    np.testing.assert_allclose(gram[low], (qb @ qb.T)[low], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(slot_rows[:cap], cache)  # the cache rows are left alone


def test_normalize_rows_matches_the_reference_and_flags_the_first_zero_row():
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((50, 37)) * rng.uniform(0.01, 100, size=(50, 1))).astype(np.float32)
    x[[7, 20]] = 0.0
    out = np.full_like(x, np.nan)
    assert K.normalize_rows(x, out) == 7
    want = np.array([normalise(row) if row.any() else [0.0] * len(row) for row in x], np.float32)
    np.testing.assert_array_equal(out, want)
    live = np.ones(len(x), bool)
    live[[7, 20]] = False
    np.testing.assert_allclose(np.linalg.norm(out[live].astype(np.float64), axis=1), 1.0, rtol=1e-6)
