"""Compiled (numba) core of the similarity cache: distances, the hit rule, randomness, and the loops.

Everything that decides a request's outcome lives here, once, and is shared by both engines:

* **Distance.** Vectors are float32 (unit-normalised first for ``cosine``, see
  :func:`normalize_rows`). The distance between a request ``x`` and a cached entry ``y`` is computed
  from ``sq = sum_k (float64(x_k) - float64(y_k))**2`` accumulated in float64
  (:func:`sqdist`: 32 interleaved partial sums combined pairwise, a fixed order), then
  ``d = sqrt(sq)`` for ``l2`` (Euclidean, not squared) or ``d = sq / 2`` for ``cosine``
  (= 1 - cos for unit vectors; exactly 0 for identical vectors). FAISS distances are only used to
  pick candidates; every decision uses this recomputation, so the block engine, the plain engine
  and the test reference agree bit for bit.
* **Nearest entry and ties.** ``y*`` is the cached entry with the smallest ``sq``; equal ``sq``
  are broken by the smallest request index of the entry (the oldest entry). The second nearest
  (for qLRU-ΔC) follows the same order.
* **Hit rule.** ``d <= r`` (:func:`within_radius`), decided in float64 on the recomputed distance:
  at r = 0 an identical vector hits. This is the only place the comparison is written.
* **Approximate distances only select candidates.** FAISS / BLAS float32 squared distances
  (``|x|^2 + |y|^2 - 2 x.y``) are within ``tol = TOL_FACTOR * (d + 4) * 2**-24 * (|x| + M)**2``
  of the exact value (M: the largest norm seen so far; standard dot-product error bound with a
  safety factor). The exact distance is recomputed for every candidate whose approximation is
  within ``2 tol`` of the k-th smallest approximation (:func:`resolve`), which provably includes
  the exact k nearest. With a top-m search, entries outside the list have approximation >= the
  m-th one; if that minus ``tol`` is not strictly above the k-th best exact distance, the request
  is resolved by an exact scan of every cached entry instead (:func:`full_scan`); the same scan
  runs when every candidate is stale. So results never depend on FAISS rounding or on the block
  size.
* **Randomness.** Uniform draws are a pure function of (seed, request index, purpose)
  (:func:`uniform`, a splitmix64 hash), so they do not depend on processing order: purpose 0 is
  the acceptance/refresh draw, 1 the insertion draw, 2 the random-victim draw.

The loop: :func:`serve_block` applies the policy request by request over a block, given a top-m
search of the block against the cache at block start (stale candidates skipped, in-block
insertions checked via the block's Gram matrix). The block engine searches with FAISS or torch
(one call per block) or, for small caches, with :func:`dense_search_block` (BLAS products and top-m
selection on two threads, inside :func:`serve_chunk_dense` so that a whole chunk of blocks runs
without returning to Python). The plain engine calls :func:`serve_block` with one request per
block after searching the current cache, so nothing is ever stale for it.

Policies plug in as five compiled functions with the fixed signatures below (``*_SIG``); the
loops receive them as first-class function arguments (through :class:`KernelRef`) and never name a
policy.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types as nt
from numba.experimental.function_type import _get_wrapper_address

# ---------------------------------------------------------------------------------------------
# Policy kernel signatures (every policy provides functions of exactly these types)
# ---------------------------------------------------------------------------------------------

META = nt.int64[:, ::1]  # per-slot policy metadata, shape (capacity, n_fields)
GLOB = nt.int64[::1]  # policy-global integers (list heads, heap size, ...)
FPAR = nt.float64[::1]  # float parameters of the decision rule (radius first)

#: touch(slot, t, meta, glob): the entry in ``slot`` served request ``t`` and is refreshed.
TOUCH_SIG = nt.void(nt.int64, nt.int64, META, GLOB)
#: insert(slot, t, meta, glob): request ``t`` was just written into the free ``slot``.
INSERT_SIG = nt.void(nt.int64, nt.int64, META, GLOB)
#: remove(slot, meta, glob): the entry in ``slot`` leaves the cache (before its slot is reused).
REMOVE_SIG = nt.void(nt.int64, META, GLOB)
#: victim(t, u, meta, glob) -> slot: which slot to evict for request ``t`` (cache full; u ~ U[0,1)).
VICTIM_SIG = nt.int64(nt.int64, nt.float64, META, GLOB)
#: decide(has1, d1, has2, d2, u0, u1, fpar) -> flags (HIT | REFRESH | INSERT).
DECIDE_SIG = nt.int64(nt.boolean, nt.float64, nt.boolean, nt.float64, nt.float64, nt.float64, FPAR)

TOUCH_T = nt.FunctionType(TOUCH_SIG)
INSERT_T = nt.FunctionType(INSERT_SIG)
REMOVE_T = nt.FunctionType(REMOVE_SIG)
VICTIM_T = nt.FunctionType(VICTIM_SIG)
DECIDE_T = nt.FunctionType(DECIDE_SIG)



class KernelRef:
    """A compiled policy kernel passed to the loops by address.

    Passing a numba dispatcher as a first-class function costs ~0.1 ms of LLVM symbol lookup and
    type construction per argument per call; this wrapper computes its address and numba type
    once (it implements numba's wrapper-address protocol and ``_numba_type_``).
    """

    def __init__(self, dispatcher, sig) -> None:
        self.dispatcher = dispatcher
        self._sig = sig
        self._addr = _get_wrapper_address(dispatcher, sig)
        self._numba_type_ = nt.FunctionType(sig)

    def __wrapper_address__(self) -> int:
        return self._addr

    def signature(self):
        return self._sig

    def __call__(self, *args):
        return self.dispatcher(*args)


HIT = 1  # serve the request from y*
REFRESH = 2  # call touch(y*) (only meaningful with HIT)
INSERT = 4  # insert the request's vector (evicting a victim when full)

METRIC_CODES = {"l2": 0, "cosine": 1}

#: Safety factor on the float32 error bound of FAISS / BLAS squared distances (see module doc).
TOL_FACTOR = 4.0
#: largest squared norm a request may have: float32 values |x|^2 + |y|^2 - 2 x.y then stay finite
#: (no overflow, hence no NaN, in the dense search)
MAX_NORM2 = 1e37

# engine counters (``counters`` array): number of used slots, exact fallback scans
N_USED, N_FULL_SCANS, N_COUNTERS = 0, 1, 4

_U53 = 1.0 / 9007199254740992.0  # 2**-53
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


# ---------------------------------------------------------------------------------------------
# Central rules
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def within_radius(d: float, r: float) -> bool:
    """THE hit rule: a cached entry at distance ``d`` may serve the request iff ``d <= r``."""
    return d <= r


@nb.njit(cache=True)
def splitmix64(z: np.uint64) -> np.uint64:
    """One splitmix64 step (wrapping 64-bit arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@nb.njit(cache=True)
def uniform(key: np.uint64, t: int, k: int) -> float:
    """U[0, 1) draw number ``k`` (0, 1, 2) of request ``t`` under ``key = splitmix64(seed)``."""
    z = splitmix64(key ^ np.uint64(t * 4 + k))
    return float(z >> _S11) * _U53


def seed_key(seed: int) -> np.uint64:
    """The key passed to :func:`uniform` for a user seed."""
    return np.uint64(splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))


#: number of interleaved float64 partial sums in :func:`sqdist`
LANES = 32


@nb.njit(cache=True, inline="always")
def sqdist(x: np.ndarray, y: np.ndarray, lanes: np.ndarray) -> float:
    """Squared Euclidean distance in a fixed float64 summation order.

    Component ``k``'s squared difference ``(float64(x_k) - float64(y_k))**2`` is added to partial
    sum ``k % 32`` (each summed in increasing ``k``); then neighbouring partial sums are added in
    pairs, halving their number until one is left. The order is written out, so the result is the
    same on every machine, and the 32 independent sums let LLVM vectorise the loop (a single
    running sum waits ~4 cycles per component). ``lanes``: float64 scratch of length ``LANES``.
    """
    n = x.shape[0]
    lanes[:] = 0.0
    rows = n // LANES
    for r in range(rows):
        base = r * LANES
        for j in range(LANES):
            diff = np.float64(x[base + j]) - np.float64(y[base + j])
            lanes[j] += diff * diff
    base = rows * LANES
    for j in range(n - base):
        diff = np.float64(x[base + j]) - np.float64(y[base + j])
        lanes[j] += diff * diff
    width = LANES
    while width > 1:
        width //= 2
        for j in range(width):
            lanes[j] = lanes[2 * j] + lanes[2 * j + 1]
    return lanes[0]


@nb.njit(cache=True, inline="always")
def to_metric(sq: float, metric: int) -> float:
    """Distance in the replay's metric from the exact squared Euclidean distance."""
    if metric == 0:
        return math.sqrt(sq)
    return 0.5 * sq


@nb.njit(cache=True)
def normalize_rows(x: np.ndarray, out: np.ndarray) -> int:
    """Unit-normalise float32 rows into ``out``: ``float32(x_k / |x|)`` in float64, the squared norm
    summed as :func:`sqdist` to the origin sums it (vectorised, unlike one running sum).

    Returns the index of the first all-zero row, or -1 if there is none.
    """
    bad = -1
    lanes = np.empty(LANES, np.float64)
    zero = np.zeros(x.shape[1], np.float32)
    for i in range(x.shape[0]):
        s = sqdist(x[i], zero, lanes)
        if s == 0.0:
            if bad < 0:
                bad = i
            for k in range(x.shape[1]):
                out[i, k] = 0.0
            continue
        n = math.sqrt(s)
        for k in range(x.shape[1]):
            out[i, k] = np.float32(np.float64(x[i, k]) / n)
    return bad


@nb.njit(cache=True)
def block_norms(q, qnorm2, tol, tol_coef, max_norm):
    """Squared norms (float32, rounded from :func:`sqdist` to the origin: vectorised, unlike one
    running sum) and per-request tolerances of a block.

    ``tol[i] = tol_coef * (|q_i| + M)**2`` with M the largest norm seen so far, this block
    included (every cached entry is an earlier request). Returns (new M, index of the first row
    with a non-finite value or a squared norm above ``MAX_NORM2``, or -1).
    """
    bad = -1
    n = q.shape[0]
    lanes = np.empty(LANES, np.float64)
    zero = np.zeros(q.shape[1], np.float32)
    for i in range(n):
        acc = np.float32(sqdist(q[i], zero, lanes))  # a NaN or inf component makes it NaN or inf
        if not acc <= MAX_NORM2 and bad < 0:
            bad = i
        qnorm2[i] = acc
        norm = math.sqrt(np.float64(acc)) * (1.0 + 1e-6)
        if norm > max_norm:
            max_norm = norm
    for i in range(n):
        r = math.sqrt(np.float64(qnorm2[i])) + max_norm
        tol[i] = tol_coef * r * r
    return max_norm, bad


# ---------------------------------------------------------------------------------------------
# Nearest-entry resolution (shared by both engines)
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def offer(sq, req, slot, bsq, breq, bslot, nbest, keep):
    """Insert (sq, req, slot) into the best list ordered by (sq, req); return the new length."""
    pos = nbest
    while pos > 0 and (sq < bsq[pos - 1] or (sq == bsq[pos - 1] and req < breq[pos - 1])):
        pos -= 1
    if pos >= keep:
        return nbest
    j = nbest if nbest < keep else keep - 1
    while j > pos:
        bsq[j] = bsq[j - 1]
        breq[j] = breq[j - 1]
        bslot[j] = bslot[j - 1]
        j -= 1
    bsq[pos] = sq
    breq[pos] = req
    bslot[pos] = slot
    return nbest + 1 if nbest < keep else keep


@nb.njit(cache=True)
def full_scan(x, slots, slot_req, n_used, bsq, breq, bslot, keep, lanes):
    """Exact nearest ``keep`` entries over every used slot."""
    nbest = 0
    for s in range(n_used):
        nbest = offer(sqdist(x, slots[s], lanes), slot_req[s], s, bsq, breq, bslot, nbest, keep)
    return nbest


@nb.njit(cache=True, inline="always")
def collect_topk(i, cand_slot, cand_req, cand_sq, slot_req, cs, cr, ca, nc):
    """Append the still-live entries of a top-m search result row to the scratch candidates."""
    for j in range(cand_slot.shape[1]):
        s = cand_slot[i, j]
        if s < 0:
            break
        if slot_req[s] != cand_req[i, j]:
            continue  # evicted since the search: its slot now holds another entry
        cs[nc] = s
        cr[nc] = cand_req[i, j]
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
def collect_inblock(i, t0, gram, qnorm2, ins_pos, ins_slot, n_ins, slot_req, cs, cr, ca, nc, keep, tol):
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
        if slot_req[s] != t0 + pi:
            continue  # inserted in this block, then evicted
        a = qi + np.float64(qnorm2[pi]) - 2.0 * np.float64(gram[i, pi])
        if a > threshold:
            continue
        cs[nc] = s
        cr[nc] = t0 + pi
        ca[nc] = a
        nc += 1
        a1, a2 = two_smallest(a, a1, a2)
        threshold = (a1 if keep == 1 else a2) + 2.0 * tol
    return nc, threshold


@nb.njit(cache=True, inline="always")
def resolve(x, cs, cr, ca, nc, threshold, keep, slots, bsq, breq, bslot, lanes):
    """Exact nearest ``keep`` among the scratch candidates, recomputing only those with an
    approximation within ``threshold`` (see :func:`collect_inblock`)."""
    nbest = 0
    for j in range(nc):
        if ca[j] <= threshold:
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


# ---------------------------------------------------------------------------------------------
# Applying the policy to one request
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def apply_request(
    i, t, x, nbest, bsq, breq, bslot, metric, key, fpar,
    decide, touch, insert, remove, victim, meta, glob,
    slots, slot_req, counters,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """Decide request ``t`` (row ``i`` of the output views) and update the cache; return the slot
    written (-1 if nothing was inserted)."""
    has1 = nbest >= 1
    has2 = nbest >= 2
    d1 = to_metric(bsq[0], metric) if has1 else np.inf
    d2 = to_metric(bsq[1], metric) if has2 else np.inf
    flags = decide(has1, d1, has2, d2, uniform(key, t, 0), uniform(key, t, 1), fpar)
    out_distance[i] = np.float32(d1)
    if has1 and (flags & HIT) != 0:
        out_outcome[i] = 1 if d1 == 0.0 else 2
        out_served[i] = breq[0]
        if (flags & REFRESH) != 0:
            touch(bslot[0], t, meta, glob)
    if (flags & INSERT) == 0:
        return -1
    capacity = slots.shape[0]
    n_used = counters[N_USED]
    if n_used < capacity:
        slot = n_used
        counters[N_USED] = n_used + 1
    else:
        slot = victim(t, uniform(key, t, 2), meta, glob)
        out_evicted[i] = slot_req[slot]
        remove(slot, meta, glob)
    slots[slot, :] = x
    slot_req[slot] = t
    insert(slot, t, meta, glob)
    out_inserted[i] = True
    return slot


# ---------------------------------------------------------------------------------------------
# Loops
# ---------------------------------------------------------------------------------------------

_F32_2D = nt.float32[:, ::1]
_I64_2D = nt.int64[:, ::1]
_OUTS = (nt.int8[::1], nt.int64[::1], nt.float32[::1], nt.boolean[::1], nt.int64[::1])
_POLICY = (DECIDE_T, TOUCH_T, INSERT_T, REMOVE_T, VICTIM_T, META, GLOB)
_STATE = (_F32_2D, nt.int64[::1], nt.int64[::1])  # slots, slot_req, counters
_RULE = (nt.int64, nt.int64, nt.uint64, FPAR)  # keep, metric, key, fpar


@nb.njit(
    nt.void(
        _F32_2D, nt.int64, _I64_2D, _I64_2D, _F32_2D, _F32_2D, nt.float32[::1], nt.float64[::1], nt.boolean,
        *_RULE, *_POLICY, *_STATE, nt.float32[::1], *_OUTS,
    ),
    cache=True,
)  # fmt: skip
def serve_block(
    q, t0, cand_slot, cand_req, cand_sq, gram, qnorm2, tol, exact,
    keep, metric, key, fpar,
    decide, touch, insert, remove, victim, meta, glob,
    slots, slot_req, counters, slot_norm2,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """The sequential pass: apply the policy to requests ``t0 .. t0 + len(q) - 1`` (the block
    engine's blocks; the plain engine's single requests, searched against the current cache).

    ``cand_*`` (n, m) come from one batched top-m search of the block against the cache as it was
    at the start of the block. Candidates whose slot was rewritten since are stale and skipped;
    entries inserted inside the block are checked directly, pre-filtered by their float32-grade
    squared distance ``qnorm2[i] + qnorm2[p] - 2 * gram[i, p]`` (``gram = q @ q.T``, lower
    triangle). When the candidates cannot be proven complete the request falls back to an exact
    scan. ``slot_norm2[s]`` is kept equal to the float32 squared norm of the entry in slot ``s``.
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
    n_ins = 0
    for i in range(n):
        x = q[i]
        nc = collect_topk(i, cand_slot, cand_req, cand_sq, slot_req, cs, cr, ca, 0)
        nc, threshold = collect_inblock(i, t0, gram, qnorm2, ins_pos, ins_slot, n_ins, slot_req, cs, cr, ca, nc,
                                        keep, tol[i])  # fmt: skip
        nbest = resolve(x, cs, cr, ca, nc, threshold, keep, slots, bsq, breq, bslot, lanes)
        if not topk_complete(i, cand_slot, cand_sq, tol[i], nbest, bsq, keep, exact):
            nbest = full_scan(x, slots, slot_req, counters[N_USED], bsq, breq, bslot, keep, lanes)
            counters[N_FULL_SCANS] += 1
        slot = apply_request(
            i, t0 + i, x, nbest, bsq, breq, bslot, metric, key, fpar,
            decide, touch, insert, remove, victim, meta, glob,
            slots, slot_req, counters,
            out_outcome, out_served, out_distance, out_inserted, out_evicted,
        )  # fmt: skip
        if slot >= 0:
            slot_norm2[slot] = qnorm2[i]
            ins_pos[n_ins] = i
            ins_slot[n_ins] = slot
            n_ins += 1


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
def top_m_block(g, qnorm2, slot_norm2, n0, slot_req, r0, gmin, tm, vbuf, gsel, ssel, cand_slot, cand_req, cand_sq):
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
            cand_req[i, p] = slot_req[ids[p]]
        for p in range(k, m):
            vals[p] = np.inf
            ids[p] = -1
            cand_req[i, p] = -1


@nb.njit(cache=True, inline="always")
def _search_part(part, qb, qnorm2, slot_rows, n0, slot_req, slot_norm2, scratch, gram, cand_slot, cand_req, cand_sq):
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
    top_m_block(g, qnorm2, slot_norm2, n0, slot_req, r0, gmin[part], tm[part], vbuf[part], gsel[part], ssel[part],
                cand_slot, cand_req, cand_sq)  # fmt: skip


@nb.njit(parallel=True, nogil=True, cache=True)
def _search_parts_parallel(qb, qnorm2, slot_rows, n0, slot_req, slot_norm2, scratch, gram, cand_slot, cand_req,
                           cand_sq):  # fmt: skip
    """The two parts of :func:`dense_search_block` on two threads."""
    for part in nb.prange(2):
        _search_part(part, qb, qnorm2, slot_rows, n0, slot_req, slot_norm2, scratch, gram, cand_slot, cand_req,
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
def dense_search_block(q, qnorm2, b0, b1, parallel, slot_rows, slot_req, counters, slot_norm2, scratch):
    """Exact top-m search of requests ``b0 .. b1 - 1`` against the used slots, and the block's
    Gram matrix; returns views (gram, cand_slot, cand_req, cand_sq) into ``scratch``
    (:func:`dense_scratch`).

    The block is copied into ``slot_rows[n0 : n0 + b]`` (free slots or the spare rows after the
    last slot), so that one BLAS call per part, ``slot_rows[:n0 + b] @ q_part.T``, gives both the
    products with the cache and the Gram matrix (cache-major products, M = cache rows, suit BLAS
    better than request-major ones at these small request counts). Requests are split in two
    parts, on two threads when ``parallel`` (each with single-threaded BLAS), else one after the
    other on the calling thread (no OpenMP: safe in a forked child); top-m selection by
    :func:`top_m_block`. Every value is computed the same way whatever the number of threads.
    """
    gram_buf, cand_slot, cand_req, cand_sq = scratch[6:]
    b = b1 - b0
    n0 = counters[N_USED]
    qb = q[b0:b1]
    gram = gram_buf[: b * b].reshape((b, b))
    slot_rows[n0 : n0 + b] = qb
    if parallel:
        _search_parts_parallel(qb, qnorm2[b0:b1], slot_rows, n0, slot_req, slot_norm2, scratch, gram, cand_slot[:b],
                               cand_req[:b], cand_sq[:b])  # fmt: skip
    else:
        for part in range(2):
            _search_part(part, qb, qnorm2[b0:b1], slot_rows, n0, slot_req, slot_norm2, scratch, gram, cand_slot[:b],
                         cand_req[:b], cand_sq[:b])  # fmt: skip
    return gram, cand_slot[:b], cand_req[:b], cand_sq[:b]


@nb.njit(
    nt.void(
        _F32_2D, nt.int64, nt.float32[::1], nt.float64[::1], nt.int64, nt.int64, nt.boolean,
        *_RULE, *_POLICY, *_STATE, nt.float32[::1], *_OUTS,
    ),
    cache=True,
)  # fmt: skip
def serve_chunk_dense(
    q, t0, qnorm2, tol, block, m, parallel,
    keep, metric, key, fpar,
    decide, touch, insert, remove, victim, meta, glob,
    slot_rows, slot_req, counters, slot_norm2,
    out_outcome, out_served, out_distance, out_inserted, out_evicted,
):  # fmt: skip
    """Block engine for small caches, a whole chunk per call (no return to Python between blocks).

    ``slot_rows``: the slot vectors (first ``capacity`` rows) followed by at least ``block`` spare
    rows (see :func:`dense_search_block`). Per block of ``block`` requests:
    :func:`dense_search_block` (products and top-m, on two threads when ``parallel``) replaces the
    FAISS search, then :func:`serve_block` runs the sequential pass.
    """
    n = q.shape[0]
    slots = slot_rows[: slot_req.shape[0]]
    scratch = dense_scratch(slot_req.shape[0], block, m)
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        gram, cand_slot, cand_req, cand_sq = dense_search_block(
            q, qnorm2, b0, b1, parallel, slot_rows, slot_req, counters, slot_norm2, scratch
        )
        serve_block(
            q[b0:b1], t0 + b0, cand_slot, cand_req, cand_sq, gram, qnorm2[b0:b1], tol[b0:b1], True,
            keep, metric, key, fpar,
            decide, touch, insert, remove, victim, meta, glob,
            slots, slot_req, counters, slot_norm2,
            out_outcome[b0:b1], out_served[b0:b1], out_distance[b0:b1], out_inserted[b0:b1], out_evicted[b0:b1],
        )  # fmt: skip


@nb.njit(cache=True)
def search_chunk_dense(q, qnorm2, block, m, parallel, slot_rows, slot_req, counters, slot_norm2):
    """Only the searches of :func:`serve_chunk_dense` (the cache never changes): its search share,
    timed by :func:`simcache.cache.engine.search_seconds`."""
    scratch = dense_scratch(slot_req.shape[0], block, m)
    for b0 in range(0, q.shape[0], block):
        dense_search_block(q, qnorm2, b0, min(q.shape[0], b0 + block), parallel, slot_rows, slot_req, counters,
                           slot_norm2, scratch)  # fmt: skip
