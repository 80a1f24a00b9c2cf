"""Demo-like outputs for the dashboard tests, made by the real commands on tiny synthetic data.

One session-scoped folder, laid out like a ``simcache demo`` report (``trace.arrow``, ``sweep/``,
``analysis/``, ``model/``, ``README.md``, ``summary.json``), plus two replay folders written with
``--log``, a second trace (another "model" of the same users) and a sweep table with a ``nag``
column (as object-cache sweeps will have).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from simcache.trace.io import write_requests


@dataclass(frozen=True)
class Outputs:
    """Paths of the fixture outputs."""

    report: Path  # demo-like report folder
    trace: Path
    trace_b: Path
    sweep: Path
    run_lru: Path  # replay folders with summary.json, per_user.parquet, requests.parquet
    run_fifo: Path
    analysis: Path
    nag_sweep: Path  # a copy of the sweep's results with a nag column


def trace_columns(n_users: int = 40, d: int = 8, seed: int = 0) -> dict:
    """Users with 1-12 embeddings each, drifting from a per-user start, in time order, with every column."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(5, d))
    rows = []
    for u in range(n_users):
        k = int(rng.integers(1, 13))
        start = centres[u % 5] + rng.normal(scale=0.5, size=d)
        steps = np.cumsum(rng.normal(scale=0.15, size=(k, d)), axis=0)
        times = np.sort(rng.integers(10**9, 10**9 + 90 * 86400, k))
        split = ("train", "validation", "test")[u % 3]
        for s in range(k):
            rows.append((times[s], f"u{u:03d}", s, start + steps[s], split))
    rows.sort(key=lambda r: (r[0], r[1]))
    return {
        "vectors": np.array([r[3] for r in rows], dtype=np.float32),
        "timestamp": np.array([r[0] for r in rows], dtype=np.int64),
        "user_id": np.array([r[1] for r in rows], dtype=object),
        "seq": np.array([r[2] for r in rows], dtype=np.int64),
        "n_items": np.array([10 + 5 * r[2] for r in rows], dtype=np.int64),
        "split": np.array([r[4] for r in rows], dtype=object),
    }


def write_trace(path: Path, columns: dict, *, scale: float = 1.0) -> Path:
    c = columns
    return write_requests(path, c["vectors"] * np.float32(scale), timestamp=c["timestamp"], user_id=c["user_id"],
                          seq=c["seq"], n_items=c["n_items"], split=c["split"],
                          metadata={"dataset": "synthetic", "clock": "time"})


@pytest.fixture(scope="session")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    from simcache.analysis.inputs import prepare_input
    from simcache.analysis.run import AnalysisOptions, run_analyses
    from simcache.replay.run import run_replay
    from simcache.replay.sweep import run_sweep

    root = tmp_path_factory.mktemp("dashboard")
    report = root / "report"
    cols = trace_columns()
    trace = write_trace(report / "trace.arrow", cols)
    trace_b = write_trace(root / "model_b.arrow", trace_columns(seed=1), scale=0.5)
    sweep = report / "sweep"
    run_sweep(trace, policies="lru,fifo,lfu", capacities=[5, 20, 80], radii=[0.3, 0.5], out=sweep, jobs=1,
              plots=False, progress=False)
    runs = []
    for policy in ("lru", "fifo"):
        out = root / f"replay-{policy}"
        run_replay(trace, policy=policy, capacity=20, radius=0.5, out=out, request_log=True)
        runs.append(out)
    analysis = report / "analysis"
    inp = prepare_input(trace, latest=True, seed=0)
    run_analyses(inp, ["norms", "angles"], analysis, AnalysisOptions(seed=0, angle_pairs=2000))
    (report / "model").mkdir()
    (report / "README.md").write_text("# simcache demo report (synthetic)\n")
    (report / "summary.json").write_text(json.dumps({"dataset": "synthetic", "radii": [0.3, 0.5]}))
    nag = root / "object-sweep"
    nag.mkdir()
    import pandas as pd

    df = pd.read_csv(sweep / "results.csv")
    df["nag"] = 0.5 * df["hit_ratio"] + 0.1
    df.to_csv(nag / "results.csv", index=False)
    return Outputs(report, trace, trace_b, sweep, runs[0], runs[1], analysis, nag)
