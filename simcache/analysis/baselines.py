"""Synthetic baselines drawn beside every analysis: uniform in a ball and isotropic Gaussian.

Both have the same number of points ``n`` and dimension ``d`` as the data and are drawn from a seed.
They answer "what would this number be for a structureless cloud of the same size and spread?":
an intrinsic-dimension estimate, a BIC curve or an angle histogram of the data only means
something next to the same quantity for these clouds.

Matching (``center``):

- ``"mean"`` (default): both baselines are centred on the data mean and have the data's total
  variance ``T = sum_j Var(x_j)`` (the mean squared distance to the mean). The Gaussian is
  ``N(mean, (T/d) I)``; the ball has radius ``R = sqrt(T (d + 2) / d)`` because a uniform point
  of a ``d``-ball of radius ``R`` has ``E||x - c||^2 = d R^2 / (d + 2)``. Pairwise distances
  (balls, kNN, GMM, drift) are then on the data's scale, and norms/angles (which are measured
  from the origin) show what the data's offset alone would produce.
- ``"origin"``: both baselines are centred on the origin and match the data's mean squared norm
  ``E||x||^2`` instead (Gaussian ``N(0, (E||x||^2/d) I)``, ball radius
  ``sqrt(E||x||^2 (d + 2) / d)``). Use it to compare norms and angles with the isotropic theory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simcache.analysis.common import as_points, make_rng

DATA = "data"
UNIFORM_BALL = "uniform_ball"
GAUSSIAN = "gaussian"
SET_NAMES = (DATA, UNIFORM_BALL, GAUSSIAN)
CENTERS = ("mean", "origin")


def uniform_ball(n: int, d: int, *, radius: float = 1.0, center: np.ndarray | None = None,
                 rng: int | np.random.Generator | None = 0) -> np.ndarray:
    """``n`` points uniform in the ``d``-ball of ``radius`` around ``center`` (origin by default).

    Direction: a normalised standard Gaussian; radius: ``radius * U**(1/d)``, so that the norm
    (about the centre) has CDF ``(r / radius)**d``.
    """
    g = make_rng(rng)
    x = g.standard_normal((int(n), int(d)))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    r = radius * g.random((int(n), 1)) ** (1.0 / d)
    out = x / norms * r
    return out if center is None else out + np.asarray(center, dtype=np.float64)


def isotropic_gaussian(n: int, d: int, *, sigma: float = 1.0, center: np.ndarray | None = None,
                       rng: int | np.random.Generator | None = 0) -> np.ndarray:
    """``n`` points from ``N(center, sigma^2 I_d)`` (origin by default)."""
    g = make_rng(rng)
    out = sigma * g.standard_normal((int(n), int(d)))
    return out if center is None else out + np.asarray(center, dtype=np.float64)


@dataclass(frozen=True)
class Baselines:
    """The two matched baselines (each ``(n, d)`` float64) and how they were matched (``info``)."""

    uniform_ball: np.ndarray
    gaussian: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def sets(self, data: np.ndarray) -> dict[str, np.ndarray]:
        """``{"data": data, "uniform_ball": ..., "gaussian": ...}`` in plotting order."""
        return {DATA: data, UNIFORM_BALL: self.uniform_ball, GAUSSIAN: self.gaussian}


def matched_baselines(points: np.ndarray, *, seed: int | np.random.Generator | None = 0,
                      center: str = "mean", n: int | None = None) -> Baselines:
    """Baselines with the same ``n`` (unless given) and ``d`` as ``points``, matched as the module says."""
    x = as_points(points)
    if center not in CENTERS:
        raise ValueError(f"center must be one of {CENTERS}, got {center!r}")
    n_out = len(x) if n is None else int(n)
    d = x.shape[1]
    if center == "mean":
        mu = x.mean(axis=0)
        second_moment = float(((x - mu) ** 2).sum(axis=1).mean())  # total variance T
        c = mu
    else:
        second_moment = float((x**2).sum(axis=1).mean())  # E||x||^2
        c = None
    g = make_rng(seed, 1)
    radius = float(np.sqrt(second_moment * (d + 2) / d))
    sigma = float(np.sqrt(second_moment / d))
    ball = uniform_ball(n_out, d, radius=radius, center=c, rng=g)
    gauss = isotropic_gaussian(n_out, d, sigma=sigma, center=c, rng=g)
    info = {
        "n": n_out,
        "dim": d,
        "center": center,
        "matched_second_moment": second_moment,
        "uniform_ball_radius": radius,
        "gaussian_sigma": sigma,
        "center_norm": float(np.linalg.norm(c)) if c is not None else 0.0,
        "description": (
            "uniform in a ball and isotropic Gaussian with the data's n and d, "
            + ("centred on the data mean with its total variance"
               if center == "mean" else "centred on the origin with the data's mean squared norm")
        ),
    }
    return Baselines(ball, gauss, info)


def resolve_sets(points: Any, baselines: Baselines | None, seed: int | np.random.Generator | None,
                 center: str = "mean") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The point sets an analysis runs on (data + baselines) and the baseline description.

    ``baselines=None`` draws matched baselines from ``seed``; baselines of another dimension are refused.
    """
    x = as_points(points)
    if baselines is None:
        baselines = matched_baselines(x, seed=seed, center=center)
    for name, b in ((UNIFORM_BALL, baselines.uniform_ball), (GAUSSIAN, baselines.gaussian)):
        if b.ndim != 2 or b.shape[1] != x.shape[1]:
            raise ValueError(f"baseline {name} has shape {b.shape}, data has dimension {x.shape[1]}")
    return baselines.sets(x), dict(baselines.info)
