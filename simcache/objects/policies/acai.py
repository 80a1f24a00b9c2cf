"""AÇAI (Si Salem, Neglia, Carra, arXiv 2107.00957): online mirror ascent on a fractional cache
state ``y`` over the whole catalogue, with a randomised rounding to the integral cache.

Rules (the reference in the tests implements them independently, over the whole catalogue):

* **State.** ``y`` in the capped simplex ``{0 <= y_o <= 1, sum y = C}``, initially ``C / N``.
* **Gain and subgradient.** For request ``x`` the fractional gain is that of the AÇAI cost
  model: every object ``o`` has a local copy (cost ``h_o = c_d(x, o)``, mass ``y_o``) and a remote
  copy (cost ``h_o + c_f``, mass 1); ordered by cost, the answer takes mass ``k``. With ``c*`` the
  cost at which the cumulative mass first reaches ``k`` (ties: the elements of one cost together),
  the subgradient is ``g_o = max(0, c* - h_o)``. Only the ``candidates`` nearest objects are
  considered (exact; with an approximate index, the index's ``index_candidates`` objects): with
  at least ``k`` of them ``c* <= h_k + c_f``, and objects beyond the list get ``g = 0`` (a truncation when the list
  is shorter than the objects with ``h < c*``).
* **Mirror ascent** (negative entropy): ``z_o = y_o exp(eta g_o)``, then the KL (Bregman)
  projection onto the capped simplex: ``y_o = min(1, s z_o)`` with ``s`` such that ``sum y = C``
  (found by sorting ``z`` descending: the smallest ``j`` with ``z_(j) s_j < 1``, ``s_j = (C - j) /
  (sum of the values below the top j)``, and at most ``j = C - 1``: with positive mass below the
  top ``C`` values the exact projection never caps ``C`` of them, so a product ``z_(C-1) s``
  that reaches 1 only by float rounding leaves that value uncapped at ``min(1, s z) = 1``
  instead of setting every other ``y`` to 0 for good; see :func:`capped_projection`).
* **Rounding** (``period`` M: after requests ``t`` with ``t % M == 0``): systematic sampling, an
  equivalent of DepRound in its marginals: points ``p_i = (u + i) sum(y) / C``, ``i < C``; object
  ``o`` is selected when a point falls in its interval of the cumulative sums of ``y`` in object
  order (a point in an already selected interval selects the next object; a float shortfall is
  completed with the last unselected objects). Every object is selected with probability
  ``y_o`` and exactly ``C`` objects are selected. ``rounding="coupled"`` uses one ``u`` for the
  whole replay (``uniform(key, 0, 0)``), so consecutive roundings of a slowly moving ``y`` change
  few objects (the movement cost stays small); ``"independent"`` draws ``u = uniform(key, t, 0)``
  each time. The cache then evicts the objects not selected (slot order) and inserts the new ones
  (object order); ``log.inserted`` counts them (``log.movement_cost``: ``c_f`` each).

``projection="lazy"`` (default) keeps ``y_o = S w_o`` for the uncapped objects with one global
scale ``S`` and an explicit list of the capped objects, so a mirror step touches only the
candidates and the capped objects, O((m + n_cap) log(m + n_cap)), instead of the whole catalogue.
The list stays short whatever C: a step that raises any uncapped object's ``z`` has ``s < 1``, so
every capped object that is not a candidate (``z = 1``) leaves the cap; in exact arithmetic the
capped objects are among the last changing step's candidates (``n_cap <= m``; at most 16 on the
speed benchmark's first 2,000 requests at C = 100 to 10,000). ``"full"`` is the straightforward form
(multiplicative update of all N coordinates, then a full sort-based projection) with the same
results up to float rounding. Every 256 requests the lazy form folds ``S`` into ``w`` and
recomputes its sums exactly. The lazy form also rounds without the O(N) pass: a sum tree over the
catalogue (per node: the sum of ``w`` over its uncapped objects and the number of capped ones, so a
prefix of ``y`` is ``S * w_sum + capped``) updated only at the objects the mirror step touched.
Each of the ``C`` points finds its object by the descent from the root, but the points ascend, so
a point's descent is the previous one's down to the level where it first turns right instead of
left; it resumes from there (a finger search, see :func:`tree_round`): O(C log(N / C) + C) node
visits per rounding instead of C log N, with the same float expressions, so the same objects.
The cache then changes by marks on its C slots (O(C), no search). The selection rule is the same
as the full form's (the first object after the previous selection whose cumulative ``y`` exceeds
the point, then the fill-up); only the float grouping of the cumulative sums differs, so the two
forms agree unless a point lies within rounding error (about 1e-13) of an interval boundary.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.policies.base import Param
from simcache.objects.kernels import ENV_CF, ENV_K, UPDATE_SIG, cache_evict, cache_insert, uniform
from simcache.objects.policies.base import ObjectPolicy

#: fstate header: global scale S, sum W of w over the uncapped objects, number capped, requests
#: since the last refresh; then w (N), capped flags (N), capped list (C), and the lazy form's sum
#: tree (P = the power of two >= N leaves, node 1 the root, leaf o at P + o; per node its sum of w
#: and its number of capped objects, interleaved: 4P)
F_S, F_W, F_NCAP, F_SINCE, HEADER = 0, 1, 2, 3, 4
#: fpar: eta, period, coupled, lazy
P_ETA, P_PERIOD, P_COUPLED, P_LAZY = 0, 1, 2, 3
REFRESH = 256


@nb.njit(cache=True)
def capped_projection(z_desc, rest, capacity):
    """(j, s) of the KL projection of values ``z_desc`` (descending) plus ``rest`` (the mass of
    values known to stay below the cap) onto ``{min(1, s z)}`` summing to ``capacity``: the top
    ``j`` values are capped (y = 1), the others get ``y = min(1, s z)``.

    The boundary rule shared by the lazy and the full form: at most ``capacity - 1`` values are
    capped. With positive mass below the top ``C`` values the exact projection never caps ``C``
    (``z_(C-1) s_(C-1) = z_(C-1) / (z_(C-1) + below) < 1``); only float rounding can make that
    product reach 1, and capping there would give ``s = 0``: every other object ``y = 0`` for
    good (``y = 0`` stays 0) on a decision that the two forms, whose sums are grouped
    differently, may take differently. So the ``C``-th value stays uncapped with ``s = 1 /
    mass`` (its ``min(1, s z)`` is 1 within rounding) and the others keep their tiny positive
    ``y``, equal in both forms within rounding. ``s = 0`` is returned only when no mass at all is
    left below the top ``j``."""
    n = z_desc.shape[0]
    tail = np.empty(n + 1, np.float64)
    tail[n] = 0.0
    for i in range(n - 1, -1, -1):
        tail[i] = tail[i + 1] + z_desc[i]
    top = min(n, capacity - 1)
    for j in range(top + 1):
        mass = rest + tail[j]
        if mass <= 0.0:
            return j, 0.0  # nothing left below the cap to scale: those objects keep y = 0
        s = (capacity - j) / mass
        if j == top or z_desc[j] * s < 1.0:
            return j, s
    return top, 0.0


@nb.njit(cache=True)
def acai_threshold(all_h, y_cand, n_all, k, c_f) -> float:
    """``c*``: the cost at which local copies (mass y) and remote copies (mass 1) of the
    candidates, ordered by cost (stable: local_0, remote_0, local_1, ...), first reach mass k.
    Candidates come in (key, index) order, so ``all_h`` is non-decreasing and the order is a merge
    of the two sorted lists (local_i before remote_j on a tie iff i <= j); a sort otherwise."""
    ordered = True
    for c in range(1, n_all):
        if all_h[c] < all_h[c - 1]:
            ordered = False
            break
    if ordered and n_all > 0:
        i = 0
        j = 0
        cum = 0.0
        while j < n_all:
            if i < n_all and (all_h[i] < all_h[j] + c_f or (all_h[i] == all_h[j] + c_f and i <= j)):
                cum += y_cand[i]
                if cum >= k:
                    return all_h[i]
                i += 1
            else:
                cum += 1.0
                if cum >= k:
                    return all_h[j] + c_f
                j += 1
        return all_h[n_all - 1] + c_f
    costs = np.empty(2 * n_all, np.float64)
    mass = np.empty(2 * n_all, np.float64)
    for c in range(n_all):
        costs[2 * c] = all_h[c]
        mass[2 * c] = y_cand[c]
        costs[2 * c + 1] = all_h[c] + c_f
        mass[2 * c + 1] = 1.0
    order = np.argsort(costs, kind="mergesort")
    cum = 0.0
    for i in range(order.shape[0]):
        cum += mass[order[i]]
        if cum >= k:
            return costs[order[i]]
    return costs[order[-1]]


@nb.njit(cache=True)
def y_of(o, fstate, n_obj) -> float:
    """y_o = min(1, s w_o) (capped objects: 1); the min keeps rounding errors of an object at the
    cap's boundary inside [0, 1]."""
    if fstate[HEADER + n_obj + o] != 0.0:
        return 1.0
    v = fstate[F_S] * fstate[HEADER + o]
    return v if v < 1.0 else 1.0


