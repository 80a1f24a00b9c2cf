"""``gmm``: Gaussian mixtures with 1..K components, BIC and AIC curves, the chosen number of components.

Per set (data and baselines): up to ``max_points`` points (seeded subsample), projected on their
first ``pca_dims`` principal components when ``d`` is larger (full-covariance EM costs
``O(n K d^2)`` per iteration, which is prohibitive at ``d = 200``; the variance kept is reported;
``pca_dims=0`` fits in the full space), then :class:`sklearn.mixture.GaussianMixture` with
``covariance_type`` (``"full"`` by default: clusters of correlated embeddings; ``"diag"`` is
faster but splits one correlated blob into several components), ``n_init`` k-means
initialisations, ``random_state`` from the seed. The chosen ``K`` minimises BIC (AIC's minimum
is reported too). A minimum at the top of the searched range is no minimum, so the range grows
until the BIC minimum lies inside it or the range reaches the number of points; the result says
plainly (``bic_minimum_inside``, ``warning``) when it could not. A structureless baseline should
choose 1.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from simcache.analysis.baselines import Baselines, resolve_sets
from simcache.analysis.common import make_rng, progress_bar, single_threaded_blas, subsample
from simcache.analysis.plotting import legend_below, line_style, new_figure, plot_order, save_figure, subtitle
from simcache.analysis.spec import AnalysisContext
from simcache.analysis.tables import fmt, set_rows, table

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


def n_parameters(k: int, d: int, covariance_type: str) -> int:
    """Free parameters of a ``k``-component mixture in ``d`` dimensions (what BIC charges for)."""
    cov = {"full": k * d * (d + 1) // 2, "diag": k * d, "tied": d * (d + 1) // 2, "spherical": k}[covariance_type]
    return int(k * d + cov + k - 1)


def _next_top(top: int, bound: int) -> int:
    """The new top of the searched range when the minimum sits at ``top``: half as many again (at least 2 more)."""
    return min(bound, top + max(2, -(-top // 2)))


def select_components(x: np.ndarray, *, max_components: int = 8, covariance_type: str = "full", pca_dims: int = 50,
                      seed: int = 0, n_init: int = 1, max_iter: int = 200, desc: str = "gmm",
                      extend: bool = True, k_limit: int | None = None,
                      progress: bool | None = None) -> dict[str, Any]:
    """BIC/AIC for ``K = 1..max_components`` on one point set; the result names the BIC-chosen ``K``.

    A minimum of BIC at the top of the range is no minimum: with ``extend`` the range grows (by
    half, at least two more K) until the BIC minimum lies inside it or the range reaches
    ``k_limit`` (default: the number of points fitted). ``bic_minimum_inside`` says which
    happened; when it is false the chosen K is only the edge of what was searched.
    """
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
    if max_components < 1:
        raise ValueError("max_components must be >= 1")
    z, kept = _reduce(x, pca_dims, seed)
    bound = len(z) if k_limit is None else max(1, min(int(k_limit), len(z)))
    top = min(int(max_components), bound)
    ks: list[int] = []
    bic, aic, loglik, converged, n_iter = [], [], [], [], []
    models = {}
    with single_threaded_blas(), progress_bar(top, desc, progress) as bar:
        while True:
            for k in range(len(ks) + 1, top + 1):
                gm = _fit(z, k, covariance_type=covariance_type, seed=seed, n_init=n_init, max_iter=max_iter)
                ks.append(k)
                bic.append(float(gm.bic(z)))
                aic.append(float(gm.aic(z)))
                loglik.append(float(gm.score(z)))
                converged.append(bool(gm.converged_))
                n_iter.append(int(gm.n_iter_))
                models[k] = gm
                bar.update()
            at_top = int(np.argmin(bic)) == len(ks) - 1
            if not (extend and at_top and top < bound):
                break
            top = _next_top(top, bound)
            bar.total = top
            bar.refresh()
    best = ks[int(np.argmin(bic))]
    inside = best < ks[-1]
    out = {
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
        "k_requested_max": int(max_components),
        "k_searched_max": int(ks[-1]),
        "k_limit": int(bound),
        "range_extended": bool(ks[-1] > min(int(max_components), bound)),
        "bic_minimum_inside": bool(inside),
    }
    out["chosen_n_parameters"] = n_parameters(best, int(z.shape[1]), covariance_type)
    notes = []
    if not inside:
        notes.append(f"BIC is lowest at the largest K searched ({ks[-1]}"
                     + (f", the limit of {bound} for {len(z):,} points" if ks[-1] >= bound else "")
                     + "): no minimum inside the range, so the chosen K is a lower bound, not a minimum")
    if out["chosen_n_parameters"] > len(z):
        notes.append(f"the chosen mixture has {out['chosen_n_parameters']:,} parameters for {len(z):,} points, "
                     "so its components are degenerate and BIC is not to be trusted; fewer --pca-dims or "
                     "--covariance diag fit fewer parameters")
    if notes:
        out["note"] = "; ".join(notes)
    return out


def analyze_gmm(points: Any, *, baselines: Baselines | None = None, seed: int = 0, max_components: int = 8,
                covariance_type: str = "full", pca_dims: int = 50, max_points: int | None = 10_000,
                n_init: int = 1, max_iter: int = 200, extend: bool = True,
                progress: bool | None = None) -> dict[str, Any]:
    """BIC/AIC curves and the chosen number of components for the data and the baselines.

    The searched range grows until the BIC minimum lies inside it (see :func:`select_components`);
    ``bic_minimum_inside`` and ``warning`` say when it could not.
    """
    sets, binfo = resolve_sets(points, baselines, seed)
    out_sets = {}
    subsampled = False
    for k, (name, x) in enumerate(sets.items()):
        xs = subsample(x, max_points, make_rng(seed, 40 + k))
        subsampled |= len(xs) < len(x)
        out_sets[name] = select_components(xs, max_components=max_components, covariance_type=covariance_type,
                                           pca_dims=pca_dims, seed=seed, n_init=n_init, max_iter=max_iter,
                                           desc=f"gmm {name}", extend=extend, progress=progress)
    data = sets["data"]
    out = {
        "analysis": NAME,
        "n": int(data.shape[0]),
        "dim": int(data.shape[1]),
        "params": {"max_components": int(max_components), "covariance_type": covariance_type,
                   "pca_dims": int(pca_dims), "max_points": max_points, "n_init": int(n_init),
                   "max_iter": int(max_iter), "seed": seed, "selection": "minimum BIC",
                   "extend_until_inside": bool(extend)},
        "subsampled": subsampled,
        "baselines": binfo,
        "chosen_k": out_sets["data"]["chosen_k_bic"],
        "bic_minimum_inside": out_sets["data"]["bic_minimum_inside"],
        "sets": out_sets,
    }
    if out_sets["data"].get("note"):
        out["warning"] = out_sets["data"]["note"]
    return out


def compute(ctx: AnalysisContext) -> dict[str, Any]:
    """``gmm`` on a run's input and options."""
    o = ctx.options
    return analyze_gmm(ctx.points, baselines=ctx.baselines, seed=o.seed, max_components=o.max_components,
                       covariance_type=o.covariance, pca_dims=o.pca_dims, max_points=o.gmm_sample,
                       progress=ctx.progress)


