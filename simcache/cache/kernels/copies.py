"""Array copies of the hot path as plain element loops.

Numba compiles a slice assignment (``a[i, :] = x``) through its broadcasting code: a scalar loop
that clamps every index. The block engine's two copies (each block into the spare slot rows, each
inserted request into its slot) were among the hottest loops of a small-cache replay under
``perf`` that way; a loop over two contiguous rows compiles to vector moves instead.
"""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True, inline="always")
def copy_row(src, dst):  # type: ignore[no-untyped-def]
    """``dst[:] = src`` for two 1-D arrays of the same length."""
    for k in range(src.shape[0]):
        dst[k] = src[k]


@nb.njit(cache=True, inline="always")
def copy_rows(src, dst):  # type: ignore[no-untyped-def]
    """``dst[:, :] = src`` for two 2-D arrays of the same shape."""
    for i in range(src.shape[0]):
        for k in range(src.shape[1]):
            dst[i, k] = src[i, k]
