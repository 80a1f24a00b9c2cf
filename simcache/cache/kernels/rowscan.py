"""Block products and row scans: the search of the block engine for flat CPU caches.

Per block of ``b`` requests, one BLAS product of the block against the slots used at block start
and against itself (:func:`block_products`: the batched search's own work plus the block's Gram
matrix), request-major, so that each request's products lie in one contiguous row. The sequential
pass (:func:`~simcache.cache.kernels.sequential.serve_chunk_dense`) then scans each request's row
for the smallest float32 approximations ``a_s = |q|^2 + |y_s|^2 - 2 q.y_s`` (:func:`row_smallest`),
with a slot rewritten earlier in the block made invisible by a ``+inf`` squared norm (the
column's entry is gone) and entries of the request's own owner by a ``-inf`` product
(:func:`hide_owned`), and lists the slots whose approximation is at or below a threshold
(:func:`row_select`) for the exact re-check. Every entry the cache holds at block start has its
approximation in the row, so no candidate list needs a completeness proof.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from simcache.cache.kernels.signatures import N_USED

#: independent running minima of :func:`row_smallest` (two AVX-512 registers of float32)
SCAN_LANES = 32


@nb.njit(cache=True, inline="always")
def hide_owned(row, n, owner, slot_owner):
    """Set ``row[s] = -inf`` for the slots ``s < n`` whose entry ``owner`` made: the approximation
    :func:`row_smallest` computes from the product is then ``+inf`` (``exclude_self``)."""
    ninf = np.float32(-np.inf)
    for s in range(n):
        row[s] = ninf if slot_owner[s] == owner else row[s]


@nb.njit(cache=True, inline="always")
def row_smallest(row, qn, ynorm, n, keep, lo1, lo2):
    """Overwrite the products ``row[:n]`` (``row[s] = q . y_s``) by the float32 approximations
    ``qn + ynorm[s] - 2 row[s]`` and return the smallest and, when ``keep == 2``, the second
    smallest of them (as a multiset; ``+inf`` when there are fewer; the second is only meaningful
    when ``keep == 2``).

    ``SCAN_LANES`` running minima (pairs of them for ``keep == 2``), one per residue of ``s``,
    in ``lo1`` / ``lo2`` (float32 scratch of that length), so that the loop vectorises; folded
    at the end. Values must not be NaN (``ynorm`` and ``-row`` may be ``+inf``).
    """
    two = np.float32(2.0)
    inf = np.float32(np.inf)
    lo1[:] = inf
    lo2[:] = inf
    full = n - n % SCAN_LANES
    if keep == 1:
        for base in range(0, full, SCAN_LANES):
            for j in range(SCAN_LANES):
                a = qn + ynorm[base + j] - two * row[base + j]
                row[base + j] = a
                m1 = lo1[j]
                lo1[j] = a if a < m1 else m1
    else:
        for base in range(0, full, SCAN_LANES):
            for j in range(SCAN_LANES):
                a = qn + ynorm[base + j] - two * row[base + j]
                row[base + j] = a
                m1 = lo1[j]
                hi = a if a > m1 else m1
                m2 = lo2[j]
                lo2[j] = hi if hi < m2 else m2
                lo1[j] = a if a < m1 else m1
    for s in range(full, n):
        j = s - full
        a = qn + ynorm[s] - two * row[s]
        row[s] = a
        m1 = lo1[j]
        hi = a if a > m1 else m1
        lo2[j] = hi if hi < lo2[j] else lo2[j]
        lo1[j] = a if a < m1 else m1
    a1 = np.inf
    a2 = np.inf
    for j in range(SCAN_LANES):
        v = np.float64(lo1[j])
        if v < a1:
            a1, a2 = v, a1
        elif v < a2:
            a2 = v
        v = np.float64(lo2[j])
        if v < a2:
            a2 = v
    return a1, a2


@nb.njit(cache=True, inline="always")
def row_select(row, n, threshold, sel):
    """The slots ``s < n`` with ``row[s] <= threshold`` (float64), ascending, into ``sel``; return
    their number. Compared in float32 against the largest float32 at or below the threshold (the
    same outcome for float32 values), compacted without branches."""
    t = np.float32(threshold)
    if np.float64(t) > threshold:
        t = np.nextafter(t, np.float32(-np.inf))
    ns = 0
    for s in range(n):
        sel[ns] = s
        ns += row[s] <= t
    return ns


@nb.njit(cache=True, inline="always")
def _products(qb, slot_rows, g):
    """``g = qb @ slot_rows[:g.shape[1]].T`` (one BLAS call; a part with no rows is skipped)."""
    if qb.shape[0] > 0:
        np.dot(qb, slot_rows[: g.shape[1]].T, g)


@nb.njit(parallel=True, nogil=True, cache=True)
def _products_parallel(qb, slot_rows, g):
    """:func:`block_products`'s product in two halves of the requests on two threads."""
    b = qb.shape[0]
    half = (b + 1) // 2
    for part in nb.prange(2):
        r0 = min(b, part * half)
        r1 = min(b, r0 + half)
        _products(qb[r0:r1], slot_rows, g[r0:r1])


@nb.njit(cache=True)
def scan_scratch(capacity, block):
    """Products buffer of :func:`block_products` for blocks of up to ``block`` requests."""
    return np.empty(block * (capacity + block), np.float32)


@nb.njit(cache=True, inline="always")
def block_products(q, b0, b1, parallel, slot_rows, counters, buf):
    """Products of requests ``b0 .. b1 - 1`` with the ``n0`` used slots and with each other: a
    (b, n0 + b) view ``g`` of ``buf`` with ``g[i, s] = q_{b0+i} . y_s`` for ``s < n0`` and
    ``g[i, n0 + p] = q_{b0+i} . q_{b0+p}`` (the block's Gram matrix).

    The block is copied into ``slot_rows[n0 : n0 + b]`` (free slots or the spare rows after the
    last slot) so that one BLAS call gives both. Split in two halves of the requests on two
    threads when ``parallel`` (each with single-threaded BLAS), else one call on the calling
    thread (no OpenMP: safe in a forked child).
    """
    b = b1 - b0
    n0 = counters[N_USED]
    qb = q[b0:b1]
    g = buf[: b * (n0 + b)].reshape((b, n0 + b))
    slot_rows[n0 : n0 + b] = qb
    if parallel:
        _products_parallel(qb, slot_rows, g)
    else:
        _products(qb, slot_rows, g)
    return g


@nb.njit(cache=True)
def search_chunk_dense(q, block, parallel, slot_rows, capacity, counters):
    """Only the block products of :func:`~simcache.cache.kernels.sequential.serve_chunk_dense`
    (the cache never changes): its search share, timed by
    :func:`simcache.cache.engine.search_seconds`."""
    buf = scan_scratch(capacity, block)
    for b0 in range(0, q.shape[0], block):
        block_products(q, b0, min(q.shape[0], b0 + block), parallel, slot_rows, counters, buf)
