"""Shared figure helpers: one style per point set, figures without pyplot, atomic PNG writes.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the Agg canvas, so no
global pyplot state or display is involved and plotting is safe in workers and tests.
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
THEORY_STYLE: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.2}
DPI = 110


def plot_order(names: Any) -> list[str]:
    """Set names in drawing order: baselines first, data last (on top)."""
    names = list(names)
    order = [n for n in (UNIFORM_BALL, GAUSSIAN, DATA) if n in names]
    return order + [n for n in names if n not in order]


def style(name: str) -> dict[str, Any]:
    """Colour/label for a set name (unknown names get a neutral grey)."""
    return dict(SET_STYLE.get(name, {"color": "grey", "label": name}))


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.0, height: float = 4.2,
               **kwargs: Any) -> tuple[Any, np.ndarray]:
    """A Figure of ``nrows x ncols`` panels (each ``width x height`` inches) and its axes array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


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
    st = style(name)
    if label is not None:
        st["label"] = label
    st.update(kwargs)
    st.setdefault("linewidth", 2.0 if name == DATA else 1.4)
    ax.stairs(y, edges, **st)


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG to ``path`` atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def subtitle(result: dict[str, Any]) -> str:
    """A short line with n and d of the analysed data for figure titles."""
    n, d = result.get("n"), result.get("dim")
    return f"n = {n:,}, d = {d}" if isinstance(n, int) and isinstance(d, int) else ""
