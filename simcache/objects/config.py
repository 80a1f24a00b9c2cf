"""The typed configuration of one object-cache replay, validated once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from recvae.errors import UserError
from simcache.objects import kernels as K

INDEXES = ("flat", "ivf", "hnsw")
#: options of the approximate indexes and their defaults (None: derived, see ``index_options``)
INDEX_PARAMS: dict[str, dict[str, Any]] = {
    "flat": {},
    "ivf": {"nlist": None, "nprobe": 16},
    "hnsw": {"m": 32, "ef_search": 128, "ef_construction": 128},
}


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class ObjectReplayConfig:
    """One object-cache replay.

    The cost model (AÇAI's, Si Salem, Neglia, Carra): a request asks for ``k`` objects; an object in
    the answer costs its dissimilarity ``c_d = h(d)`` if the cache holds it and ``c_d + c_f`` if it
    is fetched; the cache serves the optimal answer for its content.
    """

    policy: str = "obj-lru"  # a name in simcache.objects.policies.OBJECT_POLICIES
    capacity: int = 100  # C: objects the cache holds (<= catalogue size)
    k: int = 10  # objects per answer (<= catalogue size)
    c_f: float = 1.0  # fetch cost of one object (> 0); NAG divides the mean gain by k * c_f
    metric: str = "l2"  # l2 | cosine | ip (see simcache.objects.metrics for d)
    dissimilarity: str = "distance"  # h: distance (c_d = d) | squared (d^2) | radius (0 within r, c_f beyond)
    radius: float = 0.0  # r of dissimilarity="radius"
    params: Mapping[str, Any] = field(default_factory=dict)  # the policy's parameters
    index: str = "flat"  # flat (exact) | ivf | hnsw: where uncached answer objects come from
    index_params: Mapping[str, Any] = field(default_factory=dict)  # see INDEX_PARAMS
    index_candidates: int = 0  # objects taken from an approximate index per request (0: k)
    block_size: int | None = None  # requests per product with the catalogue (None: by catalogue size)
    seed: int = 0  # drives every random choice

    def __post_init__(self) -> None:
        from simcache.objects.policies import OBJECT_POLICIES

        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "index_params", MappingProxyType(dict(self.index_params)))
        if self.policy not in OBJECT_POLICIES:
            raise UserError(f"unknown object policy {self.policy!r}; expected one of {', '.join(OBJECT_POLICIES)}")
        for name in ("capacity", "k"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise UserError(f"{name} must be an integer >= 1, got {value!r}")
        try:
            c_f = float(self.c_f)
            radius = float(self.radius)
        except (TypeError, ValueError):
            raise UserError(f"c_f and radius must be numbers, got {self.c_f!r}, {self.radius!r}") from None
        if not (c_f > 0 and c_f < float("inf")):
            raise UserError(f"c_f must be a finite number > 0, got {self.c_f!r}")
        if not (radius >= 0 and radius < float("inf")):
            raise UserError(f"radius must be a finite number >= 0, got {self.radius!r}")
        object.__setattr__(self, "c_f", c_f)
        object.__setattr__(self, "radius", radius)
        if self.metric not in K.METRICS:
            raise UserError(f"unknown metric {self.metric!r}; expected one of {', '.join(K.METRICS)}")
        if self.dissimilarity not in K.DISSIMILARITIES:
            raise UserError(f"unknown dissimilarity {self.dissimilarity!r}; expected one of "
                            f"{', '.join(K.DISSIMILARITIES)}")  # fmt: skip
        if self.index not in INDEXES:
            raise UserError(f"unknown index {self.index!r}; expected one of {', '.join(INDEXES)}")
        unknown = sorted(set(self.index_params) - set(INDEX_PARAMS[self.index]))
        if unknown:
            raise UserError(f"index {self.index!r} has no option {', '.join(unknown)} "
                            f"(options: {', '.join(INDEX_PARAMS[self.index]) or 'none'})")  # fmt: skip
        for name, value in self.index_params.items():
            if not _is_int(value) or value < 1:
                raise UserError(f"index option {name} must be an integer >= 1, got {value!r}")
        if not _is_int(self.index_candidates) or self.index_candidates < 0:
            raise UserError(f"index_candidates must be an integer >= 0, got {self.index_candidates!r}")
        if self.block_size is not None and (not _is_int(self.block_size) or self.block_size < 1):
            raise UserError(f"block_size must be an integer >= 1, got {self.block_size!r}")
        if not _is_int(self.seed):
            raise UserError(f"seed must be an integer, got {self.seed!r}")
        OBJECT_POLICIES[self.policy].resolve_params(dict(self.params))

    @property
    def approximate(self) -> bool:
        """Whether uncached objects come from an approximate index."""
        return self.index != "flat"

    def check_catalogue(self, n_objects: int) -> None:
        """Checks that need the catalogue size."""
        if self.k > n_objects:
            raise UserError(f"k = {self.k} is larger than the catalogue ({n_objects} objects)")
        if self.capacity > n_objects:
            raise UserError(f"capacity C = {self.capacity} is larger than the catalogue ({n_objects} objects)")

    def index_options(self, n_objects: int) -> dict[str, int]:
        """The index's options with defaults filled (IVF: nlist = 4 sqrt(n) within [1, n / 39])."""
        out = {**INDEX_PARAMS[self.index], **self.index_params}
        if self.index == "ivf" and out["nlist"] is None:
            out["nlist"] = int(max(1, min(4 * n_objects**0.5, n_objects // 39)))
        return out

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle by the fields (the read-only mappings are not picklable): sweep workers get configs."""
        return (_from_fields, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["params"] = dict(self.params)
        out["index_params"] = dict(self.index_params)
        return out


def _from_fields(fields: dict[str, Any]) -> ObjectReplayConfig:
    """An :class:`ObjectReplayConfig` from :meth:`ObjectReplayConfig.to_dict`'s fields (validated again)."""
    return ObjectReplayConfig(**fields)
