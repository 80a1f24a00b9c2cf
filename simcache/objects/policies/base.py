"""The object-cache policy interface: one Python class around one compiled ``update`` kernel.

The engine (:mod:`simcache.objects.engine`) serves every request with the optimal answer for the
current cache content (:func:`simcache.objects.kernels.optimal_answer`) and then calls the policy's
``update`` kernel once, with the signature :data:`simcache.objects.kernels.UPDATE_SIG`:

* the request ``t``, the seed key (draws: :func:`~simcache.objects.kernels.uniform`);
* the served answer: objects in answer order, whether each was local, their ``c_d``;
* the exact nearest catalogue objects (``m_all`` of them; from the approximate index when one is
  used) and the exact nearest cached objects (``m_cached``), each as (object, key, ``c_d``, count);
* the prepared request vector, the prepared catalogue (vectors, bias): with
  :func:`~simcache.objects.kernels.object_cost` any object's ``c_d`` for this request;
* the cache (``slot_obj``, ``obj_slot``, ``slot_req``, ``free``, ``cstate``), changed only through
  :func:`~simcache.objects.kernels.cache_insert` / :func:`~simcache.objects.kernels.cache_evict`;
* the policy's own state: ``meta`` (capacity x ``meta_fields`` int64, one row per slot), ``glob``
  (int64), ``fstate`` (float64, any length, e.g. a fractional state over the catalogue) and the
  float parameters ``fpar``; ``env`` (c_f, metric, dissimilarity, radius, request's best key, k).

A policy is a subclass with a name, summary, declared ``params``, the kernel and, when needed,
:meth:`ObjectPolicy.candidates`, :meth:`ObjectPolicy.parameters`, :meth:`ObjectPolicy.new_state`
and :meth:`ObjectPolicy.initial_objects` (content loaded before the first request, e.g. a static
reference). Adding one is one module, one registry entry in
:data:`simcache.objects.policies.OBJECT_POLICIES` and one test class; the engine never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from recvae.errors import UserError
from simcache.cache.policies.base import Param, resolve_params

#: the cache family every policy here belongs to (query caches: ``"query"``)
FAMILY = "object"


@dataclass(frozen=True)
class Setup:
    """What :meth:`ObjectPolicy.initial_objects` may look at before the replay."""

    requests: Any  # the (n, d) request array as given (None when streamed as blocks)
    catalogue: Any  # simcache.objects.metrics.PreparedCatalogue
    config: Any  # simcache.objects.config.ObjectReplayConfig


class ObjectPolicy:
    """Base class: parameters, state allocation and the kernel handed to the engine."""

    name: ClassVar[str]
    summary: ClassVar[str]
    family: ClassVar[str] = FAMILY
    params: ClassVar[tuple[Param, ...]] = ()
    meta_fields: ClassVar[int] = 1
    glob_size: ClassVar[int] = 1

    def __init__(self, capacity: int, k: int, n_objects: int, params: dict[str, Any] | None = None,
                 dim: int = 0) -> None:  # fmt: skip
        self.capacity = int(capacity)
        self.k = int(k)
        self.n_objects = int(n_objects)
        self.dim = int(dim)  # the prepared vectors' dimension (state sized by it, e.g. GRADES' points)
        self.values = self.resolve_params(params or {})
        self.check()

    @classmethod
    def resolve_params(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Check ``given`` against :attr:`params`; every parameter's value (defaults filled)."""
        return resolve_params(cls.name, cls.params, given)

    def check(self) -> None:
        """Validate the parameter values together (UserError); called once by the constructor."""

    # --- what the engine uses -------------------------------------------------------------------
    @classmethod
    def kernel(cls) -> Any:
        """The compiled ``update`` kernel (signature :data:`~simcache.objects.kernels.UPDATE_SIG`)."""
        raise NotImplementedError

    def candidates(self) -> tuple[int, int]:
        """How many nearest catalogue objects and nearest cached objects ``update`` needs (the
        engine takes at least ``k`` of each for the answer)."""
        return self.k, self.k

    def parameters(self) -> np.ndarray:
        """float64 parameters handed to ``update`` as ``fpar``."""
        return np.zeros(1, np.float64)

    def new_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fresh (meta, glob, fstate) for an empty cache (meta and glob -1, fstate 0)."""
        meta = np.full((self.capacity, max(1, self.meta_fields)), -1, dtype=np.int64)
        glob = np.full(max(1, self.glob_size), -1, dtype=np.int64)
        return meta, glob, np.zeros(1, np.float64)

    def initial_objects(self, setup: Setup) -> np.ndarray | None:
        """Objects to load before the first request (None: start empty)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Resolved parameter values, for provenance."""
        return dict(self.values)
