"""Eviction orders over slots shared by several object policies: an LRU list and an LFU heap.

Both keep their data in the policy's ``meta`` (one row per slot) and ``glob`` arrays.
"""

from __future__ import annotations

import numba as nb

from simcache.cache.policies.lru import HEAD, TAIL, link_front, unlink
from simcache.objects.kernels import N_FREE, cache_evict, cache_insert

# the LRU list is the query caches' (meta columns PREV, NEXT; glob HEAD, TAIL)


@nb.njit(cache=True)
def lru_touch(slot, meta, glob):
    """Move ``slot`` to the most-recently-used end."""
    if glob[HEAD] != slot:
        unlink(slot, meta, glob)
        link_front(slot, meta, glob)


@nb.njit(cache=True)
def lru_insert(obj, t, slot_obj, obj_slot, slot_req, free, cstate, meta, glob):
    """Insert ``obj`` at the MRU end, evicting the LRU object first when the cache is full."""
    if cstate[N_FREE] == 0:
        victim = glob[TAIL]
        unlink(victim, meta, glob)
        cache_evict(victim, slot_obj, obj_slot, slot_req, free, cstate)
    s = cache_insert(obj, t, slot_obj, obj_slot, slot_req, free, cstate)
    link_front(s, meta, glob)
    return s
