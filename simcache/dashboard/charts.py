"""Altair charts of the dashboard pages, built from the data frames of the page modules.

Each function returns an :class:`altair.Chart` (or layer) and does nothing else, so the pages stay
short and the charts can be checked on their own. Colours: ``tableau10`` for categories,
``viridis`` for ordered values.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

MAP_HEIGHT = 520
LINE_HEIGHT = 300
_TRACK_COLOUR = "#d62728"


def _order(frame: pd.DataFrame, column: str) -> list[Any]:
    """The values of ``column`` in order of first appearance (legend order = the page's order)."""
    return list(dict.fromkeys(frame[column].tolist()))


def _tooltip(frame: pd.DataFrame, names: list[str]) -> list[Any]:
    out = []
    for n in names:
        if n in frame.columns:
            if n == "time" and pd.api.types.is_datetime64_any_dtype(frame[n]):
                out.append(alt.Tooltip(n, type="temporal", format="%Y-%m-%d %H:%M"))
            elif n in ("norm", "step", "x", "y"):
                out.append(alt.Tooltip(n, format=".4g"))
            else:
                out.append(n)
    return out


def map_chart(frame: pd.DataFrame, colour: str, *, method: str, track: pd.DataFrame | None = None) -> alt.LayerChart:
    """The 2-D map of a sample, coloured by ``colour``; a user's trajectory drawn on top when given."""
    title = {"split": "split", "time": "time", "norm": "L2 norm", "per_user": "embeddings per user"}[colour]
    if colour == "split":
        enc = alt.Color("split:N", title=title, scale=alt.Scale(scheme="tableau10"))
    elif colour == "time":
        kind = "temporal" if pd.api.types.is_datetime64_any_dtype(frame["time"]) else "quantitative"
        enc = alt.Color("time", type=kind, title=title, scale=alt.Scale(scheme="viridis"))
    elif colour == "per_user":
        enc = alt.Color("per_user:Q", title=title, scale=alt.Scale(scheme="viridis", type="log"))
    else:
        enc = alt.Color("norm:Q", title=title, scale=alt.Scale(scheme="viridis"))
    faded = 0.35 if track is not None and len(track) else 0.7
    base = alt.Chart(frame).mark_circle(size=18, opacity=faded).encode(
        x=alt.X("x:Q", title=f"{method} 1", axis=alt.Axis(grid=False)),
        y=alt.Y("y:Q", title=f"{method} 2", axis=alt.Axis(grid=False)),
        color=enc,
        tooltip=_tooltip(frame, ["user_id", "seq", "time", "split", "norm", "per_user", "row"]),
    )
    layers: list[Any] = [base]
    if track is not None and len(track):
        line = alt.Chart(track).mark_line(color=_TRACK_COLOUR, strokeWidth=2).encode(
            x="x:Q", y="y:Q", order="order:Q")
        dots = alt.Chart(track).mark_point(color=_TRACK_COLOUR, filled=True, size=70).encode(
            x="x:Q", y="y:Q", shape=alt.value("circle"),
            tooltip=_tooltip(track, ["user_id", "order", "seq", "time", "split", "norm", "step"]))
        first = alt.Chart(track.head(1)).mark_point(color=_TRACK_COLOUR, shape="diamond", size=220,
                                                    filled=False, strokeWidth=2).encode(x="x:Q", y="y:Q")
        layers += [line, dots, first]
    return alt.layer(*layers).properties(height=MAP_HEIGHT).interactive()


def steps_chart(track: pd.DataFrame) -> alt.Chart:
    """A user's distance steps: distance from the previous embedding, per embedding in order."""
    data = track.dropna(subset=["step"])
    return alt.Chart(data).mark_bar(color=_TRACK_COLOUR).encode(
        x=alt.X("order:O", title="embedding (in order; 0 is the first)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("step:Q", title="step distance"),
        tooltip=_tooltip(data, ["order", "seq", "time", "step", "norm"]),
    ).properties(height=220)


def bar_chart(frame: pd.DataFrame, x: str, y: str, *, x_title: str, y_title: str) -> alt.Chart:
    """Plain bars in the frame's order (e.g. the embeddings-per-user histogram)."""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X(f"{x}:N", title=x_title, sort=list(frame[x])), y=alt.Y(f"{y}:Q", title=y_title),
        tooltip=[x, y]).properties(height=220)


def sweep_chart(frame: pd.DataFrame, x: str, metric: str, *, metric_title: str, log_x: bool) -> alt.Chart:
    """One line per series (``frame['series']``) of ``metric`` against the grid axis ``x``."""
    scale = alt.Scale(type="log") if log_x else alt.Scale(zero=False)
    y_scale = alt.Scale(zero=True) if metric.endswith("ratio") or metric == "nag" else alt.Scale(zero=False)
    series = _order(frame, "series")
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=60, filled=True)).encode(
        x=alt.X(f"{x}:Q", title=x, scale=scale, axis=alt.Axis(values=sorted(frame[x].unique().tolist()))
                if frame[x].nunique() <= 12 else alt.Axis()),
        y=alt.Y(f"{metric}:Q", title=metric_title, scale=y_scale),
        color=alt.Color("series:N", title="policy", scale=alt.Scale(domain=series, scheme="tableau10"),
                        legend=alt.Legend(labelLimit=400)),
        strokeDash=alt.StrokeDash("series:N", title="policy", scale=alt.Scale(domain=series), legend=None),
        shape=alt.Shape("series:N", title="policy", scale=alt.Scale(domain=series)),
        tooltip=_tooltip(frame, ["series", "policy", "capacity", "radius", "k", "params", metric]),
    ).properties(height=LINE_HEIGHT)