@nb.njit(cache=True)
def systematic_round(y, capacity, u, sel) -> None:
    """Select exactly ``capacity`` objects with marginals ``y`` (see the module doc) into ``sel``."""
    n = y.shape[0]
    total = 0.0
    for o in range(n):
        total += y[o]
    step = total / capacity
    i = 0
    p = u * step
    cum = 0.0
    for o in range(n):
        sel[o] = False
        cum += y[o]
        if i < capacity and p < cum:
            sel[o] = True
            i += 1
            p = (u + i) * step
    o = n - 1
    while i < capacity:
        if not sel[o]:
            sel[o] = True
            i += 1
        o -= 1


@nb.njit(cache=True)
def tree_leaves(n_obj) -> int:
    """P: the sum tree's number of leaves (the power of two >= N)."""
    p = 1
    while p < n_obj:
        p *= 2
    return p


@nb.njit(cache=True)
def tree_set(fstate, n_obj, capacity, o) -> None:
    """Write object o's leaf (w, or capped 1) and recompute its ancestors from their children."""
    p = tree_leaves(n_obj)
    tw = HEADER + 2 * n_obj + capacity
    tc = tw + 1
    node = p + o
    if fstate[HEADER + n_obj + o] != 0.0:
        fstate[tw + 2 * node] = 0.0
        fstate[tc + 2 * node] = 1.0
    else:
        fstate[tw + 2 * node] = fstate[HEADER + o]
        fstate[tc + 2 * node] = 0.0
    node //= 2
    while node >= 1:
        fstate[tw + 2 * node] = fstate[tw + 4 * node] + fstate[tw + 4 * node + 2]
        fstate[tc + 2 * node] = fstate[tc + 4 * node] + fstate[tc + 4 * node + 2]
        node //= 2


