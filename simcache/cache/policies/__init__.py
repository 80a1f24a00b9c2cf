"""Query-cache policies and their registry.

``POLICIES`` maps the public name (CLI ``--policy``) to the policy class, which is the policy's
whole registry record (summary, parameters, examples, family). To add a policy: write one module
with a :class:`~simcache.cache.policies.base.Policy` subclass (its kernels and documented
``params``), add it to the tuple below, and add one test class (see ``CONTRIBUTING.md``); the
engines, the CLI, the tests' parametrisation and the benchmarks need no change.
"""

from __future__ import annotations

from simcache.cache.policies.base import Example, Kernels, Param, Policy
from simcache.cache.policies.cls_lru import ClsLRU
from simcache.cache.policies.fifo import FIFO
from simcache.cache.policies.lfu import LFU
from simcache.cache.policies.lru import LRU
from simcache.cache.policies.qlru_dc import QLRUDC
from simcache.cache.policies.rand import Random
from simcache.cache.policies.rnd_lru import RndLRU

POLICIES: dict[str, type[Policy]] = {cls.name: cls for cls in (LRU, FIFO, LFU, Random, RndLRU, QLRUDC, ClsLRU)}

__all__ = ["POLICIES", "Example", "Kernels", "Param", "Policy", "ClsLRU", "FIFO", "LFU", "LRU", "QLRUDC", "Random",
           "RndLRU"]  # fmt: skip
