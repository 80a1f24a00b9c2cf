"""Sweep points as files: computing one point, writing it once, trusting it again only when intact.

A worker (a local process or a Ray task) runs :class:`PointTask` on a :class:`~simcache.replay.sweep.Point`
and returns the point's *document*: the replay's JSON summary plus a ``sweep`` stamp (the point's
configuration, how the requests were read, and the sha256 of the trace file the worker actually
read) and the point's results-table ``row``. The driver alone writes documents, atomically, to
``points/<name>.json`` with a ``digest`` of their content, as soon as each point ends. A resumed
sweep reuses a point file only when :func:`read_point` finds it intact (parses, digest matches) and
:func:`matches` finds its stamp equal to the point it stands for; anything else is recomputed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recvae.storage import HOST, atomic_path, sha256_file
from simcache.jsonout import to_jsonable
from simcache.replay.run import ReplayResult, RunOptions, run_replay
from simcache.trace.io import load_requests

if TYPE_CHECKING:
    from simcache.replay.sweep import Point

POINT_FORMAT = "simcache-sweep-point"
POINT_VERSION = 1
#: Columns of the results table, one row per point (the timing columns are measurements: they
#: differ between runs; every other column is decided by the point and the trace).
ROW_COLUMNS = (
    "policy", "family", "capacity", "radius", "k", "requests", "hits", "exact_hits", "approx_hits", "misses",
    "hit_ratio", "exact_hit_ratio", "approx_hit_ratio", "miss_ratio", "same_user_hit_ratio",
    "other_user_hit_ratio", "mean_service_cost",
    "mean_approx_cost_hits", "d_hits_p50", "d_hits_p95", "overlap_approx_mean", "replay_s",
    "nag", "mean_cost", "mean_gain", "local_share", "overlap_mean", "exact_answer_ratio",
    "requests_per_s", "params",
)
#: columns of an object point's row (the others are the query family's, None there)
OBJECT_COLUMNS = ("nag", "mean_cost", "mean_gain", "local_share", "overlap_mean", "exact_answer_ratio")
TIMING_COLUMNS = ("replay_s", "requests_per_s")


def loading_stamp(options: RunOptions) -> dict[str, Any]:
    """What of ``options`` decides a point's numbers (all but the already-done validation scan)."""
    d = options.describe()
    d.pop("validate", None)
    return d


