"""``map``: 2-D t-SNE (and, when ``umap-learn`` is installed, UMAP) views coloured by GMM component.

Up to ``max_points`` points (seeded subsample) of each set are reduced to ``pca_dims`` principal
components (the usual t-SNE preprocessing) and embedded with :class:`sklearn.manifold.TSNE`
(PCA initialisation, ``learning_rate="auto"``, seeded). The data are coloured by the ``labels``
given (e.g. :func:`simcache.analysis.mixtures.gmm_labels`); the baselines get a t-SNE map of
their own as the structureless reference, on at most ``baseline_max_points`` points
(``baseline_maps=False`` skips them). UMAP is an
optional extra (``pip install simcache[umap]``) imported only here; when it is missing the
result says so under ``umap_note`` and the figure has no UMAP panel.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from simcache.analysis.baselines import DATA, Baselines, resolve_sets
from simcache.analysis.common import limited_threads, make_rng, progress_bar, subsample_indices
from simcache.analysis.plotting import legend_below, new_figure, save_figure, style, subtitle
from simcache.analysis.spec import AnalysisContext

NAME = "map"
UMAP_MISSING = "umap-learn is not installed (pip install 'simcache[umap]'); UMAP view skipped"


def _pca(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    if not dims or dims >= min(x.shape):
        return x
    from sklearn.decomposition import PCA

    return PCA(n_components=int(dims), random_state=seed).fit_transform(x)


def tsne_2d(x: np.ndarray, *, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50) -> tuple[np.ndarray, float]:
    """A 2-D t-SNE embedding of ``x`` and its final KL divergence."""
    from sklearn.manifold import TSNE

    z = _pca(x, pca_dims, seed)
    perp = float(min(perplexity, max(2.0, (len(z) - 1) / 3.0)))
    ts = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed)
    y = ts.fit_transform(z)
    return y, float(ts.kl_divergence_)


def umap_2d(x: np.ndarray, *, seed: int = 0, pca_dims: int = 50) -> np.ndarray | None:
    """A 2-D UMAP embedding of ``x``, or ``None`` when umap-learn is not installed."""
    try:
        import umap
    except ImportError:
        return None
    z = _pca(x, pca_dims, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that a random_state disables parallelism
        reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(z) - 1))
        return np.asarray(reducer.fit_transform(z), dtype=np.float64)


def analyze_map(points: Any, *, labels: Any = None, baselines: Baselines | None = None, seed: int = 0,
                max_points: int | None = 5000, perplexity: float = 30.0, pca_dims: int = 50,
                use_umap: bool = True, baseline_maps: bool = True, baseline_max_points: int | None = 2000,
                threads: int | None = None, progress: bool | None = None) -> dict[str, Any]:
    """t-SNE (and UMAP) coordinates of the data, coloured by ``labels``, and t-SNE maps of the baselines.

    The baselines are structureless references, so their maps use at most ``baseline_max_points``
    points (t-SNE is the slow step). ``threads`` limits the BLAS/OpenMP pools during the
    embeddings (``None``: library defaults).
    """
    with limited_threads(threads):
        return _analyze_map(points, labels=labels, baselines=baselines, seed=seed, max_points=max_points,
                            perplexity=perplexity, pca_dims=pca_dims, use_umap=use_umap, baseline_maps=baseline_maps,
                            baseline_max_points=baseline_max_points, progress=progress)


def _analyze_map(points: Any, *, labels: Any, baselines: Baselines | None, seed: int, max_points: int | None,
                 perplexity: float, pca_dims: int, use_umap: bool, baseline_maps: bool,
                 baseline_max_points: int | None, progress: bool | None) -> dict[str, Any]:
    sets, binfo = resolve_sets(points, baselines, seed)
    n = len(sets[DATA])
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if not baseline_maps:
        sets = {DATA: sets[DATA]}
    out_sets: dict[str, Any] = {}
    subsampled = False
    umap_note = None if use_umap else "UMAP not requested"
    steps = len(sets) + (1 if use_umap else 0)
    with progress_bar(steps, "map", progress) as bar:
        for k, (name, x) in enumerate(sets.items()):
            cap = max_points if name == DATA else _min_cap(max_points, baseline_max_points)
            idx = subsample_indices(len(x), cap, make_rng(seed, 50 + k))
            xs = x if idx is None else x[idx]
            if name == DATA:
                subsampled = idx is not None
            bar.set_postfix_str(f"t-SNE of {name} ({len(xs):,} points)")
            y, kl = tsne_2d(xs, seed=seed, perplexity=perplexity, pca_dims=pca_dims)
            bar.update()
            entry: dict[str, Any] = {"points": int(len(xs)), "tsne": y, "tsne_kl": kl}
            if name == DATA:
                if labels is not None:
                    lab = labels if idx is None else labels[idx]
                    entry["labels"] = lab.astype(np.int64)
                    entry["label_counts"] = {str(v): int(c) for v, c in zip(*np.unique(lab, return_counts=True))}
                if use_umap:
                    bar.set_postfix_str(f"UMAP of {name} ({len(xs):,} points)")
                    u = umap_2d(xs, seed=seed, pca_dims=pca_dims)
                    bar.update()
                    if u is None:
                        umap_note = UMAP_MISSING
                    entry["umap"] = u
            out_sets[name] = entry
    return {
        "analysis": NAME,
        "n": n,
        "dim": int(sets[DATA].shape[1]),
        "params": {"max_points": max_points, "baseline_max_points": baseline_max_points,
                   "perplexity": float(perplexity), "pca_dims": int(pca_dims),
                   "use_umap": bool(use_umap), "baseline_maps": bool(baseline_maps), "seed": seed},
        "subsampled": subsampled,
        "umap_note": umap_note,
        "baselines": binfo,
        "sets": out_sets,
    }


def _min_cap(a: int | None, b: int | None) -> int | None:
    caps = [c for c in (a, b) if c]
    return min(caps) if caps else None


def map_labels(points: np.ndarray, ctx: AnalysisContext) -> tuple[np.ndarray, dict[str, Any]]:
    """Mixture labels for the map's colours: ``components`` if given, else ``gmm``'s choice from the same run,
    else a BIC selection on the map sample itself; and how the number was chosen."""
    from simcache.analysis.mixtures import gmm_labels, select_components

    o = ctx.options
    chosen = ctx.results.get("gmm", {}).get("chosen_k")
    if o.components is not None:
        k, source = int(o.components), "--components"
    elif chosen is not None:
        k, source = int(chosen), "gmm (BIC on the gmm sample)"
    else:
        sel = select_components(points, max_components=o.max_components, covariance_type=o.covariance,
                                pca_dims=o.pca_dims, seed=o.seed, desc="gmm for map colours", progress=ctx.progress)
        k, source = int(sel["chosen_k_bic"]), "BIC on the map sample"
    labels = gmm_labels(points, k, seed=o.seed, covariance_type=o.covariance, pca_dims=o.pca_dims)
    return labels, {"components": k, "chosen_by": source, "covariance_type": o.covariance}


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``map`` on a run's input: a seeded sample of at most ``map_sample`` points, coloured by mixture component."""
    o, x = ctx.options, ctx.points
    idx = subsample_indices(len(x), o.map_sample, make_rng(o.seed, 71))
    xm = x if idx is None else x[idx]
    labels, how = map_labels(xm, ctx)
    res = analyze_map(xm, labels=labels, baselines=ctx.baselines, seed=o.seed, max_points=o.map_sample,
                      perplexity=o.perplexity, pca_dims=o.pca_dims, use_umap=o.umap, baseline_maps=o.baseline_maps,
                      threads=o.threads, progress=ctx.progress)
    res["n"] = int(len(x))
    res["subsampled"] = idx is not None or res["subsampled"]
    res["colours"] = how
    return res


