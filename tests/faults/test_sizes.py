"""Absurd sizes: capacities beyond the trace, caches that cannot fit, unbounded ranges, huge
generated datasets, analysis options the data cannot support. Each is clamped (said in one line,
with the same result) or refused in one line with the reason; never a MemoryError or a hang."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from simcache.cli.app import app
from simcache.trace.io import write_requests
from tests.faults.conftest import fails_cleanly

N = 300


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(12, 5))
    x = (centers[rng.integers(0, 12, N)] + 0.05 * rng.normal(size=(N, 5))).astype(np.float32)
    return write_requests(tmp_path_factory.mktemp("sizes") / "t.arrow", x)


@pytest.mark.parametrize("capacity", [N + 1, 10**8, 10**12, 10**19])
def test_capacity_above_the_trace_is_simulated_exactly(trace, capacity):
    """Same outcomes as the engine run directly with a capacity that never fills (the oracle)."""
    from simcache.cache import replay as engine_replay
    from simcache.cache.config import ReplayConfig
    from simcache.replay.run import run_replay

    cfg = ReplayConfig(policy="lru", capacity=capacity, radius=0.3)
    result = run_replay(trace, cfg)
    assert result.parameters["capacity"] == capacity and result.parameters["capacity_simulated"] == N
    assert "never fills" in result.parameters["capacity_note"]
    oracle = engine_replay(np.asarray(result.requests.vectors), ReplayConfig(policy="lru", capacity=2 * N, radius=0.3))
    np.testing.assert_array_equal(result.log.outcome, oracle.outcome)


def test_capacity_note_is_one_line(trace):
    res = CliRunner().invoke(app, ["replay", str(trace), "-C", str(10**12), "--radius", "0.3"])
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("note: capacity 1,000,000,000,000 exceeds"), res.stderr


def test_cache_that_cannot_fit_is_refused_with_the_estimate(trace, monkeypatch, tmp_path):
    import simcache.cache.config as config

    monkeypatch.setattr(config, "available_memory_bytes", lambda: 10_000)
    fails_cleanly(["replay", trace, "-C", "200", "--out", tmp_path / "o"], "capacity 200", "GiB of memory",
                  "available", "--capacity", untouched=tmp_path)
    # ivf is approximate and depends on the capacity: not clamped, so refused by memory
    monkeypatch.undo()
    fails_cleanly(["replay", trace, "-C", str(10**15), "--index", "ivf"], "GiB of memory", "available")


@pytest.mark.parametrize("option, grid, needle", [
    ("--capacity", "10:inf:x10", "finite"),
    ("--radius", "0:inf:1", "finite"),
    ("--radius", "0:nan:1", "finite"),
    ("--capacity", "1:1e15:1", "at most 100,000"),
    ("--capacity", "1:1e300:x1.0000001", "at most 100,000"),
    ("--radius", "0:1e12:1e-6", "at most 100,000"),
])
def test_sweep_ranges_must_be_finite_and_bounded(trace, tmp_path, option, grid, needle):
    args = ["sweep", trace, "--out", tmp_path / "o", "--capacity", "10", "--radius", "0.1"]
    args[args.index(option) + 1] = grid
    fails_cleanly(args, grid, needle, untouched=tmp_path)


@pytest.mark.parametrize("args, needles", [
    (["--n-users", str(10**9)], ["n_users=1,000,000,000", "GiB of memory", "available"]),
    (["--n-items", str(10**7), "--mean-items", str(10**6), "--n-users", str(10**6)], ["GiB of memory"]),
    (["--mean-items", "nan"], ["mean_items", "finite"]),
    (["--mean-items", "inf"], ["mean_items", "finite"]),
    (["--mean-items", "-1"], ["mean_items"]),
])
def test_synthetic_sizes(args, needles, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(tmp_path))
    fails_cleanly(["data", "fetch", "synthetic", *args], *needles, untouched=tmp_path)


def test_threshold_must_be_finite(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(tmp_path))
    fails_cleanly(["data", "prepare", "synthetic", "--threshold", "nan", "--n-users", "50"], "--threshold", "finite")


@pytest.mark.parametrize("args, needles", [
    (["gmm", "--max-components", "10000"], ["--max-components", "exceeds the 300 points", "allowed: 1 .. 300"]),
    (["gmm", "--max-components", "200", "--gmm-sample", "100"], ["--max-components", "100 points"]),
    (["map", "--perplexity", "1e6"], ["--perplexity", "below the 300 points"]),
    (["map", "--perplexity", "300"], ["--perplexity", "below the 300 points"]),
    (["map", "--components", "301"], ["--components", "300 points"]),
    (["knn-radius", "--k-max", "300"], ["--k-max", "300 points"]),
])
def test_analysis_options_bounded_by_the_data(trace, tmp_path, args, needles):
    name, *rest = args
    fails_cleanly(["analyze", name, trace, "--out", tmp_path / "o", *rest], *needles, untouched=tmp_path)


def test_check_against_data_oracle():
    """The one check, against a brute-force statement of the rule, over every declared bound."""
    from recvae.errors import UserError
    from simcache.analysis.registry import all_options
    from simcache.analysis.spec import check_against_data

    bounded = [o for o in all_options().values() if o.points]
    assert {"max_components", "perplexity"} <= {o.name for o in bounded}
    for opt in bounded:
        for n in (3, 50):
            for sample in (None, 10):
                for value in (2, 9, 10, 11, 49, 50, 51):
                    values = {opt.name: value, **({opt.sample: sample} if opt.sample else {})}
                    limit = n if not opt.sample or sample is None else min(n, sample)
                    ok = value == opt.default or (value <= limit if opt.points == "<=" else value < limit)
                    try:
                        check_against_data([opt], values, n)
                        refused = False
                    except UserError as exc:
                        refused = True
                        assert opt.cli_flag in str(exc) and "allowed:" in str(exc)
                    assert refused == (not ok), (opt.name, n, sample, value)
