"""What the dashboard's input paths hold: traces, sweep folders, replay outputs and analysis folders.

:func:`detect` turns the paths given to ``simcache dashboard`` into one :class:`Sources`. Each path
is recognised by what it contains, never by its name alone:

- a request file (any extension :func:`simcache.trace.io.load_requests` reads) is a **trace**;
- a folder with ``results.parquet`` or ``results.csv`` (what ``simcache sweep`` writes) is a
  **sweep**; its ``points/*.json`` summaries are replay **runs** too;
- a folder whose ``summary.json`` holds a replay summary (``parameters`` and ``counts``, what
  ``simcache replay --out DIR`` writes) is a **run**; with ``requests.parquet`` (``--log``) it has
  a per-request log;
- a folder with ``<analysis>.json`` files of :data:`simcache.analysis.ANALYSIS_NAMES` is an
  **analysis** folder;
- any other folder (a ``simcache demo`` report, a folder of runs) is searched for the above
  among its entries, two levels down; a known output file (``results.csv``, ``summary.json``,
  ``requests.parquet``, ``<analysis>.json``) stands for its folder.

A path that holds none of them, or does not exist, is a :class:`~recvae.errors.UserError` naming it.
Detection only looks at names and small JSON files; traces are opened later, when a page needs them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recvae.errors import UserError

#: Environment variable that hands the input paths (a JSON list) to the app process.
INPUTS_ENV = "SIMCACHE_DASHBOARD_INPUTS"
SWEEP_TABLES = ("results.parquet", "results.csv")
SWEEP_POINTS = "points"
RUN_SUMMARY = "summary.json"
RUN_LOG = "requests.parquet"
SEARCH_DEPTH = 2  # levels searched below a folder that is none of the kinds itself
_SKIPPED_DIRS = {"model", "__pycache__", ".git"}


@dataclass(frozen=True)
class Run:
    """One replay: its summary file and, when written with ``--log``, its per-request log."""

    summary: Path
    log: Path | None = None


@dataclass
class Sources:
    """Everything found under the input paths, each list in the order found (no duplicates)."""

    traces: list[Path] = field(default_factory=list)
    sweeps: list[Path] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    analyses: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.traces or self.sweeps or self.runs or self.analyses)

    def merge(self, other: "Sources") -> "Sources":
        """A new :class:`Sources` with ``other``'s entries appended (duplicates dropped)."""
        out = Sources()
        for name in ("traces", "sweeps", "runs", "analyses", "inputs"):
            items: list[Any] = []
            for item in (*getattr(self, name), *getattr(other, name)):
                if item not in items:
                    items.append(item)
            setattr(out, name, items)
        return out

    def describe(self) -> str:
        """One line: how many of each kind were found."""
        parts = [(len(self.traces), "trace"), (len(self.sweeps), "sweep"), (len(self.runs), "replay run"),
                 (len(self.analyses), "analysis folder")]
        return ", ".join(f"{n} {what}{'' if n == 1 else 's'}" for n, what in parts if n) or "nothing"

    def to_json(self) -> str:
        """The input paths as JSON (what the app process receives)."""
        return json.dumps([str(p) for p in self.inputs])


def detect(paths: list[str | Path]) -> Sources:
    """Recognise every path (see the module docstring); a bad path raises :class:`UserError`."""
    if not paths:
        raise UserError("no input path given: pass traces, sweep folders, replay folders, analysis "
                        "folders or a demo report folder")
    found = Sources()
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise UserError(f"{p}: no such file or folder")
        one = Sources(inputs=[p.resolve()])
        _scan(p.resolve(), one, depth=SEARCH_DEPTH, top=True)
        if not one:
            raise UserError(
                f"{p}: holds no trace, sweep, replay run or analysis (expected a request file such as "
                f"trace.arrow, or a folder written by simcache sweep, replay --out, analyze or demo)")
        found = found.merge(one)
    return found


def _scan(p: Path, out: Sources, *, depth: int, top: bool = False) -> None:
    if p.is_file():
        _scan_file(p, out, top=top)
        return
    if not p.is_dir():
        return
    kinds = 0
    if any((p / t).is_file() for t in SWEEP_TABLES):
        out.sweeps.append(p)
        out.runs.extend(_sweep_points(p))
        kinds += 1
    run = _run_in(p)
    if run is not None:
        out.runs.append(run)
        kinds += 1
    if analysis_names(p):
        out.analyses.append(p)
        kinds += 1
    if kinds or depth <= 0:
        return
    try:
        entries = sorted(p.iterdir())
    except OSError as exc:
        raise UserError(f"{p}: cannot list the folder ({exc.strerror or exc})") from None
    for child in entries:
        if child.name.startswith(".") or child.name in _SKIPPED_DIRS:
            continue
        if child.is_dir():
            _scan(child, out, depth=depth - 1)
        elif _is_request_file(child):
            out.traces.append(child)


def _scan_file(p: Path, out: Sources, *, top: bool) -> None:
    """A file given directly: a trace, or a known output file standing for its folder."""
    if p.name in SWEEP_TABLES or p.name in (RUN_SUMMARY, RUN_LOG):
        _scan(p.parent, out, depth=SEARCH_DEPTH)
        return
    if p.suffix == ".json" and _analysis_name(p) is not None:
        out.analyses.append(p.parent)
        return
    if _is_request_file(p):
        out.traces.append(p)
    elif top:
        from simcache.trace.io import SUFFIXES

        raise UserError(f"{p}: not a trace (request files end in {', '.join(SUFFIXES)}) nor a sweep, "
                        "replay or analysis output")


def _is_request_file(p: Path) -> bool:
    from simcache.trace.io import SUFFIXES

    return p.is_file() and p.suffix.lower() in SUFFIXES and p.name not in (*SWEEP_TABLES, RUN_LOG,
                                                                           "per_user.parquet")


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def is_replay_summary(obj: Any) -> bool:
    """Whether a parsed JSON object is a replay summary (``summary.json`` or a sweep point)."""
    return isinstance(obj, dict) and isinstance(obj.get("parameters"), dict) and isinstance(obj.get("counts"), dict)


def _run_in(p: Path) -> Run | None:
    summary = p / RUN_SUMMARY
    if not summary.is_file() or not is_replay_summary(_read_json(summary)):
        return None
    log = p / RUN_LOG
    return Run(summary=summary, log=log if log.is_file() else None)


def _sweep_points(p: Path) -> list[Run]:
    points = p / SWEEP_POINTS
    if not points.is_dir():
        return []
    return [Run(summary=f) for f in sorted(points.glob("*.json"))]


def _analysis_name(p: Path) -> str | None:
    from simcache.analysis import ANALYSIS_NAMES

    if p.stem not in ANALYSIS_NAMES or not p.is_file():
        return None
    return _analysis_tag(str(p), p.stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _analysis_tag(path: str, mtime_ns: int) -> str | None:
    """The ``analysis`` field of an analysis JSON when it matches the file name (read once per version)."""
    p = Path(path)
    obj = _read_json(p)
    return p.stem if isinstance(obj, dict) and obj.get("analysis") == p.stem else None


def analysis_names(folder: Path) -> list[str]:
    """The analyses whose ``<name>.json`` the folder holds, in :data:`ANALYSIS_NAMES` order."""
    from simcache.analysis import ANALYSIS_NAMES

    if not folder.is_dir():
        return []
    return [n for n in ANALYSIS_NAMES if (folder / f"{n}.json").is_file() and _analysis_name(folder / f"{n}.json")]
