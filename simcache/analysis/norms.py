"""``norms``: the distribution of L2 norms (distance from the origin) of the data and the baselines.

Reported per set: min / max / mean / std / quantiles of ``||x||``, the coefficient of variation
``std/mean`` (about ``1/sqrt(2d)`` for a centred isotropic Gaussian: norms concentrate in high
dimension) and a histogram on edges shared by all sets.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from simcache.analysis.baselines import Baselines, resolve_sets
from simcache.analysis.common import histogram, shared_edges, summarize
from simcache.analysis.plotting import legend_below, new_figure, plot_order, save_figure, step_histogram, subtitle
from simcache.analysis.spec import AnalysisContext
from simcache.analysis.tables import fmt, set_rows, table

NAME = "norms"


def analyze_norms(points: Any, *, baselines: Baselines | None = None, seed: int = 0,
                  bins: int = 60) -> dict[str, Any]:
    """Norm statistics of ``points`` and of the matched baselines (see the module docstring)."""
    sets, binfo = resolve_sets(points, baselines, seed)
    norms = {name: np.linalg.norm(x, axis=1) for name, x in sets.items()}
    edges = shared_edges(norms.values(), bins)
    out_sets = {}
    for name, v in norms.items():
        s = summarize(v)
        out_sets[name] = {
            "summary": s,
            "cv": s["std"] / s["mean"] if s["mean"] > 0 else None,
            "histogram": histogram(v, edges),
        }
    data = sets["data"]
    return {
        "analysis": NAME,
        "n": int(data.shape[0]),
        "dim": int(data.shape[1]),
        "params": {"bins": int(bins), "seed": seed},
        "baselines": binfo,
        "edges": edges,
        "sets": out_sets,
    }


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``norms`` on a run's input and options."""
    return analyze_norms(ctx.points, baselines=ctx.baselines, seed=ctx.options.seed, bins=ctx.options.bins)


def report(r: dict[str, Any]) -> list[str]:
    """The report section: min, median, max and spread of the norms per set."""
    return table(["set", "min", "median", "max", "std / mean"],
                 set_rows(r["sets"], lambda s: [fmt(s["summary"]["min"]), fmt(s["summary"]["q50"]),
                                                fmt(s["summary"]["max"]), fmt(s["cv"])]))


def plot_norms(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """Histogram (density) of the norms of every set on one axis."""
    fig, axes = new_figure(1, 1, width=7.5, height=4.5)
    ax = axes[0, 0]
    for name in plot_order(result["sets"]):
        s = result["sets"][name]
        step_histogram(ax, result["edges"], s["histogram"]["counts"], name)
    d = result["sets"]["data"]["summary"]
    ax.set_xlabel("L2 norm ||x||")
    ax.set_ylabel("density")
    ax.set_title(f"Embedding norms ({subtitle(result)}); data: min {d['min']:.3g}, "
                 f"median {d['q50']:.3g}, max {d['max']:.3g}")
    legend_below(ax, ncol=3)
    ax.grid(alpha=0.3)
    save_figure(fig, path)
    return fig
