"""Running analyses on a prepared input and writing ``<name>.json`` + ``<name>.png`` (and ``report.md``).

This is what ``simcache analyze`` calls; it is usable from Python as well::

    inp = prepare_input("trace.arrow", sample=20_000, seed=0)      # latest embedding per user
    results = run_analyses(inp, names(), "out/", AnalysisOptions(seed=0), report=True)

Each analysis is looked up in :mod:`simcache.analysis.registry` and computed from an
:class:`~simcache.analysis.spec.AnalysisContext`. One set of baselines (matched to the analysed
points, drawn from the seed) is shared by every analysis of a run. ``map`` colours its points by a
mixture with the number of components chosen by ``gmm`` when ``gmm`` ran in the same call, else by
``options.components``, else by a BIC selection on the map sample itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simcache.analysis.baselines import matched_baselines
from simcache.analysis.common import JSON_DIGITS
from simcache.analysis.inputs import AnalysisInput
from simcache.analysis.plotting import note_figure
from simcache.analysis.registry import AnalysisOptions, get, names
from simcache.analysis.report import write_report
from simcache.analysis.spec import AnalysisContext, check_against_data
from simcache.jsonout import write_json

__all__ = ["AnalysisOptions", "names", "plot_result", "run_analyses", "run_one"]


def plot_result(result: dict[str, Any], path: str | os.PathLike) -> Any:
    """Draw ``result`` (from any registered analysis) as a PNG at ``path``; a note figure when it was skipped."""
    spec = get(result.get("analysis"))
    if result.get("skipped"):
        return note_figure(f"{spec.name} skipped:\n{result['skipped']}", path)
    return spec.plot(result, path)


def run_one(name: str, inp: AnalysisInput, opts: AnalysisOptions, baselines: Any,
            results: dict[str, dict[str, Any]], *, progress: bool | None = None) -> dict[str, Any]:
    """Compute one analysis (no files written). ``results`` holds earlier results of the same run."""
    spec = get(name)
    if spec.needs_users and not inp.has_users:
        return {"analysis": name, "n": int(len(inp.points)), "dim": int(inp.points.shape[1]),
                "skipped": f"the input has no user_id column ({name} needs a trace with several embeddings "
                           "per user)"}
    ctx = AnalysisContext(input=inp, options=opts, baselines=baselines, results=results, progress=progress)
    return spec.compute(ctx)


def check_options(names: Sequence[str], opts: AnalysisOptions, n_points: int) -> None:
    """Refuse options that no run of ``names`` on ``n_points`` points can use (a UserError)."""
    values = opts.asdict()
    for name in names:
        spec = get(name)
        if spec.check is not None:
            spec.check(opts)
        check_against_data(spec.options, values, n_points)


def run_analyses(inp: AnalysisInput, names: Sequence[str], out_dir: str | os.PathLike, opts: AnalysisOptions,
                 *, report: bool = False, log: Callable[[str], None] | None = None,
                 progress: bool | None = None) -> dict[str, dict[str, Any]]:
    """Run ``names`` in order, writing ``<name>.json`` and ``<name>.png`` into ``out_dir`` (and ``report.md``).

    ``progress``: progress bars on stderr for the slow steps (``None``: only on a terminal).
    """
    out = Path(out_dir)
    specs = [get(n) for n in names]
    check_options(names, opts, len(inp.points))
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    baselines = matched_baselines(inp.points, seed=opts.seed, center=opts.baseline_center)
    results: dict[str, dict[str, Any]] = {}
    files: dict[str, tuple[str, str]] = {}
    for spec in specs:
        name = spec.name
        t0 = time.perf_counter()
        say(f"{name}: running")
        res = run_one(name, inp, opts, baselines, results, progress=progress)
        res["input"] = dict(inp.info)
        res["options"] = opts.asdict()
        res["seconds"] = time.perf_counter() - t0
        png, js = f"{name}.png", f"{name}.json"
        write_json(out / js, res, digits=JSON_DIGITS)
        plot_result(res, out / png)
        results[name] = res
        files[name] = (png, js)
        note = f" ({res['skipped']})" if res.get("skipped") else ""
        say(f"{name}: wrote {out / png} and {out / js} in {res['seconds']:.1f} s{note}")
        if res.get("warning"):
            say(f"{name}: warning: {res['warning']}")
    if report:
        path = write_report(out, results, inp.info, files)
        say(f"report: {path}")
    return results
