"""The engine's top-m candidate search (chunk minima, unsorted band, selection) equals the exact
evaluation of the whole row, for any catalogue size against the chunk length, any m, every
metric, and with ties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simcache.objects import kernels as K
from simcache.objects.metrics import prepare_catalogue, prepare_queries


def brute_force(q, cat, metric, m):
    """Every object's exact key, then the m best by (e, j)."""
    n = cat.size
    oj, oe = np.empty(m, np.int64), np.empty(m, np.float64)
    K.exact_best(q, cat.items, cat.bias, K.METRICS[metric], np.arange(n), n, m, oj, oe)
    return oj, oe


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 40 * K.SCAN_CHUNK + 7), st.sampled_from(["l2", "cosine", "ip"]),
       st.integers(1, 30), st.booleans())  # fmt: skip
def test_nearest_block_equals_the_whole_row_evaluated_exactly(seed, n_obj, metric, m, duplicates):
    rng = np.random.default_rng(seed)
    m = min(m, n_obj)
    vecs = rng.standard_normal((n_obj, 5)).astype(np.float32)
    if duplicates:  # equal objects: ties in the keys, a crowded band
        vecs = vecs[rng.integers(0, max(1, n_obj // 8), n_obj)]
    cat = prepare_catalogue(vecs, rng.standard_normal(n_obj).astype(np.float32), metric)
    x = rng.standard_normal((9, 5)).astype(np.float32)
    q, qn2, tol = prepare_queries(x, cat)
    g = np.ascontiguousarray(q @ cat.items.T)
    out_obj, out_e = np.empty((len(q), m), np.int64), np.empty((len(q), m), np.float64)
    counters = np.zeros(K.N_COUNTERS, np.int64)
    K.nearest_block(g, q, qn2, tol, cat.items, cat.norm2, cat.bias, K.METRICS[metric], m, 4, out_obj, out_e,
                    counters)  # fmt: skip
    for i in range(len(q)):
        oj, oe = brute_force(q[i], cat, metric, m)
        np.testing.assert_array_equal(out_obj[i], oj)
        np.testing.assert_array_equal(out_e[i], oe)
