"""``knn-radius``: intrinsic dimension from how the k-th neighbour distance grows with k.

If points fill an ``m``-dimensional region with locally constant density, the ball around a point
that holds ``k`` neighbours has volume proportional to ``k``, so its radius ``R(k)`` obeys
``log R(k) = (1/m) log k + const``. Three estimates are reported for each set, all from one exact
kNN computation (:func:`simcache.analysis.neighbors.knn`), after removing duplicate points:

- ``knn_radius``: for every point, the least-squares slope ``b_i`` of ``log R_i(k)`` on ``log k``
  for ``k_min <= k <= k_max``; the estimate is ``1 / mean_i(b_i)`` (the slopes are averaged, not
  the per-point dimensions ``1/b_i``, which explode for flat neighbourhoods; this equals the
  slope fitted to the averaged curve ``mean_i log R_i(k)``). ``knn_radius_median`` is the median of
  the per-point ``1/b_i`` (points with ``b_i <= 0`` counted as infinite).
- ``mle``: Levina-Bickel maximum likelihood with ``k_mle`` neighbours (``skdim.id.MLE``), per-point
  estimates combined as MacKay and Ghahramani propose (inverse of the mean inverse).
- ``twonn``: TwoNN of Facco et al. (``skdim.id.TwoNN``, linear fit, largest 10% of ratios discarded).

All three are biased low when ``m`` is large relative to ``log n`` (too few points to fill the
space); the baselines, whose true dimension is the ambient ``d``, show how large that bias is at
this ``n`` and ``d``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from recvae.errors import UserError
from simcache.analysis.baselines import Baselines, resolve_sets
from simcache.analysis.common import histogram, shared_edges, summarize
from simcache.analysis.common import progress as show_progress
from simcache.analysis.neighbors import knn
from simcache.analysis.plotting import legend_below, new_figure, plot_order, save_figure, step_histogram, style, subtitle
from simcache.analysis.spec import AnalysisContext
from simcache.analysis.tables import fmt, set_rows, table

NAME = "knn-radius"


def knn_radius_slopes(dists: np.ndarray, k_min: int, k_max: int) -> np.ndarray:
    """Per-point least-squares slopes of ``log R(k)`` on ``log k`` for ``k_min..k_max`` (1-based k).

    ``dists`` is ``(n, K)`` sorted neighbour distances, column ``k - 1`` holding ``R(k)``.
    """
    if not 1 <= k_min < k_max <= dists.shape[1]:
        raise ValueError(f"need 1 <= k_min < k_max <= {dists.shape[1]}, got {k_min}, {k_max}")
    ks = np.arange(k_min, k_max + 1)
    x = np.log(ks)
    xc = x - x.mean()
    with np.errstate(divide="ignore"):
        y = np.log(dists[:, k_min - 1 : k_max])
    yc = y - y.mean(axis=1, keepdims=True)
    return (yc @ xc) / float(xc @ xc)


def levina_bickel_mle(x: np.ndarray, dists: np.ndarray, idx: np.ndarray, k: int) -> float:
    """Levina-Bickel MLE over ``k`` neighbours (skdim), MacKay-Ghahramani combination."""
    import skdim

    est = skdim.id.MLE()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(x, precomputed_knn_arrays=(dists[:, :k], idx[:, :k]), comb="mle")
    return float(est.dimension_)


def twonn(dists: np.ndarray, discard_fraction: float = 0.1) -> float:
    """TwoNN (skdim, linear fit) from the first two neighbour distances."""
    import skdim

    r12 = np.ascontiguousarray(dists[:, :2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est = skdim.id.TwoNN(discard_fraction=discard_fraction, dist=True).fit(r12)
    return float(est.dimension_)


def estimate_intrinsic_dim(x: np.ndarray, *, k_min: int = 5, k_max: int = 20, k_mle: int = 20,
                           twonn_discard: float = 0.1) -> dict[str, Any]:
    """The three estimates for one point set (duplicates removed first) plus the curve to plot."""
    n_in = len(x)
    xu = np.unique(x, axis=0)
    n = len(xu)
    k_all = max(k_max, k_mle, 2)
    if n <= k_all:
        raise ValueError(f"need more than {k_all} distinct points, got {n}")
    dists, idx = knn(xu, k_all)
    slopes = knn_radius_slopes(dists, k_min, k_max)
    mean_slope = float(np.mean(slopes))
    with np.errstate(divide="ignore"):
        per_point = np.where(slopes > 0, 1.0 / np.where(slopes > 0, slopes, 1.0), np.inf)
    with np.errstate(divide="ignore"):
        log_r = np.log(dists)
    finite = np.isfinite(log_r).all(axis=1)
    mean_log_r = log_r[finite].mean(axis=0)
    xk = np.log(np.arange(k_min, k_max + 1))
    intercept = float(mean_log_r[k_min - 1 : k_max].mean() - mean_slope * xk.mean())
    return {
        "n_points": n_in,
        "n_distinct": n,
        "knn_radius": 1.0 / mean_slope if mean_slope > 0 else None,
        "knn_radius_median": float(np.median(per_point)),
        "knn_radius_nonpositive_slopes": int((slopes <= 0).sum()),
        "mle": levina_bickel_mle(xu, dists, idx, k_mle),
        "twonn": twonn(dists, twonn_discard),
        "per_point": per_point,
        "curve": {"k": np.arange(1, k_all + 1), "mean_log_r": mean_log_r, "slope": mean_slope,
                  "intercept": intercept},
    }


def analyze_intrinsic_dim(points: Any, *, baselines: Baselines | None = None, seed: int = 0,
                          k_min: int = 5, k_max: int = 20, k_mle: int = 20, twonn_discard: float = 0.1,
                          bins: int = 50, progress: bool | None = None) -> dict[str, Any]:
    """knn-radius, Levina-Bickel and TwoNN estimates for the data and the baselines."""
    sets, binfo = resolve_sets(points, baselines, seed)
    raw = {}
    for name, x in show_progress(sets.items(), "intrinsic dimension", total=len(sets), enabled=progress):
        raw[name] = estimate_intrinsic_dim(x, k_min=k_min, k_max=k_max, k_mle=k_mle, twonn_discard=twonn_discard)
    d = sets["data"].shape[1]
    finite_pp = [r["per_point"][np.isfinite(r["per_point"])] for r in raw.values()]
    edges = shared_edges(finite_pp, bins, lo_q=0.0, hi_q=0.99)
    edges = np.linspace(0.0, max(edges[-1], 1.0), bins + 1)
    out_sets = {}
    for name, r in raw.items():
        pp = r.pop("per_point")
        r["per_point_summary"] = summarize(pp[np.isfinite(pp)])
        r["per_point_histogram"] = histogram(pp[np.isfinite(pp)], edges)
        out_sets[name] = r
    return {
        "analysis": NAME,
        "n": int(sets["data"].shape[0]),
        "dim": int(d),
        "params": {"k_min": int(k_min), "k_max": int(k_max), "k_mle": int(k_mle),
                   "twonn_discard": float(twonn_discard), "seed": seed,
                   "knn_radius_average": "1 / mean of per-point slopes of log R(k) on log k"},
        "baselines": binfo,
        "edges": edges,
        "sets": out_sets,
    }


def check_options(options: Any) -> None:
    """Refuse a fit range that is empty (``k_min >= k_max``)."""
    if options.k_min >= options.k_max:
        raise UserError(f"--k-min ({options.k_min}) must be smaller than --k-max ({options.k_max})")


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``knn-radius`` on a run's input and options."""
    o = ctx.options
    return analyze_intrinsic_dim(ctx.points, baselines=ctx.baselines, seed=o.seed, k_min=o.k_min, k_max=o.k_max,
                                 k_mle=o.k_mle, progress=ctx.progress)


