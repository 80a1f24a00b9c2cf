"""What happened to a request: the one definition of the outcome codes (log, kernels, accounting)."""

from __future__ import annotations

from enum import IntEnum


class Outcome(IntEnum):
    """Per-request outcome code, stored as int8 in :class:`~simcache.cache.log.ReplayLog`."""

    MISS = 0  # fetched from the server
    EXACT_HIT = 1  # served by a cached entry at distance 0
    APPROX_HIT = 2  # served by a cached entry at distance 0 < d (within the policy's rule)


MISS, EXACT_HIT, APPROX_HIT = int(Outcome.MISS), int(Outcome.EXACT_HIT), int(Outcome.APPROX_HIT)
