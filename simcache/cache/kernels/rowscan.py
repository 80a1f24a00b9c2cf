"""Block products and row scans: the search of the block engine for flat CPU caches.

Per block of ``b`` requests, the products of the block with the ``n0`` slots used at block
start and with itself (:func:`block_products`: the batched search's own work plus the lower
triangle of the block's Gram matrix), request-major, so that each request's products lie in one
contiguous row: column ``s < n0`` is the entry in slot ``s`` at block start, column ``n0 + p``
the entry request ``p`` of the block inserted; row ``i`` holds its columns ``< n0 + i`` (the
entries of requests ``p < i``; the columns after them are not read). The cache is kept packed
for these products (:mod:`~simcache.cache.kernels.panels`). The sequential pass
(:func:`~simcache.cache.kernels.sequential.serve_chunk_dense`) keeps one squared norm per column,
``+inf`` for a column whose entry the request may not see (evicted, or not inserted yet), hides
the entries of the request's own owner (:func:`hide_owned`), scans the row for the smallest
float32 approximations ``a = |q|^2 + |y|^2 - 2 q.y`` (:func:`row_smallest`) and lists the
columns at or below a threshold (:func:`row_select`) for the exact re-check. Every entry the
request may see has its approximation in the row, so no candidate list needs a completeness
proof.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from simcache.cache.kernels.laneminima import SCAN_LANES, lane_minima, lanes_at_most, lowest_bit
from simcache.cache.kernels.panels import pack_columns, panel_floats, tile_products
from simcache.cache.kernels.signatures import N_USED

_MAX_F32 = float(np.finfo(np.float32).max)


@nb.njit(cache=True, inline="always")
def hide_owned(row, n, owner, col_owner):
    """Set ``row[c] = -inf`` for the columns ``c < n`` whose entry ``owner`` made: the
    approximation :func:`row_smallest` computes from the product is then ``+inf``
    (``exclude_self``)."""
    ninf = np.float32(-np.inf)
    for c in range(n):
        row[c] = ninf if col_owner[c] == owner else row[c]


@nb.njit(cache=True, inline="always")
def row_smallest(row, qn, col_norm, n, keep, lo1, lo2):
    """Overwrite the products ``row[:n]`` (``row[c] = q . y_c``) by the float32 approximations
    ``qn + col_norm[c] - 2 row[c]`` and return the smallest and, when ``keep == 2``, the second
    smallest of them (as a multiset; ``+inf`` when there are fewer, and for ``keep == 1``) as float64.

    The running minima (pairs of them for ``keep == 2``) of each lane, column ``c`` in lane
    ``c % SCAN_LANES``, are kept in ``lo1`` / ``lo2`` (float32, ``SCAN_LANES`` long;
    :func:`~simcache.cache.kernels.laneminima.lane_minima`, vector code, which also returns the
    least of them); the second smallest is folded here; ``lo1`` is left for :func:`row_select`.
    Values must not be NaN (``col_norm`` and ``-row`` may be ``+inf``).
    """
    inf = np.float32(np.inf)
    m1 = lane_minima(row, qn, col_norm, n, keep, lo1, lo2)
    # the second smallest, branch-free so that it vectorises: the least of the lanes' second
    # minima and of the lane minima after one copy of the smallest (the smallest itself when two
    # lanes hold it)
    if keep == 1:
        return np.float64(m1), np.inf
    m2 = lo2[0]
    rest = inf
    ties = 0
    for j in range(SCAN_LANES):
        v = lo1[j]
        m2 = lo2[j] if lo2[j] < m2 else m2
        ties += v == m1
        above = v if v > m1 else inf
        rest = above if above < rest else rest
    second = m1 if ties >= 2 else rest
    return np.float64(m1), np.float64(second if second < m2 else m2)


@nb.njit(cache=True, inline="always")
def row_select(row, n, lo1, threshold, sel):
    """The columns ``c < n`` with a finite ``row[c] <= threshold`` (float64) into ``sel``, lane by
    lane; return their number. Only the lanes whose minimum (``lo1``, :func:`row_smallest`) is at
    or below the threshold are read (:func:`~simcache.cache.kernels.laneminima.lanes_at_most`).
    ``+inf`` marks a column the request may not see, so it is never selected, even when fewer
    than ``keep`` entries are visible and the threshold is ``+inf``."""
    limit = min(threshold, _MAX_F32)
    lanes = lanes_at_most(lo1, limit)
    ns = 0
    while lanes != 0:
        j = lowest_bit(lanes)
        lanes &= lanes - 1
        for c in range(j, n, SCAN_LANES):
            if np.float64(row[c]) <= limit:
                sel[ns] = c
                ns += 1
    return ns


@nb.njit(cache=True, inline="always")
def parallel_split(n0, b):
    """The row ``s`` that halves the columns ``n0 + i`` the rows ``i < b`` need:
    ``s n0 + s^2 / 2 = (b n0 + b^2 / 2) / 2``, rounded, within ``[0, b]``."""
    s = -n0 + np.sqrt(n0 * n0 + b * n0 + b * b / 2.0)
    return min(b, max(0, int(s + 0.5)))


@nb.njit("void(float32[:, ::1], float32[::1], float32[:, ::1], int64)", parallel=True, nogil=True, cache=True)
def _products_parallel(qb, panels, g, n0):
    """:func:`block_products`'s products in two ranges of the requests on two threads, split
    where the columns they need are about equal in number (row ``i`` needs ``n0 + i``).

    Compiled eagerly, for the one signature the engine uses: lazily compiled, this parallel callee
    of cached functions made them crash when loaded from numba's on-disk cache if another process
    had cached it first (numba issue 8578; ``tests/simcache/cache/test_cache_from_disk.py``)."""
    b = qb.shape[0]
    split = parallel_split(n0, b)
    for part in nb.prange(2):
        r0 = 0 if part == 0 else split
        r1 = split if part == 0 else b
        tile_products(qb, panels, g, n0, r0, r1)


@nb.njit(cache=True, inline="always")
def scan_width(capacity, block):
    """Row stride of :func:`block_products`'s products: the columns the panels hold, every column
    a tile may write."""
    return panel_floats(capacity + block, 1)


@nb.njit(cache=True, inline="always")
def scan_scratch_size(capacity, block):
    """Length of the products buffer of :func:`block_products` for blocks of up to ``block`` requests."""
    return block * scan_width(capacity, block)


@nb.njit(cache=True)
def scan_scratch(capacity, block):
    """Products buffer of :func:`block_products` for blocks of up to ``block`` requests."""
    return np.empty(scan_scratch_size(capacity, block), np.float32)


@nb.njit(cache=True)
def slot_panels(slots, n_used, block):
    """The panels of :func:`block_products`: the ``n_used`` used slots packed as its first columns,
    room for a block's requests after the last slot."""
    capacity, d = slots.shape
    panels = np.zeros(panel_floats(capacity + block, d), np.float32)
    pack_columns(panels, 0, slots[:n_used])
    return panels


