"""LFU over objects: an object's count starts at 1 when inserted and grows by 1 each time it is
used locally in an answer; it is forgotten on eviction. The victim is the object of smallest
count; among equal counts the one used (or inserted) longest ago, i.e. LRU within a count
(answer objects of one request are used in answer order). The binary min-heap over slots, O(log
C), is the query-cache LFU's (:mod:`simcache.cache.policies.lfu`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from simcache.cache.policies.lfu import FREQ, HEAP, LAST, POS, SIZE
from simcache.cache.policies.lfu import heap_sift_down as _sift_down
from simcache.cache.policies.lfu import heap_sift_up as _sift_up
from simcache.objects.kernels import N_FREE, UPDATE_SIG, cache_evict, cache_insert
from simcache.objects.policies.base import ObjectPolicy

CLOCK = 1  # glob (SIZE, the heap's size, is the query-cache LFU's)


@nb.njit(cache=True)
def _tick(glob):
    glob[CLOCK] += 1
    return glob[CLOCK]


@nb.njit(UPDATE_SIG, cache=True)
def lfu_update(t, key, ans_obj, ans_local, ans_h, all_obj, all_e, all_h, n_all, cc_obj, cc_e, cc_h, n_cc,
               q, items, bias, slot_obj, obj_slot, slot_req, free, cstate, meta, glob, fstate, fpar, env):  # fmt: skip
    for a in range(ans_obj.shape[0]):
        o = ans_obj[a]
        s = obj_slot[o]
        if s >= 0:
            meta[s, FREQ] += 1
            meta[s, LAST] = _tick(glob)
            _sift_down(meta, meta[s, POS], glob[SIZE])
            continue
        if cstate[N_FREE] == 0:
            victim = meta[0, HEAP]
            size = glob[SIZE] - 1
            glob[SIZE] = size
            if size > 0:
                meta[0, HEAP] = meta[size, HEAP]
                meta[meta[0, HEAP], POS] = 0
                _sift_down(meta, 0, size)
            cache_evict(victim, slot_obj, obj_slot, slot_req, free, cstate)
        s = cache_insert(o, t, slot_obj, obj_slot, slot_req, free, cstate)
        meta[s, FREQ] = 1
        meta[s, LAST] = _tick(glob)
        size = glob[SIZE]
        meta[size, HEAP] = s
        meta[s, POS] = size
        glob[SIZE] = size + 1
        _sift_up(meta, size)


class ObjectLFU(ObjectPolicy):
    """LFU over objects (in-cache counts; LRU among equal counts)."""

    name = "obj-lfu"
    summary = "LFU over objects: evict the least used object (in-cache counts, LRU among ties)"
    meta_fields = 4
    glob_size = 2

    @classmethod
    def kernel(cls):
        return lfu_update

    def new_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        meta, glob, fstate = super().new_state()
        glob[SIZE] = 0
        glob[CLOCK] = 0
        return meta, glob, fstate
