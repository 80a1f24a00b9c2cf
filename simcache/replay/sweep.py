"""Parameter sweeps: replay a grid of (policy, capacity, radius) points, resumably, locally or on Ray.

Policies of both cache families (:mod:`simcache.replay.families`) may share one grid: a query
policy's points span capacities x radii; an object policy's span capacities x ``ks`` (answer
sizes), and the radii too when its dissimilarity is ``radius`` (else they do not apply to it).

:func:`run_sweep` is the Python API behind ``simcache sweep``. The trace is validated and
checksummed once in the calling process (the driver); the points then run on a *backend*:

- ``local`` (default): worker processes on this machine (:mod:`simcache.replay.pool`);
- ``ray``: one Ray task per point, on a local Ray instance or, with ``address``, an existing
  cluster (:mod:`simcache.replay.ray_backend`; the optional extra ``simcache[ray]``). Workers read
  the trace by its path, which must then name the same file on every node (a shared file system),
  or, with ``ship_trace``, from Ray's object store, copied once per node.

Workers memory-map the trace themselves (it is never pickled) and return each point's document;
the driver writes it, atomically, as soon as the point ends. Results are the same, bit for bit, on
both backends (only the timing columns, which are measurements, differ). Outputs under ``out``:

- ``points/<policy>_C<capacity>_r<radius>.json`` (object points: ``..._C<capacity>_k<k>.json``):
  every point's JSON summary, with the stamp
  that lets a resumed sweep trust it (see :mod:`simcache.replay.points`);
- ``results.csv`` and ``results.parquet``: one row per point (see :data:`ROW_COLUMNS`), assembled
  from the point files at the end;
- ``curves_capacity.png`` (hit ratio, cross-user hit ratio and mean service cost against capacity)
  when several capacities are swept, ``curves_radius.png`` likewise against the radius;
  ``object_curves_capacity.png`` / ``object_curves_k.png``: NAG, overlap@k and mean cost of the
  object points (see :mod:`simcache.replay.curves`);
- ``sweep.json``: the sweep's parameters, the trace's sha256 and its status (``running``,
  ``complete`` or ``incomplete`` with the failed points).

**Resuming and faults.** The folder belongs to one sweep (:mod:`recvae.outputs`): it is locked
while the sweep runs, and a folder that holds a sweep is refused unless ``resume`` (keep every
point file that is intact and was computed for a point of this grid with the same settings and
trace; recompute the others) or ``overwrite`` (remove the previous sweep first) is given. A worker
killed mid-point is replaced and its point retried (``max_attempts`` tries); a point that fails
is reported at the end, the others go on, and :class:`SweepFailed` is raised after the results of
the others are written. Points no longer in the grid are removed, so the folder holds one sweep.

Grids are written as comma lists (``100,1000,10000``) or ranges: ``START:STOP:STEP`` (arithmetic,
STOP included when reached) or ``START:STOP:xFACTOR`` (geometric, e.g. ``100:100000:x10``).
Similarity LRU has no stack property, so every capacity is its own replay.
"""

from __future__ import annotations

import dataclasses
import math
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
from recvae.outputs import clear, foreign_files, is_empty, owned_folder
from recvae.storage import atomic_path
from simcache.cache.config import ReplayConfig, policy_class
from simcache.replay import families
from simcache.cache.threads import available_cores
from simcache.jsonout import to_jsonable, write_json
from simcache.replay.curves import plot_curves
from simcache.replay.points import (
    OBJECT_COLUMNS,
    ROW_COLUMNS,
    describe_config,
    TIMING_COLUMNS,
    PointTask,
    matches,
    read_point,
    result_row,
    trace_checksum,
    write_point,
)
from simcache.replay.pool import run_local
from simcache.replay.report import write_parquet
from simcache.replay.run import RunOptions, check_overlap_k, split_settings
from simcache.trace.io import load_requests

RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
POINTS_DIR = "points"
SWEEP_JSON = "sweep.json"
#: Everything a sweep writes into its folder (glob patterns, relative to it).
SWEEP_FILES = (RESULTS_CSV, RESULTS_PARQUET, SWEEP_JSON, "curves_*.png", f"{POINTS_DIR}/*.json")
BACKENDS = ("local", "ray")


class SweepFailed(Exception):
    """Some points failed; the others were written. ``table``: their results; ``failures``:
    point name -> one-line error."""

    def __init__(self, table: pd.DataFrame, failures: dict[str, str], total: int) -> None:
        self.table = table
        self.failures = failures
        lines = "; ".join(f"{k}: {v}" for k, v in sorted(failures.items()))
        super().__init__(f"{len(failures)} of {total} points failed ({lines})")


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


