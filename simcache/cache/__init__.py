"""Similarity-cache engine: policies, cost models and ``replay``.

Public API::

    from simcache.cache import replay, ReplayLog, CostModel, POLICIES
    log = replay(vectors, policy="lru", capacity=1000, radius=0.5, metric="l2")

See :mod:`simcache.cache.kernels` for the distance, tie-break and hit (``d <= r``) rules, and
:mod:`simcache.cache.engine` for the two engines (``block``, the fast default, and ``plain``).
"""

from simcache.cache.costs import COST_KINDS, CostModel
from simcache.cache.engine import ENGINES, replay
from simcache.cache.log import APPROX_HIT, EXACT_HIT, MISS, ReplayLog
from simcache.cache.policies import POLICIES, Param, Policy
from simcache.cache.search import DEVICES, INDEXES

__all__ = [
    "APPROX_HIT",
    "COST_KINDS",
    "DEVICES",
    "ENGINES",
    "EXACT_HIT",
    "INDEXES",
    "MISS",
    "POLICIES",
    "CostModel",
    "Param",
    "Policy",
    "ReplayLog",
    "replay",
]
