"""The query-cache policy interface: a small Python class around five (or six) compiled kernels.

A policy is an *eviction order* (which entry leaves when the cache is full: kernels ``touch``,
``insert``, ``remove``, ``victim`` over per-slot integer and float state it owns) plus a
*decision rule* (``decide``: hit or not, refresh or not, insert or not, from the distances to the
two nearest cached entries and two uniform draws), and optionally a *key update* (``move``: how
far the served entry's key moves toward the request, CLS-LRU; by default keys never move). The
engines call only these kernels (signatures in :mod:`simcache.cache.kernels.signatures`), so
adding a policy is one module with one class, one entry in
:data:`simcache.cache.policies.POLICIES`, and one test class; never an engine change. The class
is also the policy's registry record: the CLI options, ``simcache policies``, the test
parametrisation and the benchmark grids are read from its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numba as nb
import numpy as np

from recvae.errors import UserError
from simcache.cache.costs import CostModel
from simcache.cache.kernels.distances import within_radius
from simcache.cache.kernels.signatures import (
    DECIDE_SIG,
    HIT,
    INSERT,
    INSERT_SIG,
    MOVE_SIG,
    REFRESH,
    REMOVE_SIG,
    TOUCH_SIG,
    VICTIM_SIG,
    KernelRef,
)


@dataclass(frozen=True)
class Param:
    """One policy parameter, as the CLI shows it (``--<name>``) and ``params`` accepts it."""

    name: str
    type: type  # float, int or str
    default: Any  # None: derived (see help)
    help: str
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Example:
    """A setting of a policy that shows its character: the test suite checks the engines against
    the reference on every example, and the benchmarks sweep them."""

    params: dict[str, Any] = field(default_factory=dict)
    cost: CostModel | None = None  # None: the policy's default cost model
    #: at this setting the rule is the hard radius (hit iff d(x, y*) <= r), as in SIM-LRU; tests of
    #: the hit boundary and of exact caching run the policy at its hard-radius example
    hard_radius: bool = False

    @property
    def label(self) -> str:
        """Short text naming the setting (test ids, benchmark rows)."""
        bits = [f"{k}={v}" for k, v in self.params.items()]
        if self.cost is not None:
            bits.append(f"cost={self.cost.kind}")
        return ",".join(bits) or "defaults"


def resolve_params(policy: str, declared: tuple[Param, ...], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against the ``declared`` parameters of ``policy``: unknown names refused,
    values typed and checked against their choices, defaults filled (for every cache family)."""
    known = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = ", ".join(known) or "none"
        raise UserError(f"policy {policy!r} has no parameter {', '.join(unknown)} (parameters: {allowed})")
    values: dict[str, Any] = {}
    for p in declared:
        value = given.get(p.name, p.default)
        if value is not None:
            try:
                value = p.type(value)
            except (TypeError, ValueError):
                raise UserError(f"policy {policy!r}: {p.name} must be {p.type.__name__}, got {value!r}") from None
            if p.choices is not None and value not in p.choices:
                raise UserError(f"policy {policy!r}: {p.name} must be one of {', '.join(p.choices)}, got {value!r}")
        values[p.name] = value
    return values


@nb.njit(MOVE_SIG, cache=True)
def no_move(slot, t, meta, fmeta, glob, fpar):
    """Keys never move (every policy whose entries are the requests that inserted them)."""
    return 0.0


class Kernels(NamedTuple):
    """The compiled functions the engines call (see kernels.*_SIG for their signatures)."""

    decide: Any
    touch: Any
    insert: Any
    remove: Any
    victim: Any
    move: Any = no_move

    def refs(self) -> Kernels:
        """The same kernels wrapped for cheap passing to the compiled loops (cached)."""
        key = tuple(id(f) for f in self)
        if key not in _REFS:
            sigs = (DECIDE_SIG, TOUCH_SIG, INSERT_SIG, REMOVE_SIG, VICTIM_SIG, MOVE_SIG)
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
    :meth:`rule_parameters`. ``meta_fields`` integers and ``float_fields`` floats per slot and
    ``glob_size`` global integers are allocated by :meth:`new_state` (initialised to -1, floats to
    0, unless :meth:`init_state` says otherwise).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    #: the cache family the policy belongs to (``query``: entries are past requests)
    family: ClassVar[str] = "query"
    params: ClassVar[tuple[Param, ...]] = ()
    #: what the defaults are and why, when that is not obvious (``simcache policies`` prints it)
    defaults_note: ClassVar[str] = ""
    #: settings that show the policy's character (tests and benchmarks run each)
    examples: ClassVar[tuple[Example, ...]] = (Example(hard_radius=True),)
    #: whether ``decide`` needs the distance to the second-nearest entry (costs a little more)
    needs_second: ClassVar[bool] = False
    meta_fields: ClassVar[int] = 1
    float_fields: ClassVar[int] = 0
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
        return resolve_params(cls.name, cls.params, given)

    # --- what the engines use -----------------------------------------------------------------

    @classmethod
    def kernels(cls) -> Kernels:
        """The compiled kernels of this policy."""
        raise NotImplementedError

    @classmethod
    def hard_radius_settings(cls) -> dict[str, Any] | None:
        """``params`` and ``cost`` of the policy's hard-radius example (None: it has none)."""
        for ex in cls.examples:
            if ex.hard_radius:
                return {"params": dict(ex.params), "cost": ex.cost}
        return None

    @classmethod
    def default_cost(cls, radius: float) -> CostModel:
        """The cost model used when the replay gives none (default: zero approximation cost)."""
        return CostModel()

    def rule_parameters(self) -> np.ndarray:
        """float64 array passed to ``decide`` (the radius first)."""
        return np.array([self.radius], dtype=np.float64)

    def new_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fresh (meta, fmeta, glob) arrays for an empty cache."""
        meta = np.full((self.capacity, max(1, self.meta_fields)), -1, dtype=np.int64)
        fmeta = np.zeros((self.capacity, max(1, self.float_fields)), dtype=np.float64)
        glob = np.full(max(1, self.glob_size), -1, dtype=np.int64)
        self.init_state(meta, glob)
        return meta, fmeta, glob

    def init_state(self, meta: np.ndarray, glob: np.ndarray) -> None:
        """Adjust the freshly allocated state (default: everything -1)."""

    def describe(self) -> dict[str, Any]:
        """Parameters for provenance (the resolved values)."""
        return dict(self.values)
