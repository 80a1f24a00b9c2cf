"""The side-by-side figures of ``simcache analyze compare``, drawn from each trace's analysis results.

Overlays put every model on one axis with distances divided by its scale (see
:mod:`simcache.analysis.compare`); panels (angles, maps) give one axis per model, since each
space has its own dimension and therefore its own isotropic density h(θ).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simcache.analysis.plotting import legend_below, new_figure, save_figure, step_histogram

MODEL_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink",
                 "tab:olive", "tab:cyan", "tab:gray")


def colour(i: int) -> str:
    """The colour of the ``i``-th model in every comparison figure."""
    return MODEL_COLOURS[i % len(MODEL_COLOURS)]


def _ncol(n: int) -> int:
    return min(n, 4)


def panel_grid(n: int, *, width: float, height: float) -> tuple[Any, list[Any]]:
    """A figure of ``n`` panels, at most 3 per row, and its first ``n`` axes (the rest hidden)."""
    ncols = max(1, min(n, 3))
    nrows = max(1, -(-n // ncols))
    fig, axes = new_figure(nrows, ncols, width=width, height=height)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:max(n, 1)]


def overlay(result: Any, analysis: str, path: Path, draw: Callable[[Any, Any, dict, str], None], *, xlabel: str,
            ylabel: str, title: str, log: str = "", legend_columns: int | None = None) -> Any:
    """One axis with every model that has ``analysis``'s results: ``draw(ax, space, results, colour)``
    per model, then the labels, grid and legend; ``log``: the axes ("x", "xy") on a log scale."""
    fig, axes = new_figure(1, 1, width=8.0, height=4.8)
    ax = axes[0, 0]
    for i, s in enumerate(result.spaces):
        r = s.results.get(analysis)
        if r and not r.get("skipped"):
            draw(ax, s, r, colour(i))
    if "x" in log:
        ax.set_xscale("log")
    if "y" in log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both" if log else "major")
    legend_below(ax, ncol=legend_columns or _ncol(len(result.spaces)))
    save_figure(fig, path)
    return fig


def plot_norms(result: Any, path: Path) -> Any:
    """Norm densities of every model, norms divided by each space's scale."""

    def draw(ax, s, r, c):
        step_histogram(ax, np.asarray(r["edges"]) / s.s, r["sets"]["data"]["histogram"]["counts"], "data",
                       label=s.label, color=c, alpha=1.0)

    return overlay(result, "norms", path, draw, xlabel="||x|| / median nearest-neighbour distance", ylabel="density",
                   title="Embedding norms in units of each space's scale")


def plot_angles(result: Any, path: Path) -> Any:
    """One panel per model: pair and axis angles of the data against h(θ) of its dimension."""
    from simcache.analysis.angles import angle_density

    spaces = [s for s in result.spaces if s.results.get("angles") and not s.results["angles"].get("skipped")]
    fig, axes = panel_grid(len(spaces), width=4.6, height=4.4)
    for j, s in enumerate(spaces):
        ax, r = axes[j], s.results["angles"]
        data = r["sets"]["data"]
        step_histogram(ax, r["edges"]["pair"], data["pair"]["histogram"]["counts"], "data",
                       label="random pairs", color=colour(result.spaces.index(s)), alpha=1.0)
        step_histogram(ax, r["edges"]["axis"], data["axis"]["histogram"]["counts"], "data",
                       label="coordinate axes", color="grey", alpha=1.0, linewidth=1.2)
        theta = np.linspace(0, np.pi, 400)
        ax.plot(theta, angle_density(theta, int(r["dim"])), color="black", linestyle=":", linewidth=1.6,
                label="isotropic h(θ)")
        ax.set_title(f"{s.label} (d = {r['dim']})\nKS D pairs {data['pair']['ks']:.2f}, axes {data['axis']['ks']:.2f}",
                     fontsize=9)
        ax.set_xlabel("angle θ (radians)")
        ax.set_xlim(0, np.pi)
        ax.grid(alpha=0.3)
        ax.set_ylabel("density")
        legend_below(ax, ncol=1)
    save_figure(fig, path)
    return fig


def plot_knn_radius(result: Any, path: Path) -> Any:
    """Mean kNN radius (divided by the scale) against k, log-log: slope 1 / intrinsic dimension."""

    def draw(ax, s, r, c):
        d = r["sets"]["data"]
        k = np.asarray(d["curve"]["k"], dtype=np.float64)
        radius = np.exp(np.asarray(d["curve"]["mean_log_r"], dtype=np.float64)) / s.s
        est = d.get("knn_radius")
        ax.plot(k, radius, "o-", color=c, markersize=3, linewidth=1.4, label=f"{s.label}: ID {est:.1f}" if est else s.label)

    return overlay(result, "knn-radius", path, draw, xlabel="k", log="xy",
                   ylabel="geometric-mean distance to the k-th neighbour / scale",
                   title="kNN radius against k (slope = 1 / intrinsic dimension)")


