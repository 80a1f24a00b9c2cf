"""qLRU-ΔC in object form (Garetto, Leonardi, Neglia, INFOCOM 2020), for k = 1.

With k = 1 the cost of serving x from cache S is C(x, S) = min(min_{y in S} c_d(x, y),
c_d(x, o*) + c_f), o* the server's nearest object. For each request:

* if the answer y* is local, it is refreshed (moved to the MRU end) with probability
  (C(x, S \\ {y*}) - C(x, S)) / c_f (draw 0): how much the cache would lose without y*;
* o* is inserted (evicting the LRU object when full) with probability
  q * (C(x, S) - C(x, S + {o*})) / c_f (draw 1): how much it would gain; on a pure miss
  (answer fetched) that is q, and 0 when o* is cached.

When the request is itself a catalogue object (c_d(x, o*) = 0) this is the paper's rule: refresh
with probability ΔC / C_r, insert x with probability q C(x, S) / C_r, with C_r = c_f. The default
q = 0.2 makes insertion selective (q = 1 inserts on every pure miss, like LRU).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.policies.base import Param
from simcache.objects.kernels import ENV_CF, UPDATE_SIG, uniform
from simcache.objects.policies.base import ObjectPolicy
from simcache.objects.policies.orders import lru_insert, lru_touch


@nb.njit(UPDATE_SIG, cache=True)
def qlru_dc_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
                   q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    """fpar = [q]."""
    c_f = env[ENV_CF]
    o_best = all_obj[0]
    h_best = all_h[0]
    if ans_local[0]:
        cost = ans_h[0]
        # without y*: the second cached object, or fetching the best object outside S \ {y*}
        # (the server's first object: y* itself, or an uncached one)
        without = h_best + c_f
        if n_cc > 1 and cc_h[1] < without:
            without = cc_h[1]
        if uniform(key, t, 0) < (without - cost) / c_f:
            lru_touch(obj_slot[ans_obj[0]], meta, glob)
    else:
        cost = ans_h[0] + c_f
    if obj_slot[o_best] < 0:
        gain = cost - h_best if cost > h_best else 0.0
        if uniform(key, t, 1) < fpar[0] * gain / c_f:
            lru_insert(o_best, t, slot_obj, obj_slot, slot_req, free, cstate, meta, glob)


class ObjectQLRUDC(ObjectPolicy):
    """qLRU-ΔC for objects (k = 1): cost-driven probabilistic refresh and insertion, LRU order."""

    name = "obj-qlru-dc"
    summary = "qLRU-ΔC for objects (k = 1): refresh w.p. ΔC/c_f, insert the server's object w.p. q*gain/c_f"
    params = (Param("q", float, 0.2, "insertion probability on a pure miss (0 < q <= 1)"),)
    meta_fields = 2
    glob_size = 2

    def check(self) -> None:
        if self.k != 1:
            raise UserError(f"obj-qlru-dc is defined for k = 1 answers, got k = {self.k}")
        q = self.values["q"]
        if not 0.0 < q <= 1.0:
            raise UserError(f"obj-qlru-dc q must be in (0, 1], got {q}")

    @classmethod
    def kernel(cls):
        return qlru_dc_update

    def candidates(self) -> tuple[int, int]:
        return 1, 2

    def parameters(self) -> np.ndarray:
        return np.array([self.values["q"]], np.float64)
