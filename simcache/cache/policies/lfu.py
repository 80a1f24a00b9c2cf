"""LFU eviction order (binary min-heap in arrays, O(log C)) and the SIM-LFU policy.

An entry's frequency starts at 1 on insertion and grows by 1 on every hit it serves; it is
forgotten on eviction. **Tie-break**: among entries of equal frequency the one whose last access
(insertion or hit) is oldest is evicted, i.e. LRU within a frequency class. This is what
libCacheSim's ``LFU`` does (its per-frequency lists are appended on access and evicted from the
front), and the r = 0 tests check it hit for hit.
"""

from __future__ import annotations

import numba as nb

from simcache.cache.kernels.signatures import INSERT_SIG, REMOVE_SIG, TOUCH_SIG, VICTIM_SIG
from simcache.cache.policies.base import Kernels, Policy, decide_radius

FREQ, LAST, POS, HEAP = 0, 1, 2, 3  # meta columns; HEAP is the heap array itself (by position)
SIZE = 0  # glob


@nb.njit(cache=True, inline="always")
def _less(meta, a, b):
    return meta[a, FREQ] < meta[b, FREQ] or (meta[a, FREQ] == meta[b, FREQ] and meta[a, LAST] < meta[b, LAST])


@nb.njit(cache=True)
def heap_sift_up(meta, pos):
    """Restore the heap order (by :func:`_less`) from position ``pos`` towards the root."""
    s = meta[pos, HEAP]
    while pos > 0:
        parent = (pos - 1) // 2
        ps = meta[parent, HEAP]
        if not _less(meta, s, ps):
            break
        meta[pos, HEAP] = ps
        meta[ps, POS] = pos
        pos = parent
    meta[pos, HEAP] = s
    meta[s, POS] = pos


@nb.njit(cache=True)
def heap_sift_down(meta, pos, size):
    """Restore the heap order (by :func:`_less`) from position ``pos`` towards the leaves."""
    s = meta[pos, HEAP]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        c = meta[child, HEAP]
        if child + 1 < size:
            c2 = meta[child + 1, HEAP]
            if _less(meta, c2, c):
                child += 1
                c = c2
        if not _less(meta, c, s):
            break
        meta[pos, HEAP] = c
        meta[c, POS] = pos
        pos = child
    meta[pos, HEAP] = s
    meta[s, POS] = pos


@nb.njit(INSERT_SIG, cache=True)
def lfu_insert(slot, t, meta, fmeta, glob):
    meta[slot, FREQ] = 1
    meta[slot, LAST] = t
    size = glob[SIZE]
    meta[size, HEAP] = slot
    meta[slot, POS] = size
    glob[SIZE] = size + 1
    heap_sift_up(meta, size)


@nb.njit(TOUCH_SIG, cache=True)
def lfu_touch(slot, t, meta, fmeta, glob):
    meta[slot, FREQ] += 1
    meta[slot, LAST] = t
    heap_sift_down(meta, meta[slot, POS], glob[SIZE])


@nb.njit(REMOVE_SIG, cache=True)
def lfu_remove(slot, meta, fmeta, glob):
    pos = meta[slot, POS]
    size = glob[SIZE] - 1
    glob[SIZE] = size
    if pos != size:
        last = meta[size, HEAP]
        meta[pos, HEAP] = last
        meta[last, POS] = pos
        heap_sift_down(meta, pos, size)
        heap_sift_up(meta, meta[last, POS])


@nb.njit(VICTIM_SIG, cache=True)
def lfu_victim(t, u, meta, fmeta, glob):
    return meta[0, HEAP]


class LFU(Policy):
    """SIM-LFU: radius hit rule; evict the least frequently used entry (ties: least recently used)."""

    name = "lfu"
    summary = "least frequently used, ties by least recent access (SIM-LFU for r > 0)"
    meta_fields = 4
    glob_size = 1

    def init_state(self, meta, glob) -> None:
        glob[SIZE] = 0

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_radius, lfu_touch, lfu_insert, lfu_remove, lfu_victim)
