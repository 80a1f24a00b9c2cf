"""One replay: load and validate the requests, run the cache engine, compute the summary.

:func:`run_replay` is the Python API behind ``simcache replay``::

    from simcache.cache import ReplayConfig
    from simcache.replay import run_replay
    result = run_replay("traces/ml20m.arrow", ReplayConfig(policy="lru", capacity=1000, radius=2.5))
    print(result.summary.counts["hit_ratio"])
    result.save("out/")          # summary.json (+ per_user.parquet, + requests.parquet)

The config's type chooses the cache family (:mod:`simcache.replay.families`): a
:class:`~simcache.objects.config.ObjectReplayConfig` runs the object-cache engine over a catalogue
(``RunOptions.catalogue``, default the trace's own) and returns an
:class:`~simcache.replay.objects.ObjectReplayResult`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recvae import __version__
from recvae.errors import UserError
from simcache.cache.config import ReplayConfig, positive_int
from simcache.replay.accounting import Summary, summarize
from simcache.replay.report import compact_metadata, format_table, write_outputs
from simcache.trace.io import Requests, load_requests

# Arrow traces split into several record batches are streamed to the engine in blocks of this many
# rows rather than joined into one in-memory matrix.
STREAM_BLOCK_ROWS = 1 << 16
#: requests replayed (untimed) before the measured replay, to load the compiled kernels
WARM_UP_ROWS = 64


@dataclass(frozen=True)
class RunOptions:
    """How a replay's requests are read and summarised (what is not the cache's configuration).

    ``vector_column``: the vector column of a generic Arrow/Parquet file; ``sort``: stable-sort
    by timestamp instead of refusing decreasing timestamps; ``limit``: replay only the first
    requests; ``validate``: scan the vectors for NaN/inf (sweep workers skip the scan, done once);
    ``window``: requests per hit-ratio window (None: about 100 windows); ``overlap_k``: k of
    overlap@k (None: the trace's full top-k length); ``catalogue``: the object catalogue of an
    object-cache replay (None: the trace's own, ``<trace stem>.catalogue.arrow`` beside it).
    """

    vector_column: str | None = None
    sort: bool = False
    limit: int | None = None
    validate: bool = True
    window: int | None = None
    overlap_k: int | None = None
    catalogue: str | Path | None = None

    def __post_init__(self) -> None:
        for name in ("limit", "window", "overlap_k"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, positive_int(name.replace("_", " "), value))

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance."""
        out = dataclasses.asdict(self)
        out["catalogue"] = None if self.catalogue is None else str(self.catalogue)
        return out


def split_settings(settings: dict[str, Any],
                   config_type: type = ReplayConfig) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Keyword settings divided into ``config_type`` fields and :class:`RunOptions` fields
    (an unknown name is a TypeError, as for any function)."""
    config_names = {f.name for f in dataclasses.fields(config_type)}
    option_names = {f.name for f in dataclasses.fields(RunOptions)}
    unknown = sorted(set(settings) - config_names - option_names)
    if unknown:
        raise TypeError(f"unexpected setting(s): {', '.join(unknown)}")
    return ({k: v for k, v in settings.items() if k in config_names},
            {k: v for k, v in settings.items() if k in option_names})  # fmt: skip


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
    provenance: np.ndarray | None = field(default=None, repr=False)  # per request: 0 miss, 1 same user, 2 other
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


def run_replay(
    trace: str | Path | Requests,
    config: Any = None,
    options: RunOptions | None = None,
    /,
    *,
    progress: bool = False,
    out: str | Path | None = None,
    request_log: bool = False,
    **settings: Any,
) -> Any:
    """Replay a request file against a similarity cache and summarise the outcome.

    ``trace``: a path (see :func:`simcache.trace.io.load_requests` for formats) or loaded
    :class:`Requests`. ``config``: a :class:`ReplayConfig` (query cache, returns a
    :class:`ReplayResult`) or an :class:`~simcache.objects.config.ObjectReplayConfig` (object
    cache, returns an :class:`~simcache.replay.objects.ObjectReplayResult`); ``options``: how the
    requests are read and summarised (:class:`RunOptions`). Fields of either may also be given as
    keywords (``run_replay(path, policy="lru", capacity=100, radius=0.5, window=500)``; with no
    config, the policy's family chooses the config type), which then change the given objects.
    ``out``: directory for ``summary.json`` (+ the family's other files; ``requests.parquet`` with
    ``request_log``). Bad arguments raise :class:`UserError` before anything is loaded.
    """
    from simcache.replay.families import family_of, family_of_config

    if config is None:
        family = family_of(settings.get("policy", "lru"))
        config_changes, option_changes = split_settings(settings, family.config_type)
        config = family.config_type(**config_changes)
    else:
        family = family_of_config(config)
        config_changes, option_changes = split_settings(settings, family.config_type)
        if config_changes:
            change = getattr(config, "with_", None) or (lambda **c: dataclasses.replace(config, **c))
            config = change(**config_changes)
    options = dataclasses.replace(options or RunOptions(), **option_changes)
    if options.catalogue is not None and family.name != "object":
        raise UserError(f"a catalogue is for object policies; {config.policy!r} is a {family.name}-cache policy")
    t0 = time.perf_counter()
    if isinstance(trace, Requests):
        requests = trace
    else:
        requests = load_requests(trace, vector_column=options.vector_column, sort=options.sort,
                                 validate=options.validate)  # fmt: skip
    if options.limit is not None:
        requests = requests.head(options.limit)
    load_s = time.perf_counter() - t0
    result = family.run(requests, config, options, progress=progress)
    result.timing = {"load_s": load_s, **result.timing}
    if out is not None:
        result.save(out, request_log=request_log)
    return result


def run_query_replay(requests: Requests, config: ReplayConfig, options: RunOptions, *,
                     progress: bool = False) -> ReplayResult:  # fmt: skip
    """Replay loaded ``requests`` through the query cache ``config`` (the query family's run)."""
    from simcache.cache import replay as cache_replay
    from simcache.cache.config import fit_to_trace

    t1 = time.perf_counter()
    asked = config
    config, capacity_note = fit_to_trace(config, len(requests), requests.dim)
    topk = requests.topk
    check_overlap_k(options.overlap_k, topk)

    owners = None
    if config.exclude_self:
        if requests.user_id is None:
            raise UserError(f"--exclude-self needs user ids, and {requests.path} has no user_id column")
        owners = np.unique(requests.user_id, return_inverse=True)[1].astype(np.int64)
    # load (or compile) the engine's kernels on a few requests first, so that the measured replay
    # speed excludes it
    warm = requests.vectors[: min(len(requests), WARM_UP_ROWS)] if requests.n_chunks == 1 else None
    if warm is not None and len(warm):
        cache_replay(warm, config, owners=None if owners is None else owners[: len(warm)])
    t_warm = time.perf_counter()
    log = cache_replay(engine_input(requests), config, owners=owners, progress=progress)
    t2 = time.perf_counter()
    if len(log.outcome) != len(requests):
        raise RuntimeError(f"engine returned {len(log.outcome)} outcomes for {len(requests)} requests")

    accounts = summarize(
        log, cost=config.cost_model, window=options.window, radius=config.radius, timestamp=requests.timestamp,
        split=requests.split, user_id=requests.user_id, topk=topk, overlap_k=options.overlap_k,
    )
    t3 = time.perf_counter()
    parameters = {
        **asked.describe(),
        "capacity_simulated": config.capacity,
        "capacity_note": capacity_note,
        "params": dict(log.params),
        "window": accounts.summary.windows["window"],
        "overlap_k": None if accounts.summary.overlap is None else accounts.summary.overlap["k"],
        "vector_column": requests.vector_column,
        "sort": options.sort,
        "limit": options.limit,
    }
    result = ReplayResult(
        parameters=parameters,
        input=describe_input(requests),
        summary=accounts.summary,
        timing={
            "warm_up_s": t_warm - t1,
            "replay_s": t2 - t_warm,
            "summary_s": t3 - t2,
            "requests_per_s": len(requests) / (t2 - t_warm) if t2 > t_warm else None,
        },
        log=log,
        costs=accounts.costs,
        overlap=accounts.overlap,
        provenance=accounts.provenance,
        requests=requests,
    )
    return result


def check_overlap_k(overlap_k: int | None, topk: np.ndarray | None) -> None:
    """Refuse an overlap k longer than the trace's top-k lists."""
    if overlap_k is not None and topk is not None and overlap_k > topk.shape[1]:
        raise UserError(f"overlap k {overlap_k} exceeds the trace's top-k length {topk.shape[1]}")


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
