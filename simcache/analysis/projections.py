"""``projections``: scatter plots of random pairs of coordinates, and the covariance spectrum.

``n_pairs`` distinct coordinate pairs ``(i, j)`` are drawn (seeded) and every set is scattered on
them, up to ``max_scatter`` points per set (the stored coordinates are what the figure shows).
Alongside, the principal-component view: the projection of each set on its own first two
principal axes, the eigenvalue spectrum of its covariance (explained-variance ratios), the
participation ratio ``(sum l)^2 / sum l^2`` (an effective number of dimensions; ``d`` for an
isotropic cloud) and how many components hold 90/95/99% of the variance.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from simcache.analysis.baselines import Baselines, resolve_sets
from simcache.analysis.common import make_rng, subsample_indices
from simcache.analysis.plotting import new_figure, plot_order, save_figure, style, subtitle

NAME = "projections"


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


def plot_projections(result: dict[str, Any], path: str | os.PathLike) -> None:
    """A grid: one scatter per coordinate pair, the PC1/PC2 scatter, and the explained-variance spectrum."""
    pairs = result["pairs"]
    n_panels = len(pairs) + 3
    ncols = 3
    nrows = -(-n_panels // ncols)
    fig, axes = new_figure(nrows, ncols, width=4.6, height=4.0)
    flat = axes.ravel()
    names = plot_order(result["sets"])
    for a, (i, j) in enumerate(pairs):
        ax = flat[a]
        for name in names:
            s = result["sets"][name]
            xy = np.asarray(s["scatter"][a], dtype=np.float64)
            st = style(name)
            r = s["correlation"][a]
            ax.scatter(xy[:, 0], xy[:, 1], s=3 if name == "data" else 2, alpha=0.6 if name == "data" else 0.3,
                       color=st["color"], label=f"{st['label']} (r = {r:.2f})" if r is not None else st["label"],
                       rasterized=True)
        ax.set_xlabel(f"coordinate {i}")
        ax.set_ylabel(f"coordinate {j}")
        ax.set_title(f"Coordinates {i} vs {j}")
        ax.legend(loc="best", fontsize=7, markerscale=3)
        ax.grid(alpha=0.3)
    ax = flat[len(pairs)]
    for name in names:
        xy = np.asarray(result["sets"][name]["pc_scatter"], dtype=np.float64)
        st = style(name)
        ax.scatter(xy[:, 0], xy[:, 1], s=3 if name == "data" else 2, alpha=0.6 if name == "data" else 0.3,
                   color=st["color"], label=st["label"], rasterized=True)
    ax.set_xlabel("principal component 1 (of each set)")
    ax.set_ylabel("principal component 2")
    ax.set_title("Projection on the first two principal axes")
    ax.legend(loc="best", fontsize=7, markerscale=3)
    ax.grid(alpha=0.3)
    ax = flat[len(pairs) + 1]
    for name in names:
        sp = result["sets"][name]["spectrum"]
        ratio = np.asarray(sp["explained_ratio"], dtype=np.float64)
        st = style(name)
        pr = sp["participation_ratio"]
        ax.plot(np.arange(1, len(ratio) + 1), ratio, color=st["color"],
                label=f"{st['label']} (participation ratio {pr:.1f})" if pr else st["label"],
                linewidth=2.0 if name == "data" else 1.4)
    ax.set_yscale("log")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.set_title(f"Covariance spectrum ({subtitle(result)})")
    ax.legend(loc="best", fontsize=7)
    ax.grid(alpha=0.3, which="both")
    ax = flat[len(pairs) + 2]
    for name in names:
        ratio = np.asarray(result["sets"][name]["spectrum"]["explained_ratio"], dtype=np.float64)
        st = style(name)
        ax.plot(np.arange(1, len(ratio) + 1), np.cumsum(ratio), color=st["color"], label=st["label"],
                linewidth=2.0 if name == "data" else 1.4)
    for q in (0.9, 0.99):
        ax.axhline(q, color="grey", linestyle=":", linewidth=1.0)
    ax.set_xlabel("number of principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_title("Cumulative spectrum (dotted: 90% and 99%)")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(alpha=0.3)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    save_figure(fig, path)
