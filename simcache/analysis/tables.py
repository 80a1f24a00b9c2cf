"""Markdown helpers for the report sections each analysis writes (numbers, tables, one row per point set)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from simcache.analysis.plotting import plot_order, style


def fmt(v: Any, spec: str = ".3g") -> str:
    """A number for a table cell (``–`` for a missing one)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table as lines."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def set_rows(sets: Mapping[str, Any], cells: Callable[[Mapping[str, Any]], list[str]]) -> list[list[str]]:
    """One row per point set of ``sets`` (labelled as in the figures), in drawing order."""
    return [[style(name)["label"], *cells(sets[name])] for name in plot_order(sets)]
