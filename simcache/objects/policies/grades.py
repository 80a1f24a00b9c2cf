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
  over the prepared vectors (ties: smaller index; a full scan). If that object is cached in
  another slot, the slot keeps its object (its point still moves).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.kernels.distances import LANES
from simcache.cache.kernels.distances import sqdist as lane_sqdist
from simcache.cache.policies.base import Param
from simcache.objects.kernels import ENV_DKIND, ENV_METRIC, N_FREE, UPDATE_SIG, cache_evict, cache_insert
from simcache.objects.policies.base import ObjectPolicy


@nb.njit(cache=True)
def grades_step(p, x, alpha, metric, dkind, lanes) -> None:
    """One (sub)gradient step of the point ``p`` (float64) for request ``x`` (prepared float32)."""
    dim = p.shape[0]
    if metric == 2:
        for i in range(dim):
            p[i] = p[i] + alpha * np.float64(x[i])
        return
    e = lane_sqdist(p, x, lanes)
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
def nearest_to_point(p, items, lanes) -> int:
    """The catalogue object nearest to ``p`` (Euclidean, ties to the smaller index)."""
    best = -1
    best_e = 0.0
    for j in range(items.shape[0]):
        e = lane_sqdist(p, items[j], lanes)
        if best < 0 or e < best_e:
            best, best_e = j, e
    return best


@nb.njit(UPDATE_SIG, cache=True)
def grades_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
                  q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    """fpar = [alpha]; fstate: the slots' points, capacity x dim."""
    dim = items.shape[1]
    lanes = np.empty(LANES, np.float64)
    metric = int(env[ENV_METRIC])
    dkind = int(env[ENV_DKIND])
    for a in range(ans_obj.shape[0]):
        if not ans_local[a]:
            if cstate[N_FREE] > 0 and obj_slot[ans_obj[a]] < 0:  # (a moved point may have taken it)
                s = cache_insert(ans_obj[a], t, slot_obj, obj_slot, slot_req, free, cstate)
                for i in range(dim):
                    fstate[s * dim + i] = np.float64(items[ans_obj[a], i])
            continue
        s = obj_slot[ans_obj[a]]
        p = fstate[s * dim : (s + 1) * dim]
        grades_step(p, q, fpar[0], metric, dkind, lanes)
        j = nearest_to_point(p, items, lanes)
        if j != slot_obj[s] and obj_slot[j] < 0:
            cache_evict(s, slot_obj, obj_slot, slot_req, free, cstate)
            cache_insert(j, t, slot_obj, obj_slot, slot_req, free, cstate)


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
        meta, glob, _ = super().new_state()
        if self.dim < 1:
            raise UserError("grades needs the catalogue's dimension (pass dim= to the policy)")
        return meta, glob, np.zeros(self.capacity * self.dim, np.float64)
