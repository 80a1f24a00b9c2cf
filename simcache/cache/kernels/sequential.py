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
ever stale for it; :func:`serve_chunk_dense` runs whole chunks of blocks with the dense search of
:mod:`~simcache.cache.kernels.topm` without returning to Python.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types as nt

from simcache.cache.kernels.distances import LANES, offer, sqdist, to_metric
from simcache.cache.kernels.draws import uniform
from simcache.cache.kernels.signatures import (
    APPROX_HIT, DECIDE_T, EXACT_HIT, FMETA, FPAR, GLOB, HIT, INSERT, INSERT_T, META, N_FULL_SCANS, N_USED,
    N_WRITES, REFRESH, REMOVE_T, TOUCH_T, VICTIM_T,
)  # fmt: skip
from simcache.cache.kernels.rowscan import SCAN_LANES, block_products, hide_owned, row_select, row_smallest, scan_scratch


@nb.njit(cache=True, inline="always")
def hidden(owner, entry_owner):
    """Whether an entry is invisible to a request: its owner made it and owners are compared
    (``owner >= 0``; the ``exclude_self`` option)."""
    return owner >= 0 and entry_owner == owner


@nb.njit(cache=True)
def full_scan(x, owner, slots, slot_id, slot_owner, n_used, bsq, breq, bslot, keep, lanes):
    """Exact nearest ``keep`` entries over every used slot the request may see."""
    nbest = 0
    for s in range(n_used):
        if hidden(owner, slot_owner[s]):
            continue
        nbest = offer(sqdist(x, slots[s], lanes), slot_id[s], s, bsq, breq, bslot, nbest, keep)
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
                    cs, cr, ca, nc, keep, tol, a1, a2):  # fmt: skip
    """Append the live entries inserted earlier in the block that may be among the nearest ``keep``;
    return (number of candidates, the two smallest approximations seen).

    ``a1 <= a2``: the two smallest approximations among the other entries the request may see
    (those already in ``ca[:nc]`` or, in the row scan, every entry of the block start).
    Approximations are float32-grade, within ``tol`` of the exact value, so the ``keep``-th best
    exact value is at most the ``keep``-th smallest approximation + ``tol``, and a candidate whose
    approximation exceeds that + ``tol`` cannot be among the nearest (:func:`threshold`). The
    threshold only falls as entries are added, so such an entry is not collected.
    """
    qi = np.float64(qnorm2[i])
    for p in range(n_ins):
        pi = ins_pos[p]
        s = ins_slot[p]
        if slot_version[s] != ins_ver[p]:
            continue  # inserted in this block, then evicted
        if hidden(owner, slot_owner[s]):
            continue
        a = qi + np.float64(qnorm2[pi]) - 2.0 * np.float64(gram[i, pi])
        if a > threshold(a1, a2, keep, tol):
            continue
        cs[nc] = s
        cr[nc] = slot_id[s]
        ca[nc] = a
        nc += 1
        a1, a2 = two_smallest(a, a1, a2)
    return nc, a1, a2


@nb.njit(cache=True, inline="always")
def threshold(a1, a2, keep, tol):
    """Largest approximation a candidate may have and still be among the exact nearest ``keep``,
    given the two smallest approximations ``a1 <= a2`` (see :func:`collect_inblock`)."""
    return (a1 if keep == 1 else a2) + 2.0 * tol


