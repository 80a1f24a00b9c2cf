"""``balls``: distances from random centres and how many points a ball holds as its radius grows.

For each set (data and baselines), ``centers`` points of the set are drawn as centres (seeded).
For each centre: the distances to the other ``n - 1`` points, and ``N(r)``, the number of them
within distance ``r``, on a log-spaced radius grid shared by all sets.

Reported per set:

- ``distances``: summary of all centre-to-point distances pooled over centres, and a histogram on
  edges shared by the sets;
- ``fraction_inside``: the 25th/50th/75th percentiles over centres of ``N(r) / (n - 1)`` at each
  radius of ``radii``;
- ``growth_exponent``: per centre, the least-squares slope of ``log k`` against ``log r_k`` (the
  distance of the k-th nearest point) for ``k`` between ``k_lo`` and ``(n - 1) * frac_hi``; for a
  set of intrinsic dimension ``m`` the count grows like ``r^m`` at small radii, so this is a
  large-scale dimension estimate. Mean and median over centres;
- ``relative_contrast``: mean over centres of ``(max - min) / min`` distance; it shrinks toward 0
  as distances concentrate in high dimension, where "nearest" stops being meaningful.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from simcache.analysis.baselines import Baselines, resolve_sets
from simcache.analysis.common import histogram, make_rng, shared_edges, summarize
from simcache.analysis.common import progress as show_progress
from simcache.analysis.plotting import (legend_below, line_style, new_figure, plot_order, save_figure,
                                        step_histogram, subtitle)
from simcache.analysis.spec import AnalysisContext
from simcache.analysis.tables import fmt, set_rows, table

NAME = "balls"


def _center_distances(x: np.ndarray, centers: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Sorted distances from each of ``centers`` random rows of ``x`` to the other rows."""
    n = len(x)
    idx = rng.choice(n, size=min(int(centers), n), replace=False)
    sq = np.einsum("ij,ij->i", x, x)
    out = []
    for c in idx:
        d2 = sq + sq[c] - 2.0 * (x @ x[c])
        d2[c] = np.inf
        d2 = np.maximum(d2, 0.0)
        # recompute small distances exactly (the expansion loses precision for near neighbours)
        near = d2 < 1e-6 * max(sq[c], 1e-300)
        if near.any():
            diff = x[near] - x[c]
            d2[near] = np.einsum("ij,ij->i", diff, diff)
        d = np.sqrt(np.sort(d2)[:-1])  # drop the centre (inf)
        out.append(d)
    return out


def _growth_exponent(d_sorted: np.ndarray, k_lo: int, frac_hi: float) -> float | None:
    m = len(d_sorted)
    k_hi = int(m * frac_hi)
    if k_hi - k_lo < 3:
        return None
    ks = np.unique(np.geomspace(k_lo, k_hi, num=min(200, k_hi - k_lo + 1)).astype(np.int64))
    r = d_sorted[ks - 1]
    ok = r > 0
    if ok.sum() < 3:
        return None
    xr, yk = np.log(r[ok]), np.log(ks[ok])
    xc = xr - xr.mean()
    denom = float((xc**2).sum())
    return float((xc * (yk - yk.mean())).sum() / denom) if denom > 0 else None