def report(r: dict[str, Any]) -> list[str]:
    """The report section: what the maps show."""
    d = r["sets"]["data"]
    lines = [f"t-SNE of {d['points']:,} points" + (", coloured by GMM component" if d.get("labels") is not None else "")
             + "."]
    if r.get("umap_note"):
        lines.append(f"Note: {r['umap_note']}.")
    return lines


def plot_map(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """Panels: data t-SNE (coloured by component), data UMAP if present, then each baseline's t-SNE."""
    data = result["sets"][DATA]
    panels: list[tuple[str, str, np.ndarray]] = [(DATA, "t-SNE", np.asarray(data["tsne"], dtype=np.float64))]
    if data.get("umap") is not None:
        panels.append((DATA, "UMAP", np.asarray(data["umap"], dtype=np.float64)))
    for name, s in result["sets"].items():
        if name != DATA:
            panels.append((name, "t-SNE", np.asarray(s["tsne"], dtype=np.float64)))
    fig, axes = new_figure(1, len(panels), width=5.0, height=5.6)
    labels = np.asarray(data["labels"]) if data.get("labels") is not None else None
    for ax, (name, method, y) in zip(axes[0], panels):
        st = style(name)
        if name == DATA and labels is not None:
            cmap = _cmap(int(labels.max()) + 1)
            for c in np.unique(labels):
                m = labels == c
                ax.scatter(y[m, 0], y[m, 1], s=3, color=cmap[int(c)], alpha=0.7, rasterized=True,
                           label=f"GMM component {int(c)} ({int(m.sum())} pts)")
            legend_below(ax, fontsize=7, markerscale=4, ncol=2)
        else:
            ax.scatter(y[:, 0], y[:, 1], s=3, color=st["color"], alpha=0.6, rasterized=True, label=st["label"])
            legend_below(ax, fontsize=7, markerscale=4)
        ax.set_xlabel(f"{method} 1")
        ax.set_ylabel(f"{method} 2")
        ax.set_title(f"{method}: {st['label']} ({len(y):,} points)")
        ax.grid(alpha=0.2)
    fig.suptitle(f"2-D maps ({subtitle(result)})" + (f" — {result['umap_note']}" if result.get("umap_note") else ""),
                 fontsize=10)
    save_figure(fig, path)
    return fig


def _cmap(k: int) -> list[Any]:
    from matplotlib import colormaps

    cm = colormaps["tab10" if k <= 10 else "tab20"]
    return [cm(i % cm.N) for i in range(k)]
