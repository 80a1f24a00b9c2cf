"""What metric space do the embeddings live in? Analyses of an embedding matrix beside two baselines.

Each analysis is a pure function ``analyze_<x>(points, *, baselines=None, seed=0, ...) -> dict``
that returns numbers only (JSON-ready through :func:`~simcache.jsonout.to_jsonable`), plus
a ``plot_<x>(result, path)`` that draws the PNG from that dict alone. Every result holds the data
and the two matched baselines of :mod:`simcache.analysis.baselines` (uniform ball, isotropic
Gaussian) under ``result["sets"]``; :func:`plot_result` dispatches on ``result["analysis"]``.

The analyses are registered in :mod:`simcache.analysis.registry` (one record each: name,
functions, options, summary); :data:`ANALYSIS_NAMES` and :data:`PLOTTERS` are read from it.

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

from typing import Any

from simcache.analysis.angles import analyze_angles, angle_cdf, angle_density
from simcache.analysis.balls import analyze_balls
from simcache.analysis.baselines import Baselines, isotropic_gaussian, matched_baselines, uniform_ball
from simcache.analysis.drift import analyze_drift
from simcache.analysis.intrinsic_dim import analyze_intrinsic_dim, estimate_intrinsic_dim
from simcache.analysis.maps import analyze_map
from simcache.analysis.mixtures import analyze_gmm, gmm_labels
from simcache.analysis.norms import analyze_norms
from simcache.analysis.projections import analyze_projections
from simcache.analysis.report import write_report
from simcache.analysis.run import plot_result


def __getattr__(name: str) -> Any:
    """``ANALYSIS_NAMES`` and ``PLOTTERS``, read from the registry when asked (it may have grown since import)."""
    from simcache.analysis import registry

    if name == "ANALYSIS_NAMES":
        return registry.names()
    if name == "PLOTTERS":
        return {n: a.plot for n, a in registry.REGISTRY.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
