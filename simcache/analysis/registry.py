"""The analyses, one record each: the single place an analysis is registered.

``simcache analyze <name>`` (its options and help), ``analyze all`` (the order below), the
sections of ``report.md``, :class:`AnalysisOptions` and the tests' parametrisation are all derived
from :data:`REGISTRY`. Adding an analysis is one module (``compute``, ``plot``, ``report``
functions), one :class:`~simcache.analysis.spec.Analysis` entry here and one test class; options
shared by several analyses are declared once below and listed by each analysis that reads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from simcache.analysis import angles, balls, drift, intrinsic_dim, maps, mixtures, norms, projections
from simcache.analysis.baselines import CENTERS
from simcache.analysis.mixtures import COVARIANCE_TYPES
from simcache.analysis.spec import Analysis, Option

# Options of every run ---------------------------------------------------------------------------
SEED = Option("seed", int, 0, "Seed for subsamples, baselines and every random choice.")
BASELINE_CENTER = Option(
    "baseline_center", str, "mean", "mean: baselines centred on the data mean with its total variance; origin: "
    "centred on 0 with the data's mean squared norm (angles always shows both).", choices=CENTERS)
#: Options every analysis receives, whichever it is.
RUN_OPTIONS: tuple[Option, ...] = (SEED, BASELINE_CENTER)

# Options read by one or more analyses -------------------------------------------------------------
BINS = Option("bins", int, 60, "Histogram bins.", min=5)
MAX_COMPONENTS = Option("max_components", int, 8, "gmm: fit K = 1..this many components first; the range "
                        "grows until the BIC minimum lies inside it.", min=1, points="<=", sample="gmm_sample")
COVARIANCE = Option("covariance", str, "full", "gmm: covariance type of the mixtures.", choices=COVARIANCE_TYPES)
PCA_DIMS = Option("pca_dims", int, 50, "gmm/map: project on this many principal components first (0: no "
                  "projection).", min=0)

REGISTRY: dict[str, Analysis] = {}


def register(analysis: Analysis) -> Analysis:
    """Add ``analysis`` (after those registered before it) and return it.

    Refused: a name already taken, or an option whose name another analysis declares differently
    (one knob has one type, default and help everywhere).
    """
    if analysis.name in REGISTRY or analysis.name == "all":
        raise ValueError(f"an analysis called {analysis.name!r} is already registered")
    known = all_options()
    for opt in analysis.options:
        if opt.name in known and known[opt.name] != opt:
            raise ValueError(f"{analysis.name}: option {opt.name!r} differs from the one already declared")
    REGISTRY[analysis.name] = analysis
    return analysis


def unregister(name: str) -> None:
    """Remove the analysis called ``name`` (for tests that register a throwaway one)."""
    REGISTRY.pop(name, None)


@contextlib.contextmanager
def registered(analysis: Analysis) -> Iterator[Analysis]:
    """Register ``analysis`` for the duration of a ``with`` block."""
    register(analysis)
    try:
        yield analysis
    finally:
        unregister(analysis.name)


def names() -> tuple[str, ...]:
    """Every analysis name, in the order ``analyze all`` runs them."""
    return tuple(REGISTRY)


def get(name: str) -> Analysis:
    """The record of ``name``; unknown names raise :class:`ValueError` listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown analysis {name!r}; expected one of {', '.join(REGISTRY)}") from None


def options_of(selected: Iterable[str] | None = None) -> dict[str, Option]:
    """The options read by the analyses ``selected`` (default: all), run options first, each once."""
    out = {o.name: o for o in RUN_OPTIONS}
    for name in REGISTRY if selected is None else selected:
        for opt in get(name).options:
            out.setdefault(opt.name, opt)
    return out


def all_options() -> dict[str, Option]:
    """Every option of every registered analysis, by name."""
    return options_of(None)