@nb.njit(cache=True, inline="always")
def resolve(x, cs, cr, ca, nc, limit, keep, slots, bsq, breq, bslot, lanes):
    """Exact nearest ``keep`` among the scratch candidates, recomputing only those with an
    approximation at or below ``limit`` (:func:`threshold`)."""
    nbest = 0
    for j in range(nc):
        if ca[j] <= limit:
            nbest = offer(sqdist(x, slots[cs[j]], lanes), cr[j], cs[j], bsq, breq, bslot, nbest, keep)
    return nbest


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
def apply_request(
    i, t, x, nbest, bsq, breq, bslot, metric, key, fpar,
    decide, touch, insert, remove, victim, meta, fmeta, glob,
    slots, slot_id, slot_version, slot_owner, counters, owner,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """Decide request ``t`` (row ``i`` of the output views) and update the cache; return the slot
    written (-1 if nothing was inserted). A new entry gets id ``t``, the next version and the
    request's owner."""
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
    if (flags & INSERT) == 0:
        return -1
    capacity = slots.shape[0]
    n_used = counters[N_USED]
    if n_used < capacity:
        slot = n_used
        counters[N_USED] = n_used + 1
    else:
        slot = victim(t, uniform(key, t, 2), meta, fmeta, glob)
        out_evicted[i] = slot_id[slot]
        remove(slot, meta, fmeta, glob)
    slots[slot, :] = x
    slot_id[slot] = t
    slot_owner[slot] = owner
    slot_version[slot] = counters[N_WRITES]
    counters[N_WRITES] += 1
    insert(slot, t, meta, fmeta, glob)
    out_inserted[i] = True
    return slot


_F32_2D = nt.float32[:, ::1]
_I64_2D = nt.int64[:, ::1]
_OUTS = (nt.int8[::1], nt.int64[::1], nt.float32[::1], nt.boolean[::1], nt.int64[::1])
_POLICY = (DECIDE_T, TOUCH_T, INSERT_T, REMOVE_T, VICTIM_T, META, FMETA, GLOB)
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
    decide, touch, insert, remove, victim, meta, fmeta, glob,
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
    cs = np.empty(m + n, np.int64)
    cr = np.empty(m + n, np.int64)
    ca = np.empty(m + n, np.float64)
    bsq = np.empty(2, np.float64)
    breq = np.empty(2, np.int64)
    bslot = np.empty(2, np.int64)
    lanes = np.empty(LANES, np.float64)
    ins_pos = np.empty(n, np.int64)  # block positions of the requests inserted so far
    ins_slot = np.empty(n, np.int64)
    ins_ver = np.empty(n, np.int64)
    n_ins = 0
    for i in range(n):
        x = q[i]
        u = owner[i]
        nc = collect_topk(i, u, cand_slot, cand_ver, cand_sq, slot_id, slot_version, slot_owner, cs, cr, ca, 0)
        a1 = np.inf
        a2 = np.inf
        for j in range(nc):
            a1, a2 = two_smallest(ca[j], a1, a2)
        nc, a1, a2 = collect_inblock(i, u, gram, qnorm2, ins_pos, ins_slot, ins_ver, n_ins, slot_id, slot_version,
                                     slot_owner, cs, cr, ca, nc, keep, tol[i], a1, a2)  # fmt: skip
        nbest = resolve(x, cs, cr, ca, nc, threshold(a1, a2, keep, tol[i]), keep, slots, bsq, breq, bslot, lanes)
        if not topk_complete(i, cand_slot, cand_sq, tol[i], nbest, bsq, keep, exact):
            nbest = full_scan(x, u, slots, slot_id, slot_owner, counters[N_USED], bsq, breq, bslot, keep, lanes)
            counters[N_FULL_SCANS] += 1
        slot = apply_request(
            i, t0 + i, x, nbest, bsq, breq, bslot, metric, key, fpar,
            decide, touch, insert, remove, victim, meta, fmeta, glob,
            slots, slot_id, slot_version, slot_owner, counters, u,
            out_outcome, out_served, out_distance, out_inserted, out_evicted,
        )  # fmt: skip
        if slot >= 0:
            slot_norm2[slot] = qnorm2[i]
            ins_pos[n_ins] = i
            ins_slot[n_ins] = slot
            ins_ver[n_ins] = slot_version[slot]
            n_ins += 1


@nb.njit(
    nt.void(
        _F32_2D, nt.int64[::1], nt.int64, nt.float32[::1], nt.float64[::1], nt.int64, nt.boolean,
        *_RULE, *_POLICY, *_STATE, nt.float32[::1], *_OUTS,
    ),
    cache=True,
)  # fmt: skip
def serve_chunk_dense(
    q, owner, t0, qnorm2, tol, block, parallel,
    keep, metric, key, fpar,
    decide, touch, insert, remove, victim, meta, fmeta, glob,
    slot_rows, slot_id, slot_version, slot_owner, counters, slot_norm2,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """Block engine for flat CPU caches, a whole chunk per call (no return to Python between blocks).

    ``slot_rows``: the slot vectors (first ``capacity`` rows) followed by at least ``block`` spare
    rows. Per block of ``block`` requests, one product of the block against the ``n0`` slots used
    at block start and itself (:func:`~simcache.cache.kernels.rowscan.block_products`); then per
    request: the smallest approximations in its row (:func:`~simcache.cache.kernels.rowscan.row_smallest`;
    a slot rewritten earlier in the block has squared norm ``+inf`` in ``ynorm``, the block-start
    norms; an entry of the request's owner is hidden by
    :func:`~simcache.cache.kernels.rowscan.hide_owned`), the entries inserted earlier in the block
    (:func:`collect_inblock`), the row's slots within the threshold
    (:func:`~simcache.cache.kernels.rowscan.row_select`), the exact re-check (:func:`resolve`) and
    the policy (:func:`apply_request`). Every entry the request may see has an approximation, so
    the candidates are complete by construction (no fallback scan).
    """
    n = q.shape[0]
    capacity = slot_id.shape[0]
    slots = slot_rows[:capacity]
    buf = scan_scratch(capacity, block)
    ynorm = np.empty(capacity, np.float32)
    lo1 = np.empty(SCAN_LANES, np.float32)
    lo2 = np.empty(SCAN_LANES, np.float32)
    sel = np.empty(capacity, np.int64)
    cs = np.empty(capacity + block, np.int64)
    cr = np.empty(capacity + block, np.int64)
    ca = np.empty(capacity + block, np.float64)
    bsq = np.empty(2, np.float64)
    breq = np.empty(2, np.int64)
    bslot = np.empty(2, np.int64)
    lanes = np.empty(LANES, np.float64)
    ins_pos = np.empty(block, np.int64)  # block positions of the requests inserted so far
    ins_slot = np.empty(block, np.int64)
    ins_ver = np.empty(block, np.int64)
    inf = np.float32(np.inf)
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        n0 = counters[N_USED]
        g = block_products(q, b0, b1, parallel, slot_rows, counters, buf)
        gram = g[:, n0:]
        qn = qnorm2[b0:b1]
        ynorm[:n0] = slot_norm2[:n0]
        n_ins = 0
        for i in range(b1 - b0):
            r = b0 + i
            x = q[r]
            u = owner[r]
            row = g[i]
            if u >= 0:
                hide_owned(row, n0, u, slot_owner)
            a1, a2 = row_smallest(row, qn[i], ynorm, n0, keep, lo1, lo2)
            nc, a1, a2 = collect_inblock(i, u, gram, qn, ins_pos, ins_slot, ins_ver, n_ins, slot_id, slot_version,
                                         slot_owner, cs, cr, ca, 0, keep, tol[r], a1, a2)  # fmt: skip
            limit = threshold(a1, a2, keep, tol[r])
            ns = row_select(row, n0, limit, sel)
            for c in range(ns):
                s = sel[c]
                cs[nc] = s
                cr[nc] = slot_id[s]
                ca[nc] = row[s]
                nc += 1
            nbest = resolve(x, cs, cr, ca, nc, limit, keep, slots, bsq, breq, bslot, lanes)
            slot = apply_request(
                r, t0 + r, x, nbest, bsq, breq, bslot, metric, key, fpar,
                decide, touch, insert, remove, victim, meta, fmeta, glob,
                slots, slot_id, slot_version, slot_owner, counters, u,
                out_outcome, out_served, out_distance, out_inserted, out_evicted,
            )  # fmt: skip
            if slot >= 0:
                slot_norm2[slot] = qn[i]
                if slot < n0:
                    ynorm[slot] = inf  # its block-start entry is gone
                ins_pos[n_ins] = i
                ins_slot[n_ins] = slot
                ins_ver[n_ins] = slot_version[slot]
                n_ins += 1
