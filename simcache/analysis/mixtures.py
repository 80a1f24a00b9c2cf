"""``gmm``: Gaussian mixtures with 1..K components, BIC and AIC curves, the chosen number of components.

Per set (data and baselines): up to ``max_points`` points (seeded subsample), projected on their
first ``pca_dims`` principal components when ``d`` is larger (full-covariance EM costs
``O(n K d^2)`` per iteration, which is prohibitive at ``d = 200``; the variance kept is reported;
``pca_dims=0`` fits in the full space), then :class:`sklearn.mixture.GaussianMixture` with
``covariance_type`` (``"full"`` by default: clusters of correlated embeddings; ``"diag"`` is
faster but splits one correlated blob into several components), ``n_init`` k-means
initialisations, ``random_state`` from the seed. The chosen ``K`` minimises BIC (AIC's minimum
is reported too). A structureless baseline should choose 1.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from simcache.analysis.baselines import Baselines, resolve_sets
from simcache.analysis.common import make_rng, progress, single_threaded_blas, subsample
from simcache.analysis.plotting import new_figure, plot_order, save_figure, style, subtitle

NAME = "gmm"
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


def _reduce(x: np.ndarray, pca_dims: int, seed: int) -> tuple[np.ndarray, float]:
    """``x`` projected on its first ``pca_dims`` principal components, and the variance fraction kept."""
    if not pca_dims or pca_dims >= x.shape[1]:
        return x, 1.0
    from sklearn.decomposition import PCA

    pca = PCA(n_components=int(pca_dims), random_state=seed)
    z = pca.fit_transform(x)
    return z, float(pca.explained_variance_ratio_.sum())


def _fit(z: np.ndarray, k: int, *, covariance_type: str, seed: int, n_init: int, max_iter: int) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(n_components=k, covariance_type=covariance_type, n_init=n_init, max_iter=max_iter,
                         random_state=seed, reg_covar=1e-6 * max(float(z.var(axis=0).mean()), 1e-12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(z)
    return gm


def select_components(x: np.ndarray, *, max_components: int = 8, covariance_type: str = "full", pca_dims: int = 50,
                      seed: int = 0, n_init: int = 1, max_iter: int = 200, desc: str = "gmm") -> dict[str, Any]:
    """BIC/AIC for ``K = 1..max_components`` on one point set; the result names the BIC-chosen ``K``."""
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
    if max_components < 1:
        raise ValueError("max_components must be >= 1")
    z, kept = _reduce(x, pca_dims, seed)
    ks = list(range(1, min(int(max_components), len(z)) + 1))
    bic, aic, loglik, converged, n_iter = [], [], [], [], []
    models = {}
    with single_threaded_blas():
        for k in progress(ks, desc, total=len(ks)):
            gm = _fit(z, k, covariance_type=covariance_type, seed=seed, n_init=n_init, max_iter=max_iter)
            bic.append(float(gm.bic(z)))
            aic.append(float(gm.aic(z)))
            loglik.append(float(gm.score(z)))
            converged.append(bool(gm.converged_))
            n_iter.append(int(gm.n_iter_))
            models[k] = gm
    best = ks[int(np.argmin(bic))]
    return {
        "points_fitted": int(len(z)),
        "dims_fitted": int(z.shape[1]),
        "pca_variance_kept": kept,
        "k": ks,
        "bic": bic,
        "aic": aic,
        "mean_loglik": loglik,
        "converged": converged,
        "n_iter": n_iter,
        "chosen_k_bic": best,
        "chosen_k_aic": ks[int(np.argmin(aic))],
        "chosen_weights": np.sort(models[best].weights_)[::-1],
    }


def analyze_gmm(points: Any, *, baselines: Baselines | None = None, seed: int = 0, max_components: int = 8,
                covariance_type: str = "full", pca_dims: int = 50, max_points: int | None = 10_000,
                n_init: int = 1, max_iter: int = 200) -> dict[str, Any]:
    """BIC/AIC curves and the chosen number of components for the data and the baselines."""
    sets, binfo = resolve_sets(points, baselines, seed)
    out_sets = {}
    subsampled = False
    for k, (name, x) in enumerate(sets.items()):
        xs = subsample(x, max_points, make_rng(seed, 40 + k))
        subsampled |= len(xs) < len(x)
        out_sets[name] = select_components(xs, max_components=max_components, covariance_type=covariance_type,
                                           pca_dims=pca_dims, seed=seed, n_init=n_init, max_iter=max_iter,
                                           desc=f"gmm {name}")
    data = sets["data"]
    return {
        "analysis": NAME,
        "n": int(data.shape[0]),
        "dim": int(data.shape[1]),
        "params": {"max_components": int(max_components), "covariance_type": covariance_type,
                   "pca_dims": int(pca_dims), "max_points": max_points, "n_init": int(n_init),
                   "max_iter": int(max_iter), "seed": seed, "selection": "minimum BIC"},
        "subsampled": subsampled,
        "baselines": binfo,
        "chosen_k": out_sets["data"]["chosen_k_bic"],
        "sets": out_sets,
    }


def gmm_labels(points: Any, n_components: int, *, seed: int = 0, covariance_type: str = "full",
               pca_dims: int = 50, n_init: int = 1, max_iter: int = 200) -> np.ndarray:
    """Component labels (0-based, ordered by decreasing weight) of a ``n_components`` mixture fitted to ``points``."""
    x = np.asarray(points, dtype=np.float64)
    z, _ = _reduce(x, pca_dims, seed)
    with single_threaded_blas():
        gm = _fit(z, int(n_components), covariance_type=covariance_type, seed=seed, n_init=n_init, max_iter=max_iter)
        raw = gm.predict(z)
    rank = np.empty(gm.n_components, dtype=np.int64)
    rank[np.argsort(-gm.weights_, kind="stable")] = np.arange(gm.n_components)
    return rank[raw]


def plot_gmm(result: dict[str, Any], path: str | os.PathLike) -> None:
    """BIC and AIC minus their minimum against K for every set; the chosen K marked."""
    fig, axes = new_figure(1, 2, width=6.2, height=4.6)
    for ax, crit in zip(axes[0], ("bic", "aic")):
        for name in plot_order(result["sets"]):
            s = result["sets"][name]
            st = style(name)
            ks = np.asarray(s["k"])
            v = np.asarray(s[crit], dtype=np.float64)
            best = s[f"chosen_k_{crit}"]
            ax.plot(ks, v - v.min(), "o-", color=st["color"], linewidth=2.0 if name == "data" else 1.4,
                    label=f"{st['label']} (chosen K = {best})")
            ax.plot([best], [0.0], "*", color=st["color"], markersize=14, markeredgecolor="black")
        ax.set_yscale("symlog", linthresh=10.0)
        ax.set_xlabel("number of components K")
        ax.set_ylabel(f"{crit.upper()}(K) − min {crit.upper()} (lower is better)")
        p = result["params"]
        dims = f"PCA {p['pca_dims']} dims" if p["pca_dims"] and p["pca_dims"] < result["dim"] else "full space"
        ax.set_title(f"Gaussian mixtures, {crit.upper()} ({p['covariance_type']} covariance, {dims})\n"
                     f"{subtitle(result)}")
        ax.set_xticks(np.asarray(result["sets"]["data"]["k"]))
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3, which="both")
    save_figure(fig, path)
