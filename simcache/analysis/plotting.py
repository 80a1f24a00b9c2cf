"""Shared figure helpers: one style per point set, legends outside the data, atomic PNG writes.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas, so no
global pyplot state or display is involved and plotting is safe in workers and tests.

Every line a figure draws is named in a legend, and legends sit outside the axes
(:func:`legend_below`), so they never cover data. The two baselines often give nearly the same
curve; they are drawn so that neither hides the other: the uniform ball as a wide pale band, the
Gaussian as a thin dashed line on top of it, the data last and solid.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from recvae.storage import atomic_path
from simcache.analysis.baselines import DATA, GAUSSIAN, UNIFORM_BALL

#: Colour and legend label of each point set; the data is drawn last (on top) and thicker.
SET_STYLE: dict[str, dict[str, Any]] = {
    UNIFORM_BALL: {"color": "tab:orange", "label": "baseline: uniform ball"},
    GAUSSIAN: {"color": "tab:green", "label": "baseline: isotropic Gaussian"},
    DATA: {"color": "tab:blue", "label": "data"},
}
#: How each set's lines are drawn, so that coinciding baselines stay distinguishable.
LINE_STYLE: dict[str, dict[str, Any]] = {
    UNIFORM_BALL: {"linestyle": "-", "linewidth": 3.2, "alpha": 0.45},
    GAUSSIAN: {"linestyle": "--", "linewidth": 1.4},
    DATA: {"linestyle": "-", "linewidth": 2.0},
}
THEORY_STYLE: dict[str, Any] = {"color": "black", "linestyle": ":", "linewidth": 1.6}
DPI = 110
#: Gap between the bottom of an axes and a legend placed below it (room for tick labels and x label).
LEGEND_GAP_POINTS = 40


def plot_order(names: Any) -> list[str]:
    """Set names in drawing order: baselines first, data last (on top)."""
    names = list(names)
    order = [n for n in (UNIFORM_BALL, GAUSSIAN, DATA) if n in names]
    return order + [n for n in names if n not in order]


def style(name: str) -> dict[str, Any]:
    """Colour/label for a set name (unknown names get a neutral grey)."""
    return dict(SET_STYLE.get(name, {"color": "grey", "label": name}))


def line_style(name: str) -> dict[str, Any]:
    """Colour, label, dash, width and alpha of the lines of a set (see :data:`LINE_STYLE`)."""
    return {**style(name), **LINE_STYLE.get(name, {"linestyle": "-", "linewidth": 1.4})}


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.0, height: float = 4.2,
               **kwargs: Any) -> tuple[Any, np.ndarray]:
    """A Figure of ``nrows x ncols`` panels (each ``width x height`` inches) and its axes array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def legend_below(ax: Any, *, ncol: int = 1, fontsize: float = 8, **kwargs: Any) -> Any:
    """The axes' legend, placed under its x label (outside the data), one entry per distinct label."""
    from matplotlib.transforms import offset_copy

    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    anchor = offset_copy(ax.transAxes, fig=ax.figure, y=-LEGEND_GAP_POINTS, units="points")
    kwargs.setdefault("markerscale", 1.0)
    return ax.legend(list(seen.values()), list(seen), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                     bbox_transform=anchor, ncol=ncol, fontsize=fontsize, frameon=False, **kwargs)


def step_histogram(ax: Any, edges: Any, counts: Any, name: str, *, density: bool = True,
                   label: str | None = None, **kwargs: Any) -> None:
    """Draw a histogram given as (edges, counts) as a step line in the set's style."""
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    y = counts
    if density:
        total = counts.sum()
        widths = np.diff(edges)
        y = counts / (total * widths) if total > 0 else counts
    st = line_style(name)
    if label is not None:
        st["label"] = label
    st.update(kwargs)
    ax.stairs(y, edges, **st)


def note_figure(text: str, path: str | os.PathLike) -> Any:
    """A small figure that only says ``text`` (an analysis that was skipped), written to ``path``."""
    fig, axes = new_figure(1, 1, width=7.0, height=2.5)
    ax = axes[0, 0]
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.set_axis_off()
    save_figure(fig, path)
    return fig


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG to ``path`` atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def subtitle(result: dict[str, Any]) -> str:
    """A short line with n and d of the analysed data for figure titles."""
    n, d = result.get("n"), result.get("dim")
    return f"n = {n:,}, d = {d}" if isinstance(n, int) and isinstance(d, int) else ""