def analyze_balls(points: Any, *, baselines: Baselines | None = None, seed: int = 0, centers: int = 20,
                  n_radii: int = 60, bins: int = 60, k_lo: int = 10, frac_hi: float = 0.1,
                  progress: bool | None = None) -> dict[str, Any]:
    """Ball statistics around ``centers`` random centres for the data and the baselines."""
    if centers < 1:
        raise ValueError("centers must be >= 1")
    sets, binfo = resolve_sets(points, baselines, seed)
    dists: dict[str, list[np.ndarray]] = {}
    for k, (name, x) in enumerate(show_progress(sets.items(), "balls", total=len(sets), enabled=progress)):
        dists[name] = _center_distances(x, centers, make_rng(seed, 10 + k))

    pooled = {name: np.concatenate(ds) for name, ds in dists.items()}
    positive = [p[p > 0] for p in pooled.values()]
    r_lo = min(float(np.quantile(p, 1e-3)) for p in positive if p.size)
    r_hi = max(float(p.max()) for p in positive if p.size)
    radii = np.geomspace(r_lo, r_hi, int(n_radii))
    edges = shared_edges(pooled.values(), bins)

    out_sets = {}
    for name, ds in dists.items():
        frac = np.stack([np.searchsorted(d, radii, side="right") / max(len(d), 1) for d in ds])
        q25, q50, q75 = np.quantile(frac, [0.25, 0.5, 0.75], axis=0)
        growth = [g for g in (_growth_exponent(d, k_lo, frac_hi) for d in ds) if g is not None]
        contrast = [(d[-1] - d[0]) / d[0] for d in ds if len(d) and d[0] > 0]
        out_sets[name] = {
            "distances": summarize(pooled[name]),
            "histogram": histogram(pooled[name], edges),
            "fraction_inside": {"q25": q25, "q50": q50, "q75": q75},
            "growth_exponent": {
                "mean": float(np.mean(growth)) if growth else None,
                "median": float(np.median(growth)) if growth else None,
                "centers_fitted": len(growth),
            },
            "relative_contrast": float(np.mean(contrast)) if contrast else None,
        }
    data = sets["data"]
    return {
        "analysis": NAME,
        "n": int(data.shape[0]),
        "dim": int(data.shape[1]),
        "params": {"centers": int(centers), "n_radii": int(n_radii), "bins": int(bins), "k_lo": int(k_lo),
                   "frac_hi": float(frac_hi), "seed": seed},
        "baselines": binfo,
        "radii": radii,
        "edges": edges,
        "sets": out_sets,
    }


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``balls`` on a run's input and options."""
    o = ctx.options
    return analyze_balls(ctx.points, baselines=ctx.baselines, seed=o.seed, centers=o.centers, bins=o.bins,
                         progress=ctx.progress)


def report(r: dict[str, Any]) -> list[str]:
    """The report section: distance scale, growth exponent and relative contrast per set."""
    return table(["set", "median distance from a centre", "growth exponent (median)", "relative contrast"],
                 set_rows(r["sets"], lambda s: [fmt(s["distances"]["q50"]), fmt(s["growth_exponent"]["median"]),
                                                fmt(s["relative_contrast"])]))


def plot_balls(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """Left: distance-from-centre histograms. Right: fraction of points inside a ball vs radius (log-log)."""
    fig, axes = new_figure(1, 2, width=6.2, height=4.6)
    ax1, ax2 = axes[0]
    radii = np.asarray(result["radii"], dtype=np.float64)
    for name in plot_order(result["sets"]):
        s = result["sets"][name]
        step_histogram(ax1, result["edges"], s["histogram"]["counts"], name)
        fi = s["fraction_inside"]
        st = line_style(name)
        g = s["growth_exponent"]["median"]
        st["label"] = st["label"] + (f" (growth exponent {g:.1f})" if g is not None else "")
        q50 = np.asarray(fi["q50"], dtype=np.float64)
        ok = q50 > 0
        ax2.plot(radii[ok], q50[ok], **st)
        ax2.fill_between(radii, np.asarray(fi["q25"], dtype=np.float64), np.asarray(fi["q75"], dtype=np.float64),
                         color=st["color"], alpha=0.12, linewidth=0)
    c = result["params"]["centers"]
    ax1.set_xlabel("distance from a random centre")
    ax1.set_ylabel("density")
    ax1.set_title(f"Distances from {c} random centres ({subtitle(result)})")
    legend_below(ax1)
    ax1.grid(alpha=0.3)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("ball radius r")
    ax2.set_ylabel("fraction of points within r")
    ax2.set_title("Points inside a ball as the radius grows\n(median over centres; band: interquartile range)")
    legend_below(ax2)
    ax2.grid(alpha=0.3, which="both")
    save_figure(fig, path)
    return fig
