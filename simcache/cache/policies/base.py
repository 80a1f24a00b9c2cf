"""The policy interface: a small Python class around five compiled kernels with fixed signatures.

A policy is an *eviction order* (which entry leaves when the cache is full: kernels ``touch``,
``insert``, ``remove``, ``victim`` over per-slot integer metadata it owns) plus a *decision rule*
(``decide``: hit or not, refresh or not, insert or not, from the distances to the two nearest
cached entries and two uniform draws). The engines call only these kernels
(signatures in :mod:`simcache.cache.kernels`), so adding a policy is one module with one class,
one entry in :data:`simcache.cache.policies.POLICIES`, and one test class; never an engine change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.costs import CostModel
from simcache.cache.kernels import (
    DECIDE_SIG,
    HIT,
    INSERT,
    INSERT_SIG,
    REFRESH,
    REMOVE_SIG,
    TOUCH_SIG,
    VICTIM_SIG,
    KernelRef,
    within_radius,
)


@dataclass(frozen=True)
class Param:
    """One policy parameter, as the CLI shows it (``--<name>``) and ``params`` accepts it."""

    name: str
    type: type  # float, int or str
    default: Any  # None: derived (see help)
    help: str
    choices: tuple[str, ...] | None = None


class Kernels(NamedTuple):
    """The compiled functions the engines call (see kernels.*_SIG for their signatures)."""

    decide: Any
    touch: Any
    insert: Any
    remove: Any
    victim: Any

    def refs(self) -> Kernels:
        """The same kernels wrapped for cheap passing to the compiled loops (cached)."""
        key = tuple(id(f) for f in self)
        if key not in _REFS:
            sigs = (DECIDE_SIG, TOUCH_SIG, INSERT_SIG, REMOVE_SIG, VICTIM_SIG)
            _REFS[key] = Kernels(*(KernelRef(f, sig) for f, sig in zip(self, sigs)))
        return _REFS[key]


_REFS: dict[tuple[int, ...], Kernels] = {}


@nb.njit(DECIDE_SIG, cache=True)
def decide_radius(has1, d1, has2, d2, u0, u1, fpar):
    """Radius rule (SIM-LRU family): hit and refresh iff d(x, y*) <= r, else insert x."""
    if has1 and within_radius(d1, fpar[0]):
        return HIT | REFRESH
    return INSERT


class Policy:
    """Base class: validates parameters and hands the engines their kernels, state and parameters.

    Subclasses set the class attributes below and, if their rule has parameters, override
    :meth:`rule_parameters`. ``meta_fields`` integers per slot and ``glob_size`` global integers are
    allocated by :meth:`new_state` (initialised to -1 unless :meth:`init_state` says otherwise).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    #: whether ``decide`` needs the distance to the second-nearest entry (costs a little more)
    needs_second: ClassVar[bool] = False
    meta_fields: ClassVar[int] = 1
    glob_size: ClassVar[int] = 1

    def __init__(
        self, capacity: int, radius: float, params: dict[str, Any] | None = None, cost: CostModel | None = None
    ) -> None:
        self.capacity = int(capacity)
        self.radius = float(radius)
        self.cost = cost if cost is not None else CostModel()
        self.values = self.resolve_params(params or {})

    @classmethod
    def resolve_params(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Check ``given`` against :attr:`params`; return every parameter's value (defaults filled)."""
        known = {p.name: p for p in cls.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise UserError(f"policy {cls.name!r} has no parameter {', '.join(unknown)} (parameters: {allowed})")
        values: dict[str, Any] = {}
        for p in cls.params:
            value = given.get(p.name, p.default)
            if value is not None:
                try:
                    value = p.type(value)
                except (TypeError, ValueError):
                    raise UserError(f"policy {cls.name!r}: {p.name} must be {p.type.__name__}, got {value!r}") from None
                if p.choices is not None and value not in p.choices:
                    raise UserError(f"policy {cls.name!r}: {p.name} must be one of {', '.join(p.choices)}, got {value!r}")
            values[p.name] = value
        return values

    # --- what the engines use -----------------------------------------------------------------

    @classmethod
    def kernels(cls) -> Kernels:
        """The compiled kernels of this policy."""
        raise NotImplementedError

    def rule_parameters(self) -> np.ndarray:
        """float64 array passed to ``decide`` (the radius first)."""
        return np.array([self.radius], dtype=np.float64)

    def new_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Fresh (meta, glob) arrays for an empty cache."""
        meta = np.full((self.capacity, max(1, self.meta_fields)), -1, dtype=np.int64)
        glob = np.full(max(1, self.glob_size), -1, dtype=np.int64)
        self.init_state(meta, glob)
        return meta, glob

    def init_state(self, meta: np.ndarray, glob: np.ndarray) -> None:
        """Adjust the freshly allocated state (default: everything -1)."""

    def describe(self) -> dict[str, Any]:
        """Parameters for provenance (the resolved values)."""
        return dict(self.values)