@nb.njit(cache=True)
def tree_build(fstate, n_obj, capacity) -> None:
    """All leaves from the state, then every inner node from its children."""
    p = tree_leaves(n_obj)
    tw = HEADER + 2 * n_obj + capacity
    tc = tw + 1
    for o in range(p):
        capped = o < n_obj and fstate[HEADER + n_obj + o] != 0.0
        fstate[tw + 2 * (p + o)] = fstate[HEADER + o] if o < n_obj and not capped else 0.0
        fstate[tc + 2 * (p + o)] = 1.0 if capped else 0.0
    for node in range(p - 1, 0, -1):
        fstate[tw + 2 * node] = fstate[tw + 4 * node] + fstate[tw + 4 * node + 2]
        fstate[tc + 2 * node] = fstate[tc + 4 * node] + fstate[tc + 4 * node + 2]


@nb.njit(cache=True)
def tree_depth(n_obj) -> int:
    """The sum tree's number of levels below the root (P = 2^depth leaves)."""
    depth = 0
    while (1 << depth) < n_obj:
        depth += 1
    return depth


@nb.njit(cache=True)
def tree_round(fstate, n_obj, capacity, u, out) -> None:
    """The systematic rounding of ``y`` (same rule as :func:`systematic_round`) from the sum tree:
    the ``capacity`` selected objects into ``out``, ascending.

    Each point finds its object by the descent ``point < acc + mass(left child)`` from the root;
    the points ascend, so a point's descent is the previous point's down to the first level where
    it turns right instead of left. That level is found bottom-up from ``lim[d]``, the smallest
    threshold the previous point turned left of above level ``d`` (a running minimum, not the
    deepest such threshold: float rounding can put a deeper one above a shallower one), and only
    the rest of the path is descended, with the same float expressions: the same objects as
    ``capacity`` descents from the root, in O(C log(N / C) + C) node visits instead of O(C log N)."""
    p = tree_leaves(n_obj)
    depth = tree_depth(n_obj)
    tw = HEADER + 2 * n_obj + capacity
    tc = tw + 1
    s_glob = fstate[F_S]
    step = (s_glob * fstate[tw + 2] + fstate[tc + 2]) / capacity
    path = np.empty(depth + 1, np.int64)  # the previous point's nodes, root at level 0
    acc = np.empty(depth + 1, np.float64)  # the mass left of each of them
    lim = np.empty(depth + 1, np.float64)
    path[0] = 1
    acc[0] = 0.0
    lim[0] = np.inf
    valid = 0  # levels 0..valid of path/acc/lim hold the previous point's descent
    prev = -1
    cnt = 0
    for i in range(capacity):
        point = (u + i) * step
        d = valid
        while d > 0 and not point < lim[d]:
            d -= 1
        node = path[d]
        a = acc[d]
        low = lim[d]
        while d < depth:
            left = 2 * node
            thr = a + (s_glob * fstate[tw + 2 * left] + fstate[tc + 2 * left])
            if point < thr:
                node = left
                if thr < low:
                    low = thr
            else:
                a = thr
                node = left + 1
            d += 1
            path[d] = node
            acc[d] = a
            lim[d] = low
        valid = depth
        o = node - p
        if not point < a + s_glob * fstate[tw + 2 * node] + fstate[tc + 2 * node]:
            break  # past the total: no later point falls in an interval either
        if o <= prev:
            o = prev + 1  # the point lies in an already selected interval: the next object
        if o >= n_obj:
            break
        out[cnt] = o
        cnt += 1
        prev = o
    if cnt == capacity:
        return  # ascending already
    o = n_obj - 1
    r = cnt - 1
    while cnt < capacity:  # fill-up: the last unselected objects
        if r >= 0 and out[r] == o:
            r -= 1
        else:
            out[cnt] = o
            cnt += 1
        o -= 1
    out.sort()


