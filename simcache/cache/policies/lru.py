"""LRU eviction order (a doubly-linked list in arrays, O(1) per operation) and the SIM-LRU policy.

With the radius rule: a request within ``r`` of its nearest entry y* is a hit and y* moves to the
most-recently-used position; otherwise the request is inserted at the MRU position and the least
recently used entry is evicted when the cache is full. At r = 0 with distinct vectors per object
this is exact LRU (checked against libCacheSim's ``LRU``).
"""

from __future__ import annotations

import numba as nb

from simcache.cache.kernels.signatures import INSERT_SIG, REMOVE_SIG, TOUCH_SIG, VICTIM_SIG
from simcache.cache.policies.base import Kernels, Policy, decide_radius

PREV, NEXT = 0, 1  # meta columns
HEAD, TAIL = 0, 1  # glob: most and least recently used slot (-1 when empty)


@nb.njit(cache=True, inline="always")
def link_front(slot, meta, glob):
    """Link ``slot`` at the head (MRU end) of the list kept in ``meta`` (PREV, NEXT) and ``glob``
    (HEAD, TAIL); shared with the object caches' LRU order."""
    head = glob[HEAD]
    meta[slot, PREV] = -1
    meta[slot, NEXT] = head
    if head >= 0:
        meta[head, PREV] = slot
    else:
        glob[TAIL] = slot
    glob[HEAD] = slot


@nb.njit(cache=True, inline="always")
def unlink(slot, meta, glob):
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


@nb.njit(INSERT_SIG, cache=True)
def list_push_front(slot, t, meta, fmeta, glob):
    """Link ``slot`` at the head (MRU end)."""
    link_front(slot, meta, glob)


@nb.njit(REMOVE_SIG, cache=True)
def list_unlink(slot, meta, fmeta, glob):
    """Unlink ``slot`` from the list."""
    unlink(slot, meta, glob)


@nb.njit(TOUCH_SIG, cache=True)
def lru_touch(slot, t, meta, fmeta, glob):
    """Move ``slot`` to the MRU end."""
    if glob[HEAD] != slot:
        unlink(slot, meta, glob)
        link_front(slot, meta, glob)


@nb.njit(VICTIM_SIG, cache=True)
def list_tail(t, u, meta, fmeta, glob):
    """The entry at the LRU end."""
    return glob[TAIL]


class LRU(Policy):
    """SIM-LRU: radius hit rule, refresh on hit, evict the least recently used entry."""

    name = "lru"
    summary = "least recently used (SIM-LRU for r > 0)"
    meta_fields = 2
    glob_size = 2

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_radius, lru_touch, list_push_front, list_unlink, list_tail)
