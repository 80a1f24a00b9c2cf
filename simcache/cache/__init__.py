"""Similarity-cache engine (query caches): configuration, policies, cost models and ``replay``.

Public API::

    from simcache.cache import replay, ReplayConfig, ReplayLog, CostModel, POLICIES
    log = replay(vectors, ReplayConfig(policy="lru", capacity=1000, radius=0.5, metric="l2"))
    log = replay(vectors, policy="lru", capacity=1000, radius=0.5)   # the same, as keywords

Importing this package is cheap: the compiled engine (numba, FAISS) loads on first use of
``replay``, ``POLICIES`` or the kernels. See :mod:`simcache.cache.kernels` for the distance, tie
and hit (``d <= r``) rules, and :mod:`simcache.cache.engine` for the two engines (``block``, the
fast default, and ``plain``).
"""

from __future__ import annotations

import importlib
from typing import Any

from simcache.cache.config import ReplayConfig
from simcache.cache.costs import CostModel
from simcache.cache.log import ReplayLog
from simcache.cache.options import COST_KINDS, DEVICES, ENGINES, INDEXES, METRICS
from simcache.cache.outcome import APPROX_HIT, EXACT_HIT, MISS, Outcome

#: names loaded on first use, and the module each comes from
_LAZY = {
    "replay": "simcache.cache.engine",
    "POLICIES": "simcache.cache.policies",
    "Param": "simcache.cache.policies.base",
    "Policy": "simcache.cache.policies.base",
    "Example": "simcache.cache.policies.base",
}
_LAZY_MODULES = ("engine", "kernels", "policies", "search")

__all__ = [
    "APPROX_HIT",
    "COST_KINDS",
    "DEVICES",
    "ENGINES",
    "EXACT_HIT",
    "INDEXES",
    "METRICS",
    "MISS",
    "POLICIES",
    "CostModel",
    "Example",
    "Outcome",
    "Param",
    "Policy",
    "ReplayConfig",
    "ReplayLog",
    "replay",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"simcache.cache.{name}")
    else:
        raise AttributeError(f"module 'simcache.cache' has no attribute {name!r}")
    globals()[name] = value
    return value
