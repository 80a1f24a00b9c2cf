"""Kernels against plain references: the row scans (smallest approximations, selection within a
threshold, hidden owners), the block products and row normalisation."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from simcache.cache import kernels as K
from tests.simcache.cache.helpers import unpack_panels
from tests.simcache.cache.reference_policies import normalise


def reference_row(row, qn, col_norm, n):
    """float32 approximations ``qn + col_norm[c] - 2 row[c]`` of the first ``n`` columns."""
    return (np.float32(qn) + col_norm[:n]) - np.float32(2.0) * row[:n]


ROWS = dict(
    n=st.integers(0, 300),
    keep=st.sampled_from([1, 2]),
    levels=st.integers(1, 40),
    stale=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)


def _row(n, levels, stale, seed):
    """Products on a coarse grid (few ``levels`` force ties) and column norms, a share ``stale``
    of them +inf; spare columns after the first ``n``, which must be left alone."""
    rng = np.random.default_rng(seed)
    row = (rng.integers(-levels, levels + 1, size=n + 5) / 4).astype(np.float32)
    col_norm = rng.integers(0, levels, size=n + 5).astype(np.float32)
    col_norm[rng.random(n + 5) < stale] = np.inf
    return row, np.float32(rng.integers(0, levels)), col_norm


@settings(max_examples=200, deadline=None)
@given(**ROWS)
def test_row_smallest_equals_sorting(n, keep, levels, stale, seed):
    """The row becomes the float32 approximations; the smallest (and second smallest, as a
    multiset) equal sorting them; +inf when there are fewer; lane minima for row_select."""
    row, qn, col_norm = _row(n, levels, stale, seed)
    want = reference_row(row, qn, col_norm, n)
    got = row.copy()
    lo1 = np.full(K.SCAN_LANES, np.nan, np.float32)
    a1, a2 = K.row_smallest(got, qn, col_norm, n, keep, lo1, np.full(K.SCAN_LANES, np.nan, np.float32))
    np.testing.assert_array_equal(got[:n], want)
    np.testing.assert_array_equal(got[n:], row[n:])
    ordered = np.sort(want.astype(np.float64))
    assert a1 == (ordered[0] if n >= 1 else np.inf)
    if keep == 2:
        assert a2 == (ordered[1] if n >= 2 else np.inf)
    for j in range(K.SCAN_LANES):
        assert lo1[j] == (want[j::K.SCAN_LANES].min() if j < n else np.inf)


@settings(max_examples=200, deadline=None)
@given(**ROWS, above=st.sampled_from([0.0, 0.25, 1.0, 5.0, np.inf]))
def test_row_select_lists_every_visible_column_within_the_threshold(n, keep, levels, stale, seed, above):
    """Exactly the finite approximations at or below the threshold (ties at the threshold
    included; +inf columns never, even for an infinite threshold)."""
    row, qn, col_norm = _row(n, levels, stale, seed)
    lo1 = np.empty(K.SCAN_LANES, np.float32)
    a1, a2 = K.row_smallest(row, qn, col_norm, n, keep, lo1, np.empty(K.SCAN_LANES, np.float32))
    limit = (a1 if keep == 1 else a2) + above
    sel = np.full(n + 1, -1, np.int64)
    got = sel[: K.row_select(row, n, lo1, limit, sel)]
    want = [c for c in range(n) if np.isfinite(row[c]) and row[c] <= limit]
    assert sorted(got.tolist()) == want
    assert len(set(got.tolist())) == len(got)


def test_hide_owned_makes_the_owners_columns_infinite():
    rng = np.random.default_rng(3)
    n = 70
    row = rng.standard_normal(n).astype(np.float32)
    owners = rng.integers(0, 4, size=n)
    col_norm = np.abs(rng.standard_normal(n)).astype(np.float32)
    want = reference_row(row, np.float32(1.0), col_norm, n)
    K.hide_owned(row, n - 3, 2, owners)  # the last three columns are outside the scan
    lo = np.empty(K.SCAN_LANES, np.float32)
    K.row_smallest(row, np.float32(1.0), col_norm, n, 1, lo, lo.copy())
    hidden = (owners == 2) & (np.arange(n) < n - 3)
    assert np.all(np.isposinf(row[hidden]))
    np.testing.assert_array_equal(row[~hidden], want[~hidden])


def _assert_read_columns(g, cache, qb, n0, rows):
    """Row ``i`` of ``g`` (for ``i`` in ``rows``) against float64 products, in every column
    ``< n0 + i`` the sequential pass reads: the ``n0`` cache entries, then the block's requests
    before ``i``."""
    cols = np.concatenate([cache[:n0], qb]).astype(np.float64)
    for i in rows:
        want = cols[: n0 + i] @ qb[i].astype(np.float64)
        scale = np.abs(cols[: n0 + i]) @ np.abs(qb[i].astype(np.float64))
        assert np.all(np.abs(g[i, : n0 + i] - want) <= 1e-5 * scale + 1e-30), i


BLOCKS = dict(
    cap=st.integers(0, 70),
    used=st.floats(0.0, 1.0),
    b=st.integers(1, 70),
    d=st.integers(1, 40),
    offset=st.integers(0, 5),
    parallel=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)


@settings(max_examples=150, deadline=None)
@given(**BLOCKS)
def test_block_products_hold_every_column_the_pass_reads(cap, used, b, d, offset, parallel, seed):
    """Row ``i`` of a block's products holds its products with the ``n0`` used slots and with
    the block's requests before it (the lower triangle of the Gram matrix: odd block sizes,
    ``n0 = 0``, on one thread or split between two); the slots stay packed as they were. The
    columns after ``n0 + i`` are never read, so they are not checked."""
    rng = np.random.default_rng(seed)
    n0 = int(round(used * cap))
    cache = rng.standard_normal((cap, d)).astype(np.float32)
    q = rng.standard_normal((offset + b + 3, d)).astype(np.float32)
    block = b + int(rng.integers(0, 3))
    counters = np.zeros(K.N_COUNTERS, np.int64)
    counters[K.N_USED] = n0
    panels = K.slot_panels(cache, n0, block)
    buf = K.scan_scratch(cap, block)
    buf[:] = np.nan
    g = K.block_products(q, offset, offset + b, parallel, panels, counters, buf)
    assert g.shape == (b, K.scan_width(cap, block)) and g.shape[1] >= n0 + b
    _assert_read_columns(g, cache, q[offset : offset + b], n0, range(b))
    packed = unpack_panels(panels, d)
    np.testing.assert_array_equal(packed[:n0], cache[:n0])


@given(n0=st.integers(0, 10_000), b=st.integers(0, 512))
def test_the_two_thread_split_halves_the_columns_the_rows_need(n0, b):
    """The split row of the two-thread products: within the block, and the columns ``n0 + i``
    the rows before it need are half of all, up to one row's."""
    from simcache.cache.kernels.rowscan import parallel_split

    s = parallel_split(n0, b)
    assert 0 <= s <= b
    need = n0 + np.arange(b)
    assert abs(int(need[:s].sum()) - int(need[s:].sum())) <= n0 + b


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
