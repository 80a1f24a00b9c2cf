"""The cache families that ``simcache replay`` / ``sweep`` / ``policies`` serve, one record each.

- ``query``: entries are past requests and their answers; a request hits when a cached request
  is within the radius (:mod:`simcache.cache`, :class:`~simcache.cache.config.ReplayConfig`).
- ``object``: the cache holds catalogue objects and composes each k-object answer from them under
  AÇAI's cost model (:mod:`simcache.objects`, :class:`~simcache.objects.config.ObjectReplayConfig`).

Each :class:`CacheFamily` names its policy registry, its config type, its run function and its
summary function as ``module:attribute`` references resolved on first use (importing this module
imports no engine). A policy name belongs to exactly one family (:func:`family_of`), so
``--policy obj-lru`` reaches the object engine with no other switch; a new policy in either
registry reaches the command line, sweeps and ``simcache policies`` with no change here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recvae.errors import UserError


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class CacheFamily:
    """One cache model: what its policies, configuration, replay and summary are."""

    name: str
    help: str
    policies_ref: str  # module:attribute of the {name: policy class} registry
    config_ref: str  # module:attribute of the frozen, validated config type
    run_ref: str  # module:attribute of run(requests, config, options, *, progress) -> result
    summary_ref: str  # module:attribute of the summary function of the family's per-request log

    @property
    def policies(self) -> Mapping[str, type]:
        """The family's policy registry."""
        return _resolve(self.policies_ref)

    @property
    def config_type(self) -> type:
        """The family's config type (one validated instance describes one replay)."""
        return _resolve(self.config_ref)

    @property
    def run(self) -> Any:
        """The family's run function (what :func:`simcache.replay.run.run_replay` dispatches to)."""
        return _resolve(self.run_ref)

    @property
    def summarize(self) -> Any:
        """The family's summary function (per-request log -> report)."""
        return _resolve(self.summary_ref)


FAMILIES: dict[str, CacheFamily] = {
    f.name: f
    for f in (
        CacheFamily("query", "entries are past requests; a hit reuses a cached answer within the radius",
                    "simcache.cache.policies:POLICIES", "simcache.cache.config:ReplayConfig",
                    "simcache.replay.run:run_query_replay", "simcache.replay.accounting:summarize"),
        CacheFamily("object", "the cache holds catalogue objects; k-object answers under AÇAI's cost model",
                    "simcache.objects.policies:OBJECT_POLICIES", "simcache.objects.config:ObjectReplayConfig",
                    "simcache.replay.objects:run_object_replay", "simcache.objects.report:summarize_objects"),
    )
}  # fmt: skip


def all_policies() -> dict[str, tuple[CacheFamily, type]]:
    """Every registered policy: name -> (family, class); a name in two families is a TypeError."""
    out: dict[str, tuple[CacheFamily, type]] = {}
    for fam in FAMILIES.values():
        for name, cls in fam.policies.items():
            if name in out:
                raise TypeError(f"policy name {name!r} is registered in families {out[name][0].name} and {fam.name}")
            out[name] = (fam, cls)
    return out


def family_of(policy: str) -> CacheFamily:
    """The family of a policy name (a UserError listing every policy otherwise)."""
    known = all_policies()
    if policy not in known:
        raise UserError(f"unknown policy {policy!r}; choose one of {', '.join(known)}")
    return known[policy][0]


def family_of_config(config: Any) -> CacheFamily:
    """The family whose config type ``config`` is."""
    for fam in FAMILIES.values():
        if isinstance(config, fam.config_type):
            return fam
    types = ", ".join(f.config_type.__name__ for f in FAMILIES.values())
    raise UserError(f"config must be one of {types}, got {type(config).__name__}")


def policy_params(policy: str) -> set[str]:
    """The parameter names ``policy`` declares."""
    return {p.name for p in all_policies()[policy][1].params}
