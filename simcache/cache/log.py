"""The per-request record of a replay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simcache.cache.outcome import MISS


@dataclass
class ReplayLog:
    """What happened to every request of a replay (arrays of length n, in request order).

    ``outcome``: int8 :class:`~simcache.cache.outcome.Outcome` codes: 0 miss, 1 exact hit (served
    entry at distance 0), 2 approximate hit.
    ``served``: int64, id of the cached entry that served the request (for a query cache: the
    request whose insertion created it); -1 on a miss.
    ``distance``: float32, distance to the nearest cached entry at lookup time (+inf when the cache
    was empty); in the replay's metric (Euclidean, not squared; or 1 - cosine similarity).
    ``inserted``: bool, whether the request's vector was inserted into the cache.
    ``evicted``: int64, id of the entry evicted by this request's insertion, -1 if none.
    """

    outcome: np.ndarray
    served: np.ndarray
    distance: np.ndarray
    inserted: np.ndarray
    evicted: np.ndarray
    policy: str = "lru"
    capacity: int = 0
    radius: float = 0.0
    metric: str = "l2"
    params: dict[str, Any] = field(default_factory=dict)
    #: engine diagnostics (engine name, block size, number of exact fallback scans, seconds)
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.outcome.shape[0])

    @property
    def hits(self) -> np.ndarray:
        """Boolean mask of hits (exact or approximate)."""
        return self.outcome != MISS

    @property
    def hit_ratio(self) -> float:
        """Fraction of requests that were hits (0.0 for an empty replay)."""
        return float(self.hits.mean()) if len(self) else 0.0

    @classmethod
    def empty(cls, n: int, **attrs: Any) -> ReplayLog:
        """A log of ``n`` requests initialised to misses with nothing inserted or evicted."""
        return cls(
            outcome=np.zeros(n, dtype=np.int8),
            served=np.full(n, -1, dtype=np.int64),
            distance=np.full(n, np.inf, dtype=np.float32),
            inserted=np.zeros(n, dtype=bool),
            evicted=np.full(n, -1, dtype=np.int64),
            **attrs,
        )

    @classmethod
    def concatenate(cls, parts: list[ReplayLog], **attrs: Any) -> ReplayLog:
        """Join logs of consecutive request ranges into one."""
        if not parts:
            return cls.empty(0, **attrs)
        return cls(
            outcome=np.concatenate([p.outcome for p in parts]),
            served=np.concatenate([p.served for p in parts]),
            distance=np.concatenate([p.distance for p in parts]),
            inserted=np.concatenate([p.inserted for p in parts]),
            evicted=np.concatenate([p.evicted for p in parts]),
            **attrs,
        )
