"""Compiled (numba) core of the similarity cache, one module per concern:

* :mod:`~simcache.cache.kernels.signatures`: the policy kernel signatures, decision flags and
  engine counters (what connects a policy to the loops);
* :mod:`~simcache.cache.kernels.distances`: the distance, the hit rule ``d <= r`` and the tie rule
  (every decision recomputes the distance exactly, so the engines and the test reference agree bit
  for bit);
* :mod:`~simcache.cache.kernels.lanesum`: the exact fixed-order float64 sums under the distances,
  emitted as vector code (numba intrinsics);
* :mod:`~simcache.cache.kernels.draws`: seeded uniform draws, a pure function of (seed, request,
  purpose);
* :mod:`~simcache.cache.kernels.rowscan`: the block products and row scans of the block engine
  for flat CPU caches;
* :mod:`~simcache.cache.kernels.laneminima`: the row scans' inner loop (approximations and lane
  minima) and lane mask, emitted as vector code;
* :mod:`~simcache.cache.kernels.vectorir`: the LLVM IR pieces the vector code shares (masked
  tails, vector pointers, splats);
* :mod:`~simcache.cache.kernels.copies`: the hot path's copies and prefetches;
* :mod:`~simcache.cache.kernels.panels`: the cache kept packed for the block products, and their
  register-tiled float32 products, emitted as vector code;
* :mod:`~simcache.cache.kernels.sequential`: the sequential pass that applies the policy request
  by request, given a batched search (a top-m list, or the rows of the block products).
* :mod:`~simcache.cache.kernels.borrowed`: array views without reference counting, for the
  sequential pass's loops.

Names load from their submodule on first use (numba compiles, or reads its cache, then), so
importing a policy, which needs only the signatures and the distance rules, stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from simcache.cache.kernels.signatures import *  # noqa: F403 - the shared types and constants (cheap)
from simcache.cache.kernels.signatures import __all__ as _SIGNATURES

#: submodule of every other public name; loaded (and compiled or read from numba's cache) on first use
_WHERE = {
    **dict.fromkeys(("MAX_NORM2", "METRIC_CODES", "TOL_FACTOR", "block_norms", "normalize_rows", "sqnorm",
                     "offer", "sqdist", "to_metric", "within_radius"), "distances"),
    **dict.fromkeys(("seed_key", "splitmix64", "uniform"), "draws"),
    **dict.fromkeys(("apply_request", "collect_inblock", "collect_topk", "full_scan", "resolve", "serve_block",
                     "serve_chunk_dense", "threshold", "topk_complete", "two_smallest"), "sequential"),
    **dict.fromkeys(("SCAN_LANES", "block_products", "hide_owned", "row_select", "row_smallest", "scan_scratch",
                     "scan_width", "search_chunk_dense", "slot_panels"), "rowscan"),
}  # fmt: skip

__all__ = [*_SIGNATURES, *_WHERE]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'simcache.cache.kernels' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"simcache.cache.kernels.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
