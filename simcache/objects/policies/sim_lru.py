"""SIM-LRU for objects: the request is a *hit* when its nearest cached object y* is close enough;
a hit refreshes the answer's local objects and inserts nothing, a miss behaves as LRU (refresh
the local objects, insert the fetched ones).

"Close enough": ``d(x, y*) <= radius`` (the metric's distance, see :mod:`simcache.objects.metrics`)
when ``radius`` is given; by default (``radius`` unset) ``d(x, y*) <= rho * d(x, o_k)``, with o_k
the server's k-th nearest object: the cache already holds an object at least as close as the
server's worst answer item (``rho = 1``), a scale-free rule that needs no knowledge of the data.
The served answer is the optimal one for the cache (the model's rule); SIM-LRU only decides what
the cache keeps. With k = 1 and requests equal to catalogue objects it makes the same decisions
as the query cache's SIM-LRU (tested).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.policies.base import Param
from simcache.objects.kernels import ENV_EMIN, ENV_K, ENV_METRIC, UPDATE_SIG, key_distance
from simcache.objects.policies.base import ObjectPolicy
from simcache.objects.policies.lru import use_answer_lru
from simcache.objects.policies.orders import lru_touch


@nb.njit(UPDATE_SIG, cache=True)
def sim_lru_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
                   q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    """fpar = [radius (or -1: relative rule), rho]."""
    hit = False
    if n_cc > 0:
        metric = int(env[ENV_METRIC])
        d1 = key_distance(cc_e[0], env[ENV_EMIN], metric)
        if fpar[0] >= 0.0:
            hit = d1 <= fpar[0]
        else:
            k = int(env[ENV_K])
            hit = d1 <= fpar[1] * key_distance(all_e[k - 1], env[ENV_EMIN], metric)
    if hit:
        for a in range(ans_obj.shape[0]):
            s = obj_slot[ans_obj[a]]
            if s >= 0:
                lru_touch(s, meta, glob)
    else:
        use_answer_lru(t, ans_obj, slot_obj, obj_slot, slot_req, free, cstate, meta, glob)


class ObjectSimLRU(ObjectPolicy):
    """SIM-LRU for objects: insert only on a miss (nearest cached object too far)."""

    name = "obj-sim-lru"
    summary = "SIM-LRU for objects: a request near a cached object (hit) inserts nothing"
    params = (
        Param("radius", float, None, "hit iff d(x, y*) <= radius (metric distance); unset: the relative rule with rho"),
        Param("rho", float, 1.0, "relative rule: hit iff d(x, y*) <= rho * d(x, server's k-th object)"),
    )
    meta_fields = 2
    glob_size = 2

    def check(self) -> None:
        r, rho = self.values["radius"], self.values["rho"]
        if r is not None and not r >= 0:
            raise UserError(f"obj-sim-lru radius must be >= 0, got {r}")
        if not rho >= 0:
            raise UserError(f"obj-sim-lru rho must be >= 0, got {rho}")

    @classmethod
    def kernel(cls):
        return sim_lru_update

    def parameters(self) -> np.ndarray:
        r = self.values["radius"]
        return np.array([-1.0 if r is None else r, self.values["rho"]], np.float64)
