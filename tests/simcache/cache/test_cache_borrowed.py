"""``borrowed`` views (the hot loops' arrays without reference counting): the same memory, shape
and strides as the array they borrow from, and locals kept alive by ``keep_alive``."""

from __future__ import annotations

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simcache.cache.kernels.borrowed import borrowed, keep_alive, split


@nb.njit
def _scale_rows_through_view(a, factor):
    view = borrowed(a)
    for i in range(view.shape[0]):
        row = view[i]
        if i % 2:
            row *= factor
            continue
        row += 1.0
    return view.shape[0], view.shape[1], view.strides[0]


@nb.njit
def _carved_local_sum(n):
    owner = np.arange(3 * n, dtype=np.float64)
    a, rest = split(borrowed(owner), n)
    b, c = split(rest, n)
    total = 0.0
    for i in range(n):
        total += a[i] + 10.0 * b[i] + 100.0 * c[i]
    keep_alive(owner)
    return total


@given(st.integers(1, 9), st.integers(1, 7), st.floats(-4, 4, allow_nan=False))
@settings(max_examples=30, deadline=None)
def test_writes_through_a_borrowed_view_reach_the_array(n, d, factor):
    a = np.random.default_rng(n * 31 + d).standard_normal((n, d))
    expected = a.copy()
    expected[1::2] *= factor
    expected[0::2] += 1.0
    shape0, shape1, stride0 = _scale_rows_through_view(a, factor)
    assert (shape0, shape1, stride0) == (n, d, a.strides[0])
    np.testing.assert_array_equal(a, expected)


def test_a_strided_array_keeps_its_strides():
    base = np.zeros((6, 4))
    _scale_rows_through_view(base[::2], 3.0)  # rows 0, 2, 4 of base are the view's rows 0, 1, 2
    np.testing.assert_array_equal(base[:, 0], [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


def test_views_carved_from_a_kept_local_read_its_values():
    n = 50
    x = np.arange(3 * n, dtype=np.float64)
    assert _carved_local_sum(n) == float(x[:n].sum() + 10 * x[n : 2 * n].sum() + 100 * x[2 * n :].sum())


def test_borrowing_leaves_the_reference_count_unchanged():
    import sys

    a = np.ones((4, 3))
    before = sys.getrefcount(a)
    for _ in range(100):
        _scale_rows_through_view(a, 1.0)
    assert sys.getrefcount(a) == before


def test_a_buffer_too_small_for_its_parts_is_an_error():
    import pytest

    @nb.njit
    def carve(n):
        a, rest = split(np.empty(n), 3)
        b, _ = split(rest, 3)
        return a.size + b.size

    assert carve(6) == 6
    with pytest.raises(ValueError, match="too small"):
        carve(5)
