"""Running analyses on a prepared input and writing ``<name>.json`` + ``<name>.png`` (and ``report.md``).

This is what ``simcache analyze`` calls; it is usable from Python as well::

    inp = prepare_input("trace.arrow", latest=True, sample=20_000, seed=0)
    results = run_analyses(inp, ANALYSIS_NAMES, "out/", AnalysisOptions(seed=0), report=True)

One set of baselines (matched to the analysed points, drawn from the seed) is shared by every
analysis of a run. ``map`` colours its points by a mixture with the number of components chosen by
``gmm`` when ``gmm`` ran in the same call, else by ``options.components``, else by a BIC selection
on the map sample itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simcache.analysis import PLOTTERS, plot_result
from simcache.analysis.baselines import matched_baselines
from simcache.analysis.common import JSON_DIGITS, make_rng, subsample_indices
from simcache.analysis.inputs import AnalysisInput
from simcache.analysis.report import write_report
from simcache.jsonout import write_json


@dataclass
class AnalysisOptions:
    """Every knob of every analysis, with the CLI defaults."""

    seed: int = 0  # one seed for baselines, centres, pairs, subsamples, EM and t-SNE
    baseline_center: str = "mean"  # "mean": baselines centred on the data mean; "origin": on 0
    threads: int | None = None  # cap on BLAS/OpenMP threads for t-SNE/UMAP (None: library default)
    bins: int = 60  # histogram bins
    centers: int = 20  # balls: random centres
    k_min: int = 5  # knn-radius: regression range of k ...
    k_max: int = 20  # ... up to k_max
    k_mle: int = 20  # Levina-Bickel neighbours
    angle_pairs: int = 20_000  # angles: random pairs
    center_angles: bool = False  # angles: subtract the mean before measuring angles
    projection_pairs: int = 6  # projections: coordinate pairs scattered
    max_components: int = 8  # gmm: K = 1..max_components
    covariance: str = "full"  # gmm: sklearn covariance_type
    pca_dims: int = 50  # gmm/map: PCA dimensions before fitting (0: none)
    gmm_sample: int | None = 10_000  # gmm: points per set fitted
    map_sample: int | None = 5_000  # map: points per set embedded
    perplexity: float = 30.0  # map: t-SNE perplexity
    components: int | None = None  # map: mixture components for the colours (None: from gmm / BIC)
    umap: bool = True  # map: add a UMAP view when umap-learn is installed
    baseline_maps: bool = True  # map: t-SNE of the baselines too
    drift_pairs: int = 200_000  # drift: random different-user pairs
    drift_queries: int = 2_000  # drift: rows whose nearest other user is searched


def _map_labels(points: np.ndarray, opts: AnalysisOptions, chosen_k: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    from simcache.analysis.mixtures import gmm_labels, select_components

    if opts.components is not None:
        k, source = int(opts.components), "--components"
    elif chosen_k is not None:
        k, source = int(chosen_k), "gmm (BIC on the gmm sample)"
    else:
        sel = select_components(points, max_components=opts.max_components, covariance_type=opts.covariance,
                                pca_dims=opts.pca_dims, seed=opts.seed, desc="gmm for map colours")
        k, source = int(sel["chosen_k_bic"]), "BIC on the map sample"
    labels = gmm_labels(points, k, seed=opts.seed, covariance_type=opts.covariance, pca_dims=opts.pca_dims)
    return labels, {"components": k, "chosen_by": source, "covariance_type": opts.covariance}


def run_one(name: str, inp: AnalysisInput, opts: AnalysisOptions, baselines: Any,
            results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compute one analysis (no files written). ``results`` holds earlier results of the same run."""
    from simcache import analysis as A

    x, o = inp.points, opts
    common = {"baselines": baselines, "seed": o.seed}
    if name == "norms":
        return A.analyze_norms(x, bins=o.bins, **common)
    if name == "balls":
        return A.analyze_balls(x, centers=o.centers, bins=o.bins, **common)
    if name == "knn-radius":
        return A.analyze_intrinsic_dim(x, k_min=o.k_min, k_max=o.k_max, k_mle=o.k_mle, **common)
    if name == "angles":
        return A.analyze_angles(x, n_pairs=o.angle_pairs, center=o.center_angles, **common)
    if name == "projections":
        return A.analyze_projections(x, n_pairs=o.projection_pairs, **common)
    if name == "gmm":
        return A.analyze_gmm(x, max_components=o.max_components, covariance_type=o.covariance, pca_dims=o.pca_dims,
                             max_points=o.gmm_sample, **common)
    if name == "map":
        idx = subsample_indices(len(x), o.map_sample, make_rng(o.seed, 71))
        xm = x if idx is None else x[idx]
        chosen = results.get("gmm", {}).get("chosen_k")
        labels, how = _map_labels(xm, o, chosen)
        res = A.analyze_map(xm, labels=labels, baselines=baselines, seed=o.seed, max_points=o.map_sample,
                            perplexity=o.perplexity, pca_dims=o.pca_dims, use_umap=o.umap,
                            baseline_maps=o.baseline_maps, threads=o.threads)
        res["n"] = int(len(x))
        res["subsampled"] = idx is not None or res["subsampled"]
        res["colours"] = how
        return res
    if name == "drift":
        req = inp.requests
        if req is None or getattr(req, "user_id", None) is None:
            return {"analysis": "drift", "n": int(len(x)), "dim": int(x.shape[1]),
                    "skipped": "the input has no user_id column (drift needs a trace with several embeddings "
                               "per user)"}
        return A.analyze_drift(req.vectors, req.user_id, req.seq, baselines=baselines, seed=o.seed,
                               max_pairs=o.drift_pairs, nn_queries=o.drift_queries, bins=o.bins)
    raise ValueError(f"unknown analysis {name!r}; expected one of {', '.join(PLOTTERS)}")


def run_analyses(inp: AnalysisInput, names: Sequence[str], out_dir: str | os.PathLike, opts: AnalysisOptions,
                 *, report: bool = False, log: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run ``names`` in order, writing ``<name>.json`` and ``<name>.png`` into ``out_dir`` (and ``report.md``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    baselines = matched_baselines(inp.points, seed=opts.seed, center=opts.baseline_center)
    results: dict[str, dict[str, Any]] = {}
    files: dict[str, tuple[str, str]] = {}
    for name in names:
        t0 = time.perf_counter()
        say(f"{name}: running")
        res = run_one(name, inp, opts, baselines, results)
        res["input"] = dict(inp.info)
        res["options"] = asdict(opts)
        res["seconds"] = time.perf_counter() - t0
        png, js = f"{name}.png", f"{name}.json"
        write_json(out / js, res, digits=JSON_DIGITS)
        plot_result(res, out / png)
        results[name] = res
        files[name] = (png, js)
        note = f" ({res['skipped']})" if res.get("skipped") else ""
        say(f"{name}: wrote {out / png} and {out / js} in {res['seconds']:.1f} s{note}")
    if report:
        path = write_report(out, results, inp.info, files)
        say(f"report: {path}")
    return results
