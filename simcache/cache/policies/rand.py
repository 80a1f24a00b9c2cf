"""RANDOM eviction: the victim is a uniformly drawn slot (seeded draw number 2 of the request).

Slots are numbered 0..C-1 in the order the cache filled up, and a new entry takes its victim's
slot; the victim is slot ``floor(u * C)``.
"""

from __future__ import annotations

import numba as nb

from simcache.cache.kernels.signatures import INSERT_SIG, REMOVE_SIG, VICTIM_SIG
from simcache.cache.policies.base import Kernels, Policy, decide_radius
from simcache.cache.policies.fifo import no_touch


@nb.njit(INSERT_SIG, cache=True)
def no_insert(slot, t, meta, fmeta, glob):
    """Random eviction keeps no order."""


@nb.njit(REMOVE_SIG, cache=True)
def no_remove(slot, meta, fmeta, glob):
    """Random eviction keeps no order."""


@nb.njit(VICTIM_SIG, cache=True)
def random_victim(t, u, meta, fmeta, glob):
    capacity = meta.shape[0]
    s = int(u * capacity)
    return s if s < capacity else capacity - 1


class Random(Policy):
    """SIM-RANDOM: radius hit rule; evict a uniformly random entry."""

    name = "random"
    summary = "uniformly random victim (seeded)"

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_radius, no_touch, no_insert, no_remove, random_victim)
