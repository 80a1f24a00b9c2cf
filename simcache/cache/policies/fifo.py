"""FIFO eviction order: the LRU list without refresh on hit (SIM-FIFO for r > 0)."""

from __future__ import annotations

import numba as nb

from simcache.cache.kernels.signatures import TOUCH_SIG
from simcache.cache.policies.base import Kernels, Policy, decide_radius
from simcache.cache.policies.lru import list_push_front, list_tail, list_unlink


@nb.njit(TOUCH_SIG, cache=True)
def no_touch(slot, t, meta, fmeta, glob):
    """Hits do not change the order."""


class FIFO(Policy):
    """SIM-FIFO: radius hit rule, evict the oldest inserted entry."""

    name = "fifo"
    summary = "first in, first out (SIM-FIFO for r > 0)"
    meta_fields = 2
    glob_size = 2

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_radius, no_touch, list_push_front, list_unlink, list_tail)
