"""One replay: load and validate the requests, run the cache engine, compute the summary.

:func:`run_replay` is the Python API behind ``simcache replay``::

    from simcache.replay import run_replay
    result = run_replay("traces/ml20m.arrow", policy="lru", capacity=1000, radius=2.5)
    print(result.summary.counts["hit_ratio"])
    result.save("out/")          # summary.json (+ per_user.parquet, + requests.parquet)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recvae import __version__
from recvae.errors import UserError
from simcache.replay.accounting import Summary, summarize
from simcache.replay.report import compact_metadata, format_table, write_outputs
from simcache.trace.io import Requests, load_requests

METRICS = ("l2", "cosine")
INDEXES = ("flat", "hnsw", "ivf")
ENGINES = ("block", "plain")
DEVICES = ("auto", "cpu", "cuda")
# Arrow traces split into several record batches are streamed to the engine in blocks of this many
# rows rather than joined into one in-memory matrix.
STREAM_BLOCK_ROWS = 1 << 16


@dataclass
class ReplayResult:
    """Everything one replay produced: parameters, input description, summary, per-request arrays."""

    parameters: dict[str, Any]
    input: dict[str, Any]
    summary: Summary
    timing: dict[str, Any]
    log: Any = field(repr=False)  # simcache.cache.ReplayLog
    costs: np.ndarray = field(repr=False)  # per-request service cost
    overlap: np.ndarray | None = field(default=None, repr=False)  # per-request overlap@k (NaN: none)
    requests: Requests | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary: version, parameters, input (path, size, metadata), timing, numbers."""
        return {
            "simcache_version": __version__,
            "parameters": self.parameters,
            "input": self.input,
            "timing": self.timing,
            **self.summary.to_dict(),
        }

    def table(self) -> str:
        """The human-readable summary table."""
        return format_table(self)

    def save(self, out_dir: str | Path, *, request_log: bool = False) -> dict[str, Path]:
        """Write ``summary.json`` (and ``per_user.parquet``; ``requests.parquet`` with ``request_log``)."""
        return write_outputs(self, out_dir, request_log=request_log)


def policy_names() -> list[str]:
    """Names of the registered cache policies."""
    from simcache.cache import POLICIES

    return list(POLICIES)


