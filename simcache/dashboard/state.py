"""What the pages share inside the Streamlit process: the inputs, cached loaders, errors and labels.

The launcher hands the input paths to the app in the environment variable :data:`INPUTS_ENV` (a
JSON list). Loaders are cached per file and modification time: traces as memory-mapped
:class:`~simcache.trace.io.Requests` (one per process, never copied), computed tables by value.
A :class:`~recvae.errors.UserError` raised while loading is shown as one error box, not a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from recvae.errors import UserError
from simcache.dashboard import models, replays, sweeps, traces
from simcache.dashboard.sources import INPUTS_ENV, Run, Sources, detect

_EXTRA_KEY = "extra_inputs"


def input_paths() -> list[str]:
    """The paths given to ``simcache dashboard`` (empty when the app was started otherwise)."""
    raw = os.environ.get(INPUTS_ENV, "")
    if not raw:
        return []
    try:
        paths = json.loads(raw)
    except ValueError:
        return [raw]
    return [str(p) for p in paths] if isinstance(paths, list) else [str(paths)]


@st.cache_resource(show_spinner=False)
def _detect_one(path: str) -> Sources | str:
    try:
        return detect([path])
    except UserError as exc:
        return str(exc)


def _all_paths() -> list[str]:
    return [*input_paths(), *st.session_state.get(_EXTRA_KEY, [])]


def sources() -> Sources:
    """Everything found under the input paths and the paths added in the sidebar."""
    found = Sources()
    for path in _all_paths():
        one = _detect_one(path)
        if not isinstance(one, str):
            found = found.merge(one)
    return found


def input_errors() -> list[str]:
    """One message per input path that holds nothing usable (or does not exist)."""
    return [one for one in map(_detect_one, _all_paths()) if isinstance(one, str)]


def add_path(path: str) -> str | None:
    """Add a path typed in the sidebar; the error message when it holds nothing usable."""
    path = path.strip()
    if not path:
        return None
    one = _detect_one(str(Path(path).expanduser()))
    if isinstance(one, str):
        return one
    extra = st.session_state.setdefault(_EXTRA_KEY, [])
    if path not in extra:
        extra.append(path)
    return None


def label(path: Path, found: Sources) -> str:
    """A short name for ``path``: relative to the input that holds it, under that input's name."""
    for root in found.inputs:
        if path == root:
            return root.name
        with contextlib.suppress(ValueError):
            return f"{root.name}/{path.relative_to(root).as_posix()}"
    return str(path)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a :class:`UserError` raised in the block as an error box and stop the page there."""
    try:
        yield
    except UserError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# -- traces ------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=16)
def _requests(path: str, mtime: float) -> Any:
    from simcache.trace.io import load_requests

    return load_requests(path, validate=False)


def requests(path: Path) -> Any:
    """The trace, memory-mapped (cached for the process)."""
    return _requests(str(path), _mtime(path))


@st.cache_data(show_spinner=False, max_entries=16)
def _trace_info(path: str, mtime: float) -> Any:
    from simcache.trace.info import trace_info

    return trace_info(path)


def trace_info(path: Path) -> Any:
    """The numbers of ``simcache trace info`` (default sampling), cached."""
    return _trace_info(str(path), _mtime(path))


@st.cache_data(show_spinner=False, max_entries=32)
def _sample(path: str, mtime: float, max_rows: int, seed: int) -> tuple[Any, np.ndarray]:
    req = _requests(path, mtime)
    rows = traces.sample_rows(req, max_rows, seed)
    return traces.sample_frame(req, rows), np.asarray(req.vectors[rows], dtype=np.float64)


def sample(path: Path, max_rows: int, seed: int = 0) -> tuple[Any, np.ndarray]:
    """A sample of the trace: its per-row frame and its vectors (float64), cached."""
    return _sample(str(path), _mtime(path), int(max_rows), int(seed))


@st.cache_data(show_spinner=False, max_entries=32)
def _projection(path: str, mtime: float, max_rows: int, seed: int, method: str) -> np.ndarray:
    _, vectors = _sample(path, mtime, max_rows, seed)
    return traces.project(vectors, method, seed=seed)


def projection(path: Path, max_rows: int, method: str, seed: int = 0) -> np.ndarray:
    """2-D coordinates of :func:`sample`'s rows, cached per method."""
    return _projection(str(path), _mtime(path), int(max_rows), int(seed), method)


# -- sweeps and runs ---------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _results(path: str, mtime: float) -> Any:
    return sweeps.load_results(path)


def results(folder: Path) -> Any:
    """A sweep's results table, cached."""
    table = next((folder / t for t in sweeps.SWEEP_TABLES if (folder / t).is_file()), folder)
    return _results(str(folder), _mtime(table))


@st.cache_data(show_spinner=False, max_entries=256)
def _summary(path: str, mtime: float) -> dict[str, Any]:
    return replays.load_summary(path)


def summary(run: Run) -> dict[str, Any]:
    """A run's summary JSON, cached."""
    return _summary(str(run.summary), _mtime(run.summary))


@st.cache_data(show_spinner=False, max_entries=8)
def _log(path: str, mtime: float) -> replays.RunLog:
    return replays.load_log(path)


def log(run: Run) -> replays.RunLog:
    """A run's per-request log columns, cached (the run must have a log)."""
    assert run.log is not None
    return _log(str(run.log), _mtime(run.log))


# -- spaces ------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _trace_space(name: str, path: str, mtime: float, max_rows: int, latest: bool) -> models.Space:
    return models.space_from_trace(name, _requests(path, mtime), max_rows=max_rows, latest=latest)


def trace_space(name: str, path: Path, max_rows: int, latest: bool) -> models.Space:
    """Norm and angle histograms of a trace sample, cached."""
    return _trace_space(name, str(path), _mtime(path), int(max_rows), bool(latest))


@st.cache_data(show_spinner=False, max_entries=32)
def _analysis_space(name: str, folder: str, mtime: float) -> models.Space:
    return models.space_from_analysis(name, folder)


def analysis_space(name: str, folder: Path) -> models.Space:
    """Norm and angle histograms of an analysis folder, cached."""
    return _analysis_space(name, str(folder), max(_mtime(folder / "norms.json"), _mtime(folder / "angles.json")))
