"""``projections``: scatter plots of random pairs of coordinates, and the covariance spectrum.

``n_pairs`` distinct coordinate pairs ``(i, j)`` are drawn (seeded) and every set is projected on
them, up to ``max_scatter`` points per set (stored; the figure shows the data as points and each
baseline as the ellipse holding 90% of its points, so that neither baseline hides the other).
Alongside, the principal-component view: the projection of each set on its own first two
principal axes, the eigenvalue spectrum of its covariance (explained-variance ratios), the
participation ratio ``(sum l)^2 / sum l^2`` (an effective number of dimensions; ``d`` for an
isotropic cloud) and how many components hold 90/95/99% of the variance.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from simcache.analysis.baselines import DATA, Baselines, resolve_sets
from simcache.analysis.common import make_rng, subsample_indices
from simcache.analysis.plotting import legend_below, line_style, new_figure, plot_order, save_figure, style, subtitle
from simcache.analysis.spec import AnalysisContext
from simcache.analysis.tables import fmt, set_rows, table

NAME = "projections"
#: Share of a baseline's points inside the ellipse drawn for it.
ELLIPSE_MASS = 0.9


def coordinate_pairs(d: int, n_pairs: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``n_pairs`` distinct unordered pairs ``i < j`` of coordinates, drawn at random."""
    total = d * (d - 1) // 2
    m = min(int(n_pairs), total)
    if m == 0:
        return []
    flat = rng.choice(total, size=m, replace=False)
    iu, ju = np.triu_indices(d, k=1)
    return [(int(iu[f]), int(ju[f])) for f in flat]


def spectrum(x: np.ndarray, singular_values: np.ndarray | None = None) -> dict[str, Any]:
    """Covariance eigenvalues (descending), explained-variance ratios and effective dimensions.

    ``singular_values`` of the centred ``x`` may be passed when already computed.
    """
    s = singular_values
    if s is None:
        s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
    lam = s**2 / max(len(x) - 1, 1)
    total = float(lam.sum())
    ratio = lam / total if total > 0 else lam
    cum = np.cumsum(ratio)
    std = x.std(axis=0)
    return {
        "eigenvalues": lam,
        "explained_ratio": ratio,
        "participation_ratio": float(total**2 / (lam**2).sum()) if total > 0 else None,
        "components_for": {f"{int(q * 100)}%": int(np.searchsorted(cum, q) + 1) for q in (0.9, 0.95, 0.99)},
        "coordinate_std": {"min": float(std.min()), "max": float(std.max())},
    }


