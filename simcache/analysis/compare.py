"""Several traces (one per model) side by side: every registered analysis, distance scales, sweeps.

:func:`compare_traces` is what ``simcache analyze compare`` calls. For each trace it runs every
analysis of :mod:`simcache.analysis.registry` (via :func:`~simcache.analysis.run.run_analyses`,
into ``<out>/<label>/`` with that trace's own ``report.md``) and lays the key numbers and figures
side by side in ``<out>/report.md``, ``compare.json`` and ``compare_*.png``.

**Normalisation.** Raw distances are not comparable across models (a VAE's means and a
factorisation's factors live on unrelated scales), so every distance is also given in units of
the space's *scale*: the median, over a seeded sample of at most ``scale_sample`` analysed points
(the rows the analyses run on: by default each user's latest embedding), of the Euclidean
distance to the nearest *other* analysed point (the point itself excluded; exact float64
distances, :func:`simcache.analysis.neighbors.knn`). Multiplying a trace by ``c`` multiplies
its scale and raw distances by ``c`` and leaves the normalised numbers unchanged.

**Sweeps at equal normalised radius** (``sweep``): the same grid of policies and capacities on
each trace, with radius = normalised radius x that trace's scale; a trace with an item catalogue
beside it also runs the object policies (an answer object costs its distance ``c_d = d``, a fetched
one ``c_d + c_f``) with the fetch cost ``c_f`` = normalised value x the median distance from a
request to its nearest catalogue object (objects and requests are different point sets: in RecVAE's
space the items sit several request scales away from the users). ``c_f`` is the distance an
object cache trades against a fetch, as the radius is for a query cache, so hit ratio and NAG are
read against the same normalised axis per model.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recvae.errors import UserError
from simcache.analysis.common import JSON_DIGITS, make_rng, subsample_indices
from simcache.analysis.registry import AnalysisOptions, get, names

REPORT_FILE = "report.md"
JSON_FILE = "compare.json"
SWEEP_DIR = "sweep"
#: The distance that scales the object cache's radius: requests to their nearest catalogue object.
OBJECT_SCALE = "request to nearest object, 50%"
#: Figures of the comparison report, by the analysis (or part) they show.
FIGURES = {"norms": "compare_norms.png", "angles": "compare_angles.png", "knn-radius": "compare_knn_radius.png",
           "gmm": "compare_gmm.png", "map": "compare_maps.png", "drift": "compare_drift.png",
           "sweep": "compare_sweep.png"}


@dataclass(frozen=True)
class SweepSpec:
    """The grid run on every trace: radii in normalised units (x each trace's scale)."""

    policies: tuple[str, ...] = ("lru",)
    capacities: tuple[int, ...] = (100,)
    radii: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    object_policies: tuple[str, ...] = ("greedy",)
    k: int = 10
    jobs: int | None = 1

    def __post_init__(self) -> None:
        if not self.policies and not self.object_policies:
            raise UserError("the sweep needs at least one policy")
        if not self.capacities or not self.radii:
            raise UserError("the sweep needs at least one capacity and one radius")
        if any(not (r >= 0 and math.isfinite(r)) for r in self.radii):
            raise UserError(f"normalised radii must be finite and >= 0, got {list(self.radii)}")


@dataclass(frozen=True)
class CompareConfig:
    """What :func:`compare_traces` runs: the analyses with their options, the sampling, the sweep."""

    analyses: tuple[str, ...] = field(default_factory=names)
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    sample: int | None = 20_000  # analysed rows per trace (None: all), as ``simcache analyze``
    scale_sample: int = 2_000  # points whose nearest-neighbour distance gives the scale
    labels: tuple[str, ...] | None = None  # one per trace (default: the model in the trace's metadata)
    sweep: SweepSpec | None = None

    @property
    def seed(self) -> int:
        return int(self.options.seed)


@dataclass
class Space:
    """One trace's results: label, model, scale, distance scales, analyses, sweep rows."""

    label: str
    path: Path
    model: str | None
    info: dict[str, Any]
    scale: dict[str, Any]
    distances: dict[str, float]
    results: dict[str, dict[str, Any]]
    sweep: list[dict[str, Any]] = field(default_factory=list)

    @property
    def s(self) -> float:
        """The normalising distance: the median nearest-neighbour distance."""
        return float(self.scale["median_nn"])


@dataclass
class CompareResult:
    """Every trace's :class:`Space`, in the order given, and the folder the report was written to."""

    spaces: list[Space]
    config: CompareConfig
    out: Path | None = None

    def labels(self) -> list[str]:
        return [s.label for s in self.spaces]

    def distance_table(self, normalised: bool) -> dict[str, dict[str, float | None]]:
        """label -> {distance name: value}, raw or divided by the space's scale."""
        return {s.label: {k: (None if v is None else (v / s.s if normalised else v)) for k, v in s.distances.items()}
                for s in self.spaces}

    def summary_table(self) -> dict[str, dict[str, Any]]:
        """label -> the key number of each analysis (distances normalised)."""
        return {s.label: key_numbers(s) for s in self.spaces}


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
def trace_label(path: Path) -> tuple[str, str | None]:
    """(label, model): the model type the trace's metadata records, else the file stem (model None)."""
    from recvae.trace.format import model_type
    from simcache.trace.io import load_requests

    meta = getattr(load_requests(path, validate=False), "metadata", None) or {}
    if isinstance(meta.get("model"), dict):
        m = model_type(meta)
        return m, m
    return path.stem, None


def check_inputs(paths: Sequence[str | os.PathLike],
                 labels: Sequence[str] | None = None) -> list[tuple[Path, str, str | None]]:
    """(path, label, model) per trace; refused (one :class:`UserError`): fewer than 2, a missing or
    unreadable file, labels not one per trace or not distinct."""
    from simcache.trace.io import load_requests

    ps = [Path(p) for p in paths]
    if len(ps) < 2:
        raise UserError(f"compare needs at least 2 traces, got {len(ps)}")
    for p in ps:
        if not p.is_file():
            raise UserError(f"{p}: no such trace file")
        load_requests(p)  # the full validity check (format, NaN/inf), a UserError naming the file
    if labels is not None and len(labels) != len(ps):
        raise UserError(f"--labels gives {len(labels)} labels for {len(ps)} traces")
    found = [trace_label(p) for p in ps]
    named = list(labels) if labels is not None else [lab for lab, _ in found]
    seen: dict[str, Path] = {}
    for p, lab in zip(ps, named):
        if not lab.strip():
            raise UserError(f"{p}: empty label")
        if lab in seen:
            raise UserError(f"{seen[lab]} and {p} both have the label {lab!r}; pass --labels with one distinct "
                            "label per trace")
        seen[lab] = p
    return [(p, lab, m) for p, lab, (_, m) in zip(ps, named, found)]


# ----------------------------------------------------------------------------------------------
# Scales
# ----------------------------------------------------------------------------------------------
def nn_scale(points: np.ndarray, sample: int, seed: int) -> dict[str, Any]:
    """The median distance from a seeded sample of ``points`` to the nearest other point (self excluded)."""
    from simcache.analysis.neighbors import knn

    x = np.asarray(points, dtype=np.float64)
    n = len(x)
    if n < 3:
        raise UserError(f"the scale needs at least 3 points, got {n}")
    idx = subsample_indices(n, sample, make_rng(seed, 80))
    idx = np.arange(n) if idx is None else idx
    dist, nbr = knn(x, 2, queries=x[idx])
    # the query itself may come first or second (ties); take the nearest row that is not the query
    nearest = np.where(nbr[:, 0] == idx, dist[:, 1], dist[:, 0])
    med = float(np.median(nearest))
    if not med > 0:
        raise UserError("the median nearest-neighbour distance is 0 (over half the sampled points have a "
                        "duplicate); distances cannot be normalised")
    return {"median_nn": med, "sample": int(len(idx)), "of": int(n), "seed": int(seed), "exclude_self": True,
            "q25_nn": float(np.quantile(nearest, 0.25)), "q75_nn": float(np.quantile(nearest, 0.75))}


def caching_distances(req: Any, scale: dict[str, Any], catalogue: Path | None, sample: int,
                      seed: int) -> dict[str, float | None]:
    """The distances that matter for a cache radius (``trace info``'s scales, plus requests to objects)."""
    from simcache.analysis.neighbors import knn
    from simcache.trace.info import summarize

    info = summarize(req.vectors, user_id=req.user_id, seq=req.seq, sample=sample, seed=seed)
    nn, step = info.nn_other_user, info.consecutive_same_user
    out: dict[str, float | None] = {
        "median NN (scale)": scale["median_nn"],
        "NN other user, 5%": nn.get("q0.05"),
        "NN other user, 50%": nn.get("q0.5"),
        "same-user step, 25%": step.get("q0.25"),
        "same-user step, 50%": step.get("q0.5"),
        "same-user step, 75%": step.get("q0.75"),
        OBJECT_SCALE: None,
    }
    if catalogue is not None:
        from simcache.objects.catalogue import load_catalogue

        cat = load_catalogue(catalogue)
        if cat.dim == req.dim and len(cat) >= 1:
            pick = subsample_indices(len(req), sample, make_rng(seed, 81))
            q = np.asarray(req.vectors if pick is None else req.vectors[pick], dtype=np.float64)
            d, _ = knn(np.asarray(cat.vectors, dtype=np.float64), 1, queries=q)
            out[OBJECT_SCALE] = float(np.median(d[:, 0]))
    return out


def own_catalogue(path: Path) -> Path | None:
    """The item catalogue written beside a trace, if there is one."""
    from recvae.trace.format import catalogue_path

    cat = catalogue_path(path)
    return cat if cat.is_file() else None


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------
def compare_traces(paths: Sequence[str | os.PathLike], config: CompareConfig | None = None, *,
                   out: str | os.PathLike, overwrite: bool = False, log: Any = None) -> CompareResult:
    """Compare the traces ``paths`` and write the report folder ``out`` (whole, replacing it only
    with ``overwrite``); returns the numbers."""
    from recvae.outputs import fresh_folder

    config = config or CompareConfig()
    inputs = check_inputs(paths, config.labels)
    for name in config.analyses:  # unknown names before any work
        try:
            get(name)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    known = (REPORT_FILE, JSON_FILE, "compare_*.png", "*/report.md", "*/*.json", "*/*.png", f"*/{SWEEP_DIR}/*")
    say = log or (lambda _m: None)
    with fresh_folder(out, known=known, overwrite=overwrite, command="simcache analyze compare", echo=say) as tmp:
        result = _compare(inputs, config, Path(tmp), say)
        write_compare_report(result, Path(tmp))
    result.out = Path(out)
    return result


def _compare(inputs: list[tuple[Path, str, str | None]], config: CompareConfig, out: Path, say: Any) -> CompareResult:
    from simcache.analysis.inputs import prepare_input
    from simcache.analysis.run import run_analyses

    spaces = []
    for path, label, model in inputs:
        say(f"{label}: analysing {path}")
        inp = prepare_input(path, sample=config.sample, seed=config.seed)
        scale = nn_scale(inp.points, config.scale_sample, config.seed)
        cat = own_catalogue(path)
        distances = caching_distances(inp.requests, scale, cat, config.scale_sample, config.seed)
        try:
            results = run_analyses(inp, config.analyses, out / label, config.options, report=True, log=say,
                                   progress=False)
        except ValueError as exc:  # the analyses' documented argument checks
            raise UserError(f"{path}: {exc}") from None
        space = Space(label, path, model, dict(inp.info), scale, distances, results)
        if config.sweep is not None:
            space.sweep = run_normalised_sweep(path, space.s, config.sweep, out / label / SWEEP_DIR,
                                               object_scale=distances[OBJECT_SCALE], seed=config.seed)
        spaces.append(space)
    return CompareResult(spaces, config)


def run_normalised_sweep(path: Path, scale: float, spec: SweepSpec, out: Path, *, object_scale: float | None = None,
                         seed: int = 0) -> list[dict[str, Any]]:
    """Run ``spec`` on one trace: query policies at radius = normalised radius x ``scale``; object
    policies (only with an ``object_scale``: the trace has a catalogue) with c_f = normalised value x
    ``object_scale``. Returns one row per point with the normalised and the raw value."""
    from simcache.objects.config import ObjectReplayConfig
    from simcache.replay.sweep import run_sweep

    runs: list[tuple[str, list[str], float, Any, str]] = []
    if spec.policies:
        runs.append(("query", list(spec.policies), scale, None, "query"))
    if object_scale is not None and object_scale > 0 and spec.object_policies:
        for i, r in enumerate(spec.radii):  # c_f is a configuration value, not a sweep axis: one sweep each
            if r > 0:
                runs.append(("object", list(spec.object_policies), object_scale,
                             ObjectReplayConfig(policy=spec.object_policies[0], capacity=1, k=spec.k,
                                                c_f=float(r) * object_scale, seed=seed), f"object-{i}"))
    rows = []
    for family, pols, unit, config, folder in runs:
        radii = [float(r) * unit for r in spec.radii] if family == "query" else [0.0]
        df = run_sweep(path, policies=pols, capacities=list(spec.capacities), radii=radii, out=out / folder,
                       jobs=spec.jobs, config=config, plots=False, progress=False)
        for rec in df.to_dict("records"):
            raw = float(rec["radius"]) if family == "query" else float(config.c_f)
            norm = min(spec.radii, key=lambda r: abs(float(r) * unit - raw))
            metric = "nag" if family == "object" else "hit_ratio"
            rows.append({"policy": rec["policy"], "family": family, "capacity": int(rec["capacity"]),
                         "radius_normalised": float(norm), "radius": raw, "unit": unit,
                         "metric": metric, "value": float(rec[metric])})
    return rows


# ----------------------------------------------------------------------------------------------
# Key numbers and the report
# ----------------------------------------------------------------------------------------------
def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def key_numbers(space: Space) -> dict[str, Any]:
    """The one-line numbers of each analysis for ``space`` (distances in units of its scale)."""
    r, s = space.results, space.s
    norm_med = _get(r, "norms", "sets", "data", "summary", "q50")
    drift_med = _get(r, "drift", "drift", "summary", "q50")
    return {
        "dim": space.info.get("dim"),
        "points": space.info.get("rows_analysed"),
        "median norm / scale": None if norm_med is None else norm_med / s,
        "norm std / mean": _get(r, "norms", "sets", "data", "cv"),
        "KS D pair angles vs h": _get(r, "angles", "sets", "data", "pair", "ks"),
        "KS D axis angles vs h": _get(r, "angles", "sets", "data", "axis", "ks"),
        "ID knn-radius slope": _get(r, "knn-radius", "sets", "data", "knn_radius"),
        "ID MLE": _get(r, "knn-radius", "sets", "data", "mle"),
        "ID TwoNN": _get(r, "knn-radius", "sets", "data", "twonn"),
        "GMM K (BIC)": _get(r, "gmm", "chosen_k"),
        "median drift / scale": None if drift_med is None else drift_med / s,
        "drift / other users (medians)": _get(r, "drift", "ratio_median_drift_to_median_other"),
    }


def _cell(v: Any) -> str:
    from simcache.analysis.tables import fmt

    if isinstance(v, (float, np.floating)):
        return fmt(float(v), ".3g")
    return fmt(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    from simcache.analysis.tables import table

    return table(header, [[_cell(c) for c in row] for row in rows])


def render_report(result: CompareResult) -> str:
    """The Markdown of ``report.md``."""
    spaces, cfg = result.spaces, result.config
    labels = result.labels()
    lines = [f"# Comparing embedding spaces: {', '.join(labels)}", ""]
    lines += _table(["label", "trace", "model", "rows", "dimension", "rows analysed"],
                    [[s.label, f"`{s.path.name}`", s.model or "(not recorded)", s.info.get("rows"), s.info.get("dim"),
                      s.info.get("row_selection")] for s in spaces])
    lines += ["", "**Normalisation.** Raw distances of different models are not comparable, so distances are "
              "also given in units of each space's *scale*: the median distance from a point to its nearest "
              f"other point (the point itself excluded), over a seeded sample of at most {cfg.scale_sample:,} "
              f"of the analysed points (seed {cfg.seed}; sample here: "
              + ", ".join(f"{s.label} {s.scale['sample']:,} of {s.scale['of']:,}" for s in spaces)
              + "), exact float64 distances. A trace multiplied by c has c times the scale and the same "
              "normalised numbers.", ""]
    lines += ["## Key numbers", ""]
    keys = list(key_numbers(spaces[0]))
    table = result.summary_table()
    lines += _table(["", *labels], [[k, *(table[lab][k] for lab in labels)] for k in keys])
    lines += ["", "Intrinsic dimension: knn-radius is 1 / slope of log R(k) on log k; angles: Kolmogorov-Smirnov "
              "distance to the isotropic density h(θ) of each space's dimension (0: isotropic). Each model's "
              "full analysis (with the uniform-ball and Gaussian baselines) is in its folder: "
              + ", ".join(f"[{lab}]({lab}/report.md)" for lab in labels) + ".", ""]
    lines += ["## Distance scales for caching", "",
              "Raw (each model's own units):", ""]
    for normalised in (False, True):
        t = result.distance_table(normalised)
        names_ = list(next(iter(t.values())))
        lines += _table(["distance", *labels], [[n, *(t[lab][n] for lab in labels)] for n in names_])
        lines += ["", "Normalised (divided by the median NN distance):", ""] if not normalised else [""]
    lines += ["NN other user: distance from a sampled request to the nearest request of another user in the "
              "whole trace; same-user step: between consecutive embeddings of a user; request to nearest "
              "object: to the nearest item of the trace's catalogue (– without one).", ""]
    for name, title in (("norms", "Norms (divided by the scale)"), ("angles", "Angles against h(θ)"),
                        ("knn-radius", "kNN radius against k (divided by the scale)"),
                        ("gmm", "Gaussian-mixture BIC"), ("map", "2-D maps (t-SNE)"),
                        ("drift", "Drift between consecutive embeddings (divided by the scale)")):
        if name in cfg.analyses:
            lines += [f"## {title}", "", f"![{name}]({FIGURES[name]})", ""]
    if cfg.sweep is not None:
        lines += sweep_section(result)
    lines += [f"Numbers: [{JSON_FILE}]({JSON_FILE})", ""]
    return "\n".join(lines)


def sweep_section(result: CompareResult) -> list[str]:
    """The sweep's table and figure: hit ratio / NAG against the normalised radius per model."""
    spec = result.config.sweep
    assert spec is not None
    lines = ["## The same sweep at equal normalised radius", "",
             f"Radius = normalised radius x the trace's scale; capacities {', '.join(map(str, spec.capacities))}; "
             f"query policies {', '.join(spec.policies) or 'none'} (hit ratio); object policies "
             f"{', '.join(spec.object_policies) or 'none'} (NAG, k = {spec.k}; an answer object costs its distance, a "
             "fetched one its distance + c_f) on the traces that have a catalogue, with the fetch cost c_f = "
             "normalised value x the median distance from a request to its nearest catalogue object (the "
             "object-side scale in the distance table): c_f is the distance an object cache trades against a "
             "fetch, as the radius is for a query cache.", ""]
    labels = result.labels()
    cells: dict[tuple[Any, ...], dict[str, str]] = {}
    for s in result.spaces:
        for r in s.sweep:
            key = (r["family"], r["policy"], r["capacity"], r["metric"], r["radius_normalised"])
            cells.setdefault(key, {})[s.label] = f"{_cell(r['value'])} (r = {_cell(r['radius'])})"
    rows = [[pol, cap, metric, rn, *(by.get(lab, "–") for lab in labels)]
            for (_, pol, cap, metric, rn), by in sorted(cells.items(), key=lambda kv: (kv[0][0] != "query", kv[0][1:]))]
    lines += _table(["policy", "capacity", "metric", "normalised radius", *labels], rows)
    lines += ["", "Each cell: the metric, and in brackets the raw radius (query policies) or c_f (object policies) it "
              "was run at on that model's trace; – : the trace has no catalogue (object policies).", ""]
    lines += ["", f"![sweep]({FIGURES['sweep']})", ""]
    return lines


def compare_json(result: CompareResult) -> dict[str, Any]:
    """The numbers of ``compare.json``."""
    spec = result.config.sweep
    return {
        "labels": result.labels(),
        "normalisation": {"what": "median distance to the nearest other analysed point (self excluded)",
                          "sample": result.config.scale_sample, "seed": result.config.seed},
        "spaces": {s.label: {"path": str(s.path), "model": s.model, "input": s.info, "scale": s.scale,
                             "distances_raw": s.distances, "key_numbers": key_numbers(s), "sweep": s.sweep}
                   for s in result.spaces},
        "distances_normalised": result.distance_table(True),
        "sweep": None if spec is None else dataclasses.asdict(spec),
        "analyses": list(result.config.analyses),
    }


def write_compare_report(result: CompareResult, out: Path) -> Path:
    """Write ``report.md``, ``compare.json`` and the side-by-side figures into ``out``."""
    from recvae.storage import atomic_path
    from simcache.analysis import compare_plots
    from simcache.jsonout import write_json

    compare_plots.plot_all(result, out, FIGURES)
    write_json(out / JSON_FILE, compare_json(result), digits=JSON_DIGITS)
    path = out / REPORT_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(result), encoding="utf-8")
    return path
