"""The dense search's top-m selection against a sort-based reference."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from simcache.cache import kernels as K


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
                  np.empty((m, h), np.float32), np.empty(h, np.float32), cand_slot, cand_req, cand_sq)  # fmt: skip
    np.testing.assert_array_equal(cand_slot[3:], want[0])
    np.testing.assert_array_equal(cand_req[3:], want[1])
    np.testing.assert_array_equal(cand_sq[3:], want[2])
