"""Cache policies and their registry.

``POLICIES`` maps the public name (CLI ``--policy``) to the policy class. To add a policy: write one
module with a :class:`~simcache.cache.policies.base.Policy` subclass (its kernels and documented
``params``), add it here, and add one test class; the engines need no change.
"""

from __future__ import annotations

from simcache.cache.policies.base import Kernels, Param, Policy
from simcache.cache.policies.fifo import FIFO
from simcache.cache.policies.lfu import LFU
from simcache.cache.policies.lru import LRU
from simcache.cache.policies.qlru_dc import QLRUDC
from simcache.cache.policies.rand import Random
from simcache.cache.policies.rnd_lru import RndLRU

POLICIES: dict[str, type[Policy]] = {cls.name: cls for cls in (LRU, FIFO, LFU, Random, RndLRU, QLRUDC)}

__all__ = ["POLICIES", "Kernels", "Param", "Policy", "FIFO", "LFU", "LRU", "QLRUDC", "Random", "RndLRU"]
