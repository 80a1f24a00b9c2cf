"""Parameter sweeps: replay a grid of (policy, capacity, radius[, k]) points in parallel processes.

Policies of both cache families (:mod:`simcache.replay.families`) may share one grid: a query
policy's points span capacities x radii; an object policy's span capacities x ``ks`` (answer
sizes), and the radii too when its dissimilarity is ``radius`` (else they do not apply to it).

:func:`run_sweep` is the Python API behind ``simcache sweep``. The trace is validated once in the
calling process; each worker process then memory-maps it itself (it is never pickled) and replays
the points it is given. Outputs under ``out``:

- ``results.csv`` and ``results.parquet``: one row per point (see :data:`ROW_COLUMNS`);
- ``points/<policy>_C<capacity>_r<radius>.json`` (object points: ``..._C<capacity>_k<k>.json``):
  the full JSON summary of every point;
- ``curves_capacity.png`` (hit ratio, cross-user hit ratio and mean service cost against capacity)
  when several capacities are swept, ``curves_radius.png`` likewise against the radius;
  ``object_curves_capacity.png`` / ``object_curves_k.png``: NAG, overlap@k and mean cost of the
  object points (see :mod:`simcache.replay.curves`);
- ``sweep.json``: the sweep's parameters.

Grids are written as comma lists (``100,1000,10000``) or ranges: ``START:STOP:STEP`` (arithmetic,
STOP included when reached) or ``START:STOP:xFACTOR`` (geometric, e.g. ``100:100000:x10``).
Similarity LRU has no stack property, so every capacity is its own replay.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import math
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recvae import __version__
from recvae.errors import UserError
from recvae.storage import atomic_path
from simcache.jsonout import write_json
from simcache.replay.curves import plot_curves
from simcache.replay.report import write_parquet
from simcache.replay import families
from simcache.cache.threads import available_cores
from simcache.replay.run import RunOptions, check_overlap_k, run_replay, split_settings
from simcache.trace.io import load_requests

RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
POINTS_DIR = "points"
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


# ----------------------------------------------------------------------------------------------
# Grids
# ----------------------------------------------------------------------------------------------
def parse_grid(spec: str | Sequence[Any], *, kind: type = float, name: str = "value") -> list[Any]:
    """Parse a comma list or a ``START:STOP:STEP`` / ``START:STOP:xFACTOR`` range (STOP inclusive)."""
    if not isinstance(spec, str):
        values = [kind(v) for v in spec]
    else:
        values = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if ":" in part:
                values.extend(_parse_range(part, kind, name))
            else:
                values.append(_parse_number(part, kind, name))
    if not values:
        raise UserError(f"empty {name} list {spec!r}")
    out: list[Any] = []
    for v in values:  # de-duplicate, keep order
        if v not in out:
            out.append(v)
    return out


def _parse_number(text: str, kind: type, name: str) -> Any:
    try:
        x = float(text)
    except ValueError:
        raise UserError(f"bad {name} {text!r}: not a number") from None
    if kind is int:
        if not math.isfinite(x) or x != int(x):
            raise UserError(f"bad {name} {text!r}: not an integer")
        return int(x)
    return x


def _parse_range(part: str, kind: type, name: str) -> list[Any]:
    bits = part.split(":")
    if len(bits) != 3:
        raise UserError(f"bad {name} range {part!r}: use START:STOP:STEP or START:STOP:xFACTOR")
    start = _parse_number(bits[0], float, name)
    stop = _parse_number(bits[1], float, name)
    step_text = bits[2].strip()
    geometric = step_text[:1].lower() == "x"
    step = _parse_number(step_text[1:] if geometric else step_text, float, name)
    if not all(math.isfinite(v) for v in (start, stop, step)):
        raise UserError(f"bad {name} range {part!r}: START, STOP and STEP must be finite (list inf on its own)")
    if geometric:
        if start <= 0 or step <= 1:
            raise UserError(f"bad {name} range {part!r}: a geometric range needs START > 0 and FACTOR > 1")
        n = int(math.floor(math.log(stop / start) / math.log(step) + 1e-9)) + 1 if stop >= start else 0
        raw = [start * step**i for i in range(max(n, 0))]
    else:
        if step <= 0:
            raise UserError(f"bad {name} range {part!r}: STEP must be > 0")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1 if stop >= start else 0
        raw = [start + i * step for i in range(max(n, 0))]
    if not raw:
        raise UserError(f"bad {name} range {part!r}: STOP is below START")
    if len(raw) > 100_000:
        raise UserError(f"bad {name} range {part!r}: too many values ({len(raw)})")
    if kind is int:
        return [int(round(v)) for v in raw]
    return [float(f"{v:.12g}") for v in raw]  # 0.1 + 2*0.1 -> 0.3, not 0.30000000000000004


# ----------------------------------------------------------------------------------------------
# Points
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One grid point: a complete, validated replay configuration (of either family)."""

    config: Any  # ReplayConfig or ObjectReplayConfig

    @property
    def family(self) -> str:
        """The point's cache family."""
        return families.family_of_config(self.config).name

    @property
    def name(self) -> str:
        """File-name stem of the point's JSON summary."""
        c = self.config
        r = re.sub(r"[^0-9a-zA-Z.+-]", "_", f"{c.radius:g}")
        if self.family == "object":
            return f"{c.policy}_C{c.capacity}_k{c.k}" + (f"_r{r}" if c.dissimilarity == "radius" else "")
        return f"{c.policy}_C{c.capacity}_r{r}"


