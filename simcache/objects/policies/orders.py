"""Eviction orders over slots shared by several object policies: an LRU list and an LFU heap.

Both keep their data in the policy's ``meta`` (one row per slot) and ``glob`` arrays.
"""

from __future__ import annotations

import numba as nb

from simcache.objects.kernels import N_FREE, cache_evict, cache_insert

# LRU list: meta columns and glob entries
PREV, NEXT = 0, 1
HEAD, TAIL = 0, 1  # most and least recently used slot (-1 when empty)


@nb.njit(cache=True)
def lru_push_front(slot, meta, glob):
    """Link ``slot`` at the most-recently-used end."""
    head = glob[HEAD]
    meta[slot, PREV] = -1
    meta[slot, NEXT] = head
    if head >= 0:
        meta[head, PREV] = slot
    else:
        glob[TAIL] = slot
    glob[HEAD] = slot


@nb.njit(cache=True)
def lru_unlink(slot, meta, glob):
    """Unlink ``slot`` from the list."""
    prev = meta[slot, PREV]
    nxt = meta[slot, NEXT]
    if prev >= 0:
        meta[prev, NEXT] = nxt
    else:
        glob[HEAD] = nxt
    if nxt >= 0:
        meta[nxt, PREV] = prev
    else:
        glob[TAIL] = prev


@nb.njit(cache=True)
def lru_touch(slot, meta, glob):
    """Move ``slot`` to the most-recently-used end."""
    if glob[HEAD] != slot:
        lru_unlink(slot, meta, glob)
        lru_push_front(slot, meta, glob)


@nb.njit(cache=True)
def lru_insert(obj, t, slot_obj, obj_slot, slot_req, free, cstate, meta, glob):
    """Insert ``obj`` at the MRU end, evicting the LRU object first when the cache is full."""
    if cstate[N_FREE] == 0:
        victim = glob[TAIL]
        lru_unlink(victim, meta, glob)
        cache_evict(victim, slot_obj, obj_slot, slot_req, free, cstate)
    s = cache_insert(obj, t, slot_obj, obj_slot, slot_req, free, cstate)
    lru_push_front(s, meta, glob)
    return s
