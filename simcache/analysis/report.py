"""The short Markdown report written by ``simcache analyze all``: key numbers and links to every figure.

One section per analysis, in registry order, each titled and filled by its registry record
(:attr:`~simcache.analysis.spec.Analysis.report`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recvae.storage import atomic_path

REPORT_FILE = "report.md"


def render_report(results: Mapping[str, Mapping[str, Any]], input_info: Mapping[str, Any],
                  files: Mapping[str, tuple[str, str]]) -> str:
    """The Markdown text. ``files`` maps an analysis name to its (figure, JSON) file names."""
    lines = [f"# Embedding analysis: {Path(str(input_info.get('path', 'input'))).name}", ""]
    lines.append(f"- input: `{input_info.get('path')}` ({input_info.get('rows', '?'):,} rows, "
                 f"dimension {input_info.get('dim')})")
    if input_info.get("row_selection"):
        lines.append(f"- rows: {input_info['row_selection']}")
    elif input_info.get("latest_per_user"):
        lines.append(f"- latest embedding per user: {input_info.get('rows_selected', 0):,} rows")
    if input_info.get("subsampled"):
        lines.append(f"- **subsampled**: {input_info['rows_analysed']:,} of {input_info['rows_selected']:,} rows "
                     f"(seed {input_info.get('seed')}); maps and mixtures use smaller samples, see their JSON")
    else:
        lines.append(f"- all {input_info.get('rows_analysed', 0):,} rows analysed (seed {input_info.get('seed')})")
    users = input_info.get("users_analysed")
    if users is not None and users < input_info.get("rows_analysed", 0):
        lines.append(f"- the {input_info['rows_analysed']:,} analysed rows come from only {users:,} users: "
                     "neighbour-based numbers (knn-radius, balls, maps) then mix a user's own successive "
                     "embeddings with the geometry between users; `--latest-per-user` (the default) keeps one point "
                     "per user")
    first = next(iter(results.values()), {})
    if first.get("baselines"):
        extra = "; angles compares against both origin- and mean-centred baselines" if "angles" in results else ""
        lines.append(f"- baselines: {first['baselines'].get('description')}{extra}")
    lines.append("")
    from simcache.analysis.registry import REGISTRY

    for name, spec in REGISTRY.items():
        if name not in results:
            continue
        res = results[name]
        body = [f"Skipped: {res['skipped']}."] if res.get("skipped") else spec.report(res)
        png, js = files.get(name, (f"{name}.png", f"{name}.json"))
        lines += [f"## {spec.title} (`{name}`)", "", *body, "", f"![{name}]({png})", "",
                  f"Numbers: [{js}]({js})", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_report(out_dir: str | os.PathLike, results: Mapping[str, Mapping[str, Any]],
                 input_info: Mapping[str, Any], files: Mapping[str, tuple[str, str]] | None = None) -> Path:
    """Write ``report.md`` into ``out_dir`` (atomically) and return its path."""
    path = Path(out_dir) / REPORT_FILE
    text = render_report(results, input_info, files or {})
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
