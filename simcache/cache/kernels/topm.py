"""Top-m candidate search of a block of requests against the cache slots, for small caches.

BLAS products of the cache against the block, then a top-m selection vectorised across requests
(:func:`top_m_block`), on two threads or on the calling thread (:func:`dense_search_block`). The
sequential pass (:mod:`~simcache.cache.kernels.sequential`) treats the result like a FAISS
search: candidates to re-check exactly.

Each candidate carries the *version* of its slot at search time (``slot_version``): a later write
into that slot makes the candidate stale.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from simcache.cache.kernels.signatures import N_USED

#: most slots per group in :func:`top_m_block`'s threshold estimate
TOP_GROUP = 16


@nb.njit(cache=True, inline="always")
def top_m_groups(n0, m):
    """(slots per group, number of groups) of :func:`top_m_block` over ``n0`` slots: about ``2 m``
    groups of consecutive slots, at most ``TOP_GROUP`` slots each (so at most ``max(4 m,
    ceil(n0 / TOP_GROUP))`` groups)."""
    size = min(TOP_GROUP, max(1, n0 // (2 * m)))
    return size, (n0 + size - 1) // size


@nb.njit(cache=True, inline="always")
def push_smallest(vals, ids, k, v, ident):
    """Insert ``(v, ident)`` into the ascending list ``vals[:k]`` / ``ids[:k]`` that holds at most
    ``len(vals)`` entries (equal values keep arrival order; a value not below a full list's last
    is dropped); return the new length."""
    m = vals.shape[0]
    if k < m:
        p = k
        k += 1
    elif v < vals[m - 1]:
        p = m - 1
    else:
        return k
    while p > 0 and vals[p - 1] > v:
        vals[p] = vals[p - 1]
        ids[p] = ids[p - 1]
        p -= 1
    vals[p] = v
    ids[p] = ident
    return k


@nb.njit(cache=True, inline="always")
def top_m_block(g, qnorm2, slot_norm2, n0, slot_version, r0, gmin, tm, vbuf, gsel, ssel, cand_slot, cand_ver, cand_sq):
    """Top-m candidates of requests ``r0 .. r0 + h - 1`` from their products with the cache.

    ``g`` (at least ``n0`` rows, h columns): ``g[s, j] = y_s . q_{r0 + j}``; its first ``n0`` rows
    are overwritten with the float32 values ``a = |q|^2 + |y_s|^2 - 2 g``. Each request gets the
    ``m`` slots with the smallest ``a`` among the first ``n0``, ascending (ties: lower slot first),
    padded with slot -1 / +inf; every slot left out has a value >= the m-th one, as
    :func:`topk_complete` requires. ``m >= 1``; values must not be NaN (:func:`block_norms` bounds
    the norms).

    Instead of one insertion per value, three steps vectorised across requests and one short
    one per request: (1) the values and the minimum of each group of consecutive slots
    (:func:`top_m_groups`); (2) the ``m`` smallest group minima by a compare-exchange network
    (``tm``, scratch ``vbuf``); the ``m``-th, ``t``, bounds the ``m``-th smallest value from above
    (``m`` distinct slots lie at or below it); (3) per request, the groups whose minimum is at
    most ``t``, then their slots whose value is at most ``t``, are listed without branches (a
    mispredicted branch per selected value cost more than the scan), and those few values are
    inserted in slot order. Scratch: ``gmin`` (groups, >= h), ``tm`` (m, >= h), ``vbuf`` (>= h),
    ``gsel`` (>= groups), ``ssel`` (>= n0).
    """
    h = g.shape[1]
    m = cand_slot.shape[1]
    size, ng = top_m_groups(n0, m)
    two = np.float32(2.0)
    qn = qnorm2[r0 : r0 + h]  # (indices from range() are known non-negative: no gather)
    gmin[:ng, :h] = np.inf
    for s in range(n0):
        ys = slot_norm2[s]
        grp = s // size
        for j in range(h):
            a = qn[j] + ys - two * g[s, j]
            g[s, j] = a
            if a < gmin[grp, j]:
                gmin[grp, j] = a
    tm[:m, :h] = np.inf
    if m <= ng:
        for grp in range(ng):
            vbuf[:h] = gmin[grp, :h]
            for p in range(m):
                for j in range(h):
                    kept = tm[p, j]
                    v = vbuf[j]
                    lower = v < kept
                    tm[p, j] = v if lower else kept
                    vbuf[j] = kept if lower else v
    for j in range(h):
        i = r0 + j
        vals = cand_sq[i]
        ids = cand_slot[i]
        t = tm[m - 1, j]
        # groups at or below t, then their slots at or below t, compacted without branches
        ng_sel = 0
        for grp in range(ng):
            gsel[ng_sel] = grp
            ng_sel += gmin[grp, j] <= t
        ns = 0
        for c in range(ng_sel):
            lo = gsel[c] * size
            for s in range(lo, min(n0, lo + size)):
                ssel[ns] = s
                ns += g[s, j] <= t
        k = 0
        for c in range(ns):
            s = ssel[c]
            k = push_smallest(vals, ids, k, g[s, j], s)
        for p in range(k):
            cand_ver[i, p] = slot_version[ids[p]]
        for p in range(k, m):
            vals[p] = np.inf
            ids[p] = -1
            cand_ver[i, p] = -1


@nb.njit(cache=True, inline="always")
def _search_part(part, qb, qnorm2, slot_rows, n0, slot_version, slot_norm2, scratch, gram, cand_slot, cand_ver, cand_sq):
    """Part ``part`` (0 or 1) of the requests of :func:`dense_search_block`."""
    gbuf, gmin, tm, vbuf, gsel, ssel = scratch[:6]
    b = qb.shape[0]
    half = (b + 1) // 2
    r0 = min(b, part * half)
    h = min(b, r0 + half) - r0
    if h == 0:
        return
    g = gbuf[part, : (n0 + b) * h].reshape((n0 + b, h))
    np.dot(slot_rows[: n0 + b], qb[r0 : r0 + h].T, g)
    for p in range(b):
        for j in range(h):
            gram[r0 + j, p] = g[n0 + p, j]
    top_m_block(g, qnorm2, slot_norm2, n0, slot_version, r0, gmin[part], tm[part], vbuf[part], gsel[part], ssel[part],
                cand_slot, cand_ver, cand_sq)  # fmt: skip


@nb.njit(parallel=True, nogil=True, cache=True)
def _search_parts_parallel(qb, qnorm2, slot_rows, n0, slot_version, slot_norm2, scratch, gram, cand_slot, cand_ver,
                           cand_sq):  # fmt: skip
    """The two parts of :func:`dense_search_block` on two threads."""
    for part in nb.prange(2):
        _search_part(part, qb, qnorm2, slot_rows, n0, slot_version, slot_norm2, scratch, gram, cand_slot, cand_ver,
                     cand_sq)  # fmt: skip


@nb.njit(cache=True)
def dense_scratch(capacity, block, m):
    """Scratch arrays of :func:`dense_search_block` for blocks of up to ``block`` requests."""
    half = (block + 1) // 2
    groups = max(4 * m, (capacity + TOP_GROUP - 1) // TOP_GROUP)  # the most top_m_groups makes
    return (
        np.empty((2, (capacity + block) * half), np.float32),  # products of each half-block
        np.empty((2, groups, half), np.float32),  # group minima
        np.empty((2, m, half), np.float32),  # m smallest group minima
        np.empty((2, half), np.float32),
        np.empty((2, groups), np.int64),  # groups, then slots, at or below a request's threshold
        np.empty((2, capacity), np.int64),
        np.empty(block * block, np.float32),  # the block's Gram matrix
        np.empty((block, m), np.int64),  # candidates: slot, request, float32 squared distance
        np.empty((block, m), np.int64),
        np.empty((block, m), np.float32),
    )


@nb.njit(cache=True, inline="always")
def dense_search_block(q, qnorm2, b0, b1, parallel, slot_rows, slot_version, counters, slot_norm2, scratch):
    """Exact top-m search of requests ``b0 .. b1 - 1`` against the used slots, and the block's
    Gram matrix; returns views (gram, cand_slot, cand_ver, cand_sq) into ``scratch``
    (:func:`dense_scratch`).

    The block is copied into ``slot_rows[n0 : n0 + b]`` (free slots or the spare rows after the
    last slot), so that one BLAS call per part, ``slot_rows[:n0 + b] @ q_part.T``, gives both the
    products with the cache and the Gram matrix (cache-major products, M = cache rows, suit BLAS
    better than request-major ones at these small request counts). Requests are split in two
    parts, on two threads when ``parallel`` (each with single-threaded BLAS), else one after the
    other on the calling thread (no OpenMP: safe in a forked child); top-m selection by
    :func:`top_m_block`. Every value is computed the same way whatever the number of threads.
    """
    gram_buf, cand_slot, cand_ver, cand_sq = scratch[6:]
    b = b1 - b0
    n0 = counters[N_USED]
    qb = q[b0:b1]
    gram = gram_buf[: b * b].reshape((b, b))
    slot_rows[n0 : n0 + b] = qb
    if parallel:
        _search_parts_parallel(qb, qnorm2[b0:b1], slot_rows, n0, slot_version, slot_norm2, scratch, gram, cand_slot[:b],
                               cand_ver[:b], cand_sq[:b])  # fmt: skip
    else:
        for part in range(2):
            _search_part(part, qb, qnorm2[b0:b1], slot_rows, n0, slot_version, slot_norm2, scratch, gram, cand_slot[:b],
                         cand_ver[:b], cand_sq[:b])  # fmt: skip
    return gram, cand_slot[:b], cand_ver[:b], cand_sq[:b]


@nb.njit(cache=True)
def search_chunk_dense(q, qnorm2, block, m, parallel, slot_rows, slot_version, counters, slot_norm2):
    """Only the searches of :func:`serve_chunk_dense` (the cache never changes): its search share,
    timed by :func:`simcache.cache.engine.search_seconds`."""
    scratch = dense_scratch(slot_version.shape[0], block, m)
    for b0 in range(0, q.shape[0], block):
        dense_search_block(q, qnorm2, b0, min(q.shape[0], b0 + block), parallel, slot_rows, slot_version, counters,
                           slot_norm2, scratch)  # fmt: skip