#: Most values one range may expand to (a sweep point each).
MAX_RANGE_VALUES = 100_000


def _check_count(part: str, name: str, n: int) -> None:
    """Refuse a range of more than :data:`MAX_RANGE_VALUES` values before building it."""
    if n > MAX_RANGE_VALUES:
        raise UserError(f"bad {name} range {part!r}: {n:,} values, at most {MAX_RANGE_VALUES:,} allowed")


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
        _check_count(part, name, n)
        raw = [start * step**i for i in range(max(n, 0))]
    else:
        if step <= 0:
            raise UserError(f"bad {name} range {part!r}: STEP must be > 0")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1 if stop >= start else 0
        _check_count(part, name, n)
        raw = [start + i * step for i in range(max(n, 0))]
    if not raw:
        raise UserError(f"bad {name} range {part!r}: STOP is below START")
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




# ----------------------------------------------------------------------------------------------
# Running a sweep
# ----------------------------------------------------------------------------------------------
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
    backend: str = "local",
    address: str | None = None,
    ship_trace: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    max_attempts: int = 3,
    plots: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    **settings: Any,
) -> pd.DataFrame:
    """Replay every (policy, capacity, radius) point and write the point files, results table and curves.

    ``policies``, ``capacities``, ``radii``: lists or grid strings (see the module docstring).
    ``params`` are policy options; each point receives those its policy declares. ``ks``: answer
    sizes of the object policies (default: their base config's k). ``config``: the other replay
    settings (metric, cost, index, engine, seed, ...; its policy, capacity and radius are replaced
    by each point's): a :class:`ReplayConfig`, an :class:`~simcache.objects.config.ObjectReplayConfig`
    or one of each for a mixed grid (a family without one gets its defaults); ``options`` how
    requests are read and summarised (``catalogue`` for object policies). Fields of the query
    config and of ``options`` may also be given as keywords. Returns the results table (one row per point, sorted
    by policy, radius, capacity). Every point's configuration is validated before any replay.

    ``backend``: ``"local"`` or ``"ray"`` (``address``: join that Ray cluster instead of starting a
    local instance; ``ship_trace``: send the trace through Ray's object store instead of by path).
    ``jobs``: parallel workers (default min(cores, 4); on a Ray cluster: its CPUs); each local
    worker's replays use at most ``cores // jobs`` threads (one when workers >= cores). The local backend starts its workers with
    ``spawn``, so a script that calls this needs the usual ``if __name__ == "__main__":`` guard.
    ``resume`` / ``overwrite``: what to do with a folder that holds a sweep (see the module docstring).

    Returns the results table (one row per point, sorted by policy, radius, capacity). Raises
    :class:`SweepFailed` (after writing everything else) when some points failed.
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
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "ray" and (address is not None or ship_trace):
        raise UserError("--address and --ship-trace apply to --backend ray only")
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other: resume keeps the computed points, "
                        "overwrite removes them")  # fmt: skip
    if jobs is not None and int(jobs) < 1:
        raise UserError(f"jobs must be >= 1, got {jobs}")
    if max_attempts < 1:
        raise UserError(f"max attempts must be >= 1, got {max_attempts}")
    if backend == "ray":
        from simcache.replay.ray_backend import import_ray

        import_ray()  # the missing-extra error before any work
    points = grid_points(list(bases.values()), pols, caps, rads, dict(params or {}), k_grid)

    # Validate the file once here (a full NaN/inf scan); workers skip the scan.
    path = Path(trace)
    req = load_requests(path, vector_column=options.vector_column, sort=options.sort)
    n = min(len(req), options.limit) if options.limit is not None else len(req)
    check_overlap_k(options.overlap_k, req.topk)
    if "object" in fams:
        _check_catalogue(req, options, [pt.config for pt in points if pt.family == "object"])
    del req
    sha = trace_checksum(path)

    say = echo or (lambda _m: None)
    out = Path(out)
    shared = {fam: {k: v for k, v in describe_config(b).items() if k not in ("policy", "capacity", "radius", "params")}
              for fam, b in bases.items()}  # fmt: skip
    identity = to_jsonable({
        "trace_sha256": sha,
        "requests": n,
        "loading": {"vector_column": options.vector_column, "sort": options.sort, "limit": options.limit,
                    "catalogue": None if options.catalogue is None else str(options.catalogue)},
        "replay": {**shared.get("query", {}), "params": dict(params or {}), "window": options.window,
                   "overlap_k": options.overlap_k},
        "object_replay": shared.get("object"),
        "ks": k_grid,
    })  # fmt: skip
    record = {"simcache_version": __version__, "trace": _trace_reference(path, out), **identity, "policies": pols,
              "capacities": caps, "radii": rads, "backend": backend}  # fmt: skip
    with owned_folder(out, command="simcache sweep", echo=say):
        _prepare_folder(out, identity, resume=resume, overwrite=overwrite, echo=say)
        write_json(out / SWEEP_JSON, {**record, "status": "running"})
        points_dir = out / POINTS_DIR
        points_dir.mkdir(parents=True, exist_ok=True)
        names = {pt.name for pt in points}
        for f in points_dir.glob("*.json"):  # points of an earlier grid: not this sweep's
            if f.stem not in names:
                f.unlink()
        docs = _reusable_points(points_dir, points, sha, options, say)
        todo = [pt for pt in points if pt.name not in docs]
        workers = _workers(backend, address, jobs, len(todo))
        say(f"sweep: {len(points)} points ({len(pols)} policies x {len(caps)} capacities x {len(rads)} radii) "
            f"over {n:,} requests" + (f", {len(docs)} already done" if docs else "")
            + f"; backend {backend}" + (f" at {address}" if address else "")
            + (f", {workers} worker(s)" if workers else ""))  # fmt: skip
        t0 = time.perf_counter()
        failures = _run_points(path, sha, todo, docs, len(points), options, points_dir, backend=backend,
                               address=address, jobs=workers, ship_trace=ship_trace, max_attempts=max_attempts,
                               progress=progress)  # fmt: skip
        elapsed = time.perf_counter() - t0
        df = results_table(docs, points, pols)
        with atomic_path(out / RESULTS_CSV) as tmp:
            df.to_csv(tmp, index=False)
        write_parquet(df, out / RESULTS_PARQUET)
        if plots and len(df):
            plot_curves(df, out)
        write_json(out / SWEEP_JSON, {**record, "jobs": workers, "elapsed_s": elapsed,
                                      "status": "incomplete" if failures else "complete",
                                      "failures": failures})  # fmt: skip
    if failures:
        raise SweepFailed(df, failures, len(points))
    return df


def _workers(backend: str, address: str | None, jobs: int | None, todo: int) -> int | None:
    """Parallel workers: ``jobs`` (default min(cores, 4)) but no more than points to compute;
    None on a Ray cluster without ``jobs`` (its CPUs)."""
    if backend == "ray" and address is not None and jobs is None:
        return None
    return max(1, min(default_jobs() if jobs is None else int(jobs), todo))


def _trace_reference(trace: Path, out: Path) -> str:
    """The trace's path as ``sweep.json`` records it: relative to the sweep folder when the trace
    lies in the folder that holds it (a report such as the demo's, moved or built in a temporary
    folder, still points at its own trace), else absolute."""
    trace, home = Path(trace).resolve(), Path(out).resolve().parent
    if trace.is_relative_to(home):
        return Path(os.path.relpath(trace, Path(out).resolve())).as_posix()
    return str(trace)


def _prepare_folder(out: Path, identity: dict[str, Any], *, resume: bool, overwrite: bool,
                    echo: Callable[[str], None]) -> None:  # fmt: skip
    """Refuse, clear or check a folder that already holds files; drop a previous run's results."""
    if is_empty(out):
        return
    foreign = foreign_files(out, SWEEP_FILES)
    if foreign and not overwrite:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise UserError(f"{out} holds files that a sweep does not write ({shown}); choose another --out")
    old = _read_record(out / SWEEP_JSON)
    if overwrite:
        clear(out, SWEEP_FILES)  # refuses, removing nothing, when other files are there
        echo(f"removed the previous sweep in {out}")
        return
    if not resume:
        state = "a finished sweep" if old and old.get("status") == "complete" else "an unfinished sweep"
        done = len(list((out / POINTS_DIR).glob("*.json")))
        raise UserError(f"{out} already holds {state} ({done} point file(s)); pass --resume to continue it "
                        "(its intact, matching points are kept) or --overwrite to replace it")  # fmt: skip
    if old is not None:
        diff = [k for k in sorted(set(identity) | set(old)) if k in identity and old.get(k) != identity[k]]
        if diff:
            detail = "; ".join(_difference(k, old.get(k), identity[k]) for k in diff)
            raise UserError(f"cannot resume the sweep in {out}: {detail}; pass --overwrite to replace it")
    for name in (RESULTS_CSV, RESULTS_PARQUET, "curves_capacity.png", "curves_radius.png"):
        (out / name).unlink(missing_ok=True)  # rebuilt from the points at the end


