"""The packed panels and their tiles against plain references: the packing layout, the tiles'
products (against float64 numpy, within the float32 dot-product bound), the rectangle a tile
writes, and that a tile reads no request row past its last."""

from __future__ import annotations

import hypothesis.strategies as st
import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings

from simcache.cache.kernels.panels import (
    PANEL, ROWS, pack_columns, panel_floats, target_vector_width, tile_full, tile_half, tile_products,
)  # fmt: skip
from tests.simcache.cache.helpers import page_end, unpack_panels


@nb.njit
def _tile(width, q, q_off, ldq, nrows, panels, pan_off, g, g_off, ldg, k):
    if width == PANEL:
        tile_full(q, q_off, ldq, nrows, panels, pan_off, g, g_off, ldg, k)
    else:
        tile_half(q, q_off, ldq, nrows, panels, pan_off, g, g_off, ldg, k)


@nb.njit
def _pack(panels, c0, rows):
    pack_columns(panels, c0, rows)


@nb.njit
def _products(qb, panels, g, n0, r0, r1):
    tile_products(qb, panels, g, n0, r0, r1)


def assert_products(got: np.ndarray, q: np.ndarray, cols: np.ndarray) -> None:
    """``got[i, c]`` is ``q[i] . cols[c]`` within the float32 dot-product bound."""
    want = q.astype(np.float64) @ cols.astype(np.float64).T
    scale = np.abs(q.astype(np.float64)) @ np.abs(cols.astype(np.float64)).T
    assert np.all(np.abs(got - want) <= (q.shape[1] + 2) * 2.0**-24 * scale + 1e-30)


@settings(deadline=None)
@given(n=st.integers(0, 40), c0=st.integers(0, 40), d=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_packed_columns_are_the_rows_in_the_documented_layout(n, c0, d, seed):
    rows = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    panels = np.full(panel_floats(c0 + n, d), np.nan, np.float32)
    _pack(panels, c0, rows)
    cols = unpack_panels(panels, d)
    np.testing.assert_array_equal(cols[c0 : c0 + n], rows)
    assert np.isnan(cols[:c0]).all() and np.isnan(cols[c0 + n :]).all()


@settings(max_examples=200, deadline=None)
@given(width=st.sampled_from([PANEL // 2, PANEL]), nrows=st.integers(1, ROWS), d=st.integers(1, 70), pad_q=st.integers(0, 5),
       pad_g=st.integers(0, 5), panel=st.integers(0, 2), seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_a_tile_writes_its_products_and_only_its_rectangle(width, nrows, d, pad_q, pad_g, panel, seed):
    rng = np.random.default_rng(seed)
    ldq, ldg = d + pad_q, PANEL + pad_g
    q = rng.standard_normal((nrows + 2, ldq)).astype(np.float32)
    cols = rng.standard_normal((3 * PANEL, d)).astype(np.float32)
    panels = np.zeros(panel_floats(3 * PANEL, d), np.float32)
    _pack(panels, 0, cols)
    g = np.full((nrows + 3, ldg), np.nan, np.float32)
    _tile(width, q, ldq, ldq, nrows, panels, panel * PANEL * d, g, ldg + pad_g, ldg, d)
    got = g.reshape(-1)[ldg + pad_g :][: nrows * ldg].reshape(nrows, ldg)
    assert_products(got[:, :width], q[1 : 1 + nrows, :d], cols[panel * PANEL :][:width])
    written = np.zeros(g.size, bool)
    for r in range(nrows):
        written[ldg + pad_g + r * ldg :][:width] = True
    assert np.isnan(g.reshape(-1)[~written]).all()


@pytest.mark.parametrize(("features", "lanes"), [
    ("+avx2,+fma,+avx512f,+avx512bw", 16),
    ("+avx2,+fma,-avx512f", 8),
    ("+avx2,+avx512fp16,-avx512f", 8),
    ("", 8),
])  # fmt: skip
def test_the_vector_width_follows_numbas_target_features(monkeypatch, features, lanes):
    """16 float32 lanes where numba targets AVX-512 (``+avx512f`` exactly), else 8; the panel
    this process compiled for is two vectors of its target's width."""
    from numba.core import config

    monkeypatch.setattr(config, "CPU_FEATURES", features)
    assert target_vector_width() == lanes
    monkeypatch.undo()
    assert PANEL == 2 * target_vector_width()


def test_a_tile_reads_no_row_past_its_last():
    """Request rows ending at a page followed by an inaccessible page: a tile of fewer than ROWS
    rows that read a row past its last would fault."""
    d = 24
    cols = np.arange(PANEL * d, dtype=np.float32).reshape(PANEL, d) / 100
    panels = np.zeros(panel_floats(PANEL, d), np.float32)
    _pack(panels, 0, cols)
    with page_end() as ending:
        for nrows in range(1, ROWS + 1):
            q = ending(nrows * d).reshape(nrows, d)
            q[:] = np.arange(nrows * d, dtype=np.float32).reshape(nrows, d) / 7
            g = np.zeros((nrows, PANEL), np.float32)
            _tile(PANEL, q, 0, d, nrows, panels, 0, g, 0, PANEL, d)
            assert_products(g, q, cols)


@settings(max_examples=100, deadline=None)
@given(n0=st.integers(0, 60), b=st.integers(1, 40), r0=st.integers(0, 40), r1=st.integers(0, 40), d=st.integers(1, 30),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_tile_products_give_each_row_its_columns_and_touch_no_other_row(n0, b, r0, r1, d, seed):
    """Row ``i`` of the range gets its products with columns ``< n0 + i`` (the used slots, then
    the block before it); rows outside the range are left alone."""
    r0, r1 = sorted((min(r0, b), min(r1, b)))
    rng = np.random.default_rng(seed)
    qb = rng.standard_normal((b, d)).astype(np.float32)
    cols = np.concatenate([rng.standard_normal((n0, d)).astype(np.float32), qb])
    panels = np.zeros(panel_floats(n0 + b, d), np.float32)
    _pack(panels, 0, cols)
    g = np.full((b, panel_floats(n0 + b, 1)), np.nan, np.float32)
    _products(qb, panels, g, n0, r0, r1)
    for i in range(r0, r1):
        assert_products(g[i : i + 1, : n0 + i], qb[i : i + 1], cols[: n0 + i])
    assert np.isnan(g[:r0]).all() and np.isnan(g[r1:]).all()
