"""One object-cache replay behind ``simcache replay``: requests + catalogue -> engine -> report.

:func:`run_object_replay` is what :func:`simcache.replay.run.run_replay` runs for an
:class:`~simcache.objects.config.ObjectReplayConfig`: it loads the requests (as for query caches),
the catalogue (``RunOptions.catalogue``, else the trace's own, ``<trace stem>.catalogue.arrow``
beside it), checks that they fit together, runs :func:`~simcache.objects.engine.replay_objects`
and :func:`~simcache.objects.report.summarize_objects` (provenance from the trace's user ids), and
returns an :class:`ObjectReplayResult` whose ``save`` writes ``summary.json`` and, with
``request_log``, ``requests.parquet`` (one row per request, see :func:`object_log_table`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from recvae import __version__
from recvae.errors import UserError
from recvae.storage import atomic_path
from simcache.jsonout import write_json
from simcache.objects.config import ObjectReplayConfig
from simcache.objects.log import ObjectReplayLog
from simcache.objects.report import ObjectSummary
from simcache.replay.report import REQUEST_LOG_FILE, SUMMARY_FILE, compact_metadata
from simcache.trace.io import Requests

#: the ``family`` field of an object replay's summary.json
FAMILY = "object"


@dataclass
class ObjectReplayResult:
    """Everything one object-cache replay produced (the object counterpart of ``ReplayResult``)."""

    parameters: dict[str, Any]
    input: dict[str, Any]
    catalogue: dict[str, Any]
    summary: ObjectSummary
    timing: dict[str, Any]
    log: ObjectReplayLog = field(repr=False)
    requests: Requests | None = field(default=None, repr=False)

    family = FAMILY

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary: version, family, parameters, input, catalogue, timing, report sections."""
        return {"simcache_version": __version__, "family": FAMILY, "parameters": self.parameters,
                "input": self.input, "catalogue": self.catalogue, "timing": self.timing,
                **self.summary.to_dict()}  # fmt: skip

    def table(self) -> str:
        """The human-readable report."""
        i, c = self.input, self.catalogue
        rate = self.timing.get("requests_per_s")
        head = (f"requests {i['path']} ({i['requests']:,} x {i['dim']}); catalogue {c['path']} "
                f"({c['objects']:,} objects)" + (f"; {rate:,.0f} requests/s" if rate else ""))  # fmt: skip
        return head + "\n" + self.summary.table()

    def save(self, out_dir: str | Path, *, request_log: bool = False) -> dict[str, Path]:
        """Write ``summary.json`` (+ ``requests.parquet`` with ``request_log``) into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = {"summary": write_json(out / SUMMARY_FILE, self.to_dict())}
        if request_log:
            import pyarrow.parquet as pq

            dest = out / REQUEST_LOG_FILE
            with atomic_path(dest) as tmp:
                pq.write_table(object_log_table(self.log, self.requests), tmp)
            written["requests"] = dest
        return written


def _lists(a: np.ndarray) -> pa.FixedSizeListArray:
    n, k = a.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a).reshape(-1)), k)


def object_log_table(log: ObjectReplayLog, requests: Requests | None = None) -> pa.Table:
    """The per-request object log as an Arrow table.

    Columns: request (index in replay order), cost, cost_empty, cost_optimum, gain, local (objects
    served from the cache), inserted, evicted, then k-lists: served (catalogue rows of the answer,
    by increasing effective cost), served_local (whether each came from the cache), origin (the
    request that inserted it; -1 fetched, -2 preloaded), server (the server's k nearest objects);
    user_id and timestamp when the trace has them.
    """
    n = len(log)
    cols: dict[str, Any] = {
        "request": pa.array(np.arange(n, dtype=np.int64)),
        "cost": pa.array(log.cost),
        "cost_empty": pa.array(log.cost_empty),
        "cost_optimum": pa.array(log.cost_opt),
        "gain": pa.array(log.gain),
        "local": pa.array(log.n_local.astype(np.int32)),
        "inserted": pa.array(log.inserted),
        "evicted": pa.array(log.evicted),
        "served": _lists(log.served),
        "served_local": _lists(log.local),
        "origin": _lists(log.origin),
        "server": _lists(log.server),
    }
    if requests is not None:
        for name in ("user_id", "timestamp"):
            col = getattr(requests, name)
            if col is not None:
                cols[name] = pa.array(col)
    return pa.table(cols)


def resolve_catalogue(trace: Path, given: str | Path | None) -> Path:
    """The catalogue file: ``given``, else the trace's own beside it (a UserError when neither)."""
    from recvae.trace.format import catalogue_path

    if given is not None:
        return Path(given)
    own = catalogue_path(trace)
    if own.is_file():
        return own
    raise UserError(f"{trace}: object policies need a catalogue; pass --catalogue FILE "
                    f"(the trace's own, {own.name}, is not there)")  # fmt: skip


def run_object_replay(requests: Requests, config: ObjectReplayConfig, options: Any, *,
                      progress: bool = False) -> ObjectReplayResult:  # fmt: skip
    """Replay loaded ``requests`` through the object cache ``config`` (``options``: RunOptions)."""
    from simcache.objects.catalogue import load_catalogue
    from simcache.objects.engine import replay_objects
    from simcache.objects.report import summarize_objects
    from simcache.replay.run import describe_input, engine_input

    t0 = time.perf_counter()
    cat_path = resolve_catalogue(requests.path, options.catalogue)
    cat = load_catalogue(cat_path)
    if cat.dim != requests.dim:
        raise UserError(f"{cat_path}: catalogue vectors have dimension {cat.dim}, "
                        f"the requests of {requests.path} {requests.dim}")  # fmt: skip
    config.check_catalogue(len(cat))
    t1 = time.perf_counter()
    log = replay_objects(engine_input(requests), cat, config, progress=progress)
    t2 = time.perf_counter()
    if len(log) != len(requests):
        raise RuntimeError(f"object engine returned {len(log)} answers for {len(requests)} requests")
    summary = summarize_objects(log, user_id=requests.user_id)
    t3 = time.perf_counter()
    parameters = {**config.to_dict(), "params": dict(log.params), "catalogue": str(cat_path),
                  "vector_column": requests.vector_column, "sort": options.sort, "limit": options.limit}  # fmt: skip
    catalogue = {"path": str(cat_path), "objects": len(cat), "dim": cat.dim,
                 "bias": cat.bias is not None, "metadata": compact_metadata(cat.metadata)}  # fmt: skip
    return ObjectReplayResult(
        parameters=parameters, input=describe_input(requests), catalogue=catalogue, summary=summary,
        timing={"load_catalogue_s": t1 - t0, "replay_s": t2 - t1, "summary_s": t3 - t2,
                "requests_per_s": len(requests) / (t2 - t1) if t2 > t1 else None},
        log=log, requests=requests,
    )  # fmt: skip
