"""The fixed types that connect policies to the compiled loops, and the engine's shared constants.

A policy is five compiled functions of exactly these signatures (see
:mod:`simcache.cache.policies.base`); the loops receive them as first-class function arguments
(through :class:`KernelRef`) and never name a policy.

Per-entry state a policy owns: ``meta`` (capacity, n) int64 and ``fmeta`` (capacity, n) float64
(row = slot), plus ``glob`` (n,) int64 for policy-global integers (list heads, heap size).
"""

from __future__ import annotations

from numba import types as nt
from numba.experimental.function_type import _get_wrapper_address

from simcache.cache.outcome import APPROX_HIT, EXACT_HIT, MISS

META = nt.int64[:, ::1]  # per-slot integer policy state, shape (capacity, n_fields)
FMETA = nt.float64[:, ::1]  # per-slot float policy state, shape (capacity, n_float_fields)
GLOB = nt.int64[::1]  # policy-global integers (list heads, heap size, ...)
FPAR = nt.float64[::1]  # float parameters of the decision rule (radius first)

#: touch(slot, t, meta, fmeta, glob): the entry in ``slot`` served request ``t`` and is refreshed.
TOUCH_SIG = nt.void(nt.int64, nt.int64, META, FMETA, GLOB)
#: insert(slot, t, meta, fmeta, glob): request ``t`` was just written into the free ``slot``.
INSERT_SIG = nt.void(nt.int64, nt.int64, META, FMETA, GLOB)
#: remove(slot, meta, fmeta, glob): the entry in ``slot`` leaves the cache (before its slot is reused).
REMOVE_SIG = nt.void(nt.int64, META, FMETA, GLOB)
#: victim(t, u, meta, fmeta, glob) -> slot: which slot to evict for request ``t`` (cache full; u ~ U[0,1)).
VICTIM_SIG = nt.int64(nt.int64, nt.float64, META, FMETA, GLOB)
#: decide(has1, d1, has2, d2, u0, u1, fpar) -> flags (HIT | REFRESH | INSERT).
DECIDE_SIG = nt.int64(nt.boolean, nt.float64, nt.boolean, nt.float64, nt.float64, nt.float64, FPAR)
#: move(slot, t, meta, fmeta, glob, fpar) -> m: the entry in ``slot`` served request ``t`` (called
#: after the request's insertion, if any, on every hit that leaves the entry cached); its key y
#: becomes ``y + (x - y) / m`` (m = n + 1: the running mean of n + 1 requests), or stays when
#: ``m <= 0`` (every policy but the moving ones).
MOVE_SIG = nt.float64(nt.int64, nt.int64, META, FMETA, GLOB, FPAR)

TOUCH_T = nt.FunctionType(TOUCH_SIG)
INSERT_T = nt.FunctionType(INSERT_SIG)
REMOVE_T = nt.FunctionType(REMOVE_SIG)
VICTIM_T = nt.FunctionType(VICTIM_SIG)
DECIDE_T = nt.FunctionType(DECIDE_SIG)
MOVE_T = nt.FunctionType(MOVE_SIG)


class KernelRef:
    """A compiled policy kernel passed to the loops by address.

    Passing a numba dispatcher as a first-class function costs ~0.1 ms of LLVM symbol lookup and
    type construction per argument per call; this wrapper computes its address and numba type
    once (it implements numba's wrapper-address protocol and ``_numba_type_``).
    """

    def __init__(self, dispatcher, sig) -> None:
        self.dispatcher = dispatcher
        self._sig = sig
        self._addr = _get_wrapper_address(dispatcher, sig)
        self._numba_type_ = nt.FunctionType(sig)

    def __wrapper_address__(self) -> int:
        return self._addr

    def signature(self):
        return self._sig

    def __call__(self, *args):
        return self.dispatcher(*args)


HIT = 1  # serve the request from y*
REFRESH = 2  # call touch(y*) (only meaningful with HIT)
INSERT = 4  # insert the request's vector (evicting a victim when full)

# engine counters (``counters`` array): used slots, exact fallback scans, slot writes so far (the
# next entry version)
N_USED, N_FULL_SCANS, N_WRITES, N_COUNTERS = 0, 1, 2, 4

__all__ = [
    "APPROX_HIT", "DECIDE_SIG", "DECIDE_T", "EXACT_HIT", "FMETA", "FPAR", "GLOB", "HIT", "INSERT",
    "INSERT_SIG", "INSERT_T", "META", "MISS", "MOVE_SIG", "MOVE_T", "N_COUNTERS", "N_FULL_SCANS", "N_USED",
    "N_WRITES",
    "REFRESH", "REMOVE_SIG", "REMOVE_T", "TOUCH_SIG", "TOUCH_T", "VICTIM_SIG", "VICTIM_T", "KernelRef",
]  # fmt: skip