class AnalysisOptions:
    """Every knob of every registered analysis, at its registry default unless given.

    ``AnalysisOptions(seed=1, gmm_sample=3000)``; read as attributes (``opts.bins``); unknown
    names are refused. Immutable: :meth:`replace` returns a changed copy.
    """

    __slots__ = ("_values",)

    def __init__(self, **values: Any) -> None:
        known = all_options()
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TypeError(f"unknown analysis option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        object.__setattr__(self, "_values", {**{n: o.default for n, o in known.items()}, **values})

    def __getattr__(self, name: str) -> Any:
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("AnalysisOptions is immutable; use .replace(...)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnalysisOptions) and self._values == other._values

    def __repr__(self) -> str:
        return "AnalysisOptions(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"

    def replace(self, **changes: Any) -> AnalysisOptions:
        """A copy with ``changes`` applied."""
        return AnalysisOptions(**{**self._values, **changes})

    def asdict(self) -> dict[str, Any]:
        """The options as a plain dict (what each result records under ``"options"``)."""
        return dict(self._values)


register(Analysis(
    "norms", "L2 norms: min/max/quantiles and histogram.", "L2 norms",
    norms.compute, norms.plot_norms, norms.report, options=(BINS,)))
register(Analysis(
    "balls", "Distances from random centres and the number of points inside a growing ball.",
    "Balls around random centres", balls.compute, balls.plot_balls, balls.report,
    options=(Option("centers", int, 20, "balls: number of random centres.", min=1), BINS)))
register(Analysis(
    "knn-radius", "Intrinsic dimension: log R(k) = (1/d) log k + c, Levina-Bickel MLE and TwoNN.",
    "Intrinsic dimension", intrinsic_dim.compute, intrinsic_dim.plot_intrinsic_dim, intrinsic_dim.report,
    options=(Option("k_min", int, 5, "knn-radius: smallest k of the log R(k) fit.", min=1),
             Option("k_max", int, 20, "knn-radius: largest k of the log R(k) fit.", min=2, points="<"),
             Option("k_mle", int, 20, "knn-radius: neighbours for the Levina-Bickel MLE.", min=2, points="<")),
    check=intrinsic_dim.check_options))
register(Analysis(
    "angles", "Angles to the coordinate axes and between random pairs, against the isotropic density h(θ).",
    "Angles", angles.compute, angles.plot_angles, angles.report,
    options=(Option("angle_pairs", int, 20_000, "angles: random pairs of points.", min=1),
             Option("center_angles", bool, False, "angles: subtract the mean first (default: angles from the "
                    "origin).")),
    description="Baselines centred on the origin (top row) and on the data mean (bottom row)."))
register(Analysis(
    "projections", "Scatter plots of random pairs of coordinates, and the covariance spectrum.",
    "Coordinate projections and spectrum", projections.compute, projections.plot_projections, projections.report,
    options=(Option("projection_pairs", int, 6, "projections: coordinate pairs.", min=1),)))
register(Analysis(
    "gmm", "Gaussian mixtures with 1..K components: BIC/AIC curves and the chosen K.",
    "Gaussian mixtures", mixtures.compute, mixtures.plot_gmm, mixtures.report,
    options=(MAX_COMPONENTS, COVARIANCE, PCA_DIMS,
             Option("gmm_sample", int, 10_000, "gmm: points fitted per set (0: all).", min=0,
                    zero_means_none=True))))
register(Analysis(
    "map", "2-D t-SNE (and UMAP, if installed) views coloured by Gaussian-mixture component.",
    "2-D maps", maps.compute, maps.plot_map, maps.report,
    options=(Option("map_sample", int, 5_000, "map: points embedded per set (0: all).", min=0, zero_means_none=True),
             Option("perplexity", float, 30.0, "map: t-SNE perplexity.", min=2.0, points="<", sample="map_sample"),
             Option("components", int, None, "map: mixture components for the colours (default: chosen by BIC).",
                    min=1, points="<=", sample="map_sample"),
             MAX_COMPONENTS, COVARIANCE, PCA_DIMS,
             Option("umap", bool, True, "map: skip the UMAP view.", flag="--no-umap"),
             Option("baseline_maps", bool, True, "map: skip the baselines' t-SNE maps.", flag="--no-baseline-maps"),
             Option("threads", int, None, "Cap BLAS/OpenMP threads for t-SNE/UMAP (helps on a busy machine).",
                    min=1))))
register(Analysis(
    "drift", "Drift between consecutive embeddings of a user, against distances between users (uses every row; "
    "--sample only sizes the baselines).",
    "Drift between consecutive embeddings", drift.compute, drift.plot_drift, drift.report,
    options=(Option("drift_pairs", int, 200_000, "drift: random pairs of different users.", min=1),
             Option("drift_queries", int, 2_000, "drift: rows whose nearest other user is searched.", min=1),
             BINS),
    needs_users=True, every_row=True))