@nb.njit(cache=True, inline="always")
def block_products(q, b0, b1, parallel, panels, counters, buf):
    """Products of requests ``b0 .. b1 - 1`` with the ``n0`` used slots and with the requests
    before them: a (b, :func:`scan_width`) view ``g`` of ``buf`` with ``g[i, s] = q_{b0+i} . y_s``
    for ``s < n0`` and ``g[i, n0 + p] = q_{b0+i} . q_{b0+p}`` for ``p < i`` (the lower triangle of
    the block's Gram matrix: what the sequential pass reads); the other columns hold some of the
    upper triangle or garbage.

    ``panels`` (:mod:`~simcache.cache.kernels.panels`) holds the used slots as its first ``n0``
    columns; the block is packed after them (free slots, or the spare columns after the last
    slot), so one pass of tiles gives the slots and the block columns
    (:func:`~simcache.cache.kernels.panels.tile_products`). Split in two ranges of the requests on
    two threads when ``parallel``, else on the calling thread (no OpenMP: safe in a forked child).
    """
    b = b1 - b0
    n0 = counters[N_USED]
    width = panels.shape[0] // q.shape[1]  # the columns the panels hold: scan_width
    qb = q[b0:b1]
    g = buf[: b * width].reshape((b, width))
    pack_columns(panels, n0, qb)
    if parallel:
        _products_parallel(qb, panels, g, n0)
    else:
        tile_products(qb, panels, g, n0, 0, b)
    return g


@nb.njit(cache=True)
def search_chunk_dense(q, block, parallel, slots, counters):
    """Only the block products of :func:`~simcache.cache.kernels.sequential.serve_chunk_dense`
    (the cache never changes): its search share, timed by
    :func:`simcache.cache.engine.search_seconds`."""
    capacity = slots.shape[0]
    buf = scan_scratch(capacity, block)
    panels = slot_panels(slots, counters[N_USED], block)
    for b0 in range(0, q.shape[0], block):
        block_products(q, b0, min(q.shape[0], b0 + block), parallel, panels, counters, buf)
