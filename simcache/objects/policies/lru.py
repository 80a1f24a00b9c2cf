"""LRU over objects: every object of the answer is used; local ones are refreshed, fetched ones
inserted (evicting the least recently used object when full).

The answer is processed in answer order (best first): a local object moves to the MRU end, a
fetched object is inserted at the MRU end. So after a request its worst answer object is the
most recently used, and with C < k the objects inserted first may be evicted by later ones.
"""

from __future__ import annotations

import numba as nb

from simcache.objects.kernels import UPDATE_SIG
from simcache.objects.policies.base import ObjectPolicy
from simcache.objects.policies.orders import lru_insert, lru_touch


@nb.njit(cache=True)
def use_answer_lru(t, ans_obj, slot_obj, obj_slot, slot_req, free, cstate, meta, glob):
    """Refresh the local objects of the answer and insert the fetched ones, in answer order."""
    for a in range(ans_obj.shape[0]):
        o = ans_obj[a]
        s = obj_slot[o]
        if s >= 0:
            lru_touch(s, meta, glob)
        else:
            lru_insert(o, t, slot_obj, obj_slot, slot_req, free, cstate, meta, glob)


@nb.njit(UPDATE_SIG, cache=True)
def lru_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
               q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    use_answer_lru(t, ans_obj, slot_obj, obj_slot, slot_req, free, cstate, meta, glob)


class ObjectLRU(ObjectPolicy):
    """LRU over objects: use the whole answer, insert what was fetched, evict the LRU object."""

    name = "obj-lru"
    summary = "LRU over objects: refresh the answer's local objects, insert its fetched ones"
    meta_fields = 2
    glob_size = 2

    @classmethod
    def kernel(cls):
        return lru_update