@functools.lru_cache(maxsize=8)
def _checksum(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def trace_checksum(path: str | os.PathLike) -> str:
    """sha256 of the trace file (computed once per process while the file is unchanged)."""
    st = os.stat(path)
    return _checksum(os.fspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _requests(path: str, vector_column: str | None, sort: bool, limit: int | None) -> Any:
    """Per-process cache: each worker memory-maps the (already validated) file once."""
    req = load_requests(path, vector_column=vector_column, sort=sort, validate=False)
    return req.head(limit) if limit is not None else req


@dataclass(frozen=True)
class PointTask:
    """What a worker needs to compute points: the trace and how to read it.

    ``trace``: its path on the worker's file system, or a
    :class:`~simcache.replay.ray_backend.ShippedTrace` (anything with ``local_path()``). Calling
    the task replays one point and returns the point's document (see the module docstring). The
    trace is memory-mapped once per process and never pickled.
    """

    trace: Any
    options: RunOptions

    def __call__(self, point: Point) -> dict[str, Any]:
        o = self.options
        path = self.trace if isinstance(self.trace, str) else self.trace.local_path()
        if not os.path.exists(path):
            raise FileNotFoundError(f"trace {path} not found on host {HOST} (a cluster without a shared "
                                    "file system needs --ship-trace)")  # fmt: skip
        sha = trace_checksum(path)
        requests = _requests(path, o.vector_column, o.sort, o.limit)
        result = run_replay(requests, point.config, dataclasses.replace(o, limit=None, validate=False))
        result.parameters.update({"sort": o.sort, "limit": o.limit})
        return point_document(result, point, sha, o)


def point_document(result: ReplayResult, point: Point, trace_sha256: str, options: RunOptions) -> dict[str, Any]:
    """The JSON document of a finished point (without its digest)."""
    doc = {
        **result.to_dict(),
        "sweep": {
            "format": POINT_FORMAT,
            "version": POINT_VERSION,
            "point": point.name,
            "config": describe_config(point.config),
            "loading": loading_stamp(options),
            "trace_sha256": trace_sha256,
            "host": HOST,
        },
        "row": result_row(result),
    }
    return to_jsonable(doc)


def describe_config(config: Any) -> dict[str, Any]:
    """JSON-ready description of a point's configuration (either cache family)."""
    return config.describe() if hasattr(config, "describe") else config.to_dict()


def result_row(result: Any) -> dict[str, Any]:
    """Flatten a replay's result (either family) into one results-table row (see ROW_COLUMNS)."""
    if getattr(result, "family", "query") == "object":
        return object_row(result)
    s = result.summary
    p = result.parameters
    q = s.distance["hits"]["quantiles"]
    return {
        "policy": p["policy"],
        "family": "query",
        "capacity": p["capacity"],
        "radius": p["radius"],
        "k": None,
        **{k: s.counts[k] for k in ("requests", "hits", "exact_hits", "approx_hits", "misses",
                                     "hit_ratio", "exact_hit_ratio", "approx_hit_ratio", "miss_ratio")},
        "same_user_hit_ratio": None if s.provenance is None else s.provenance["same_user_hit_ratio"],
        "other_user_hit_ratio": None if s.provenance is None else s.provenance["other_user_hit_ratio"],
        "mean_service_cost": s.cost["mean_service_cost"],
        "mean_approx_cost_hits": s.cost["mean_approx_cost_hits"],
        "d_hits_p50": q["p50"],
        "d_hits_p95": q["p95"],
        "overlap_approx_mean": None if s.overlap is None else s.overlap["approx_hits"]["mean"],
        "replay_s": result.timing["replay_s"],
        **{c: None for c in OBJECT_COLUMNS},
        "requests_per_s": result.timing["requests_per_s"],
        "params": ";".join(f"{k}={v}" for k, v in sorted(p["params"].items())),
    }


def object_row(result: Any) -> dict[str, Any]:
    """An :class:`~simcache.replay.objects.ObjectReplayResult` as a results-table row: NAG, mean
    cost and gain, share of answer objects served locally, overlap@k and exact answers; the
    query family's columns are None."""
    s = result.summary
    p = result.parameters
    row = {c: None for c in ROW_COLUMNS}
    row.update({
        "policy": p["policy"], "family": "object", "capacity": p["capacity"], "radius": p["radius"], "k": p["k"],
        "requests": s.answers["requests"], "nag": s.cost["nag"], "mean_cost": s.cost["mean_cost"],
        "mean_gain": s.cost["mean_gain"], "local_share": s.objects["local_ratio"],
        "overlap_mean": s.quality["overlap_mean"], "exact_answer_ratio": s.answers["exact_ratio"],
        "replay_s": result.timing["replay_s"], "requests_per_s": result.timing["requests_per_s"],
        "params": ";".join(f"{k}={v}" for k, v in sorted(p["params"].items())),
    })  # fmt: skip
    return row


def _digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, allow_nan=False).encode()).hexdigest()


def write_point(path: str | os.PathLike, doc: dict[str, Any]) -> Path:
    """Write a point document with its digest, atomically."""
    dest = Path(path)
    body = {k: v for k, v in doc.items() if k != "digest"}
    text = json.dumps({**body, "digest": _digest(body)}, indent=2, allow_nan=False)
    with atomic_path(dest) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return dest


def read_point(path: str | os.PathLike) -> dict[str, Any] | None:
    """The point document in ``path``, or None when it is not an intact point file (unreadable,
    not JSON, no digest or a digest that does not match its content, missing fields)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        digest = doc.pop("digest")
        stamp = doc["sweep"]
        ok = (digest == _digest(doc) and stamp["format"] == POINT_FORMAT and stamp["version"] == POINT_VERSION
              and isinstance(doc["row"], dict))  # fmt: skip
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return doc if ok else None


def matches(doc: dict[str, Any], point: Point, trace_sha256: str, options: RunOptions) -> bool:
    """Whether an intact point document was computed for ``point`` on this trace, read this way."""
    stamp = doc["sweep"]
    return (stamp["point"] == point.name and stamp["trace_sha256"] == trace_sha256
            and stamp["config"] == to_jsonable(describe_config(point.config))
            and stamp["loading"] == to_jsonable(loading_stamp(options)))  # fmt: skip


__all__ = ["OBJECT_COLUMNS", "ROW_COLUMNS", "TIMING_COLUMNS", "PointTask", "describe_config", "object_row", "result_row", "matches", "point_document", "read_point", "trace_checksum", "write_point"]
