"""qLRU-ΔC (object-cache view; Garetto, Leonardi, Neglia): LRU order with probabilistic refresh
and insertion driven by the cost model.

With h the cost model's approximation cost, C_r its retrieval cost and r the radius, an entry at
distance d is *usable* iff d <= r (use r = inf for a pure cost model), and the cost of serving x
from a set S is C(x, S) = min(C_r, h(d(x, y*))) when y* is usable, else C_r. For a request x:

* it is a **hit** (served by y*) iff y* is usable and h(d(x, y*)) < C_r;
* on a hit, y* is refreshed (moved to the MRU end) with probability
  (C(x, S \\ {y*}) - C(x, S)) / C_r (uniform draw 0), where C(x, S \\ {y*}) uses the second
  nearest entry;
* x is inserted (evicting the LRU entry when full) with probability q * C(x, S) / C_r (uniform
  draw 1); on a pure miss that is q.

With q = 1, cost ``zero`` and C_r = 1 a miss always inserts and a hit never does, as in SIM-LRU;
a hit refreshes y* only when no *second* cached entry is within r, so the two policies agree
exactly whenever no request has two cached entries within r (e.g. r = 0 with distinct vectors).
The defaults (q = 0.5 and, when the replay gives no cost model, h(d) = C_r d / r) are chosen so
that the policy does not collapse onto SIM-LRU (:meth:`QLRUDC.default_cost`).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.kernels.distances import within_radius
from simcache.cache.kernels.signatures import DECIDE_SIG, HIT, INSERT, REFRESH
from simcache.cache.costs import CostModel
from simcache.cache.policies.base import Example, Kernels, Param, Policy
from simcache.cache.policies.lru import list_push_front, list_tail, list_unlink, lru_touch


@nb.njit(cache=True)
def approx_cost(d, kind, scale, exponent):
    """h(d) of :class:`~simcache.cache.costs.CostModel` (kind 0 zero, 1 linear, 2 power)."""
    if kind == 0:
        return 0.0
    if kind == 1:
        return scale * d
    return scale * d**exponent


@nb.njit(cache=True)
def service_cost(has, d, r, c_r, kind, scale, exponent):
    """C(x, S) given the nearest usable candidate (min(C_r, h(d)) if d <= r, else C_r)."""
    if has and within_radius(d, r):
        h = approx_cost(d, kind, scale, exponent)
        return h if h < c_r else c_r
    return c_r


@nb.njit(DECIDE_SIG, cache=True)
def decide_qlru(has1, d1, has2, d2, u0, u1, fpar):
    """fpar = [r, q, C_r, cost kind, scale, exponent]."""
    r, q, c_r = fpar[0], fpar[1], fpar[2]
    kind = int(fpar[3])
    c1 = service_cost(has1, d1, r, c_r, kind, fpar[4], fpar[5])
    flags = 0
    if c1 < c_r:
        flags |= HIT
        c2 = service_cost(has2, d2, r, c_r, kind, fpar[4], fpar[5])
        if u0 < (c2 - c1) / c_r:
            flags |= REFRESH
    if u1 < q * c1 / c_r:
        flags |= INSERT
    return flags


class QLRUDC(Policy):
    """qLRU-ΔC: cost-aware probabilistic refresh and insertion over an LRU order."""

    name = "qlru-dc"
    summary = "qLRU-ΔC: refresh with prob. ΔC/C_r, insert with prob. q*C(x,S)/C_r (uses the cost model)"
    params = (Param("q", float, 0.5, "insertion probability on a pure miss (0 < q <= 1)"),)
    defaults_note = ("q = 0.5 and, without --cost, h(d) = C_r d / r (a hit at the radius costs a miss): hits "
                     "far from y* refresh it less and may insert; q = 1 with --cost zero is SIM-LRU up to refreshes")
    examples = (
        Example(),
        Example({"q": 1.0}, CostModel(), hard_radius=True),
        Example({"q": 0.5}, CostModel("linear", retrieval_cost=1.0, scale=0.8)),
        Example({"q": 0.3}, CostModel("power", retrieval_cost=2.0, scale=1.0, exponent=2.0)),
    )
    needs_second = True
    meta_fields = 2
    glob_size = 2

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_qlru, lru_touch, list_push_front, list_unlink, list_tail)

    @classmethod
    def default_cost(cls, radius: float) -> CostModel:
        """Linear h(d) = C_r d / r: a hit at the radius costs as much as a miss (r = inf: h(d) = d;
        r = 0: zero cost). With q = 1 and a zero cost the policy is SIM-LRU up to refreshes; these
        defaults (with q = 0.5) show its character: far hits refresh less and may insert."""
        if radius == 0:
            return CostModel()
        return CostModel("linear", retrieval_cost=1.0, scale=1.0 if math.isinf(radius) else 1.0 / radius)

    def rule_parameters(self) -> np.ndarray:
        q = float(self.values["q"])
        if not 0.0 < q <= 1.0:
            raise UserError(f"qlru-dc q must be in (0, 1], got {q}")
        c = self.cost
        return np.array([self.radius, q, c.retrieval_cost, c.code, c.scale, c.exponent], dtype=np.float64)

    def describe(self) -> dict:
        return {**self.values, "cost": self.cost.to_dict()}