def _principal(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values of the centred ``x`` and its coordinates on the first two principal axes."""
    xc = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    pcs = xc @ vt[:2].T
    if pcs.shape[1] < 2:
        pcs = np.column_stack([pcs, np.zeros(len(xc))])
    return s, pcs


def analyze_projections(points: Any, *, baselines: Baselines | None = None, seed: int = 0, n_pairs: int = 6,
                        max_scatter: int = 2000) -> dict[str, Any]:
    """Random coordinate-pair scatters and the covariance spectrum of the data and the baselines."""
    sets, binfo = resolve_sets(points, baselines, seed)
    d = int(sets["data"].shape[1])
    pairs = coordinate_pairs(d, n_pairs, make_rng(seed, 30))
    out_sets = {}
    for k, (name, x) in enumerate(sets.items()):
        idx = subsample_indices(len(x), max_scatter, make_rng(seed, 31 + k))
        rows = slice(None) if idx is None else idx
        sx = x[rows]
        corr = [float(np.corrcoef(x[:, i], x[:, j])[0, 1]) if x[:, i].std() > 0 and x[:, j].std() > 0 else None
                for i, j in pairs]
        sing, pcs = _principal(x)
        out_sets[name] = {
            "scatter": [sx[:, [i, j]] for i, j in pairs],
            "correlation": corr,
            "pc_scatter": pcs[rows],
            "spectrum": spectrum(x, sing),
        }
    return {
        "analysis": NAME,
        "n": int(sets["data"].shape[0]),
        "dim": d,
        "params": {"n_pairs": int(n_pairs), "max_scatter": int(max_scatter), "seed": seed},
        "baselines": binfo,
        "pairs": pairs,
        "sets": out_sets,
    }


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``projections`` on a run's input and options."""
    return analyze_projections(ctx.points, baselines=ctx.baselines, seed=ctx.options.seed,
                               n_pairs=ctx.options.projection_pairs)


def report(r: dict[str, Any]) -> list[str]:
    """The report section: effective number of dimensions per set."""
    return table(["set", "participation ratio", "PCs for 90% variance", "PCs for 99% variance"],
                 set_rows(r["sets"], lambda s: [fmt(s["spectrum"]["participation_ratio"], ".1f"),
                                                str(s["spectrum"]["components_for"]["90%"]),
                                                str(s["spectrum"]["components_for"]["99%"])]))


def mass_ellipse(xy: np.ndarray, mass: float = ELLIPSE_MASS, n: int = 200) -> np.ndarray | None:
    """``(n, 2)`` points of the ellipse (from the sample mean and covariance) holding ``mass`` of ``xy``.

    Its radius is the ``mass`` quantile of the points' Mahalanobis distances, so it holds that
    share of the points exactly, whatever their law; ``None`` for a degenerate sample.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < 3:
        return None
    mu = xy.mean(axis=0)
    cov = np.cov(xy, rowvar=False)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    z = np.linalg.solve(chol, (xy - mu).T)
    radius = float(np.sqrt(np.quantile((z**2).sum(axis=0), mass)))
    t = np.linspace(0.0, 2.0 * np.pi, n)
    return mu + radius * (chol @ np.vstack([np.cos(t), np.sin(t)])).T


def _scatter_panel(ax: Any, result: dict[str, Any], points_of: Any, label_of: Any) -> None:
    """The data as points, each baseline as the outline of its 90%-mass ellipse (outlines never hide each other)."""
    for name in plot_order(result["sets"]):
        xy = np.asarray(points_of(result["sets"][name]), dtype=np.float64)
        if name == DATA:
            st = style(name)
            ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.5, color=st["color"], label=label_of(name, st["label"]),
                       rasterized=True, zorder=1)
            continue
        ell = mass_ellipse(xy)
        if ell is not None:
            st = line_style(name)
            st["label"] = label_of(name, f"{st['label']}: {ELLIPSE_MASS:.0%} of its points")
            ax.plot(ell[:, 0], ell[:, 1], zorder=2, **st)


def plot_projections(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """A grid: one panel per coordinate pair, the PC1/PC2 view, and the explained-variance spectrum.

    The data are drawn as points; each baseline as the ellipse holding 90% of its points (two
    overlapping clouds of points would hide one another).
    """
    pairs = result["pairs"]
    n_panels = len(pairs) + 3
    ncols = 3
    nrows = -(-n_panels // ncols)
    fig, axes = new_figure(nrows, ncols, width=4.6, height=4.9)
    flat = axes.ravel()
    names = plot_order(result["sets"])
    for a, (i, j) in enumerate(pairs):
        ax = flat[a]

        def label(name: str, text: str, a: int = a) -> str:
            r = result["sets"][name]["correlation"][a]
            return f"{text} (r = {r:.2f})" if r is not None else text

        _scatter_panel(ax, result, lambda s, a=a: s["scatter"][a], label)
        ax.set_xlabel(f"coordinate {i}")
        ax.set_ylabel(f"coordinate {j}")
        ax.set_title(f"Coordinates {i} vs {j}")
        legend_below(ax, fontsize=7, markerscale=3)
        ax.grid(alpha=0.3)
    ax = flat[len(pairs)]
    _scatter_panel(ax, result, lambda s: s["pc_scatter"], lambda name, text: text)
    ax.set_xlabel("principal component 1 (of each set)")
    ax.set_ylabel("principal component 2")
    ax.set_title("Projection on the first two principal axes")
    legend_below(ax, fontsize=7, markerscale=3)
    ax.grid(alpha=0.3)
    ax = flat[len(pairs) + 1]
    for name in names:
        sp = result["sets"][name]["spectrum"]
        ratio = np.asarray(sp["explained_ratio"], dtype=np.float64)
        st = line_style(name)
        pr = sp["participation_ratio"]
        if pr:
            st["label"] = f"{st['label']} (participation ratio {pr:.1f})"
        ax.plot(np.arange(1, len(ratio) + 1), ratio, **st)
    ax.set_yscale("log")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.set_title(f"Covariance spectrum ({subtitle(result)})")
    legend_below(ax, fontsize=7)
    ax.grid(alpha=0.3, which="both")
    ax = flat[len(pairs) + 2]
    for name in names:
        ratio = np.asarray(result["sets"][name]["spectrum"]["explained_ratio"], dtype=np.float64)
        ax.plot(np.arange(1, len(ratio) + 1), np.cumsum(ratio), **line_style(name))
    for q, dash in ((0.9, ":"), (0.99, "-.")):
        ax.axhline(q, color="grey", linestyle=dash, linewidth=1.0, label=f"{q:.0%} of the variance")
    ax.set_xlabel("number of principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_title("Cumulative spectrum")
    ax.set_ylim(0, 1.02)
    legend_below(ax, fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    save_figure(fig, path)
    return fig
