"""The short Markdown report written by ``simcache analyze all``: key numbers and links to every figure."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recvae.storage import atomic_path
from simcache.analysis.plotting import plot_order, style

REPORT_FILE = "report.md"


def _f(v: Any, fmt: str = ".3g") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return format(v, fmt)
    return str(v)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _set_rows(result: Mapping[str, Any], cells: Callable[[Mapping[str, Any]], list[str]]) -> list[list[str]]:
    return [[style(name)["label"], *cells(result["sets"][name])] for name in plot_order(result["sets"])]


def _norms(r: Mapping[str, Any]) -> list[str]:
    return _table(["set", "min", "median", "max", "std / mean"],
                  _set_rows(r, lambda s: [_f(s["summary"]["min"]), _f(s["summary"]["q50"]), _f(s["summary"]["max"]),
                                          _f(s["cv"])]))


def _balls(r: Mapping[str, Any]) -> list[str]:
    return _table(["set", "median distance from a centre", "growth exponent (median)", "relative contrast"],
                  _set_rows(r, lambda s: [_f(s["distances"]["q50"]), _f(s["growth_exponent"]["median"]),
                                          _f(s["relative_contrast"])]))


def _idim(r: Mapping[str, Any]) -> list[str]:
    lines = _table(["set", "knn-radius", "Levina-Bickel MLE", "TwoNN", "distinct points"],
                   _set_rows(r, lambda s: [_f(s["knn_radius"], ".1f"), _f(s["mle"], ".1f"), _f(s["twonn"], ".1f"),
                                           str(s["n_distinct"])]))
    p = r["params"]
    lines.append("")
    lines.append(f"knn-radius: slope of log R(k) on log k for k = {p['k_min']}..{p['k_max']}, "
                 f"{p['knn_radius_average']}; MLE with k = {p['k_mle']}. The baselines have true dimension "
                 f"{r['dim']}: their estimates show the bias at this n and d.")
    return lines


def _angles(r: Mapping[str, Any]) -> list[str]:
    lines = _table(["set", "KS D, axis angles", "max KS D over axes", "KS D, pair angles"],
                   _set_rows(r, lambda s: [_f(s["axis"]["ks"]), _f(s["axis"]["ks_per_axis_max"]),
                                           _f(s["pair"]["ks"])]))
    lines += ["", f"Against the isotropic density h(θ) for p = {r['dim']}"
              + (" (vectors centred first)." if r["params"].get("center") else " (vectors as given, from the origin).")]
    return lines


def _projections(r: Mapping[str, Any]) -> list[str]:
    return _table(["set", "participation ratio", "PCs for 90% variance", "PCs for 99% variance"],
                  _set_rows(r, lambda s: [_f(s["spectrum"]["participation_ratio"], ".1f"),
                                          str(s["spectrum"]["components_for"]["90%"]),
                                          str(s["spectrum"]["components_for"]["99%"])]))


def _gmm(r: Mapping[str, Any]) -> list[str]:
    p = r["params"]
    lines = _table(["set", "K chosen by BIC", "K chosen by AIC", "points fitted", "PCA variance kept"],
                   _set_rows(r, lambda s: [str(s["chosen_k_bic"]), str(s["chosen_k_aic"]), str(s["points_fitted"]),
                                           _f(s["pca_variance_kept"])]))
    lines += ["", f"{p['covariance_type']} covariance, K = 1..{p['max_components']}, "
              f"PCA to {p['pca_dims']} dimensions when d is larger."]
    return lines


def _map(r: Mapping[str, Any]) -> list[str]:
    d = r["sets"]["data"]
    lines = [f"t-SNE of {d['points']:,} points" + (", coloured by GMM component" if d.get("labels") is not None else "")
             + "."]
    if r.get("umap_note"):
        lines.append(f"Note: {r['umap_note']}.")
    return lines


def _drift(r: Mapping[str, Any]) -> list[str]:
    if r.get("skipped"):
        return [f"Skipped: {r['skipped']}."]
    dr, nn = r["drift"]["summary"], r["nearest_other_user"]
    lines = [
        f"{r['consecutive_pairs']:,} consecutive pairs from {r['users_with_several']:,} of {r['users']:,} users.",
        "",
        *_table(["distance", "median", "5%", "95%"], [
            ["consecutive embeddings (drift)", _f(dr["q50"]), _f(dr["q05"]), _f(dr["q95"])],
            *([["nearest other user", _f(nn["summary"]["q50"]), _f(nn["summary"]["q05"]), _f(nn["summary"]["q95"])]]
              if nn.get("summary") else []),
            ["random different users", _f(r["other_users"]["summary"].get("q50")),
             _f(r["other_users"]["summary"].get("q05")), _f(r["other_users"]["summary"].get("q95"))],
        ]),
        "",
        f"Median drift / median distance between users: {_f(r['ratio_median_drift_to_median_other'])}. "
        f"Share of embeddings whose previous one is closer than any other user: "
        f"{_f(nn.get('frac_drift_below_nearest_other'))}.",
    ]
    return lines


SECTIONS: dict[str, tuple[str, Callable[[Mapping[str, Any]], list[str]]]] = {
    "norms": ("L2 norms", _norms),
    "balls": ("Balls around random centres", _balls),
    "knn-radius": ("Intrinsic dimension", _idim),
    "angles": ("Angles", _angles),
    "projections": ("Coordinate projections and spectrum", _projections),
    "gmm": ("Gaussian mixtures", _gmm),
    "map": ("2-D maps", _map),
    "drift": ("Drift between consecutive embeddings", _drift),
}


def render_report(results: Mapping[str, Mapping[str, Any]], input_info: Mapping[str, Any],
                  files: Mapping[str, tuple[str, str]]) -> str:
    """The Markdown text. ``files`` maps an analysis name to its (figure, JSON) file names."""
    lines = [f"# Embedding analysis: {Path(str(input_info.get('path', 'input'))).name}", ""]
    lines.append(f"- input: `{input_info.get('path')}` ({input_info.get('rows', '?'):,} rows, "
                 f"dimension {input_info.get('dim')})")
    if input_info.get("latest_per_user"):
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
                     "embeddings with the geometry between users; `--latest-per-user` keeps one point per user")
    first = next(iter(results.values()), {})
    if first.get("baselines"):
        lines.append(f"- baselines: {first['baselines'].get('description')}")
    lines.append("")
    for name, (title, render) in SECTIONS.items():
        if name not in results:
            continue
        png, js = files.get(name, (f"{name}.png", f"{name}.json"))
        lines += [f"## {title} (`{name}`)", "", *render(results[name]), "", f"![{name}]({png})", "",
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
