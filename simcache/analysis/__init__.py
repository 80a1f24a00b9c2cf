"""What metric space do the embeddings live in? Analyses of an embedding matrix beside two baselines.

Each analysis is a pure function ``analyze_<x>(points, *, baselines=None, seed=0, ...) -> dict``
that returns numbers only (JSON-ready through :func:`~simcache.jsonout.to_jsonable`), plus
a ``plot_<x>(result, path)`` that draws the PNG from that dict alone. Every result holds the data
and the two matched baselines of :mod:`simcache.analysis.baselines` (uniform ball, isotropic
Gaussian) under ``result["sets"]``; :func:`plot_result` dispatches on ``result["analysis"]``.

=============== ======================================= =====================================
name            function                                module
=============== ======================================= =====================================
``norms``       :func:`analyze_norms`                   :mod:`~simcache.analysis.norms`
``balls``       :func:`analyze_balls`                   :mod:`~simcache.analysis.balls`
``knn-radius``  :func:`analyze_intrinsic_dim`           :mod:`~simcache.analysis.intrinsic_dim`
``angles``      :func:`analyze_angles`                  :mod:`~simcache.analysis.angles`
``projections`` :func:`analyze_projections`             :mod:`~simcache.analysis.projections`
``gmm``         :func:`analyze_gmm`                     :mod:`~simcache.analysis.mixtures`
``map``         :func:`analyze_map` (labels from        :mod:`~simcache.analysis.maps`
                :func:`gmm_labels`)
``drift``       :func:`analyze_drift` (needs user ids)  :mod:`~simcache.analysis.drift`
=============== ======================================= =====================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from simcache.analysis.angles import analyze_angles, angle_cdf, angle_density, plot_angles
from simcache.analysis.balls import analyze_balls, plot_balls
from simcache.analysis.baselines import Baselines, isotropic_gaussian, matched_baselines, uniform_ball
from simcache.analysis.drift import analyze_drift, plot_drift
from simcache.analysis.intrinsic_dim import analyze_intrinsic_dim, estimate_intrinsic_dim, plot_intrinsic_dim
from simcache.analysis.maps import analyze_map, plot_map
from simcache.analysis.mixtures import analyze_gmm, gmm_labels, plot_gmm
from simcache.analysis.norms import analyze_norms, plot_norms
from simcache.analysis.projections import analyze_projections, plot_projections
from simcache.analysis.report import write_report

#: Analysis name -> plot function, in the order ``simcache analyze all`` runs them.
PLOTTERS: dict[str, Callable[[dict[str, Any], str | os.PathLike], None]] = {
    "norms": plot_norms,
    "balls": plot_balls,
    "knn-radius": plot_intrinsic_dim,
    "angles": plot_angles,
    "projections": plot_projections,
    "gmm": plot_gmm,
    "map": plot_map,
    "drift": plot_drift,
}
ANALYSIS_NAMES = tuple(PLOTTERS)


def plot_result(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Draw ``result`` (from any ``analyze_*``) as a PNG at ``path``."""
    name = result.get("analysis")
    if name not in PLOTTERS:
        raise ValueError(f"unknown analysis {name!r}; expected one of {', '.join(PLOTTERS)}")
    PLOTTERS[name](result, path)


__all__ = [
    "ANALYSIS_NAMES",
    "PLOTTERS",
    "Baselines",
    "analyze_angles",
    "analyze_balls",
    "analyze_drift",
    "analyze_gmm",
    "analyze_intrinsic_dim",
    "analyze_map",
    "analyze_norms",
    "analyze_projections",
    "angle_cdf",
    "angle_density",
    "estimate_intrinsic_dim",
    "gmm_labels",
    "isotropic_gaussian",
    "matched_baselines",
    "plot_result",
    "uniform_ball",
    "write_report",
]