def report(r: dict[str, Any]) -> list[str]:
    """The report section: the three estimates per set and what the baselines say about their bias."""
    lines = table(["set", "knn-radius", "Levina-Bickel MLE", "TwoNN", "distinct points"],
                  set_rows(r["sets"], lambda s: [fmt(s["knn_radius"], ".1f"), fmt(s["mle"], ".1f"),
                                                 fmt(s["twonn"], ".1f"), str(s["n_distinct"])]))
    p = r["params"]
    lines.append("")
    lines.append(f"knn-radius: slope of log R(k) on log k for k = {p['k_min']}..{p['k_max']}, "
                 f"{p['knn_radius_average']}; MLE with k = {p['k_mle']}. The baselines have true dimension "
                 f"{r['dim']}: their estimates show the bias at this n and d.")
    return lines


def plot_intrinsic_dim(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """log R(k) vs log k with fitted lines; per-point estimates; the three estimates side by side."""
    fig, axes = new_figure(1, 3, width=5.2, height=4.6)
    ax1, ax2, ax3 = axes[0]
    p = result["params"]
    names = plot_order(result["sets"])
    for name in names:
        s = result["sets"][name]
        st = style(name)
        c = s["curve"]
        k = np.asarray(c["k"], dtype=np.float64)
        mlr = np.asarray(c["mean_log_r"], dtype=np.float64)
        est = s["knn_radius"]
        lab = st["label"] + (f": slope 1/{est:.1f}" if est else "")
        marker = {"data": "o", "uniform_ball": "s", "gaussian": "^"}.get(name, "o")
        ax1.plot(k, np.exp(mlr), marker, color=st["color"], markersize=3.5, linestyle="none", label=lab)
        kf = np.arange(p["k_min"], p["k_max"] + 1, dtype=np.float64)
        ax1.plot(kf, np.exp(c["intercept"] + c["slope"] * np.log(kf)), "-", color=st["color"], linewidth=1.2,
                 label=f"least-squares fits over k = {p['k_min']}..{p['k_max']} (one per set, in its colour)")
        step_histogram(ax2, result["edges"], s["per_point_histogram"]["counts"], name)
    ax1.axvspan(p["k_min"], p["k_max"], color="grey", alpha=0.1, label=f"fit range k = {p['k_min']}..{p['k_max']}")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("neighbour rank k")
    ax1.set_ylabel("k-th neighbour distance R(k)\n(geometric mean over points)")
    ax1.set_title(f"log R(k) = (1/d) log k + c ({subtitle(result)})")
    legend_below(ax1)
    ax1.grid(alpha=0.3, which="both")
    ax2.set_xlabel("per-point dimension 1 / slope")
    ax2.set_ylabel("density")
    ax2.set_title("Per-point knn-radius estimates")
    legend_below(ax2)
    ax2.grid(alpha=0.3)
    methods = [("knn_radius", "knn-radius"), ("mle", "Levina-Bickel MLE"), ("twonn", "TwoNN")]
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        s = result["sets"][name]
        vals = [s[m] if s[m] is not None else 0.0 for m, _ in methods]
        xs = np.arange(len(methods)) + (j - (len(names) - 1) / 2) * width
        st = style(name)
        bars = ax3.bar(xs, vals, width=width, color=st["color"], label=st["label"])
        ax3.bar_label(bars, fmt="%.1f", fontsize=7)
    ax3.axhline(result["dim"], **{"color": "black", "linestyle": "--", "linewidth": 1.0},
                label=f"ambient dimension {result['dim']}")
    ax3.set_xticks(np.arange(len(methods)), [m[1] for m in methods])
    ax3.set_ylabel("intrinsic dimension estimate")
    ax3.set_title("Estimates")
    legend_below(ax3, ncol=2)
    ax3.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
    return fig
