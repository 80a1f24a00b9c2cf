"""The numbers behind the Replay page: hit ratio over time and the distance histogram of hits.

A run with a per-request log (``requests.parquet``, from ``simcache replay --out DIR --log``) is
recomputed at any window size and number of bins, with the same accounting functions as the replay
itself (:func:`simcache.replay.accounting.window_ratios`); a run with only its summary (a
``summary.json`` or a sweep's ``points/*.json``) shows the windows and histogram stored there.
Only the log columns needed are read (outcome, distance, timestamp).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recvae.errors import UserError
from simcache.replay.accounting import auto_window, window_ratios

#: What a window's value can be: summary key -> label.
RATIOS = {"hit_ratio": "hit ratio", "exact_hit_ratio": "exact hit ratio", "approx_hit_ratio": "approximate hit ratio"}
_LOG_COLUMNS = ("outcome", "distance", "timestamp")


@dataclass
class RunLog:
    """The per-request columns of one run that the page plots."""

    outcome: np.ndarray  # int8: 0 miss, 1 exact hit, 2 approximate hit
    distance: np.ndarray  # float32: distance to the nearest cached entry at lookup
    timestamp: np.ndarray | None = None


def load_summary(path: str | Path) -> dict[str, Any]:
    """A replay summary JSON (``summary.json`` or a sweep point)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the replay summary ({exc})") from None
    if not isinstance(obj, dict) or "counts" not in obj or "parameters" not in obj:
        raise UserError(f"{path}: not a replay summary (no 'parameters' and 'counts')")
    return obj


def load_log(path: str | Path) -> RunLog:
    """The outcome, distance (and timestamp) columns of a ``requests.parquet`` log."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=[c for c in _LOG_COLUMNS if c in names])
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise UserError(f"{path}: cannot read the request log ({type(exc).__name__}: {exc})") from None
    if "outcome" not in table.column_names or "distance" not in table.column_names:
        raise UserError(f"{path}: not a request log (needs the columns outcome and distance)")
    ts = table.column("timestamp").to_numpy() if "timestamp" in table.column_names else None
    return RunLog(outcome=table.column("outcome").to_numpy().astype(np.int8, copy=False),
                  distance=table.column("distance").to_numpy().astype(np.float32, copy=False), timestamp=ts)


def describe(summary: dict[str, Any]) -> str:
    """``lru, C=100, r=0.5`` (with the policy's options) for a legend or a menu."""
    p = summary.get("parameters", {})
    extra = ", ".join(f"{k}={v}" for k, v in sorted((p.get("params") or {}).items()))
    text = f"{p.get('policy', '?')}, C={p.get('capacity', '?')}, r={_g(p.get('radius'))}"
    return f"{text}, {extra}" if extra else text


def _g(x: Any) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def windows_from_log(log: RunLog, window: int | None = None) -> pd.DataFrame:
    """Windowed ratios from the log: ``start``, ``end`` (request index), ratios, ``time`` if any."""
    n = len(log.outcome)
    w = window_ratios(log.outcome, int(window or auto_window(n)), timestamp=log.timestamp)
    return _window_frame(w)


def windows_from_summary(summary: dict[str, Any]) -> pd.DataFrame:
    """The windows stored in a summary (empty frame when it has none)."""
    w = summary.get("windows") or {}
    if not w.get("start"):
        return pd.DataFrame(columns=["start", "end", *RATIOS])
    return _window_frame(w)


def _window_frame(w: dict[str, Any]) -> pd.DataFrame:
    start = np.asarray(w["start"], dtype=np.int64)
    size = np.asarray(w["size"], dtype=np.int64)
    frame = {"start": start, "end": start + size, "middle": start + size / 2.0}
    for k in RATIOS:
        if k in w:
            frame[k] = np.asarray(w[k], dtype=np.float64)
    if w.get("first_timestamp") is not None:
        frame["time"] = pd.to_datetime(np.asarray(w["first_timestamp"], dtype=np.int64), unit="s")
    return pd.DataFrame(frame)


def hit_distances(log: RunLog) -> np.ndarray:
    """Distances of the hits (exact hits at 0), as float64."""
    return np.asarray(log.distance[log.outcome > 0], dtype=np.float64)


def histogram_frame(counts: Any, edges: Any) -> pd.DataFrame:
    """Bins as rows: ``lo``, ``hi``, ``count``, ``share`` (of all hits in the histogram)."""
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    total = counts.sum()
    return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts,
                         "share": counts / total if total > 0 else counts})


def histogram_from_log(log: RunLog, bins: int, hi: float | None = None) -> pd.DataFrame:
    """Histogram of hit distances on ``[0, hi]`` (default: the largest hit distance)."""
    d = hit_distances(log)
    top = float(hi) if hi is not None else (float(d.max()) if d.size else 1.0)
    counts, edges = np.histogram(d, bins=int(bins), range=(0.0, top if top > 0 else 1.0))
    return histogram_frame(counts, edges)


def histogram_from_summary(summary: dict[str, Any]) -> pd.DataFrame:
    """The hit-distance histogram stored in a summary."""
    h = ((summary.get("distance") or {}).get("hits") or {}).get("histogram") or {}
    if not h.get("counts"):
        return histogram_frame([], [0.0])
    return histogram_frame(h["counts"], h["edges"])