@nb.njit(cache=True)
def refresh(fstate, n_obj, capacity) -> None:
    """Fold S into w, recompute W exactly and rebuild the sum tree."""
    s = fstate[F_S]
    w_sum = 0.0
    for o in range(n_obj):
        if fstate[HEADER + n_obj + o] == 0.0:
            fstate[HEADER + o] *= s
            w_sum += fstate[HEADER + o]
    fstate[F_S] = 1.0
    fstate[F_W] = w_sum
    fstate[F_SINCE] = 0.0
    tree_build(fstate, n_obj, capacity)


@nb.njit(cache=True)
def lazy_step(all_obj, g, n_all, eta, fstate, n_obj, capacity) -> None:
    """Mirror step touching only the candidates with g > 0 and the capped objects."""
    wo = HEADER
    fo = HEADER + n_obj
    lo = HEADER + 2 * n_obj
    ncap = int(fstate[F_NCAP])
    S = fstate[F_S]
    W = fstate[F_W]
    ids = np.empty(ncap + n_all, np.int64)
    z = np.empty(ncap + n_all, np.float64)
    n = 0
    for i in range(ncap):
        ids[n] = int(fstate[lo + i])
        z[n] = 1.0
        n += 1
    for c in range(n_all):
        if g[c] <= 0.0:
            continue
        o = all_obj[c]
        f = math.exp(eta * g[c])
        if fstate[fo + o] != 0.0:
            for i in range(ncap):
                if ids[i] == o:
                    z[i] = f
                    break
        else:
            W -= fstate[wo + o]
            ids[n] = o
            z[n] = S * fstate[wo + o] * f
            n += 1
    order = np.argsort(-z[:n], kind="mergesort")
    zs = np.empty(n, np.float64)
    for i in range(n):
        zs[i] = z[order[i]]
    j, s = capped_projection(zs, S * W, capacity)
    # s = 0 only when no mass is left below the capped objects (all others already have y = 0):
    # keep the scale, and their weights become 0
    S_new = S * s if s > 0.0 else S
    for r in range(n):
        o = ids[order[r]]
        if r < j:
            fstate[fo + o] = 1.0
            fstate[lo + r] = o
        else:
            fstate[fo + o] = 0.0
            w = s * zs[r] / S_new
            fstate[wo + o] = w
            W += w
    fstate[F_S] = S_new
    fstate[F_W] = W
    fstate[F_NCAP] = j
    fstate[F_SINCE] += 1.0
    if fstate[F_SINCE] >= REFRESH or S_new < 1e-100:
        refresh(fstate, n_obj, capacity)
    else:
        for r in range(n):
            if r >= j or order[r] >= ncap:  # an object capped before and after keeps its leaf
                tree_set(fstate, n_obj, capacity, ids[order[r]])


