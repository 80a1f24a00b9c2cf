"""The numbers behind the Sweep page: a sweep's results table, its parameters, metrics and filters.

A sweep folder holds ``results.parquet`` (or ``results.csv``), one row per grid point, with the
columns of :data:`simcache.replay.sweep.ROW_COLUMNS`. Columns added by other kinds of sweep (e.g.
``nag`` for object caches) are picked up by name: any numeric column that is not a parameter,
a count or a timing is a metric the page can plot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recvae.errors import UserError
from simcache.dashboard.sources import SWEEP_TABLES

#: Grid axes a curve can be drawn against, in preference order.
AXES = ("capacity", "radius", "k")
#: Metrics with a label of their own, in menu order; other numeric columns follow under their names.
METRICS = {
    "hit_ratio": "hit ratio",
    "exact_hit_ratio": "exact hit ratio",
    "approx_hit_ratio": "approximate hit ratio",
    "miss_ratio": "miss ratio",
    "mean_service_cost": "mean service cost",
    "nag": "NAG (normalised average gain)",
    "mean_approx_cost_hits": "mean approximation cost over hits",
    "d_hits_p50": "median hit distance",
    "d_hits_p95": "95th-percentile hit distance",
    "overlap_approx_mean": "overlap@k of approximate hits",
}
#: Numeric columns that are never plotted as metrics.
NOT_METRICS = {"requests", "hits", "exact_hits", "approx_hits", "misses", "replay_s", "requests_per_s", "seed"}


def load_results(folder: str | Path) -> pd.DataFrame:
    """The results table of a sweep folder (Parquet preferred); ``params`` as text, never missing."""
    folder = Path(folder)
    for name in SWEEP_TABLES:
        path = folder / name
        if path.is_file():
            try:
                df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
                raise UserError(f"{path}: cannot read the results table ({type(exc).__name__}: {exc})") from None
            if "policy" not in df.columns:
                raise UserError(f"{path}: not a sweep results table (no 'policy' column)")
            if "params" in df.columns:
                df["params"] = df["params"].astype("string").fillna("").astype(str)
            return df
    raise UserError(f"{folder}: no {' or '.join(SWEEP_TABLES)}")


def axes(df: pd.DataFrame) -> list[str]:
    """Grid axes present (with a value in some row), those with several values first (the natural x
    axis leads)."""
    present = [a for a in AXES if a in df.columns and df[a].notna().any()]
    return sorted(present, key=lambda a: -min(df[a].nunique(), 2))


def metrics(df: pd.DataFrame) -> dict[str, str]:
    """Plottable metric columns -> labels: the known ones in :data:`METRICS` order, then the rest."""
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    out = {c: label for c, label in METRICS.items() if c in numeric and df[c].notna().any()}
    for c in numeric:
        if c not in out and c not in AXES and c not in NOT_METRICS and df[c].notna().any():
            out[c] = c.replace("_", " ")
    return out


def varied_params(df: pd.DataFrame) -> bool:
    """Whether some policy was swept over several option strings (``params``), not just its defaults."""
    return "params" in df.columns and bool((df.groupby("policy")["params"].nunique() > 1).any())


def filter_results(df: pd.DataFrame, *, policies: list[str] | None = None, params: list[str] | None = None,
                   fixed: dict[str, float] | None = None) -> pd.DataFrame:
    """Rows of the chosen policies and parameter strings, with the other grid axes fixed to values."""
    mask = pd.Series(True, index=df.index)
    if policies is not None:
        mask &= df["policy"].isin(policies)
    if params is not None and "params" in df.columns:
        mask &= df["params"].isin(params)
    for col, value in (fixed or {}).items():
        mask &= (df[col] - value).abs() <= 1e-9 * max(1.0, abs(value))
    return df[mask].reset_index(drop=True)


def series_label(df: pd.DataFrame, group_by: list[str]) -> pd.Series:
    """One label per row naming its line: the policy, then each varying column of ``group_by``."""
    parts = [df["policy"].astype(str)]
    for col in group_by:
        if col in df.columns and col != "policy":
            prefix = {"capacity": "C=", "radius": "r=", "k": "k=", "params": ""}.get(col, f"{col}=")
            values = df[col].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))
            parts.append(prefix + values)
    label = parts[0]
    for p in parts[1:]:
        label = label + ", " + p
    return label.str.rstrip(", ")
