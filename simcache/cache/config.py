"""The one typed, validated configuration of a replay: what the CLI, the Python API, sweeps and the
engine all pass around instead of keyword lists.

:class:`ReplayConfig` is frozen and checks every field once, in ``__post_init__``; a bad value is
a :class:`~recvae.errors.UserError` with a one-line message. ``params`` are resolved against the
policy's declared parameters (unknown names refused, values typed, defaults filled), so a config
always describes a complete, runnable replay. Cheap to import: no numba or FAISS until a policy
class is looked up.

    from simcache.cache.config import ReplayConfig
    cfg = ReplayConfig(policy="rnd-lru", capacity=1000, radius=0.5, params={"acceptance": "linear"})
    cfg.with_(capacity=10_000)            # a validated copy with other values (sweeps)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from recvae.errors import UserError
from simcache.cache.costs import CostModel
from simcache.cache.options import DEVICES, ENGINES, INDEXES, METRICS

if TYPE_CHECKING:
    from simcache.cache.policies.base import Policy


def positive_int(name: str, value: Any, *, what: str = "") -> int:
    """``value`` as an int >= 1, else a UserError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserError(f"{name} must be a positive integer{what}, got {value!r}")
    return int(value)


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a UserError listing them."""
    if value not in allowed:
        raise UserError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    return value


def policy_class(name: str) -> type[Policy]:
    """The registered policy class of ``name`` (a UserError listing the known ones otherwise)."""
    from simcache.cache.policies import POLICIES

    return POLICIES[choice("policy", name, tuple(POLICIES))]


@dataclass(frozen=True)
class ReplayConfig:
    """Everything that decides a replay's outcome (and how it is computed).

    ``radius``: hit iff d(x, y*) <= radius, in the metric's units; ``inf`` makes every entry
    usable (a pure cost model for qLRU-ΔC). ``params``: the policy's options (see
    ``simcache policies``); after construction it holds every parameter's value. ``cost``: the
    cost model (used by qLRU-ΔC and by the accounting); None (the default) takes the policy's
    own default (:attr:`cost_model`). ``index``, ``device``, ``engine``,
    ``block_size`` (None: adaptive) and ``threads`` (None: chosen by measurement, see
    :class:`~simcache.cache.threads.ThreadPlan`; 1: the calling thread only) change only how
    the result is computed, never the result. ``seed`` drives every random choice. ``exclude_self``: a request never
    sees the entries its own user inserted (a study of reuse across users; needs user ids).
    """

    policy: str = "lru"
    capacity: int = 100
    radius: float = 0.0
    metric: str = "l2"
    params: dict[str, Any] = field(default_factory=dict)
    cost: CostModel | None = None  # None: the policy's default cost model
    index: str = "flat"
    device: str = "auto"
    engine: str = "block"
    block_size: int | None = None
    seed: int = 0
    threads: int | None = None
    exclude_self: bool = False

    def __post_init__(self) -> None:
        cls = policy_class(self.policy)
        set_ = object.__setattr__
        set_(self, "capacity", positive_int("capacity", self.capacity, what=" (number of cache entries)"))
        try:
            radius = float(self.radius)
        except (TypeError, ValueError):
            raise UserError(f"radius must be a number, got {self.radius!r}") from None
        if math.isnan(radius) or radius < 0:
            raise UserError(f"radius must be a finite number >= 0 (or inf), got {self.radius!r}")
        set_(self, "radius", radius)
        choice("metric", self.metric, METRICS)
        choice("index", self.index, INDEXES)
        choice("device", self.device, DEVICES)
        choice("engine", self.engine, ENGINES)
        if self.block_size is not None:
            set_(self, "block_size", positive_int("block size", self.block_size))
        if self.threads is not None:
            set_(self, "threads", positive_int("threads", self.threads))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise UserError(f"seed must be an integer, got {self.seed!r}")
        set_(self, "seed", int(self.seed))
        if self.cost is not None and not isinstance(self.cost, CostModel):
            raise UserError("cost must be a simcache.cache.costs.CostModel")
        set_(self, "params", cls.resolve_params(dict(self.params or {})))
        self.make_policy().rule_parameters()  # the rule's own range checks

    @property
    def policy_class(self) -> type[Policy]:
        """The policy's registry record."""
        return policy_class(self.policy)

    def make_policy(self) -> Policy:
        """A fresh policy object for one replay."""
        return self.policy_class(self.capacity, self.radius, self.params, self.cost_model)

    @property
    def cost_model(self) -> CostModel:
        """The cost model in force: ``cost``, or the policy's default for this radius."""
        return self.cost if self.cost is not None else self.policy_class.default_cost(self.radius)

    def with_(self, **changes: Any) -> ReplayConfig:
        """A validated copy with ``changes``; a new ``policy`` keeps only the parameters it declares."""
        if "policy" in changes and "params" not in changes:
            declared = {p.name for p in policy_class(changes["policy"]).params}
            changes["params"] = {k: v for k, v in self.given_params().items() if k in declared}
        return dataclasses.replace(self, **changes)

    def given_params(self) -> dict[str, Any]:
        """The parameters that differ from the policy's declared defaults."""
        defaults = {p.name: p.default for p in self.policy_class.params}
        return {k: v for k, v in self.params.items() if defaults.get(k) != v}

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance of every field."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["params"] = dict(self.params)
        out["cost"] = self.cost_model.to_dict()
        return out


#: Bytes per cache entry besides its vector: slot metadata, index bookkeeping, version tags.
ENTRY_OVERHEAD_BYTES = 96


def cache_memory_bytes(config: ReplayConfig, dim: int) -> int:
    """An estimate of the memory a cache of ``config.capacity`` entries of dimension ``dim`` takes.

    Each entry holds its float32 vector twice (the slots and the search index) plus the policy's
    per-slot metadata; the engine's block products add ``block * (capacity + block)`` floats.
    """
    cls = config.policy_class
    per_entry = 2 * 4 * dim + 8 * (max(1, cls.meta_fields) + max(1, cls.float_fields)) + ENTRY_OVERHEAD_BYTES
    block = config.block_size or 256
    return int(config.capacity) * (per_entry + 4 * block) + 4 * block * block


def available_memory_bytes() -> int:
    """Memory available to this process now (psutil), for refusing what cannot fit."""
    import psutil

    return int(psutil.virtual_memory().available)


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def fit_to_trace(config: ReplayConfig, n_requests: int, dim: int) -> tuple[ReplayConfig, str | None]:
    """The config to simulate ``n_requests`` requests of dimension ``dim`` with, and a note or None.

    A query cache inserts at most one entry a request, so a capacity above ``n_requests`` never
    fills: with an exact (flat) index it is simulated with ``n_requests`` entries, which gives the
    same result, and the note says so. A cache that would not fit in the available memory is
    refused with the estimate (a :class:`UserError`).
    """
    note = None
    if config.capacity > max(1, n_requests) and config.index == "flat":
        note = (f"capacity {config.capacity:,} exceeds the trace's {n_requests:,} requests: the cache never "
                f"fills, simulated with {max(1, n_requests):,} entries (same results)")
        config = dataclasses.replace(config, capacity=max(1, n_requests))
    need, have = cache_memory_bytes(config, dim), available_memory_bytes()
    if need > have:
        raise UserError(f"capacity {config.capacity:,} (dimension {dim}) needs about {_gib(need)} of memory, "
                        f"{_gib(have)} available; lower --capacity")
    return config, note