def check_arguments(
    *,
    policy: str,
    capacity: Any,
    radius: Any,
    metric: str = "l2",
    index: str = "flat",
    engine: str = "block",
    device: str = "auto",
    block_size: Any = None,
    window: Any = None,
    limit: Any = None,
    overlap_k: Any = None,
    params: dict[str, Any] | None = None,
    cost: Any = None,
) -> None:
    """Refuse bad replay arguments with one-line :class:`UserError` messages (before any loading).

    With ``params`` (or ``cost``), the policy's own parameter checks run too.
    """
    names = policy_names()
    if policy not in names:
        raise UserError(f"unknown policy {policy!r}; choose one of {', '.join(names)}")
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
        raise UserError(f"capacity must be a positive integer (number of cache entries), got {capacity!r}")
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise UserError(f"radius must be a number, got {radius!r}") from None
    if not math.isfinite(r) or r < 0:
        raise UserError(f"radius must be a finite number >= 0, got {radius!r}")
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if index not in INDEXES:
        raise UserError(f"unknown index {index!r}; choose one of {', '.join(INDEXES)}")
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if device not in DEVICES:
        raise UserError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    for name, value in (("block size", block_size), ("window", window), ("limit", limit),
                        ("overlap k", overlap_k)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise UserError(f"{name} must be a positive integer, got {value!r}")
    if params is not None or cost is not None:
        from simcache.cache import POLICIES

        POLICIES[policy](int(capacity), r, dict(params or {}), cost).rule_parameters()


def make_cost(kind: str = "zero", *, retrieval_cost: float = 1.0, scale: float = 1.0,
              exponent: float = 2.0) -> Any:
    """A ``simcache.cache.costs.CostModel``, with user errors for bad values."""
    from simcache.cache.costs import CostModel

    kinds = ("zero", "linear", "power")
    if kind not in kinds:
        raise UserError(f"unknown cost model {kind!r}; choose one of {', '.join(kinds)}")
    for name, v in (("retrieval cost", retrieval_cost), ("cost scale", scale), ("cost exponent", exponent)):
        if not math.isfinite(float(v)) or float(v) < 0:
            raise UserError(f"{name} must be a finite number >= 0, got {v!r}")
    try:
        return CostModel(kind=kind, retrieval_cost=float(retrieval_cost), scale=float(scale),
                         exponent=float(exponent))
    except (ValueError, TypeError) as exc:
        raise UserError(f"bad cost model: {exc}") from None


def run_replay(
    trace: str | Path | Requests,
    *,
    policy: str = "lru",
    capacity: int,
    radius: float = 0.0,
    metric: str = "l2",
    params: dict[str, Any] | None = None,
    cost: Any = None,
    index: str = "flat",
    engine: str = "block",
    block_size: int | None = None,
    seed: int = 0,
    device: str = "auto",
    window: int | None = None,
    overlap_k: int | None = None,
    vector_column: str | None = None,
    sort: bool = False,
    limit: int | None = None,
    validate: bool = True,
    progress: bool = False,
    out: str | Path | None = None,
    request_log: bool = False,
) -> ReplayResult:
    """Replay a request file against a similarity cache and summarise the outcome.

    ``trace``: a path (see :func:`simcache.trace.io.load_requests` for formats) or loaded
    :class:`Requests`. Cache arguments go to :func:`simcache.cache.replay` unchanged (``params`` are
    the policy's options, ``cost`` a ``CostModel``, default: zero approximation cost, ``C_r = 1``).
    ``window``: requests per hit-ratio window (default: about 100 windows). ``overlap_k``: k of
    overlap@k (default: the trace's full top-k length). ``limit``: replay only the first requests.
    ``out``: directory for ``summary.json`` (+ ``per_user.parquet``; ``requests.parquet`` with
    ``request_log``). Bad arguments raise :class:`UserError`.
    """
    from simcache.cache import replay as cache_replay

    check_arguments(policy=policy, capacity=capacity, radius=radius, metric=metric, index=index,
                    engine=engine, device=device, block_size=block_size, window=window, limit=limit,
                    overlap_k=overlap_k)
    if cost is None:
        cost = make_cost()
    check_arguments(policy=policy, capacity=capacity, radius=radius, params=params, cost=cost)
    t0 = time.perf_counter()
    if isinstance(trace, Requests):
        requests = trace
    else:
        requests = load_requests(trace, vector_column=vector_column, sort=sort, validate=validate)
    if limit is not None:
        requests = requests.head(limit)
    topk = requests.topk
    if overlap_k is not None and topk is not None and overlap_k > topk.shape[1]:
        raise UserError(f"overlap k {overlap_k} exceeds the trace's top-k length {topk.shape[1]}")
    t1 = time.perf_counter()

    vectors = engine_input(requests)
    log = cache_replay(
        vectors, policy=policy, capacity=int(capacity), radius=float(radius), metric=metric,
        params=dict(params or {}), cost=cost, index=index, engine=engine, block_size=block_size,
        seed=int(seed), device=device, progress=progress,
    )
    t2 = time.perf_counter()
    if len(log.outcome) != len(requests):
        raise RuntimeError(f"engine returned {len(log.outcome)} outcomes for {len(requests)} requests")

    accounts = summarize(
        log, cost=cost, window=window, radius=float(radius), timestamp=requests.timestamp,
        split=requests.split, user_id=requests.user_id, topk=topk, overlap_k=overlap_k,
    )
    t3 = time.perf_counter()
    parameters = {
        "policy": policy,
        "capacity": int(capacity),
        "radius": float(radius),
        "metric": metric,
        "params": dict(getattr(log, "params", None) or params or {}),
        "cost": _cost_dict(cost),
        "index": index,
        "engine": engine,
        "block_size": block_size,
        "seed": int(seed),
        "device": device,
        "window": accounts.summary.windows["window"],
        "overlap_k": None if accounts.summary.overlap is None else accounts.summary.overlap["k"],
        "vector_column": requests.vector_column,
        "sort": bool(sort),
        "limit": limit,
    }
    result = ReplayResult(
        parameters=parameters,
        input=describe_input(requests),
        summary=accounts.summary,
        timing={
            "load_s": t1 - t0,
            "replay_s": t2 - t1,
            "summary_s": t3 - t2,
            "requests_per_s": len(requests) / (t2 - t1) if t2 > t1 else None,
        },
        log=log,
        costs=accounts.costs,
        overlap=accounts.overlap,
        requests=requests,
    )
    if out is not None:
        result.save(out, request_log=request_log)
    return result


def engine_input(requests: Requests, block_rows: int = STREAM_BLOCK_ROWS) -> Any:
    """What to hand the engine: the (memory-mapped) matrix, or a stream of record-batch blocks.

    A multi-batch Arrow file is streamed so that it is never joined in memory; the engine reads
    read-only (memory-mapped) arrays directly.
    """
    if requests.n_chunks == 1:
        return requests.vectors
    return requests.iter_vector_blocks(block_rows)


def describe_input(requests: Requests) -> dict[str, Any]:
    """Path, size, format, optional columns and compacted metadata of the request file."""
    return {
        "path": str(requests.path),
        "format": requests.path.suffix.lower().lstrip("."),
        "requests": len(requests),
        "dim": requests.dim,
        "columns": requests.column_names,
        "metadata": compact_metadata(requests.metadata),
    }


def _cost_dict(cost: Any) -> dict[str, Any]:
    keys = ("kind", "retrieval_cost", "scale", "exponent")
    return {k: getattr(cost, k) for k in keys if hasattr(cost, k)}
