"""Compiled (numba) core of the object cache: exact dissimilarities, candidate selection, the
optimal answer, the cache's slot bookkeeping and the per-block loop that calls a policy.

Rules written once here (the tests re-implement them independently):

* **Exact keys.** For request ``q`` and catalogue object ``j`` (both prepared float32, see
  :mod:`simcache.objects.metrics`) the *key* ``e`` is computed in float64 in a fixed order
  (component ``i`` added to partial sum ``i % 32``, the 32 partial sums then added pairwise):
  ``l2`` and ``cosine``: ``e = sum_i (q_i - v_ji)^2``; ``ip``: ``e = -(sum_i q_i v_ji + b_j)``.
  Objects are ranked by ``(e, j)``: ties broken by the smaller object index.
* **Distance** ``d`` from the key: ``l2``: ``sqrt(e)``; ``cosine``: ``e / 2`` (= 1 - cos for unit
  vectors); ``ip``: ``e - e_min`` = the score gap to the request's best object over the whole
  catalogue (``>= 0``, 0 for the server's first item).
* **Dissimilarity cost** ``c_d = h(d)``: ``distance`` ``h(d) = d``; ``squared`` ``d^2``; ``radius``
  ``0`` if ``d <= r`` else ``c_f``. ``h`` is non-decreasing, so the ``(e, j)`` order is also a
  ``c_d`` order.
* **Optimal answer** for cache ``S``: the ``k`` objects smallest in ``(h + c_f [j not in S], e, j)``.
  Its fetched objects are among the ``k`` nearest objects of the catalogue and its local ones
  among the ``k`` nearest cached objects, so the answer is chosen from those two lists.
* **Approximations only select candidates.** The block's float32 products ``G = Q V^T`` give
  approximate keys ``a`` within ``tol = 4 (d + 4) 2^-24 (|q| + M)^2`` (``l2``/``cosine``; ``M``
  the largest object norm) or ``4 (d + 4) 2^-24 |q| M`` (``ip``) of ``e``. A list of the ``m``
  best keeps every object whose ``a`` is within ``2 tol`` of the ``m``-th smallest ``a``; the exact
  keys of those decide. This provably contains the exact ``m`` best, so results never depend on
  BLAS rounding or on the block size. When more than ``cap`` objects fall in that band, the whole
  row is evaluated exactly instead (counted in ``counters[FULL_ROWS]``).
* **Randomness**: ``uniform(key, t, j)`` is a pure function of (seed, request, draw number).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import types as nt

from simcache.cache.kernels.borrowed import borrowed, keep_alive, split
from simcache.cache.kernels.distances import lane_dot, normalize_rows, sqnorm
from simcache.cache.kernels.distances import sqdist as lane_sqdist
from simcache.cache.kernels.draws import seed_key, splitmix64
from simcache.cache.kernels.signatures import KernelRef
METRICS = {"l2": 0, "cosine": 1, "ip": 2}
DISSIMILARITIES = {"distance": 0, "squared": 1, "radius": 2}
TOL_FACTOR = 4.0
U32 = 2.0**-24
#: objects per chunk of the candidate scan (see :func:`nearest_objects`)
SCAN_CHUNK = 64

# env: float64 constants of the replay handed to every policy update
ENV_CF, ENV_METRIC, ENV_DKIND, ENV_RADIUS, ENV_EMIN, ENV_K, ENV_SIZE = 0, 1, 2, 3, 4, 5, 8
# cstate: the cache's integer counters
N_USED, N_FREE, N_INS, N_EV, CSTATE_SIZE = 0, 1, 2, 3, 4
# counters: engine diagnostics
FULL_ROWS, N_COUNTERS = 0, 2
#: origin of an answer object: request that inserted it, or these markers
FETCHED, PRELOADED = -1, -2

I64 = nt.int64[::1]
I8 = nt.int8[::1]
F64 = nt.float64[::1]
F32 = nt.float32[::1]
F32_2D = nt.float32[:, ::1]
I64_2D = nt.int64[:, ::1]

#: update(t, key, answer (obj, local, c_d), nearest objects (obj, key, c_d, n), nearest cached
#: (obj, key, c_d, n), request, objects, bias, cache (slot_obj, obj_slot, slot_req, free, cstate),
#: policy state (meta, glob, fstate), fpar, env): the policy's reaction to one served request.
UPDATE_SIG = nt.void(
    nt.int64, nt.uint64,
    I64, I8, F64,
    I64, F64, F64, nt.int64,
    I64, F64, F64, nt.int64,
    F32, F32_2D, F64,
    I64, I64, I64, I64, I64,
    I64_2D, I64, F64, F64, F64,
)  # fmt: skip
UPDATE_T = nt.FunctionType(UPDATE_SIG)


_REFS: dict[int, KernelRef] = {}


def kernel_ref(dispatcher) -> KernelRef:
    """The (cached) :class:`KernelRef` of an update kernel."""
    key = id(dispatcher)
    if key not in _REFS:
        _REFS[key] = KernelRef(dispatcher, UPDATE_SIG)
    return _REFS[key]


# ---------------------------------------------------------------------------------------------
# Randomness
# ---------------------------------------------------------------------------------------------
_S11 = np.uint64(11)
_U53 = 1.0 / 9007199254740992.0


@nb.njit(cache=True)
def uniform(key: np.uint64, t: int, j: int) -> float:
    """U[0, 1) draw ``j`` of request ``t``: ``splitmix64(splitmix64(key ^ t) ^ j) >> 11`` times 2^-53
    (any number of draws per request, unlike the query cache's three; ``key = seed_key(seed)``)."""
    z = splitmix64(splitmix64(key ^ np.uint64(t)) ^ np.uint64(j))
    return float(z >> _S11) * _U53


# ---------------------------------------------------------------------------------------------
# Exact keys
# ---------------------------------------------------------------------------------------------

@nb.njit(cache=True, inline="always")
def exact_key(q, items, bias, j, metric) -> float:
    """The exact key ``e`` of object ``j`` for request ``q`` (see module doc)."""
    if metric == 2:
        return -(lane_dot(q, items[j]) + bias[j])
    return lane_sqdist(q, items[j])


@nb.njit(cache=True, inline="always")
def key_distance(e, e_min, metric) -> float:
    """Distance ``d`` from the exact key (``e_min``: the request's smallest key, used by ``ip``)."""
    if metric == 0:
        return math.sqrt(e)
    if metric == 1:
        return 0.5 * e
    return e - e_min


@nb.njit(cache=True, inline="always")
def dissimilarity(d, kind, radius, c_f) -> float:
    """``c_d = h(d)``: ``d`` (0), ``d^2`` (1), or 0 within ``radius`` and ``c_f`` beyond (2)."""
    if kind == 0:
        return d
    if kind == 1:
        return d * d
    return 0.0 if d <= radius else c_f


@nb.njit(cache=True)
def object_cost(q, items, bias, j, env) -> float:
    """``c_d(q, j)`` for the current request (``env[ENV_EMIN]`` set by the engine): for policies
    that need the cost of an object outside the candidate lists."""
    metric = int(env[ENV_METRIC])
    e = exact_key(q, items, bias, j, metric)
    return dissimilarity(key_distance(e, env[ENV_EMIN], metric), int(env[ENV_DKIND]), env[ENV_RADIUS], env[ENV_CF])


@nb.njit(cache=True)
def sq_norms(x: np.ndarray, out: np.ndarray) -> int:
    """Exact squared norms of the rows of ``x`` (float64, lane order); index of the first row with
    a non-finite value, or -1."""
    bad = -1
    for i in range(x.shape[0]):
        s = sqnorm(x[i])
        out[i] = s
        if not np.isfinite(s) and bad < 0:
            bad = i
    return bad


# ---------------------------------------------------------------------------------------------
# Candidate lists
# ---------------------------------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def approx_key(g, qn2, vn2, b, metric) -> float:
    """Approximate key from the float32 product ``g = q . v``."""
    if metric == 2:
        return -(np.float64(g) + b)
    return qn2 + vn2 - 2.0 * np.float64(g)


@nb.njit(cache=True, inline="always")
def band_insert(a, j, bv, bj, n, m, margin, cap):
    """Insert (a, j) into the ascending band list; keep entries within ``margin`` of the ``m``-th
    smallest. Returns the new length, or -1 when the list would exceed ``cap``."""
    if n >= m and a > bv[m - 1] + margin:
        return n
    if n == cap:
        return -1
    pos = n
    while pos > 0 and bv[pos - 1] > a:
        bv[pos] = bv[pos - 1]
        bj[pos] = bj[pos - 1]
        pos -= 1
    bv[pos] = a
    bj[pos] = j
    n += 1
    if n > m:
        limit = bv[m - 1] + margin
        while n > m and bv[n - 1] > limit:
            n -= 1
    return n


@nb.njit(cache=True, inline="always")
def sorted_insert(e, j, oj, oe, n, m):
    """Insert (e, j) into the list ordered by (e, j), at most ``m`` long; return the new length."""
    pos = n
    while pos > 0 and (e < oe[pos - 1] or (e == oe[pos - 1] and j < oj[pos - 1])):
        pos -= 1
    if pos >= m:
        return n
    last = n if n < m else m - 1
    while last > pos:
        oe[last] = oe[last - 1]
        oj[last] = oj[last - 1]
        last -= 1
    oe[pos] = e
    oj[pos] = j
    return n + 1 if n < m else m


@nb.njit(cache=True)
def exact_best(q, items, bias, metric, cand, n_cand, m, oj, oe) -> int:
    """The ``m`` best of ``cand[:n_cand]`` by exact (e, j) into ``oj``, ``oe``; returns their number."""
    n = 0
    for c in range(n_cand):
        j = cand[c]
        n = sorted_insert(exact_key(q, items, bias, j, metric), j, oj, oe, n, m)
    return n


@nb.njit(cache=True, fastmath=True)
def chunk_min(t) -> float:
    """``min(t)`` of one full chunk (:data:`SCAN_CHUNK` values) with four independent running
    minima (fastmath only lets the compiler reorder them: there is no arithmetic, and a minimum
    is exact in any order)."""
    m0, m1, m2, m3 = t[0], t[1], t[2], t[3]
    for j in range(4, SCAN_CHUNK, 4):
        m0 = min(m0, t[j])
        m1 = min(m1, t[j + 1])
        m2 = min(m2, t[j + 2])
        m3 = min(m3, t[j + 3])
    return min(min(m0, m1), min(m2, m3))


@nb.njit(cache=True)
def row_keys(g_row, qn2, item_n2, bias, metric, keys, minima) -> int:
    """The approximate keys (:func:`approx_key`) of a whole row into ``keys`` and the minimum of
    each chunk of :data:`SCAN_CHUNK` objects into ``minima`` (one pass, chunk by chunk while the
    chunk is in cache; branch-free fixed-length loops the compiler vectorises); returns the
    number of chunks."""
    n = g_row.shape[0]
    full = n // SCAN_CHUNK
    for c in range(full):
        lo = c * SCAN_CHUNK
        t = keys[lo : lo + SCAN_CHUNK]
        g = g_row[lo : lo + SCAN_CHUNK]
        if metric == 2:
            b = bias[lo : lo + SCAN_CHUNK]
            for j in range(SCAN_CHUNK):
                t[j] = -(np.float64(g[j]) + b[j])
        else:
            v = item_n2[lo : lo + SCAN_CHUNK]
            for j in range(SCAN_CHUNK):
                t[j] = qn2 + v[j] - 2.0 * np.float64(g[j])
        minima[c] = chunk_min(t)
    if full * SCAN_CHUNK == n:
        return full
    mn = np.inf
    for j in range(full * SCAN_CHUNK, n):
        keys[j] = approx_key(g_row[j], qn2, item_n2[j], bias[j], metric)
        mn = min(mn, keys[j])
    minima[full] = mn
    return full + 1


@nb.njit(cache=True)
def kth_smallest(v, n, k, scratch) -> float:
    """The ``k``-th smallest (0-based) of ``v[:n]`` by quickselect on a copy in ``scratch``."""
    w = scratch
    for i in range(n):
        w[i] = v[i]
    lo, hi = 0, n - 1
    while lo < hi:
        p = w[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while w[i] < p:
                i += 1
            while w[j] > p:
                j -= 1
            if i <= j:
                w[i], w[j] = w[j], w[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return w[k]
    return w[k]


@nb.njit(cache=True)
def band_compact(bv, bj, n, m, margin, scratch):
    """Keep (in place, in their order) the entries of ``bv[:n]`` within ``margin`` of their
    ``m``-th smallest; return (new length, that threshold), or (n, inf) with fewer than ``m``."""
    if n < m:
        return n, np.inf
    limit = kth_smallest(bv, n, m - 1, scratch) + margin
    kept = 0
    for i in range(n):
        if bv[i] <= limit:
            bv[kept] = bv[i]
            bj[kept] = bj[i]
            kept += 1
    return kept, limit


@nb.njit(cache=True)
def scan_buffer_size(n_objects: int) -> int:
    """Floats of :func:`nearest_objects`' ``abuf``: the row's keys, its chunk minima, a scratch."""
    return n_objects + 2 * (n_objects // SCAN_CHUNK + 1)


@nb.njit(cache=True)
def nearest_objects(g_row, q, qn2, tol, items, item_n2, bias, metric, m, cap, bv, bj, abuf, every, oj, oe, counters):
    """The exact ``m`` nearest catalogue objects of one request (ordered by (e, j)).

    The approximate keys of the row are computed in one vectorised pass (into ``abuf[:N]``) with
    the minimum of every chunk of :data:`SCAN_CHUNK` objects (into ``abuf[N:]``, see
    :func:`row_keys`). The ``m``-th
    smallest chunk minimum bounds the row's ``m``-th smallest key from above (``m`` distinct
    objects are at or below it), so only chunks whose minimum is within that bound + margin can
    hold band objects; their objects within the threshold are appended to an unsorted band
    (the first half of ``bv``/``bj``, longer than ``cap``; the second half of ``bv`` is a
    scratch; ``abuf``: :func:`scan_buffer_size` floats), compacted when full to the entries within the margin of
    its ``m``-th smallest (a selection, no sorted insertion), which lowers the threshold. The
    final compaction leaves exactly the objects within the margin of the row's ``m``-th smallest
    key. A band longer than ``cap`` (at the end, or after a compaction: then the band of the part
    scanned) makes the whole row be evaluated exactly."""
    n_obj = items.shape[0]
    margin = 2.0 * tol
    cmin = abuf[n_obj:]
    n_chunks = row_keys(g_row, qn2, item_n2, bias, metric, abuf, cmin)
    scratch = cmin[n_chunks:]
    thr = np.inf
    if n_chunks >= m:
        thr = kth_smallest(cmin, n_chunks, m - 1, scratch) + margin
    width = bv.shape[0] // 2
    bscratch = bv[width:]
    n = 0
    crowded = False
    for c in range(n_chunks):
        if cmin[c] > thr:
            continue
        for j in range(c * SCAN_CHUNK, min((c + 1) * SCAN_CHUNK, n_obj)):
            a = abuf[j]
            if a <= thr:
                bv[n] = a
                bj[n] = j
                n += 1
                if n == width:
                    n, thr = band_compact(bv, bj, n, m, margin, bscratch)
                    if n > cap:
                        crowded = True
                        break
        if crowded:
            break
    if not crowded:
        n, thr = band_compact(bv, bj, n, m, margin, bscratch)
    if n > cap:
        counters[FULL_ROWS] += 1
        return exact_best(q, items, bias, metric, every, n_obj, m, oj, oe)
    return exact_best(q, items, bias, metric, bj, n, m, oj, oe)


@nb.njit(cache=True)
def nearest_cached(g_row, q, qn2, tol, items, item_n2, bias, metric, m, cap, bv, bj, slot_obj, oj, oe, counters):
    """The exact ``m`` nearest cached objects of one request (ordered by (e, j))."""
    margin = 2.0 * tol
    n = 0
    thr = np.inf
    for s in range(slot_obj.shape[0]):
        j = slot_obj[s]
        if j < 0:
            continue
        a = approx_key(g_row[j], qn2, item_n2[j], bias[j], metric)
        if a <= thr:
            n = band_insert(a, j, bv, bj, n, m, margin, cap)
            if n < 0:
                break
            if n >= m:
                thr = bv[m - 1] + margin
    if n < 0:
        counters[FULL_ROWS] += 1
        n = 0
        for s in range(slot_obj.shape[0]):
            j = slot_obj[s]
            if j >= 0:
                n = sorted_insert(exact_key(q, items, bias, j, metric), j, oj, oe, n, m)
        return n
    return exact_best(q, items, bias, metric, bj, n, m, oj, oe)


# ---------------------------------------------------------------------------------------------
# Slots: the cache content (shared by every policy)
# ---------------------------------------------------------------------------------------------
@nb.njit(cache=True)
def cache_insert(obj, t, slot_obj, obj_slot, slot_req, free, cstate) -> int:
    """Put object ``obj`` (not cached) into a free slot on behalf of request ``t``; return the slot."""
    cstate[N_FREE] -= 1
    s = free[cstate[N_FREE]]
    slot_obj[s] = obj
    obj_slot[obj] = s
    slot_req[s] = t
    cstate[N_USED] += 1
    cstate[N_INS] += 1
    return s


@nb.njit(cache=True)
def cache_evict(s, slot_obj, obj_slot, slot_req, free, cstate) -> None:
    """Empty slot ``s`` (its object leaves the cache); the slot becomes the next one used."""
    obj_slot[slot_obj[s]] = -1
    slot_obj[s] = -1
    slot_req[s] = -1
    free[cstate[N_FREE]] = s
    cstate[N_FREE] += 1
    cstate[N_USED] -= 1
    cstate[N_EV] += 1


# ---------------------------------------------------------------------------------------------
# The optimal answer and the block loop
# ---------------------------------------------------------------------------------------------
@nb.njit(cache=True)
def optimal_answer(k, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc, obj_slot, c_f,
                   ans_obj, ans_local, ans_h, ans_eff, ans_e) -> int:  # fmt: skip
    """The ``k`` best of (nearest cached at ``h``) and (nearest uncached at ``h + c_f``) by
    (effective cost, e, j); returns the answer's length."""
    n = 0
    for src in range(2):
        cnt = n_cc if src == 0 else n_all
        for c in range(cnt):
            if src == 0:
                j, e, h, local = cc_obj[c], cc_e[c], cc_h[c], 1
            else:
                j, e, h, local = all_obj[c], all_e[c], all_h[c], 0
                if obj_slot[j] >= 0:
                    continue  # cached: offered from the cached list (or worse than k cached objects)
            eff = h if local else h + c_f
            pos = n
            while pos > 0 and (eff < ans_eff[pos - 1] or (eff == ans_eff[pos - 1] and (
                    e < ans_e[pos - 1] or (e == ans_e[pos - 1] and j < ans_obj[pos - 1])))):  # fmt: skip
                pos -= 1
            if pos >= k:
                continue
            last = n if n < k else k - 1
            while last > pos:
                ans_obj[last] = ans_obj[last - 1]
                ans_local[last] = ans_local[last - 1]
                ans_h[last] = ans_h[last - 1]
                ans_eff[last] = ans_eff[last - 1]
                ans_e[last] = ans_e[last - 1]
                last -= 1
            ans_obj[pos] = j
            ans_local[pos] = local
            ans_h[pos] = h
            ans_eff[pos] = eff
            ans_e[pos] = e
            if n < k:
                n += 1
    return n


@nb.njit(cache=True)
def serve_block(
    G, Q, qn2, tol, t0, items, item_n2, bias, env, m_all, m_c, cap, ext, use_ext,
    update, key, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar,
    o_server, o_served, o_local, o_origin, o_cost, o_empty, o_opt, o_ins, o_ev, counters,
):  # fmt: skip
    """Serve the requests of one block in order and let the policy update after each.

    ``G``: (B, N) float32 products of the block with every object. ``ext``: (B, m_ext) object ids
    from an approximate index (``use_ext``): the answer's uncached objects are then taken from
    that list instead of the exact nearest objects (the exact ones still give the server list).
    Outputs (per request): the server's exact top-k, the answer (objects, local flags, the request
    that inserted each local object), its cost, the empty-cache cost, the all-local cost, and the
    number of objects the policy inserted and evicted.
    """
    n_req = G.shape[0]
    n_obj = items.shape[0]
    k = int(env[ENV_K])
    metric = int(env[ENV_METRIC])
    dkind = int(env[ENV_DKIND])
    radius = env[ENV_RADIUS]
    c_f = env[ENV_CF]
    m_x = ext.shape[1]
    width = 4 * (max(m_all, m_c, m_x) + cap)
    m_list = max(m_all, m_x + k)
    # every array of the loop borrowed (see :mod:`simcache.cache.kernels.borrowed`); the locals'
    # owners are kept to the end
    G, Q, qn2, tol = borrowed(G), borrowed(Q), borrowed(qn2), borrowed(tol)
    items, item_n2, bias, env = borrowed(items), borrowed(item_n2), borrowed(bias), borrowed(env)
    ext, fpar, counters = borrowed(ext), borrowed(fpar), borrowed(counters)
    slot_obj, obj_slot, slot_req, free = borrowed(slot_obj), borrowed(obj_slot), borrowed(slot_req), borrowed(free)
    cstate, meta, glob, fstate = borrowed(cstate), borrowed(meta), borrowed(glob), borrowed(fstate)
    o_server, o_served, o_local = borrowed(o_server), borrowed(o_served), borrowed(o_local)
    o_origin, o_cost, o_empty = borrowed(o_origin), borrowed(o_cost), borrowed(o_empty)
    o_opt, o_ins, o_ev = borrowed(o_opt), borrowed(o_ins), borrowed(o_ev)
    owned_f64 = np.empty(width + scan_buffer_size(n_obj) + m_all + 2 * m_list + 2 * m_c + 3 * k, np.float64)
    owned_i64 = np.empty(width + n_obj + m_all + m_list + m_c + k + m_x + k, np.int64)
    owned_i8 = np.empty(k, np.int8)
    f64, i64, ans_local = borrowed(owned_f64), borrowed(owned_i64), borrowed(owned_i8)
    bv, f64 = split(f64, width)
    abuf, f64 = split(f64, scan_buffer_size(n_obj))
    ex_e, f64 = split(f64, m_all)
    all_e, f64 = split(f64, m_list)
    all_h, f64 = split(f64, m_list)
    cc_e, f64 = split(f64, m_c)
    cc_h, f64 = split(f64, m_c)
    ans_h, f64 = split(f64, k)
    ans_eff, f64 = split(f64, k)
    ans_e, f64 = split(f64, k)
    bj, i64 = split(i64, width)
    every, i64 = split(i64, n_obj)
    every[:] = np.arange(n_obj)
    ex_obj, i64 = split(i64, m_all)
    all_obj, i64 = split(i64, m_list)
    cc_obj, i64 = split(i64, m_c)
    ans_obj, i64 = split(i64, k)
    xbuf, i64 = split(i64, m_x + k)
    for i in range(n_req):
        t = t0 + i
        q = Q[i]
        n_ex = nearest_objects(G[i], q, qn2[i], tol[i], items, item_n2, bias, metric, m_all, cap + m_all,
                               bv, bj, abuf, every, ex_obj, ex_e, counters)  # fmt: skip
        e_min = ex_e[0]
        env[ENV_EMIN] = e_min
        for a in range(k):
            o_server[i, a] = ex_obj[a]
        if use_ext:
            nx = 0
            for c in range(m_x):
                j = ext[i, c]
                if j < 0:
                    continue
                dup = False
                for p in range(nx):
                    if xbuf[p] == j:
                        dup = True
                        break
                if not dup:
                    xbuf[nx] = j
                    nx += 1
            for c in range(k):  # fewer than k objects from the index: complete with the nearest
                if nx >= k:
                    break
                dup = False
                for p in range(nx):
                    if xbuf[p] == ex_obj[c]:
                        dup = True
                        break
                if not dup:
                    xbuf[nx] = ex_obj[c]
                    nx += 1
            n_all = exact_best(q, items, bias, metric, xbuf, nx, nx, all_obj, all_e)
        else:
            n_all = n_ex
            for c in range(n_ex):
                all_obj[c] = ex_obj[c]
                all_e[c] = ex_e[c]
        for c in range(n_all):
            all_h[c] = dissimilarity(key_distance(all_e[c], e_min, metric), dkind, radius, c_f)
        n_cc = nearest_cached(G[i], q, qn2[i], tol[i], items, item_n2, bias, metric, m_c, cap + m_c,
                              bv, bj, slot_obj, cc_obj, cc_e, counters)  # fmt: skip
        for c in range(n_cc):
            cc_h[c] = dissimilarity(key_distance(cc_e[c], e_min, metric), dkind, radius, c_f)
        n_ans = optimal_answer(k, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc, obj_slot, c_f,
                               ans_obj, ans_local, ans_h, ans_eff, ans_e)  # fmt: skip
        cost = 0.0
        for a in range(n_ans):
            cost += ans_eff[a]
            o_served[i, a] = ans_obj[a]
            o_local[i, a] = ans_local[a] != 0
            o_origin[i, a] = slot_req[obj_slot[ans_obj[a]]] if ans_local[a] else FETCHED
        o_cost[i] = cost
        empty = 0.0
        opt = 0.0
        for a in range(k):
            h = dissimilarity(key_distance(ex_e[a], e_min, metric), dkind, radius, c_f)
            empty += h + c_f
            opt += h
        o_empty[i] = empty
        o_opt[i] = opt
        cstate[N_INS] = 0
        cstate[N_EV] = 0
        update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
               q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env)  # fmt: skip
        o_ins[i] = cstate[N_INS]
        o_ev[i] = cstate[N_EV]
    keep_alive(owned_f64, owned_i64, owned_i8)


@nb.njit(cache=True)
def nearest_block(G, Q, qn2, tol, items, item_n2, bias, metric, m, cap, out_obj, out_e, counters):
    """The exact ``m`` nearest objects of every request of a block (rows of ``out_obj``, ``out_e``)."""
    bv = np.empty(4 * (m + cap), np.float64)
    bj = np.empty(4 * (m + cap), np.int64)
    abuf = np.empty(scan_buffer_size(items.shape[0]), np.float64)
    every = np.arange(items.shape[0])
    oj = np.empty(m, np.int64)
    oe = np.empty(m, np.float64)
    for i in range(G.shape[0]):
        n = nearest_objects(G[i], Q[i], qn2[i], tol[i], items, item_n2, bias, metric, m, cap + m,
                            bv, bj, abuf, every, oj, oe, counters)  # fmt: skip
        for c in range(n):
            out_obj[i, c] = oj[c]
            out_e[i, c] = oe[c]