def windows_chart(frame: pd.DataFrame, ratio: str, *, ratio_title: str, x: str) -> alt.Chart:
    """Windowed ``ratio`` over time, one line per run (``frame['run']``)."""
    x_enc = (alt.X("time:T", title="time (first request of the window)") if x == "time"
             else alt.X("middle:Q", title="request (middle of the window)"))
    return alt.Chart(frame).mark_line(interpolate="step-after", strokeWidth=2).encode(
        x=x_enc, y=alt.Y(f"{ratio}:Q", title=ratio_title, scale=alt.Scale(zero=True)),
        color=alt.Color("run:N", title="run", scale=alt.Scale(domain=_order(frame, "run"), scheme="tableau10"),
                        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=600)),
        tooltip=_tooltip(frame, ["run", "start", "end", "time", ratio]),
    ).properties(height=LINE_HEIGHT)


def histogram_chart(frame: pd.DataFrame, value: str, *, radii: pd.DataFrame | None = None) -> alt.LayerChart:
    """Hit-distance histograms (bins ``lo``..``hi``), one colour per run, overlaid; radii (``run``,
    ``radius``) as dashed rules."""
    title = "share of the run's hits" if value == "share" else "hits"
    runs = _order(frame, "run")
    bars = alt.Chart(frame).mark_bar(opacity=0.55, binSpacing=0).encode(
        x=alt.X("lo:Q", bin="binned", title="distance to the serving entry d(x, y*)"), x2="hi:Q",
        y=alt.Y(f"{value}:Q", title=title, stack=None),
        color=alt.Color("run:N", title="run", scale=alt.Scale(domain=runs, scheme="tableau10"),
                        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=600)),
        tooltip=_tooltip(frame, ["run", "lo", "hi", "count", "share"]),
    )
    layers: list[Any] = [bars]
    if radii is not None and len(radii):
        layers.append(alt.Chart(radii).mark_rule(strokeDash=[4, 3], strokeWidth=1.5).encode(
            x="radius:Q", color=alt.Color("run:N", scale=alt.Scale(domain=runs, scheme="tableau10"), legend=None),
            tooltip=["run", alt.Tooltip("radius:Q", title="radius")]))
    return alt.layer(*layers).properties(height=LINE_HEIGHT)


def density_chart(frame: pd.DataFrame, *, x_title: str, reference: pd.DataFrame | None = None) -> alt.LayerChart:
    """Density outlines, one colour per space; optional dashed reference curves (``dimension``)."""
    lines = alt.Chart(frame).mark_line(strokeWidth=2).encode(
        x=alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y("density:Q", title="density"),
        color=alt.Color("space:N", title="space", scale=alt.Scale(domain=_order(frame, "space"), scheme="tableau10"),
                        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=600)),
        tooltip=_tooltip(frame, ["space", "x", "density"]),
    )
    layers: list[Any] = [lines]
    if reference is not None and len(reference):
        layers.append(alt.Chart(reference).mark_line(strokeDash=[5, 4], color="#777", strokeWidth=1.5).encode(
            x="x:Q", y="density:Q", detail="dimension:N", tooltip=["dimension"]))
    return alt.layer(*layers).properties(height=LINE_HEIGHT)