@nb.njit(cache=True)
def full_step(all_obj, g, n_all, eta, fstate, n_obj, capacity) -> None:
    """Straightforward mirror step: multiply all N coordinates, sort them all, project."""
    wo = HEADER
    grad = np.zeros(n_obj, np.float64)
    for c in range(n_all):
        grad[all_obj[c]] = g[c]
    z = np.empty(n_obj, np.float64)
    for o in range(n_obj):
        z[o] = fstate[wo + o] * math.exp(eta * grad[o])
    order = np.argsort(-z, kind="mergesort")
    zs = z[order]
    j, s = capped_projection(zs, 0.0, capacity)
    for r in range(n_obj):
        fstate[wo + order[r]] = 1.0 if r < j else min(1.0, s * zs[r])


@nb.njit(UPDATE_SIG, cache=True)
def acai_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
                q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    """fpar = [eta, period, coupled, lazy]; fstate: see the module constants."""
    n_obj = items.shape[0]
    capacity = slot_obj.shape[0]
    lazy = fpar[P_LAZY] != 0.0
    y_cand = np.empty(n_all, np.float64)
    for c in range(n_all):
        y_cand[c] = y_of(all_obj[c], fstate, n_obj) if lazy else fstate[HEADER + all_obj[c]]
    thr = acai_threshold(all_h, y_cand, n_all, int(env[ENV_K]), env[ENV_CF])
    g = np.empty(n_all, np.float64)
    for c in range(n_all):
        g[c] = thr - all_h[c] if all_h[c] < thr else 0.0
    if lazy:
        lazy_step(all_obj, g, n_all, fpar[P_ETA], fstate, n_obj, capacity)
    else:
        full_step(all_obj, g, n_all, fpar[P_ETA], fstate, n_obj, capacity)
    if t % int(fpar[P_PERIOD]) != 0:
        return
    u = uniform(key, 0, 0) if fpar[P_COUPLED] != 0.0 else uniform(key, t, 0)
    if lazy:
        chosen = np.empty(capacity, np.int64)
        tree_round(fstate, n_obj, capacity, u, chosen)
        keep = np.zeros(capacity, np.bool_)  # slots whose object stays selected
        for r in range(capacity):
            if obj_slot[chosen[r]] >= 0:
                keep[obj_slot[chosen[r]]] = True
        for s in range(capacity):
            if slot_obj[s] >= 0 and not keep[s]:
                cache_evict(s, slot_obj, obj_slot, slot_req, free, cstate)
        for r in range(capacity):
            if obj_slot[chosen[r]] < 0:
                cache_insert(chosen[r], t, slot_obj, obj_slot, slot_req, free, cstate)
        return
    y = fstate[HEADER : HEADER + n_obj]
    sel = np.empty(n_obj, np.bool_)
    systematic_round(y, capacity, u, sel)
    for s in range(capacity):
        o = slot_obj[s]
        if o >= 0 and not sel[o]:
            cache_evict(s, slot_obj, obj_slot, slot_req, free, cstate)
    for o in range(n_obj):
        if sel[o] and obj_slot[o] < 0:
            cache_insert(o, t, slot_obj, obj_slot, slot_req, free, cstate)


