"""The sequential pass: apply the policy request by request, given candidates from a batched search.

:func:`serve_block` runs over a block, given a top-m search of the block against the cache at
block start: candidates whose slot was written since are stale and skipped, entries inserted
earlier in the block are checked via the block's Gram matrix, and every candidate is re-checked
exactly (:mod:`~simcache.cache.kernels.distances`). The exact distance is recomputed for every
candidate whose approximation is within ``2 tol`` of the k-th smallest approximation
(:func:`resolve`), which provably includes the exact k nearest. With a top-m search, entries
outside the list have approximation >= the m-th one; if that minus ``tol`` is not strictly above
the k-th best exact distance, the request is resolved by an exact scan of every cached entry
instead (:func:`full_scan`); the same scan runs when every candidate is stale. So results never
depend on FAISS rounding or on the block size.

Cache state: ``slots`` (C, d) float32 vectors; ``slot_id`` (C,) the entry id the log records (and
the tie rule uses; for a query cache the request index that inserted it); ``slot_version`` (C,)
the write count at the entry's insertion, which a search result must match to be live;
``slot_owner`` (C,) who made the inserting request (a user code, or -1), so that a request can
ignore its owner's own entries (:func:`hidden`); and
``counters`` (:mod:`~simcache.cache.kernels.signatures`). The plain engine calls
:func:`serve_block` with one request per block after searching the current cache, so nothing is
ever stale for it; :func:`serve_chunk_dense` runs whole chunks of blocks for flat CPU caches
without returning to Python, from the block products and row scans of
:mod:`~simcache.cache.kernels.rowscan` instead of a top-m list (every entry has its
approximation in the row: no completeness proof, no fallback scan).

Moving keys (a policy whose ``move`` kernel returns m > 0, CLS-LRU): a hit that moves the served
entry's key (:func:`move_key`) gives the slot a new version, like a rewrite, so the block's
precomputed distances to it (top-m list, Gram column, row column) are stale and skipped from then
on; the moved entry is listed with its new version and every later request of the block computes
its distance to it directly (:func:`moved_candidates`), until it moves again or is evicted. The
searchers that keep their own copy of the entries (``after_insert``) get the moved slot like a
rewritten one.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types as nt

from simcache.cache.kernels.borrowed import borrowed, keep_alive, split
from simcache.cache.kernels.copies import copy_row, prefetch
from simcache.cache.kernels.distances import METRIC_CODES, block_norms, offer, sqdist, sqnorm, to_metric
from simcache.cache.kernels.draws import uniform
from simcache.cache.kernels.signatures import (
    APPROX_HIT, DECIDE_T, EXACT_HIT, FMETA, FPAR, GLOB, HIT, INSERT, INSERT_T, META, MOVE_T, N_FULL_SCANS,
    N_USED, N_WRITES, REFRESH, REMOVE_T, TOUCH_T, VICTIM_T,
)  # fmt: skip
from simcache.cache.kernels.panels import pack_column
from simcache.cache.kernels.rowscan import (
    SCAN_LANES, block_products, hide_owned, row_select, row_smallest, scan_scratch_size, slot_panels,
)  # fmt: skip

_COSINE = METRIC_CODES["cosine"]


@nb.njit(cache=True, inline="always")
def hidden(owner, entry_owner):
    """Whether an entry is invisible to a request: its owner made it and owners are compared
    (``owner >= 0``; the ``exclude_self`` option)."""
    return owner >= 0 and entry_owner == owner


@nb.njit(cache=True)
def full_scan(x, owner, slots, slot_id, slot_owner, n_used, bsq, breq, bslot, keep):
    """Exact nearest ``keep`` entries over every used slot the request may see."""
    nbest = 0
    for s in range(n_used):
        if hidden(owner, slot_owner[s]):
            continue
        nbest = offer(sqdist(x, slots[s]), slot_id[s], s, bsq, breq, bslot, nbest, keep)
    return nbest


@nb.njit(cache=True, inline="always")
def collect_topk(i, owner, cand_slot, cand_ver, cand_sq, slot_id, slot_version, slot_owner, cs, cr, ca, nc):
    """Append the still-live, visible entries of a top-m search result row to the scratch candidates."""
    for j in range(cand_slot.shape[1]):
        s = cand_slot[i, j]
        if s < 0:
            break
        if slot_version[s] != cand_ver[i, j]:
            continue  # evicted since the search: its slot now holds another entry
        if hidden(owner, slot_owner[s]):
            continue
        cs[nc] = s
        cr[nc] = slot_id[s]
        ca[nc] = cand_sq[i, j]
        nc += 1
    return nc


@nb.njit(cache=True, inline="always")
def two_smallest(a, a1, a2):
    """The two smallest of ``a``, ``a1 <= a2``: the running pair after seeing value ``a``."""
    if a < a1:
        return a, a1
    if a < a2:
        return a1, a
    return a1, a2


@nb.njit(cache=True, inline="always")
def collect_inblock(i, owner, gram, qnorm2, ins_pos, ins_slot, ins_ver, n_ins, slot_id, slot_version, slot_owner,
                    cs, cr, ca, nc, keep, tol):  # fmt: skip
    """Append the live entries inserted earlier in the block that may be among the nearest ``keep``;
    return (number of candidates, threshold for :func:`resolve`).

    Approximations (those already in ``ca[:nc]`` and the in-block ones) are float32-grade, within
    ``tol`` of the exact value, so the ``keep``-th best exact value is at most the ``keep``-th
    smallest approximation + ``tol``, and a candidate whose approximation exceeds that + ``tol``
    cannot be among the nearest. The threshold only falls as entries are added, so such an entry
    is not collected.
    """
    a1 = np.inf
    a2 = np.inf
    for j in range(nc):
        a1, a2 = two_smallest(ca[j], a1, a2)
    threshold = (a1 if keep == 1 else a2) + 2.0 * tol
    qi = np.float64(qnorm2[i])
    for p in range(n_ins):
        pi = ins_pos[p]
        s = ins_slot[p]
        if slot_version[s] != ins_ver[p]:
            continue  # inserted in this block, then evicted
        if hidden(owner, slot_owner[s]):
            continue
        a = qi + np.float64(qnorm2[pi]) - 2.0 * np.float64(gram[i, pi])
        if a > threshold:
            continue
        cs[nc] = s
        cr[nc] = slot_id[s]
        ca[nc] = a
        nc += 1
        a1, a2 = two_smallest(a, a1, a2)
        threshold = (a1 if keep == 1 else a2) + 2.0 * tol
    return nc, threshold


@nb.njit(cache=True, inline="always")
def moved_candidates(x, owner, mv_slot, mv_ver, n_mv, slots, slot_id, slot_version, slot_owner, cs, cr, ca, nc):
    """Append the live, visible entries whose key moved earlier in the block, with their exact
    squared distance as the approximation (the block's precomputed ones are stale); return the
    number of candidates."""
    for p in range(n_mv):
        s = mv_slot[p]
        if slot_version[s] != mv_ver[p]:
            continue  # moved again (listed again) or evicted since
        if hidden(owner, slot_owner[s]):
            continue
        cs[nc] = s
        cr[nc] = slot_id[s]
        ca[nc] = sqdist(x, slots[s])
        nc += 1
    return nc


@nb.njit(cache=True, inline="always")
def resolve(x, cs, cr, ca, nc, threshold, keep, slots, bsq, breq, bslot):
    """Exact nearest ``keep`` among the scratch candidates, recomputing only those with an
    approximation within ``threshold`` (see :func:`collect_inblock`)."""
    nbest = 0
    for j in range(nc):
        if ca[j] <= threshold:
            nbest = offer(sqdist(x, slots[cs[j]]), cr[j], cs[j], bsq, breq, bslot, nbest, keep)
    return nbest


@nb.njit(cache=True, inline="always")
def threshold(a1, a2, keep, tol):
    """Largest approximation a candidate may have and still be among the exact nearest ``keep``,
    given the two smallest approximations ``a1 <= a2`` of the entries the request may see: they
    are within ``tol`` of the exact values, so the ``keep``-th best exact value is at most the
    ``keep``-th smallest approximation + ``tol``, and an entry whose approximation exceeds that +
    ``tol`` cannot be among the nearest."""
    return (a1 if keep == 1 else a2) + 2.0 * tol


@nb.njit(cache=True, inline="always")
def topk_complete(i, cand_slot, cand_sq, tol, nbest, bsq, keep, exact):
    """Whether a top-m search row provably contained the exact nearest ``keep`` entries.

    With an exact index, entries left out of the top-m list have float32 distance >= the m-th,
    hence true squared distance >= that minus ``tol``. With an approximate index (``exact`` False)
    the candidates are trusted unless none of them is live.
    """
    if not exact:
        return nbest > 0
    m = cand_slot.shape[1]
    if m == 0 or cand_slot[i, m - 1] < 0:
        return True  # the search returned every entry the cache had; stale ones were replaced in-block
    if nbest < keep:
        return False
    return np.float64(cand_sq[i, m - 1]) - tol > bsq[keep - 1]


@nb.njit(cache=True, inline="always")
def move_key(y, x, m, metric):
    """Move key ``y`` toward request ``x``: ``float32(y_k + (x_k - y_k) / m)`` in float64 (m = n + 1:
    the running mean of n + 1 requests); for ``cosine`` the result is unit-normalised again as
    :func:`~simcache.cache.kernels.distances.normalize_rows` normalises requests (left as it is if
    it is the zero vector)."""
    for k in range(y.shape[0]):
        yk = np.float64(y[k])
        y[k] = np.float32(yk + (np.float64(x[k]) - yk) / m)
    if metric == _COSINE:
        s = sqnorm(y)
        if s > 0.0:
            n = math.sqrt(s)
            for k in range(y.shape[0]):
                y[k] = np.float32(np.float64(y[k]) / n)


@nb.njit(cache=True, inline="always")
def apply_request(
    i, t, x, nbest, bsq, breq, bslot, metric, key, fpar,
    decide, touch, insert, remove, victim, meta, fmeta, glob,
    slots, slot_id, slot_version, slot_owner, counters, owner,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """Decide request ``t`` (row ``i`` of the output views) and update the cache; return (the slot
    written, -1 if nothing was inserted; the slot of the entry that served it and is still cached,
    -1 if none: :func:`apply_move`'s input). A new entry gets id ``t``, the next version and the
    request's owner. (At most 30 arguments: CPython passes more as ``*args``, which numba cannot
    inline.)"""
    has1 = nbest >= 1
    has2 = nbest >= 2
    d1 = to_metric(bsq[0], metric) if has1 else np.inf
    d2 = to_metric(bsq[1], metric) if has2 else np.inf
    flags = decide(has1, d1, has2, d2, uniform(key, t, 0), uniform(key, t, 1), fpar)
    out_distance[i] = np.float32(d1)
    if has1 and (flags & HIT) != 0:
        out_outcome[i] = EXACT_HIT if d1 == 0.0 else APPROX_HIT
        out_served[i] = breq[0]
        if (flags & REFRESH) != 0:
            touch(bslot[0], t, meta, fmeta, glob)
        served = bslot[0]
    else:
        served = -1
    if (flags & INSERT) == 0:
        return -1, served
    capacity = slots.shape[0]
    n_used = counters[N_USED]
    if n_used < capacity:
        slot = n_used
        counters[N_USED] = n_used + 1
    else:
        slot = victim(t, uniform(key, t, 2), meta, fmeta, glob)
        out_evicted[i] = slot_id[slot]
        remove(slot, meta, fmeta, glob)
    copy_row(x, slots[slot])
    slot_id[slot] = t
    slot_owner[slot] = owner
    slot_version[slot] = counters[N_WRITES]
    counters[N_WRITES] += 1
    insert(slot, t, meta, fmeta, glob)
    out_inserted[i] = True
    return slot, (-1 if served == slot else served)


@nb.njit(cache=True, inline="always")
def apply_move(served, t, x, metric, fpar, move, meta, fmeta, glob, slots, slot_version, counters, slot_norm2):
    """The policy's key update after request ``t`` was served by the entry in slot ``served``
    (-1: a miss, nothing to do), after the request's insertion if any. Return the slot whose key
    moved (-1: none); it gets the next version and its squared norm is kept in ``slot_norm2``."""
    if served < 0:
        return -1
    m = move(served, t, meta, fmeta, glob, fpar)
    if not m > 0.0:
        return -1
    move_key(slots[served], x, m, metric)
    slot_version[served] = counters[N_WRITES]
    counters[N_WRITES] += 1
    slot_norm2[served] = np.float32(sqnorm(slots[served]))
    return served


_F32_2D = nt.float32[:, ::1]
_I64_2D = nt.int64[:, ::1]
_OUTS = (nt.int8[::1], nt.int64[::1], nt.float32[::1], nt.boolean[::1], nt.int64[::1])
_POLICY = (DECIDE_T, TOUCH_T, INSERT_T, REMOVE_T, VICTIM_T, MOVE_T, META, FMETA, GLOB)
_STATE = (_F32_2D, nt.int64[::1], nt.int64[::1], nt.int64[::1], nt.int64[::1])  # slots, id, version, owner, counters
_RULE = (nt.int64, nt.int64, nt.uint64, FPAR)  # keep, metric, key, fpar


@nb.njit(
    nt.void(
        _F32_2D, nt.int64[::1], nt.int64, _I64_2D, _I64_2D, _F32_2D, _F32_2D, nt.float32[::1], nt.float64[::1],
        nt.boolean, *_RULE, *_POLICY, *_STATE, nt.float32[::1], *_OUTS,
    ),
    cache=True,
)  # fmt: skip
def serve_block(
    q, owner, t0, cand_slot, cand_ver, cand_sq, gram, qnorm2, tol, exact,
    keep, metric, key, fpar,
    decide, touch, insert, remove, victim, move, meta, fmeta, glob,
    slots, slot_id, slot_version, slot_owner, counters, slot_norm2,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """The sequential pass: apply the policy to requests ``t0 .. t0 + len(q) - 1`` (the block
    engine's blocks; the plain engine's single requests, searched against the current cache).

    ``cand_*`` (n, m) come from one batched top-m search of the block against the cache as it was
    at the start of the block (slot, slot version at search time, float32 squared distance).
    Candidates whose slot was rewritten since are stale and skipped; entries inserted inside the
    block are checked directly, pre-filtered by their float32-grade squared distance
    ``qnorm2[i] + qnorm2[p] - 2 * gram[i, p]`` (``gram = q @ q.T``, lower triangle). When the
    candidates cannot be proven complete the request falls back to an exact scan.
    ``slot_norm2[s]`` is kept equal to the float32 squared norm of the entry in slot ``s``.
    ``owner[i]``: who made request ``i`` (a user code), recorded with the entries it inserts; an
    entry of the same owner is invisible to the request (``exclude_self``) when ``owner[i] >= 0``
    (-1: every entry is visible).
    """
    n = q.shape[0]
    m = cand_slot.shape[1]
    # every array of the loop borrowed (see :mod:`~simcache.cache.kernels.borrowed`); the locals' owners
    # are kept to the end
    q, owner, gram, qnorm2, tol = borrowed(q), borrowed(owner), borrowed(gram), borrowed(qnorm2), borrowed(tol)
    fpar, cand_slot, cand_ver, cand_sq = borrowed(fpar), borrowed(cand_slot), borrowed(cand_ver), borrowed(cand_sq)
    meta, fmeta, glob = borrowed(meta), borrowed(fmeta), borrowed(glob)
    slots, slot_id, slot_version = borrowed(slots), borrowed(slot_id), borrowed(slot_version)
    slot_owner, counters, slot_norm2 = borrowed(slot_owner), borrowed(counters), borrowed(slot_norm2)
    out_outcome, out_served, out_distance = borrowed(out_outcome), borrowed(out_served), borrowed(out_distance)
    out_inserted, out_evicted = borrowed(out_inserted), borrowed(out_evicted)
    owned_i64 = np.empty(2 * (m + 2 * n) + 4 + 5 * n, np.int64)
    owned_f64 = np.empty(m + 2 * n + 2, np.float64)
    i64, f64 = borrowed(owned_i64), borrowed(owned_f64)
    cs, i64 = split(i64, m + 2 * n)  # top-m, in-block insertions, moved keys
    cr, i64 = split(i64, m + 2 * n)
    breq, i64 = split(i64, 2)
    bslot, i64 = split(i64, 2)
    ins_pos, i64 = split(i64, n)  # block positions of the requests inserted so far
    ins_slot, i64 = split(i64, n)
    ins_ver, i64 = split(i64, n)
    mv_slot, i64 = split(i64, n)  # slots whose key moved in this block, with the version it gave them
    mv_ver, i64 = split(i64, n)
    ca, f64 = split(f64, m + 2 * n)
    bsq, f64 = split(f64, 2)
    n_ins = 0
    n_mv = 0
    for i in range(n):
        x = q[i]
        u = owner[i]
        nc = collect_topk(i, u, cand_slot, cand_ver, cand_sq, slot_id, slot_version, slot_owner, cs, cr, ca, 0)
        nc = moved_candidates(x, u, mv_slot, mv_ver, n_mv, slots, slot_id, slot_version, slot_owner, cs, cr, ca, nc)
        nc, threshold = collect_inblock(i, u, gram, qnorm2, ins_pos, ins_slot, ins_ver, n_ins, slot_id, slot_version,
                                        slot_owner, cs, cr, ca, nc, keep, tol[i])  # fmt: skip
        nbest = resolve(x, cs, cr, ca, nc, threshold, keep, slots, bsq, breq, bslot)
        if not topk_complete(i, cand_slot, cand_sq, tol[i], nbest, bsq, keep, exact):
            nbest = full_scan(x, u, slots, slot_id, slot_owner, counters[N_USED], bsq, breq, bslot, keep)
            counters[N_FULL_SCANS] += 1
        slot, served = apply_request(
            i, t0 + i, x, nbest, bsq, breq, bslot, metric, key, fpar,
            decide, touch, insert, remove, victim, meta, fmeta, glob,
            slots, slot_id, slot_version, slot_owner, counters, u,
            out_outcome, out_served, out_distance, out_inserted, out_evicted,
        )  # fmt: skip
        moved = apply_move(served, t0 + i, x, metric, fpar, move, meta, fmeta, glob, slots, slot_version, counters,
                           slot_norm2)  # fmt: skip
        if moved >= 0:
            mv_slot[n_mv] = moved
            mv_ver[n_mv] = slot_version[moved]
            n_mv += 1
        if slot >= 0:
            slot_norm2[slot] = qnorm2[i]
            ins_pos[n_ins] = i
            ins_slot[n_ins] = slot
            ins_ver[n_ins] = slot_version[slot]
            n_ins += 1
    keep_alive(owned_i64, owned_f64)


@nb.njit(
    nt.int64(
        _F32_2D, nt.int64[::1], nt.int64, nt.float32[::1], nt.float64[::1], nt.float64[::1], nt.int64, nt.boolean,
        *_RULE, *_POLICY, *_STATE, nt.float32[::1], *_OUTS,
    ),
    cache=True,
)  # fmt: skip
def serve_chunk_dense(
    q, owner, t0, qnorm2, tol, norm_state, block, parallel,
    keep, metric, key, fpar,
    decide, touch, insert, remove, victim, move, meta, fmeta, glob,
    slots, slot_id, slot_version, slot_owner, counters, slot_norm2,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """Block engine for flat CPU caches, a whole chunk per call (no return to Python between blocks).

    Per block, the products of the block with the ``n0`` slots used at block start and with its
    own earlier requests (:func:`~simcache.cache.kernels.rowscan.block_products`, from the slots
    packed once per chunk and repacked as they are written: ``panels``): request ``i``'s row
    has a column per entry it may have to see, the block-start entries and those requests
    ``p < i`` of the block insert. ``col_norm`` holds each column's squared norm, ``+inf`` once its
    entry is evicted (or while it is not inserted); ``col_slot`` the slot of each block column's
    entry (-1: none inserted); ``slot_col`` the column of the entry in each slot rewritten in this block. Per request:
    its own owner's entries hidden (:func:`~simcache.cache.kernels.rowscan.hide_owned`), the
    smallest approximations of its row
    (:func:`~simcache.cache.kernels.rowscan.row_smallest`), the columns within the threshold
    (:func:`~simcache.cache.kernels.rowscan.row_select`, :func:`threshold`), the exact re-check
    (:func:`resolve`) and the policy (:func:`apply_request`). Every entry the request may see has an
    approximation, so the candidates are complete by construction (no fallback scan).

    Each block's squared norms and tolerances (``qnorm2``, ``tol``) are computed here, block by
    block (:func:`~simcache.cache.kernels.distances.block_norms`; ``norm_state`` = [tolerance
    coefficient, largest norm so far], updated), while the block is in cache: the next block's
    requests are prefetched as the current one is served. Returns -1, or the index of the first
    request whose vector is not finite or too large (nothing from its block on is served).
    """
    n = q.shape[0]
    capacity = slot_id.shape[0]
    # every array of the loop borrowed (see :mod:`~simcache.cache.kernels.borrowed`); the locals' owners
    # are kept to the end
    q, owner, qnorm2, tol, fpar = borrowed(q), borrowed(owner), borrowed(qnorm2), borrowed(tol), borrowed(fpar)
    meta, fmeta, glob, norm_state = borrowed(meta), borrowed(fmeta), borrowed(glob), borrowed(norm_state)
    slots, slot_id, slot_version = borrowed(slots), borrowed(slot_id), borrowed(slot_version)
    slot_owner, counters, slot_norm2 = borrowed(slot_owner), borrowed(counters), borrowed(slot_norm2)
    out_outcome, out_served, out_distance = borrowed(out_outcome), borrowed(out_served), borrowed(out_distance)
    out_inserted, out_evicted = borrowed(out_inserted), borrowed(out_evicted)
    owned_panels = slot_panels(slots, counters[N_USED], block)
    panels = borrowed(owned_panels)
    owned_f32 = np.empty(scan_scratch_size(capacity, block) + capacity + block + 2 * SCAN_LANES, np.float32)
    owned_i64 = np.empty(5 * (capacity + block) + 2 * block + 4, np.int64)
    owned_f64 = np.empty(capacity + block + 2, np.float64)
    f32, i64, f64 = borrowed(owned_f32), borrowed(owned_i64), borrowed(owned_f64)
    buf, f32 = split(f32, scan_scratch_size(capacity, block))
    col_norm, f32 = split(f32, capacity + block)
    lo1, f32 = split(f32, SCAN_LANES)
    lo2, f32 = split(f32, SCAN_LANES)
    col_owner, i64 = split(i64, capacity + block)
    col_slot, i64 = split(i64, block)
    slot_col, i64 = split(i64, capacity)  # identity outside the slots rewritten in the current block
    slot_col[:] = np.arange(capacity)
    sel, i64 = split(i64, capacity + block)
    cs, i64 = split(i64, capacity + block)
    cr, i64 = split(i64, capacity + block)
    breq, i64 = split(i64, 2)
    bslot, i64 = split(i64, 2)
    mv_slot, i64 = split(i64, block)  # slots whose key moved in the current block, with their new version
    mv_ver, i64 = split(i64, block)
    ca, f64 = split(f64, capacity + block)
    bsq, f64 = split(f64, 2)
    inf = np.float32(np.inf)
    hiding = False
    for r in range(n):
        hiding = hiding or owner[r] >= 0
    bad = -1
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        norm_state[1], bad = block_norms(q[b0:b1], qnorm2[b0:b1], tol[b0:b1], norm_state[0], norm_state[1])
        if bad >= 0:
            bad += b0
            break
        n0 = counters[N_USED]
        n_mv = 0
        g = block_products(q, b0, b1, parallel, panels, counters, buf)
        col_norm[:n0] = slot_norm2[:n0]
        col_norm[n0 : n0 + b1 - b0] = inf
        if hiding:
            col_owner[:n0] = slot_owner[:n0]
            col_owner[n0 : n0 + b1 - b0] = owner[b0:b1]
        for i in range(b1 - b0):
            r = b0 + i
            x = q[r]
            u = owner[r]
            row = g[i]
            if r + block < n:
                prefetch(q[r + block])  # the next block's request at this position
            width = n0 + i  # the block columns from i on hold no entry yet
            if u >= 0:
                hide_owned(row, width, u, col_owner)
            a1, a2 = row_smallest(row, qnorm2[r], col_norm, width, keep, lo1, lo2)
            # the moved keys' columns are +inf (not in the row's minima): their exact distances join here
            nm = moved_candidates(x, u, mv_slot, mv_ver, n_mv, slots, slot_id, slot_version, slot_owner, cs, cr, ca, 0)
            for j in range(nm):
                a1, a2 = two_smallest(ca[j], a1, a2)
            limit = threshold(a1, a2, keep, tol[r])
            nc = row_select(row, width, lo1, limit, sel)
            for j in range(nc):
                c = sel[j]
                s = c if c < n0 else col_slot[c - n0]
                cs[nm + j] = s
                cr[nm + j] = slot_id[s]
                ca[nm + j] = row[c]
            nbest = resolve(x, cs, cr, ca, nm + nc, limit, keep, slots, bsq, breq, bslot)
            full = counters[N_USED] == capacity
            slot, served = apply_request(
                r, t0 + r, x, nbest, bsq, breq, bslot, metric, key, fpar,
                decide, touch, insert, remove, victim, meta, fmeta, glob,
                slots, slot_id, slot_version, slot_owner, counters, u,
                out_outcome, out_served, out_distance, out_inserted, out_evicted,
            )  # fmt: skip
            moved = apply_move(served, t0 + r, x, metric, fpar, move, meta, fmeta, glob, slots, slot_version, counters,
                               slot_norm2)  # fmt: skip
            col_slot[i] = slot
            if moved >= 0:
                pack_column(panels, moved, slots[moved])
                col_norm[slot_col[moved]] = inf  # its products are stale: seen through the moved list
                mv_slot[n_mv] = moved
                mv_ver[n_mv] = slot_version[moved]
                n_mv += 1
            if slot >= 0:
                pack_column(panels, slot, slots[slot])
                slot_norm2[slot] = qnorm2[r]
                if full:
                    col_norm[slot_col[slot]] = inf  # the evicted entry's column
                slot_col[slot] = n0 + i
                col_norm[n0 + i] = qnorm2[r]
        for i in range(b1 - b0):  # back to the identity for the next block
            if col_slot[i] >= 0:
                slot_col[col_slot[i]] = col_slot[i]
    keep_alive(owned_f32, owned_i64, owned_f64, owned_panels)
    return bad