def plot_gmm(result: Any, path: Path) -> Any:
    """BIC minus its minimum, per point fitted, against K for every model; the chosen K marked."""
    from matplotlib.ticker import MaxNLocator

    def draw(ax, s, r, c):
        d = r["sets"]["data"]
        bic = np.asarray(d["bic"], dtype=np.float64)
        rel = (bic - np.nanmin(bic)) / max(1, d["points_fitted"])
        ax.plot(np.asarray(d["k"]), rel, "o-", color=c, markersize=3.5, label=f"{s.label}: K = {d['chosen_k_bic']}")
        ax.plot([d["chosen_k_bic"]], [0.0], "*", color=c, markersize=12)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    return overlay(result, "gmm", path, draw, xlabel="mixture components K", ylabel="(BIC - min BIC) / points fitted",
                   title="Gaussian mixtures: BIC curves (star: the K chosen)")


def plot_maps(result: Any, path: Path) -> Any:
    """One t-SNE panel per model, points coloured by mixture component."""
    spaces = [s for s in result.spaces if s.results.get("map") and not s.results["map"].get("skipped")]
    fig, axes = panel_grid(len(spaces), width=4.4, height=4.6)
    for j, s in enumerate(spaces):
        ax, d = axes[j], s.results["map"]["sets"]["data"]
        xy = np.asarray(d["tsne"], dtype=np.float64)
        labels = np.asarray(d.get("labels", np.zeros(len(xy))))
        ax.scatter(xy[:, 0], xy[:, 1], c=labels % 10, cmap="tab10", vmin=0, vmax=9, s=3, alpha=0.7, linewidths=0)
        # a title, not a legend: one legend marker could not stand for the panel's several colours
        ax.set_title(f"{s.label}\n{len(xy):,} points, colour: mixture component ({len(np.unique(labels))})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path)
    return fig


def plot_drift(result: Any, path: Path) -> Any:
    """CDFs of drift and of the nearest other user's distance, divided by each space's scale."""

    def draw(ax, s, r, c):
        edges = np.asarray(r["edges"], dtype=np.float64) / s.s
        h = r["histograms"]
        if "drift" in h:
            ax.plot(edges, h["drift"]["cdf"], "-", color=c, linewidth=2.0, label=f"{s.label}: drift")
        if "nearest_other_user" in h:
            ax.plot(edges, h["nearest_other_user"]["cdf"], "--", color=c, linewidth=1.3,
                    label=f"{s.label}: nearest other user")

    return overlay(result, "drift", path, draw, xlabel="distance / median nearest-neighbour distance",
                   ylabel="fraction below", log="x", legend_columns=4,
                   title="Drift between a user's consecutive embeddings (solid) and nearest other user (dashed)")


def plot_sweep(result: Any, path: Path) -> Any:
    """Hit ratio (query policies, against the normalised radius) and NAG (object policies, against the
    normalised fetch cost), per model."""
    metrics = [m for m in ("hit_ratio", "nag") if any(r["metric"] == m for s in result.spaces for r in s.sweep)]
    n = max(1, len(metrics))
    fig, axes = new_figure(1, n, width=6.0, height=4.8)
    for j, metric in enumerate(metrics):
        ax = axes[0, j]
        for i, s in enumerate(result.spaces):
            rows = [r for r in s.sweep if r["metric"] == metric]
            keys = sorted({(r["policy"], r["capacity"]) for r in rows})
            for m, (policy, cap) in enumerate(keys):
                pts = sorted((r["radius_normalised"], r["value"]) for r in rows
                             if r["policy"] == policy and r["capacity"] == cap)
                x, y = zip(*pts)
                ax.plot(x, y, ["o-", "s--", "^:", "d-."][m % 4], color=colour(i), markersize=4,
                        label=f"{s.label}, {policy}, C = {cap}")
        ax.set_xlabel("radius / median nearest-neighbour distance" if metric == "hit_ratio"
                      else "fetch cost c_f / median distance from a request to its nearest object")
        ax.set_ylabel("hit ratio" if metric == "hit_ratio" else "NAG")
        ax.set_title("Query cache: hit ratio" if metric == "hit_ratio" else "Object cache: NAG")
        ax.grid(alpha=0.3)
        legend_below(ax, ncol=2)
    save_figure(fig, path)
    return fig


PLOTS = {"norms": plot_norms, "angles": plot_angles, "knn-radius": plot_knn_radius, "gmm": plot_gmm,
         "map": plot_maps, "drift": plot_drift}


def plot_all(result: Any, out: Path, files: dict[str, str]) -> list[Path]:
    """Every comparison figure the run's analyses (and sweep) allow; returns the paths written."""
    written = []
    for name, fn in PLOTS.items():
        if name in result.config.analyses:
            fn(result, out / files[name])
            written.append(out / files[name])
    if result.config.sweep is not None and any(s.sweep for s in result.spaces):
        plot_sweep(result, out / files["sweep"])
        written.append(out / files["sweep"])
    return written