class Acai(ObjectPolicy):
    """AÇAI: mirror ascent (negative entropy) on a fractional state, rounded to the cache."""

    name = "acai"
    summary = "AÇAI: online mirror ascent on fractional y over the catalogue, KL projection, randomised rounding"
    params = (
        Param("eta", float, 0.5, "mirror-ascent step size (> 0; gradients are in units of cost)"),
        Param("candidates", int, 50, "nearest objects (exact, or from the index) given a gradient (>= k)"),
        Param("period", int, 1, "round y to the cache after every PERIOD-th request (>= 1)"),
        Param("rounding", str, "coupled", "coupled: one offset for all roundings (small movement); "
              "independent: a fresh offset each rounding", choices=("coupled", "independent")),  # fmt: skip
        Param("projection", str, "lazy", "lazy: touch only candidates and capped objects; full: the "
              "straightforward whole-catalogue update (same results, slower)", choices=("lazy", "full")),  # fmt: skip
    )

    def check(self) -> None:
        v = self.values
        if not v["eta"] > 0.0:
            raise UserError(f"acai eta must be > 0, got {v['eta']}")
        if v["candidates"] < self.k:
            raise UserError(f"acai candidates must be >= k = {self.k}, got {v['candidates']}")
        if v["period"] < 1:
            raise UserError(f"acai period must be >= 1, got {v['period']}")

    @classmethod
    def kernel(cls):
        return acai_update

    def candidates(self) -> tuple[int, int]:
        return min(self.values["candidates"], self.n_objects), self.k

    def parameters(self) -> np.ndarray:
        v = self.values
        return np.array([v["eta"], v["period"], v["rounding"] == "coupled", v["projection"] == "lazy"], np.float64)

    def new_state(self):
        meta, glob, _ = super().new_state()
        return meta, glob, new_fstate(self.n_objects, self.capacity)


def new_fstate(n_objects: int, capacity: int) -> np.ndarray:
    """AÇAI's initial state: ``y = C / N`` everywhere, nothing capped, the sum tree built."""
    fstate = np.zeros(HEADER + 2 * n_objects + capacity + 4 * int(tree_leaves(n_objects)), np.float64)
    fstate[F_S] = 1.0
    fstate[HEADER : HEADER + n_objects] = capacity / n_objects
    fstate[F_W] = float(np.sum(fstate[HEADER : HEADER + n_objects]))
    tree_build(fstate, n_objects, capacity)
    return fstate


def fractional_state(fstate: np.ndarray, n_objects: int, lazy: bool = True) -> np.ndarray:
    """``y`` over the catalogue from an AÇAI ``fstate`` (for tests and reports)."""
    w = fstate[HEADER : HEADER + n_objects]
    if not lazy:
        return w.copy()
    capped = fstate[HEADER + n_objects : HEADER + 2 * n_objects] != 0.0
    return np.where(capped, 1.0, np.minimum(1.0, fstate[F_S] * w))