def report(r: dict[str, Any]) -> list[str]:
    """The report section: chosen K per set, the searched range, and a plain warning when BIC had no minimum."""
    p = r["params"]
    lines = table(["set", "K chosen by BIC", "K chosen by AIC", "K searched", "points fitted", "PCA variance kept"],
                  set_rows(r["sets"], lambda s: [str(s["chosen_k_bic"]), str(s["chosen_k_aic"]),
                                                 f"1..{s['k'][-1]}", str(s["points_fitted"]),
                                                 fmt(s["pca_variance_kept"])]))
    data = r["sets"]["data"]
    grown = (f"; the range grew from 1..{p['max_components']} to 1..{data['k'][-1]} to put the BIC minimum "
             "inside it" if data["k"][-1] > p["max_components"] else "")
    lines += ["", f"{p['covariance_type']} covariance, K = 1..{p['max_components']} first{grown}; "
              f"PCA to {p['pca_dims']} dimensions when d is larger."]
    if r.get("warning"):
        lines += ["", f"**Warning: {r['warning']}.**"]
    return lines


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


def plot_gmm(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """BIC and AIC minus their minimum against K for every set; the chosen K marked by stars."""
    fig, axes = new_figure(1, 2, width=6.2, height=5.0)
    markers = {"data": "o", "uniform_ball": "s", "gaussian": "^"}
    for ax, crit in zip(axes[0], ("bic", "aic")):
        stars_x = []
        for name in plot_order(result["sets"]):
            s = result["sets"][name]
            st = line_style(name)
            ks = np.asarray(s["k"])
            v = np.asarray(s[crit], dtype=np.float64)
            best = s[f"chosen_k_{crit}"]
            edge = " (edge of the range: no minimum)" if crit == "bic" and not s.get("bic_minimum_inside", True) else ""
            st["label"] = f"{st['label']} (chosen K = {best}{edge})"
            ax.plot(ks, v - v.min(), marker=markers.get(name, "o"), markersize=4, **st)
            stars_x.append(best)
        ax.scatter(stars_x, np.zeros(len(stars_x)), marker="*", s=180, color="gold", edgecolors="black", zorder=3,
                   label=f"chosen K (minimum {crit.upper()}), on each set's curve")
        ax.set_yscale("symlog", linthresh=10.0)
        ax.set_xlabel("number of components K")
        ax.set_ylabel(f"{crit.upper()}(K) − min {crit.upper()} (lower is better)")
        p = result["params"]
        dims = f"PCA {p['pca_dims']} dims" if p["pca_dims"] and p["pca_dims"] < result["dim"] else "full space"
        ax.set_title(f"Gaussian mixtures, {crit.upper()} ({p['covariance_type']} covariance, {dims})\n"
                     f"{subtitle(result)}")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_below(ax)
        ax.grid(alpha=0.3, which="both")
    if result.get("warning"):
        import textwrap

        fig.suptitle("Warning: " + textwrap.fill(result["warning"], 160), color="tab:red", fontsize=9)
    save_figure(fig, path)
    return fig
