"""The per-request record of an object-cache replay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simcache.objects.kernels import FETCHED, PRELOADED


@dataclass
class ObjectReplayLog:
    """What happened to every request (arrays in request order; ``k`` columns per answer).

    ``server``: int32 (n, k), the server's exact k nearest objects (by the metric's order).
    ``served``: int32 (n, k), the answer the cache served, by increasing effective cost.
    ``local``: bool (n, k), whether each served object came from the cache.
    ``origin``: int64 (n, k), for a local object the request whose update inserted it
    (``PRELOADED`` = -2 for content loaded before the replay), ``FETCHED`` = -1 otherwise.
    ``cost``: float64 (n,), the answer's cost; ``cost_empty``: the cost with an empty cache (the
    server's k objects, each fetched); ``cost_opt``: the server's k objects all local (the
    full-catalogue optimum). ``inserted``, ``evicted``: int32 (n,), objects the policy inserted /
    evicted after serving the request.
    """

    server: np.ndarray
    served: np.ndarray
    local: np.ndarray
    origin: np.ndarray
    cost: np.ndarray
    cost_empty: np.ndarray
    cost_opt: np.ndarray
    inserted: np.ndarray
    evicted: np.ndarray
    config: Any = None  # simcache.objects.config.ObjectReplayConfig
    params: dict[str, Any] = field(default_factory=dict)  # the policy's resolved parameters
    stats: dict[str, Any] = field(default_factory=dict)  # engine diagnostics (seconds, blocks, ...)
    fstate: Any = None  # the policy's float state after the last request (e.g. AÇAI's y), or None

    FETCHED = FETCHED
    PRELOADED = PRELOADED

    def __len__(self) -> int:
        return int(self.cost.shape[0])

    @classmethod
    def empty(cls, n: int, k: int, **attrs: Any) -> ObjectReplayLog:
        """A log of ``n`` requests to be filled by the engine."""
        return cls(
            server=np.full((n, k), -1, np.int32),
            served=np.full((n, k), -1, np.int32),
            local=np.zeros((n, k), bool),
            origin=np.full((n, k), FETCHED, np.int64),
            cost=np.zeros(n, np.float64),
            cost_empty=np.zeros(n, np.float64),
            cost_opt=np.zeros(n, np.float64),
            inserted=np.zeros(n, np.int32),
            evicted=np.zeros(n, np.int32),
            **attrs,
        )

    @property
    def gain(self) -> np.ndarray:
        """Per-request gain: cost with an empty cache minus the cost served."""
        return self.cost_empty - self.cost

    @property
    def nag(self) -> float:
        """Normalised average gain: mean gain / (k c_f) (NaN for an empty replay)."""
        if not len(self):
            return float("nan")
        return float(self.gain.mean() / (self.config.k * self.config.c_f))

    @property
    def movement_cost(self) -> np.ndarray:
        """Per-request fetch cost of the policy's cache updates: ``c_f`` per object it inserted.
        For policies that insert only objects the answer fetched (LRU, LFU, ...) that cost is
        already part of ``cost``; for AÇAI (re-rounding) it is the movement cost on top of it."""
        return self.inserted * float(self.config.c_f)

    @property
    def n_local(self) -> np.ndarray:
        """Objects served from the cache, per request."""
        return self.local.sum(axis=1)
