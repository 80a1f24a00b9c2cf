"""RND-LRU: SIM-LRU whose hits are accepted with probability p(d(x, y*)), p non-increasing.

A rejected hit is a miss: x is inserted (evicting the LRU entry if full) and y* is not refreshed.
Acceptance functions, with ``s`` = ``scale``:

* ``step``:   p(d) = 1 if d <= s else 0 (with s = r this is exactly SIM-LRU);
* ``linear``: p(d) = max(0, 1 - d / s);
* ``exp``:    p(d) = exp(-d / s).

The default is the ``linear`` ramp, and the default scale matches the radius r by *reach*: every
default p has integral r over d >= 0, like SIM-LRU's step at r (s = r for step and exp, s = 2 r
for linear). So the defaults show RND-LRU's character (near hits almost always accepted, hits up
to 2 r sometimes) instead of the step, which is exactly SIM-LRU. For s = 0 every function is 1 at
d = 0 and 0 elsewhere. The draw is uniform number 0 of the request; the hit is accepted iff
u < p(d).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.kernels.distances import within_radius
from simcache.cache.kernels.signatures import DECIDE_SIG, HIT, INSERT, REFRESH
from simcache.cache.policies.base import Example, Kernels, Param, Policy
from simcache.cache.policies.lru import list_push_front, list_tail, list_unlink, lru_touch

ACCEPTANCE = {"step": 0, "linear": 1, "exp": 2}


@nb.njit(cache=True)
def acceptance_probability(d, kind, scale):
    """p(d) for the acceptance function ``kind`` (0 step, 1 linear, 2 exp) with scale ``scale``."""
    if kind == 0 or scale <= 0.0:
        return 1.0 if within_radius(d, scale) else 0.0
    if kind == 1:
        p = 1.0 - d / scale
        return p if p > 0.0 else 0.0
    return math.exp(-d / scale)


@nb.njit(DECIDE_SIG, cache=True)
def decide_rnd(has1, d1, has2, d2, u0, u1, fpar):
    """Accept the hit on y* with probability p(d1); otherwise insert x."""
    if has1 and u0 < acceptance_probability(d1, int(fpar[1]), fpar[2]):
        return HIT | REFRESH
    return INSERT


class RndLRU(Policy):
    """RND-LRU: LRU order; a hit at distance d is accepted with probability p(d)."""

    name = "rnd-lru"
    summary = "SIM-LRU with randomised acceptance p(d) of approximate hits"
    params = (
        Param("acceptance", str, "linear", "acceptance function p(d)", tuple(ACCEPTANCE)),
        Param("scale", float, None, "scale s of p(d) (default: 2r for linear, r for step and exp: the reach of "
              "SIM-LRU at r)"),
    )
    defaults_note = ("linear ramp p(d) = max(0, 1 - d / 2r): the same reach as SIM-LRU's step at r (both integrate "
                     "to r), so near hits are nearly always accepted and far ones sometimes; acceptance=step is "
                     "exactly SIM-LRU")
    examples = (
        Example(),
        Example({"acceptance": "step"}, hard_radius=True),
        Example({"acceptance": "linear", "scale": 1.5}),
        Example({"acceptance": "exp"}),
    )
    meta_fields = 2
    glob_size = 2

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_rnd, lru_touch, list_push_front, list_unlink, list_tail)

    def rule_parameters(self) -> np.ndarray:
        kind = self.values["acceptance"]
        if self.values["scale"] is not None:
            scale = float(self.values["scale"])
        else:
            scale = 2.0 * self.radius if kind == "linear" else self.radius
        if not scale >= 0:
            raise UserError(f"rnd-lru scale must be >= 0, got {scale}")
        return np.array([self.radius, ACCEPTANCE[kind], scale], dtype=np.float64)
