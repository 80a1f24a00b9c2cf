"""GRADES (Sabnis et al., INFOCOM 2021) over a discrete catalogue: every cache slot keeps a point
that moves by (sub)gradient steps on the dissimilarity cost of the requests it serves, and holds
the catalogue object nearest to its point (the paper's mapping to real objects).

Rules (the paper's text could not be checked here; choices documented in ``docs/object-caches.md``):

* **Filling.** While the cache has free slots the answer's fetched objects are inserted; a slot's
  point starts at its object's prepared vector. Nothing else is inserted except by moving points.
* **Step.** For each local object of the answer (answer order, interleaved with the insertions;
  also while the cache is filling), with ``p`` its slot's point and
  ``x`` the prepared request: ``p <- p - alpha h'(d) grad_p d``, ``d`` the metric's distance
  evaluated at the point: ``l2``: ``d = |p - x|``, ``grad = (p - x) / d`` (no step at ``d = 0``);
  ``cosine``: ``d = |p - x|^2 / 2``, ``grad = p - x``; ``ip``: ``d = -(x . p)`` up to constants,
  ``grad = -x``. ``h'``: 1 for ``distance`` (and for ``radius``, whose step function has no useful
  gradient: the distance's gradient is used), ``2 d`` for ``squared`` (``ip``: always 1). Squared norms are summed in
  the kernels' fixed lane order.
* **Mapping.** The slot then holds the catalogue object nearest to ``p`` in Euclidean distance
  over the prepared vectors (keys: the lane-order squared distance; ties: smaller index). If that
  object is cached in another slot, the slot keeps its object (its point still moves).

How the nearest object is found (exact: always the full scan's object, see :func:`mapped_object`):
each slot keeps an *anchor* ``a`` (the point where its last full scan ran), the :data:`NEIGHBOURS`
objects nearest to ``a`` and ``R``, the distance from ``a`` to the nearest object outside that
list. By the triangle inequality every outside object is at least ``R - |p - a|`` from ``p``, so
when the list's nearest ``b`` has ``|p - b| + |p - a| < R`` (with a relative margin far above
float64 rounding) ``b`` is the answer: ``L + 1`` distances at most (from ``p`` to ``a`` and to the
list's objects), fewer as list objects that are provably too far are skipped. Otherwise one full
scan of the catalogue answers and re-anchors the slot at ``p``. A slot's first mapping is such a
scan (C of them per replay); later ones come only when a point has left its anchor's certified
ball: rarely, as points move by small steps (1,224 scans for 1.85 million mappings over
``benchmarks.object_cache_speed``'s trace at C = 100). State: C (2 d + 2 L + 1) 8-byte words and
two counters (:func:`scan_counters`), independent of the catalogue's size.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.kernels.distances import sqdist as lane_sqdist
from simcache.cache.policies.base import Param
from simcache.objects.kernels import (ENV_DKIND, ENV_METRIC, N_FREE, UPDATE_SIG, cache_evict, cache_insert,
                                      sorted_insert)
from simcache.objects.policies.base import ObjectPolicy

#: objects in each slot's anchored list (L): a longer list certifies a larger ball around its
#: anchor, so fewer full scans, at about the same cost per proven mapping (far list objects are
#: skipped unevaluated); 128 was the best of 32, 64, 128 and 256 in one-off timings on
#: ``benchmarks.object_cache_speed``'s catalogue (a longer list makes each scan's selection dearer)
NEIGHBOURS = 128
#: relative margin on the certificate's distances (a float64 key's relative rounding error is
#: about (d / 32 + 8) 2^-53: far below this for any dimension up to ~1e9)
CERT_SLACK = 1e-6


@nb.njit(cache=True)
def grades_step(p, x, alpha, metric, dkind) -> None:
    """One (sub)gradient step of the point ``p`` (float64) for request ``x`` (prepared float32)."""
    dim = p.shape[0]
    if metric == 2:
        for i in range(dim):
            p[i] = p[i] + alpha * np.float64(x[i])
        return
    e = lane_sqdist(p, x)
    if metric == 0:
        d = math.sqrt(e)
        if d == 0.0:
            return
        scale = alpha / d if dkind != 1 else alpha * 2.0
    else:
        d = 0.5 * e
        scale = alpha if dkind != 1 else alpha * 2.0 * d
    for i in range(dim):
        p[i] = p[i] - scale * (p[i] - np.float64(x[i]))


@nb.njit(cache=True)
def anchor_scan(p, items, oj, oe) -> int:
    """Full scan from ``p``: its ``len(oj)`` nearest objects ordered by (key, index) into ``oj``,
    ``oe`` (keys: :func:`lane_sqdist`); returns how many (fewer only for a small catalogue)."""
    m = oj.shape[0]
    n = 0
    for j in range(items.shape[0]):
        e = lane_sqdist(p, items[j])
        if n < m or e < oe[m - 1]:  # (a tie with the last one loses: larger index)
            n = sorted_insert(e, j, oj, oe, n, m)
    return n


@nb.njit(cache=True)
def mapped_object(s, p, items, meta, glob, fstate, capacity, oj, oe) -> int:
    """The catalogue object nearest to ``p`` (Euclidean, lane-order keys, ties to the smaller index:
    the full scan's answer) for slot ``s``, proven from the slot's anchored list when possible.

    The slot keeps an anchor ``a`` (a past point), the ``L`` objects nearest to it (ordered by
    their keys from ``a``, kept too) and ``R``, the distance from ``a`` to the nearest object outside
    the list. Any object ``y`` outside has ``|p - y| >= R - |p - a|``; so with ``b`` the list's
    nearest to ``p`` (same keys and tie rule as the full scan), ``|p - b| + |p - a| < R`` proves
    that ``b`` is the full scan's answer. A list object ``j`` with ``|a - j| - |p - a| > |p - b|``
    cannot win either and is skipped unevaluated (from it on, the whole rest of the list: its
    ``|a - j|`` only grow). Every comparison has the relative margin :data:`CERT_SLACK`, far above
    the keys' float64 rounding. Otherwise a full scan from ``p`` answers and re-anchors the slot
    at ``p``."""
    dim = items.shape[1]
    size = oj.shape[0] - 1  # L
    lo, hi = 1.0 - CERT_SLACK, 1.0 + CERT_SLACK
    keys = fstate[capacity * (2 * dim + 1) + s * size :]
    n = meta[s, 0]
    if n >= 0:
        a = fstate[(capacity + s) * dim : (capacity + s + 1) * dim]
        r = math.sqrt(fstate[2 * capacity * dim + s]) * lo
        da = math.sqrt(lane_sqdist(p, a)) * hi
        if da < r:
            best = -1
            best_e = 0.0
            reach = np.inf  # |p - b| with its margin
            for c in range(n):
                if math.sqrt(keys[c]) * lo - da > reach:
                    break
                j = glob[s * size + c]
                e = lane_sqdist(p, items[j])
                if best < 0 or e < best_e or (e == best_e and j < best):
                    best, best_e = j, e
                    reach = math.sqrt(best_e) * hi
            if reach + da < r:
                fstate[fstate.shape[0] - 2] += 1.0
                return best
    fstate[fstate.shape[0] - 1] += 1.0
    got = anchor_scan(p, items, oj, oe)
    n = min(got, size)
    for c in range(n):
        glob[s * size + c] = oj[c]
        keys[c] = oe[c]
    meta[s, 0] = n
    fstate[2 * capacity * dim + s] = oe[size] if got > size else np.inf
    for i in range(dim):
        fstate[(capacity + s) * dim + i] = p[i]
    return oj[0]


@nb.njit(UPDATE_SIG, cache=True)
def grades_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
                  q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    """fpar = [alpha]; state: see :meth:`ObjectGrades.new_state`."""
    dim = items.shape[1]
    capacity = slot_obj.shape[0]
    size = glob.shape[0] // capacity
    oj = np.empty(size + 1, np.int64)
    oe = np.empty(size + 1, np.float64)
    metric = int(env[ENV_METRIC])
    dkind = int(env[ENV_DKIND])
    for a in range(ans_obj.shape[0]):
        if not ans_local[a]:
            if cstate[N_FREE] > 0 and obj_slot[ans_obj[a]] < 0:  # (a moved point may have taken it)
                s = cache_insert(ans_obj[a], t, slot_obj, obj_slot, slot_req, free, cstate)
                for i in range(dim):
                    fstate[s * dim + i] = np.float64(items[ans_obj[a], i])
                meta[s, 0] = -1  # no anchor yet
            continue
        s = obj_slot[ans_obj[a]]
        p = fstate[s * dim : (s + 1) * dim]
        grades_step(p, q, fpar[0], metric, dkind)
        j = mapped_object(s, p, items, meta, glob, fstate, capacity, oj, oe)
        if j != slot_obj[s] and obj_slot[j] < 0:
            cache_evict(s, slot_obj, obj_slot, slot_req, free, cstate)
            cache_insert(j, t, slot_obj, obj_slot, slot_req, free, cstate)


def scan_counters(fstate: np.ndarray) -> tuple[int, int]:
    """(mappings proven from an anchored list, full scans) from a GRADES ``fstate`` (tests, reports)."""
    return int(fstate[-2]), int(fstate[-1])


class ObjectGrades(ObjectPolicy):
    """GRADES: cached points follow the gradient of the cost of the requests they serve."""

    name = "grades"
    summary = ("GRADES: each cached point takes a gradient step of size alpha per request it serves, mapped to "
               "the nearest object")
    params = (Param("alpha", float, 0.1, "gradient step size (> 0; in distance units for l2)"),)

    def check(self) -> None:
        if not self.values["alpha"] > 0.0:
            raise UserError(f"grades alpha must be > 0, got {self.values['alpha']}")

    @classmethod
    def kernel(cls):
        return grades_update

    def parameters(self) -> np.ndarray:
        return np.array([self.values["alpha"]], np.float64)

    def new_state(self):
        """meta[s, 0]: length of slot ``s``'s anchored list (-1: none yet); glob: the lists,
        capacity x L object ids; fstate: the points (capacity x dim), the anchors (capacity x dim),
        each anchor's squared ``R`` (capacity), the lists' keys from their anchor (capacity x L) and
        two counters (proven mappings, full scans). Memory: C (2 d + 2 L + 1) 8-byte words,
        independent of the catalogue's size."""
        meta, _, _ = super().new_state()
        if self.dim < 1:
            raise UserError("grades needs the catalogue's dimension (pass dim= to the policy)")
        glob = np.full(self.capacity * NEIGHBOURS, -1, np.int64)
        return meta, glob, np.zeros(self.capacity * (2 * self.dim + 1 + NEIGHBOURS) + 2, np.float64)