def _difference(key: str, old: Any, new: Any) -> str:
    if key == "trace_sha256":
        return "it was computed on another trace file (sha256 differs)"
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return ", ".join(f"{key}.{k} is {old.get(k)!r} there, {new.get(k)!r} now" for k in keys)
    return f"{key} is {old!r} there, {new!r} now"


def _read_record(path: Path) -> dict[str, Any] | None:
    import json

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _reusable_points(points_dir: Path, points: list[Point], sha: str, options: RunOptions,
                     echo: Callable[[str], None]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The documents of the grid's points already in ``points_dir`` that can be trusted; the
    others (corrupt, or computed for other settings) are removed and will be recomputed."""
    docs: dict[str, dict[str, Any]] = {}
    bad = []
    for pt in points:
        f = points_dir / f"{pt.name}.json"
        if not f.exists():
            continue
        doc = read_point(f)
        if doc is not None and matches(doc, pt, sha, options):
            docs[pt.name] = doc
        else:
            bad.append(f.name)
            f.unlink()
    if bad:
        echo(f"recomputing {len(bad)} point file(s) that are corrupt or were computed differently: "
             + ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))  # fmt: skip
    return docs


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


def _run_points(path: Path, sha: str, todo: list[Point], docs: dict[str, dict[str, Any]], total: int,
                options: RunOptions, points_dir: Path, *, backend: str, address: str | None, jobs: int | None,
                ship_trace: bool, max_attempts: int, progress: bool) -> dict[str, str]:  # fmt: skip
    """Compute ``todo`` on the backend, writing each point file as it arrives; returns the failures."""
    from tqdm.auto import tqdm

    by_name = {pt.name: pt for pt in todo}
    failures: dict[str, str] = {}
    bar = tqdm(total=total, initial=total - len(todo), desc="sweep", unit="point", disable=not progress)

    def on_result(name: str, doc: dict[str, Any]) -> None:
        if doc["sweep"]["trace_sha256"] != sha:
            failures[name] = (f"the worker on {doc['sweep'].get('host')} read a different file at {path} "
                              "(sha256 differs); use a shared file system or --ship-trace")  # fmt: skip
        elif not matches(doc, by_name[name], sha, options):
            failures[name] = "the worker returned a result for other settings"
        else:
            write_point(points_dir / f"{name}.json", doc)
            docs[name] = doc
        bar.update()
        if failures:
            bar.set_postfix(failed=len(failures))

    def on_error(name: str, message: str) -> None:
        failures[name] = message
        bar.update()
        bar.set_postfix(failed=len(failures))

    # Largest caches first: they take longest, so the workers finish more evenly.
    items = [(pt.name, pt) for pt in sorted(todo, key=lambda pt: -pt.config.capacity)]
    try:
        if not items:
            return failures
        if backend == "ray":
            from simcache.replay.ray_backend import ShippedTrace, ray_session, run_ray

            threads = max(1, available_cores() // jobs) if address is None and jobs else 1
            with ray_session(address, jobs if address is None else None):
                trace = ShippedTrace.put(path, sha) if ship_trace else str(path.absolute())
                run_ray(items, PointTask(trace, options), address=address, jobs=jobs, threads=threads,
                        on_result=on_result, on_error=on_error, max_attempts=max_attempts)  # fmt: skip
        else:
            assert jobs is not None
            run_local(items, PointTask(str(path.absolute()), options), jobs=jobs,
                      threads=max(1, available_cores() // jobs), on_result=on_result, on_error=on_error,
                      max_attempts=max_attempts)  # fmt: skip
        return failures
    finally:
        bar.close()


def results_table(docs: dict[str, dict[str, Any]], points: list[Point], policies: Sequence[str]) -> pd.DataFrame:
    """The results table from the point documents: one row per computed point, sorted by policy
    (in the given order), radius and capacity."""
    rows = [docs[pt.name]["row"] for pt in points if pt.name in docs]
    df = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    order = {p: i for i, p in enumerate(policies)}
    return (df.assign(_o=df["policy"].map(order)).sort_values(["_o", "radius", "k", "capacity"], kind="stable")
            .drop(columns="_o").reset_index(drop=True))  # fmt: skip


__all__ = ["BACKENDS", "OBJECT_COLUMNS", "Point", "family_bases", "ROW_COLUMNS", "SweepFailed", "TIMING_COLUMNS", "grid_points", "parse_grid",
           "plot_curves", "policy_params", "result_row", "results_table", "run_sweep"]
