"""DUEL (Garetto, Leonardi, Neglia, INFOCOM 2020) in object form, for k-item answers.

The paper's text could not be checked here; the rules are the issue's, with every choice a
parameter (also in ``docs/object-caches.md``):

* **Filling.** While the cache has free slots, the answer's fetched objects are inserted (in
  answer order), then (``challenger="nearest"``) the server's nearest object if uncached; no duel
  runs.
* **Scoring.** On every request after its start, each running duel (challenger ``c`` not cached,
  defender ``d`` cached) adds to two counters the saving each duelist provides on that request,
  both against ``S - {d}``: the defender's ``cost(S - d) - cost(S)``, the challenger's
  ``cost(S - d) - cost(S - d + c)`` (``cost``: the optimal answer's cost; all duels are scored
  against the same ``S``, then resolved in duel order). When the challenger's counter exceeds the
  defender's by at least ``delta`` (cost units) the challenger replaces the defender and the duel
  ends; otherwise it ends after ``tau`` scored requests.
* **Starting.** With a full cache the candidate challenger is, with ``challenger="nearest"``
  (default; the paper's requests are objects, and a request for an uncached object is a miss even
  when a similar object serves it), the server's nearest object when it is not cached; with
  ``"fetched"``, the best object the answer fetched (no candidate when the answer is all local).
  Its defender: with probability ``beta`` (draw 0) its nearest cached
  object (the metric's order with the challenger's vector as the request, ties to the smaller
  index), else a uniform cached slot (draw 1). The duel starts unless ``max_duels`` are running,
  the challenger or the defender already duels, or an object of a running duel lies within
  ``interference`` (Euclidean distance between the prepared vectors) of the challenger.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.kernels.distances import sqdist as lane_sqdist
from simcache.cache.policies.base import Param
from simcache.objects.kernels import (ENV_CF, ENV_K, ENV_METRIC, N_FREE, UPDATE_SIG, cache_evict, cache_insert,
                                      exact_key, object_cost, uniform)  # fmt: skip
from simcache.objects.policies.base import ObjectPolicy

#: one duel in fstate: running flag, challenger, defender, start request, the two counters
D_ON, D_C, D_D, D_START, D_SC, D_SD, D_FIELDS = 0, 1, 2, 3, 4, 5, 6
P_BETA, P_DELTA, P_TAU, P_MAX, P_INTERFERENCE, P_NEAREST = 0, 1, 2, 3, 4, 5


@nb.njit(cache=True)
def k_cost(k, eff, e, j, n):
    """Sum, in (eff, e, j) order, of the k smallest of ``n`` candidates (the optimal answer's cost)."""
    order = np.empty(k, np.int64)
    m = 0
    for i in range(n):
        pos = m
        while pos > 0:
            p = order[pos - 1]
            if eff[i] < eff[p] or (eff[i] == eff[p] and (e[i] < e[p] or (e[i] == e[p] and j[i] < j[p]))):
                pos -= 1
            else:
                break
        if pos >= k:
            continue
        last = m if m < k else k - 1
        while last > pos:
            order[last] = order[last - 1]
            last -= 1
        order[pos] = i
        if m < k:
            m += 1
    total = 0.0
    for a in range(m):
        total += eff[order[a]]
    return total


@nb.njit(cache=True)
def cost_swapped(k, c_f, all_obj, all_e, all_h, cc_obj, cc_e, cc_h, n_cc, obj_slot, drop, add, add_e, add_h):
    """cost(S - drop + add) (drop/add -1: none) from the k nearest objects and the k + 1 nearest
    cached objects of the request."""
    n_max = n_cc + k + 1
    eff = np.empty(n_max, np.float64)
    e = np.empty(n_max, np.float64)
    j = np.empty(n_max, np.int64)
    n = 0
    for c in range(n_cc):
        if cc_obj[c] != drop:
            eff[n], e[n], j[n] = cc_h[c], cc_e[c], cc_obj[c]
            n += 1
    if add >= 0:
        eff[n], e[n], j[n] = add_h, add_e, add
        n += 1
    for c in range(k):
        o = all_obj[c]
        if o == add or (obj_slot[o] >= 0 and o != drop):
            continue
        eff[n], e[n], j[n] = all_h[c] + c_f, all_e[c], o
        n += 1
    return k_cost(k, eff, e, j, n)


@nb.njit(UPDATE_SIG, cache=True)
def duel_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
                q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    """fpar = [beta, delta, tau, max_duels, interference, nearest]; fstate: max_duels x D_FIELDS."""
    k = int(env[ENV_K])
    c_f = env[ENV_CF]
    metric = int(env[ENV_METRIC])
    capacity = slot_obj.shape[0]
    if cstate[N_FREE] > 0:
        for a in range(ans_obj.shape[0]):
            if cstate[N_FREE] > 0 and not ans_local[a]:
                cache_insert(ans_obj[a], t, slot_obj, obj_slot, slot_req, free, cstate)
        o = all_obj[0]
        if fpar[P_NEAREST] != 0.0 and cstate[N_FREE] > 0 and obj_slot[o] < 0:
            cache_insert(o, t, slot_obj, obj_slot, slot_req, free, cstate)
        return
    n_duels = int(fpar[P_MAX])
    base = cost_swapped(k, c_f, all_obj, all_e, all_h, cc_obj, cc_e, cc_h, n_cc, obj_slot, -1, -1, 0.0, 0.0)
    for i in range(n_duels):
        r = i * D_FIELDS
        if fstate[r + D_ON] == 0.0 or t <= fstate[r + D_START]:
            continue
        c = int(fstate[r + D_C])
        d = int(fstate[r + D_D])
        c_e = exact_key(q, items, bias, c, metric)
        c_h = object_cost(q, items, bias, c, env)
        without = cost_swapped(k, c_f, all_obj, all_e, all_h, cc_obj, cc_e, cc_h, n_cc, obj_slot, d, -1, 0.0, 0.0)
        swapped = cost_swapped(k, c_f, all_obj, all_e, all_h, cc_obj, cc_e, cc_h, n_cc, obj_slot, d, c, c_e, c_h)
        fstate[r + D_SD] += without - base
        fstate[r + D_SC] += without - swapped
    for i in range(n_duels):
        r = i * D_FIELDS
        if fstate[r + D_ON] == 0.0 or t <= fstate[r + D_START]:
            continue
        if fstate[r + D_SC] - fstate[r + D_SD] >= fpar[P_DELTA]:
            cache_evict(obj_slot[int(fstate[r + D_D])], slot_obj, obj_slot, slot_req, free, cstate)
            cache_insert(int(fstate[r + D_C]), t, slot_obj, obj_slot, slot_req, free, cstate)
            fstate[r + D_ON] = 0.0
        elif t - fstate[r + D_START] >= fpar[P_TAU]:
            fstate[r + D_ON] = 0.0
    c = -1
    if fpar[P_NEAREST] != 0.0:
        c = all_obj[0]
    else:
        for a in range(ans_obj.shape[0]):
            if not ans_local[a]:
                c = ans_obj[a]
                break
    if c < 0 or obj_slot[c] >= 0:
        return
    free_duel = -1
    r2 = fpar[P_INTERFERENCE] * fpar[P_INTERFERENCE]
    for i in range(n_duels):
        r = i * D_FIELDS
        if fstate[r + D_ON] == 0.0:
            if free_duel < 0:
                free_duel = i
            continue
        for f in (D_C, D_D):
            o = int(fstate[r + f])
            if o == c or lane_sqdist(items[c], items[o]) <= r2:
                return
    if free_duel < 0:
        return
    if uniform(key, t, 0) < fpar[P_BETA]:
        d = -1
        best = 0.0
        for s in range(capacity):
            o = slot_obj[s]
            e = exact_key(items[c], items, bias, o, metric)
            if d < 0 or e < best or (e == best and o < d):
                d, best = o, e
    else:
        d = slot_obj[min(capacity - 1, int(uniform(key, t, 1) * capacity))]
    for i in range(n_duels):
        r = i * D_FIELDS
        if fstate[r + D_ON] != 0.0 and (int(fstate[r + D_C]) == d or int(fstate[r + D_D]) == d):
            return
    r = free_duel * D_FIELDS
    fstate[r + D_ON] = 1.0
    fstate[r + D_C] = c
    fstate[r + D_D] = d
    fstate[r + D_START] = t
    fstate[r + D_SC] = 0.0
    fstate[r + D_SD] = 0.0


class ObjectDuel(ObjectPolicy):
    """DUEL: a fetched object challenges a cached defender; it replaces it when its saving leads."""

    name = "duel"
    summary = "DUEL: challenger vs defender saving counters; replace when ahead by delta, duel ends after tau"
    params = (
        Param("beta", float, 0.8, "probability that the defender is the challenger's nearest cached object "
              "(else uniform)"),  # fmt: skip
        Param("delta", float, 2.0, "lead (cost units) of the challenger's saving needed to replace the defender (> 0)"),
        Param("tau", int, 500, "requests a duel lasts at most (>= 1)"),
        Param("max_duels", int, 10, "duels running at the same time (>= 1)"),
        Param("interference", float, 0.0, "no new duel within this Euclidean distance of a running duel's objects"),
        Param("challenger", str, "nearest", "nearest: the server's nearest object when uncached; fetched: the "
              "answer's best fetched object", choices=("nearest", "fetched")),  # fmt: skip
    )

    def check(self) -> None:
        v = self.values
        if not 0.0 <= v["beta"] <= 1.0:
            raise UserError(f"duel beta must be in [0, 1], got {v['beta']}")
        if not v["delta"] > 0.0:
            raise UserError(f"duel delta must be > 0, got {v['delta']}")
        if v["tau"] < 1 or v["max_duels"] < 1:
            raise UserError("duel tau and max_duels must be >= 1")
        if v["interference"] < 0.0:
            raise UserError(f"duel interference must be >= 0, got {v['interference']}")

    @classmethod
    def kernel(cls):
        return duel_update

    def candidates(self) -> tuple[int, int]:
        return self.k, min(self.k + 1, self.capacity)

    def parameters(self) -> np.ndarray:
        v = self.values
        return np.array([v["beta"], v["delta"], v["tau"], v["max_duels"], v["interference"],
                         v["challenger"] == "nearest"], np.float64)  # fmt: skip

    def new_state(self):
        meta, glob, _ = super().new_state()
        return meta, glob, np.zeros(D_FIELDS * self.values["max_duels"], np.float64)