def policy_params(policy: str, params: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``params`` that ``policy`` declares (sweep options apply to the policies that
    know them)."""
    declared = families.policy_params(policy)
    return {k: v for k, v in params.items() if k in declared}


def family_bases(config: Any, policies: Sequence[str]) -> dict[str, Any]:
    """One base config per family of ``policies``: ``config`` (one config, or several of different
    families) where given, else the family's defaults with its first policy."""
    given = list(config) if isinstance(config, (list, tuple)) else [] if config is None else [config]
    bases: dict[str, Any] = {}
    for cfg in given:
        fam = families.family_of_config(cfg).name
        if fam in bases:
            raise UserError(f"two base configs of the {fam} family given")
        bases[fam] = cfg
    for p in policies:
        fam = families.family_of(p)
        if fam.name not in bases:
            bases[fam.name] = fam.config_type(policy=p, capacity=1)
    return bases


def _with(config: Any, **changes: Any) -> Any:
    """A validated copy of a config of either family."""
    if hasattr(config, "with_"):
        return config.with_(**changes)
    return dataclasses.replace(config, **changes)


def grid_points(base: Any, policies: Sequence[str], capacities: Sequence[int], radii: Sequence[float],
                params: dict[str, Any], ks: Sequence[int] | None = None) -> list[Point]:  # fmt: skip
    """Every point as a validated config: the base of the policy's family (``base``: one config, or
    one per family, see :func:`family_bases`) with the point's values and the ``params`` its policy
    declares, over the parameters the base was given that it declares (an option no policy
    declares is refused). Query points: radius x capacity; object
    points: k (``ks``, default the base's) x capacity, and x radius with ``dissimilarity="radius"``."""
    unused = set(params) - {name for p in policies for name in policy_params(p, params)}
    if unused:
        raise UserError(f"option(s) {', '.join(sorted(unused))} apply to none of the policies {', '.join(policies)}")
    bases = family_bases(base, policies)
    if ks is not None and "object" not in {families.family_of(p).name for p in policies}:
        raise UserError(f"k (answer size) applies to object policies only, not to {', '.join(policies)}")
    points = []
    for p in policies:
        fam = families.family_of(p).name
        b = bases[fam]
        given = b.given_params() if hasattr(b, "given_params") else dict(b.params)
        pp = {**policy_params(p, given), **policy_params(p, params)}  # the base's parameters, then the grid's
        if fam == "object":
            rs = radii if b.dissimilarity == "radius" else [b.radius]
            points += [Point(_with(b, policy=p, capacity=c, k=k, radius=r, params=pp))
                       for k in (ks or [b.k]) for r in rs for c in capacities]  # fmt: skip
        else:
            points += [Point(_with(b, policy=p, capacity=c, radius=r, params=pp)) for r in radii for c in capacities]
    return points


@functools.lru_cache(maxsize=2)
def _worker_requests(path: str, vector_column: str | None, sort: bool, limit: int | None) -> Any:
    """Per-process cache: each worker memory-maps the (already validated) file once."""
    req = load_requests(path, vector_column=vector_column, sort=sort, validate=False)
    return req.head(limit) if limit is not None else req


def _init_worker(threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:  # pragma: no cover - faiss is a dependency
        pass
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):  # pragma: no cover
        pass


def run_point(path: str, point: Point, options: RunOptions, points_dir: str | None) -> dict[str, Any]:
    """Replay one point (in a worker) and return its results-table row."""
    requests = _worker_requests(path, options.vector_column, options.sort, options.limit)
    result = run_replay(requests, point.config, dataclasses.replace(options, limit=None, validate=False))
    result.parameters.update({"sort": options.sort, "limit": options.limit})
    if points_dir is not None:
        write_json(Path(points_dir) / f"{point.name}.json", result.to_dict())
    return result_row(result)


def result_row(result: Any) -> dict[str, Any]:
    """Flatten a replay's result (either family) into one results-table row (see ROW_COLUMNS)."""
    if getattr(result, "family", "query") == "object":
        return object_row(result)
    s = result.summary
    p = result.parameters
    q = s.distance["hits"]["quantiles"]
    row = {
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
    return row


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


def default_jobs() -> int:
    """min(usable cores, 4)."""
    return max(1, min(available_cores(), 4))


def run_sweep(
    trace: str | Path,
    *,
    policies: str | Sequence[str] = "lru",
    capacities: str | Sequence[int],
    radii: str | Sequence[float] = (0.0,),
    params: dict[str, Any] | None = None,
    ks: str | Sequence[int] | None = None,
    out: str | Path,
    jobs: int | None = None,
    config: Any = None,
    options: RunOptions | None = None,
    plots: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Replay every (policy, capacity, radius) point and write the results table and curves.

    ``policies``, ``capacities``, ``radii``: lists or grid strings (see the module docstring).
    ``params`` are policy options; each point receives those its policy declares. ``ks``: answer
    sizes of the object policies (default: their base config's k). ``config``: the other replay
    settings (metric, cost, index, engine, seed, ...; its policy, capacity and radius are replaced
    by each point's): a :class:`ReplayConfig`, an :class:`~simcache.objects.config.ObjectReplayConfig`
    or one of each for a mixed grid (a family without one gets its defaults); ``options`` how
    requests are read and summarised (``catalogue`` for object policies). Fields of the query
    config and of ``options`` may also be given as keywords. Returns the results table (one row per point, sorted
    by policy, radius, capacity). Every point's configuration is validated before any replay.

    With ``jobs > 1`` points run in ``spawn``-started worker processes (forking after FAISS/OpenMP
    started is unsafe), so a script that calls this needs the usual ``if __name__ == "__main__":``
    guard. Unless the config fixes ``threads``, each worker replays on ``cores // jobs`` threads
    (one when there are at least as many workers as cores). Any failing point stops the sweep.
    """
    pols = [p.strip() for p in policies.split(",") if p.strip()] if isinstance(policies, str) else list(policies)
    if not pols:
        raise UserError("no policy given")
    fams = {families.family_of(p).name for p in pols}
    caps = parse_grid(capacities, kind=int, name="capacity")
    rads = parse_grid(radii, kind=float, name="radius")
    k_grid = None if ks is None else parse_grid(ks, kind=int, name="k")
    config_changes, option_changes = split_settings(settings)
    bases = family_bases(config, pols)
    if config_changes:
        if "query" not in bases:
            raise UserError(f"setting(s) {', '.join(sorted(config_changes))} apply to query policies only")
        bases["query"] = bases["query"].with_(**config_changes)
    options = dataclasses.replace(options or RunOptions(), **option_changes)
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise UserError(f"jobs must be >= 1, got {jobs}")
    points = grid_points(list(bases.values()), pols, caps, rads, dict(params or {}), k_grid)

    # Validate the file once here (a full NaN/inf scan); workers skip the scan.
    path = Path(trace)
    req = load_requests(path, vector_column=options.vector_column, sort=options.sort)
    n = min(len(req), options.limit) if options.limit is not None else len(req)
    check_overlap_k(options.overlap_k, req.topk)
    if "object" in fams:
        _check_catalogue(req, options, [pt.config for pt in points if pt.family == "object"])
    del req

    out = Path(out)
    points_dir = out / POINTS_DIR
    points_dir.mkdir(parents=True, exist_ok=True)
    say = echo or (lambda _m: None)
    jobs = min(jobs, len(points))
    if jobs > 1 and "query" in bases and bases["query"].threads is None:
        per_worker = max(1, available_cores() // jobs)
        points = [Point(pt.config.with_(threads=per_worker)) if pt.family == "query" else pt for pt in points]
    say(f"sweep: {len(points)} points ({len(pols)} policies x {len(caps)} capacities x {len(rads)} radii"
        + (f" x {len(k_grid)} k" if k_grid else "") + f") over {n:,} requests, {jobs} process(es)")
    t0 = time.perf_counter()
    rows = _run_points(str(path), points, options, str(points_dir), jobs, progress)
    elapsed = time.perf_counter() - t0

    df = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    order = {p: i for i, p in enumerate(pols)}
    df = (df.assign(_o=df["policy"].map(order)).sort_values(["_o", "radius", "k", "capacity"], kind="stable")
          .drop(columns="_o").reset_index(drop=True))
    with atomic_path(out / RESULTS_CSV) as tmp:
        df.to_csv(tmp, index=False)
    write_parquet(df, out / RESULTS_PARQUET)
    shared = {}
    for fam, b in bases.items():
        described = b.describe() if hasattr(b, "describe") else b.to_dict()
        shared[fam] = {k: v for k, v in described.items() if k not in ("policy", "capacity", "radius", "params")}
    write_json(out / "sweep.json", {
        "simcache_version": __version__,
        "trace": str(path),
        "requests": n,
        "policies": pols,
        "capacities": caps,
        "radii": rads,
        "ks": k_grid,
        "jobs": jobs,
        "elapsed_s": elapsed,
        "loading": {"vector_column": options.vector_column, "sort": options.sort, "limit": options.limit,
                    "catalogue": None if options.catalogue is None else str(options.catalogue)},
        "replay": {**shared.get("query", {}), "params": dict(params or {}), "window": options.window,
                   "overlap_k": options.overlap_k},
        "object_replay": shared.get("object"),
    })  # fmt: skip
    if plots:
        plot_curves(df, out)
    return df


def _check_catalogue(req: Any, options: RunOptions, configs: list[Any]) -> None:
    """Before any replay: the object points' catalogue exists, has the requests' dimension and at
    least as many objects as the largest capacity and k."""
    from simcache.objects.catalogue import load_catalogue
    from simcache.replay.objects import resolve_catalogue

    path = resolve_catalogue(req.path, options.catalogue)
    cat = load_catalogue(path)
    if cat.dim != req.dim:
        raise UserError(f"{path}: catalogue vectors have dimension {cat.dim}, the requests of {req.path} {req.dim}")
    for cfg in configs:
        cfg.check_catalogue(len(cat))


def _run_points(path: str, points: list[Point], options: RunOptions, points_dir: str, jobs: int,
                progress: bool) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(points), desc="sweep", unit="point", disable=not progress)
    rows: list[dict[str, Any]] = []
    # Largest caches first: they take longest, so the pool finishes more evenly.
    ordered = sorted(points, key=lambda pt: -pt.config.capacity)
    try:
        if jobs == 1:
            for pt in ordered:
                rows.append(run_point(path, pt, options, points_dir))
                bar.update()
            return rows
        threads = max(1, available_cores() // jobs)
        ctx = multiprocessing.get_context("spawn")  # fork after faiss/OpenMP started is unsafe
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                    initargs=(threads,)) as pool:
            futures = {pool.submit(run_point, path, pt, options, points_dir): pt for pt in ordered}
            try:
                for fut in cf.as_completed(futures):
                    rows.append(fut.result())
                    bar.update()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return rows
    finally:
        bar.close()


__all__ = ["OBJECT_COLUMNS", "Point", "ROW_COLUMNS", "family_bases", "grid_points", "object_row", "parse_grid",
           "policy_params", "result_row", "run_point", "run_sweep"]  # fmt: skip
