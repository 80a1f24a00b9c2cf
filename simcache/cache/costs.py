"""The cost rule: approximation cost h(d) and retrieval cost C_r (qLRU-ΔC and the accounting).

A request served by a cached entry at distance d costs ``h(d)``; a request fetched from the server
costs the retrieval cost ``C_r``. The service cost is ``min(C_r, h(d))`` where the entry is usable.
This module is the one statement of that rule on the Python side (the replay's accounting uses
it); the compiled twin used inside qLRU-ΔC's decision is checked against it by the tests.
Cheap to import (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recvae.errors import UserError

from simcache.cache.options import COST_KINDS

#: cost kind -> numeric code inside the compiled kernels
COST_CODES = {kind: code for code, kind in enumerate(COST_KINDS)}


@dataclass(frozen=True)
class CostModel:
    """h(d) = 0 (``zero``), ``scale * d`` (``linear``) or ``scale * d ** exponent`` (``power``)."""

    kind: str = "zero"  # one of COST_KINDS
    retrieval_cost: float = 1.0  # C_r, the cost of a miss (fetching / computing the answer)
    scale: float = 1.0  # multiplier of the distance term
    exponent: float = 2.0  # only used by "power"

    def __post_init__(self) -> None:
        if self.kind not in COST_KINDS:
            raise UserError(f"unknown cost kind {self.kind!r}; expected one of {', '.join(COST_KINDS)}")
        for name in ("retrieval_cost", "scale", "exponent"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < 0:
                raise UserError(f"cost {name} must be a finite number >= 0, got {value}")
        if self.retrieval_cost <= 0:
            raise UserError("cost retrieval_cost (C_r) must be > 0")

    @property
    def code(self) -> int:
        """Numeric code of ``kind`` used by the compiled kernels."""
        return COST_CODES[self.kind]

    def to_dict(self) -> dict[str, float | str]:
        """The four fields, for provenance (JSON)."""
        return {"kind": self.kind, "retrieval_cost": float(self.retrieval_cost), "scale": float(self.scale),
                "exponent": float(self.exponent)}

    def approx_cost(self, d: np.ndarray) -> np.ndarray:
        """h(d) for an array of distances (float64 result; +inf distances give +inf except for ``zero``)."""
        d = np.asarray(d, dtype=np.float64)
        if self.kind == "zero":
            return np.zeros_like(d)
        if self.kind == "linear":
            return self.scale * d
        return self.scale * d**self.exponent

    def service_cost(self, d: np.ndarray, hit: np.ndarray) -> np.ndarray:
        """Per-request cost: ``min(C_r, h(d))`` on a hit, ``C_r`` on a miss."""
        cost = np.full(np.shape(d), self.retrieval_cost, dtype=np.float64)
        hit = np.asarray(hit, dtype=bool)
        cost[hit] = np.minimum(self.retrieval_cost, self.approx_cost(np.asarray(d)[hit]))
        return cost
