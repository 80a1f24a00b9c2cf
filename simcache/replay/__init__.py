"""Replaying request traces against a similarity cache: accounting, reports, sweeps.

- :func:`run_replay` (``simcache replay``): one replay, summarised (:class:`ReplayResult`).
- :func:`run_sweep` (``simcache sweep``): a (policy x capacity x radius) grid in parallel processes.
- :func:`summarize`: the summary numbers from a per-request log and the trace's columns.

Submodules are imported on first use so that ``import simcache.replay`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReplayResult", "Summary", "run_replay", "run_sweep", "summarize"]

_WHERE = {
    "ReplayResult": "simcache.replay.run",
    "run_replay": "simcache.replay.run",
    "run_sweep": "simcache.replay.sweep",
    "Summary": "simcache.replay.accounting",
    "summarize": "simcache.replay.accounting",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'simcache.replay' has no attribute {name!r}")
