"""``analyze compare``: normalisation by the median NN distance (oracle: a trace scaled by 3), labels,
equal-normalised-radius sweeps, bad input as one error line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recvae.errors import UserError
from simcache.analysis.compare import CompareConfig, SweepSpec, compare_traces, nn_scale
from simcache.analysis.registry import AnalysisOptions
from simcache.cli.app import app
from simcache.trace.io import write_requests

runner = CliRunner()
FAST = AnalysisOptions(map_sample=120, gmm_sample=200, max_components=3, umap=False, threads=1, angle_pairs=1000,
                       drift_pairs=1000, drift_queries=60, centers=4)
SOME = ("norms", "knn-radius", "drift")


def write_trace(path, scale: float = 1.0, seed: int = 0, metadata: dict | None = None):
    """120 users in 3 groups, 3 embeddings each (d = 8), time-sorted, optionally multiplied by ``scale``."""
    rng = np.random.default_rng(seed)
    n_users, per, d = 120, 3, 8
    centres = 6.0 * rng.standard_normal((3, d))
    start = centres[np.arange(n_users) % 3] + rng.standard_normal((n_users, d))
    x = np.repeat(start, per, axis=0) + np.cumsum(0.3 * rng.standard_normal((n_users, per, d)), axis=1).reshape(-1, d)
    users = np.repeat([f"u{u}" for u in range(n_users)], per).astype(object)
    seq = np.tile(np.arange(per), n_users)
    ts = seq * 1000 + np.repeat(np.arange(n_users), per)
    o = np.lexsort((seq, ts))
    write_requests(path, (scale * x[o]).astype(np.float32), timestamp=ts[o].astype(np.int64), user_id=users[o],
                   seq=seq[o], n_items=(10 * seq[o] + 50), metadata=metadata)
    return path


@pytest.fixture
def pair(tmp_path):
    return write_trace(tmp_path / "base.arrow"), write_trace(tmp_path / "times3.arrow", scale=3.0)


def brute_scale(points: np.ndarray) -> float:
    """Median over every point of the distance to the nearest other point (plain O(n^2))."""
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def test_scale_is_the_median_nearest_other_distance():
    x = np.random.default_rng(5).standard_normal((300, 4))
    x[1] = x[0]  # a duplicate: its nearest other point is at distance 0, not itself
    s = nn_scale(x, sample=1000, seed=0)
    assert s["median_nn"] == pytest.approx(brute_scale(x), rel=1e-12)
    assert s["sample"] == 300 and s["exclude_self"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), factor=st.floats(0.01, 100.0), sample=st.integers(3, 80))
def test_scale_is_equivariant(seed, factor, sample):
    """nn_scale(c x) = c nn_scale(x): the property the whole normalisation rests on."""
    x = np.random.default_rng(seed).standard_normal((60, 3))
    a, b = nn_scale(x, sample, seed), nn_scale(factor * x, sample, seed)
    assert b["median_nn"] == pytest.approx(factor * a["median_nn"], rel=1e-9)


def test_scaled_copy_same_normalised_table_three_times_raw(pair, tmp_path, assert_png):
    cfg = CompareConfig(analyses=SOME, options=FAST)
    res = compare_traces(pair, cfg, out=tmp_path / "out")
    assert res.labels() == ["base", "times3"]  # no model metadata: the file stems
    raw, norm = res.distance_table(False), res.distance_table(True)
    for key, value in raw["base"].items():
        if value is None:
            continue
        assert raw["times3"][key] == pytest.approx(3 * value, rel=1e-5), key
        assert norm["times3"][key] == pytest.approx(norm["base"][key], rel=1e-5), key
    assert raw["base"]["median NN (scale)"] == pytest.approx(brute_scale(_latest(pair[0])), rel=1e-6)
    a, b = res.summary_table()["base"], res.summary_table()["times3"]
    for key in ("median norm / scale", "median drift / scale", "ID knn-radius slope"):
        assert b[key] == pytest.approx(a[key], rel=1e-4), key
    out = tmp_path / "out"
    report = (out / "report.md").read_text()
    assert "median distance from a point to its nearest other point (the point itself excluded)" in report
    assert "|  | base | times3 |" in report
    data = json.loads((out / "compare.json").read_text())
    assert data["labels"] == ["base", "times3"]
    assert (out / "base" / "report.md").is_file()
    for name in ("norms", "knn_radius", "drift"):
        assert_png(out / f"compare_{name}.png")


def _latest(path) -> np.ndarray:
    from simcache.analysis.inputs import prepare_input

    return prepare_input(path).points


def test_labels_from_trace_metadata(tmp_path):
    a = write_trace(tmp_path / "x.arrow", metadata={"model": {"type": "als"}})
    b = write_trace(tmp_path / "y.arrow", seed=1, metadata={"model": {"checkpoint_sha256": "0"}})
    res = compare_traces([a, b], CompareConfig(analyses=("norms",), options=FAST), out=tmp_path / "out")
    assert res.labels() == ["als", "recvae"]
    assert [s.model for s in res.spaces] == ["als", "recvae"]
    with pytest.raises(UserError, match="both have the label 'als'"):
        compare_traces([a, a], CompareConfig(analyses=("norms",)), out=tmp_path / "o2")


def test_sweep_at_equal_normalised_radius_gives_identical_hit_ratios(pair, tmp_path):
    from recvae.trace.catalogue import Catalogue, write_catalogue
    from recvae.trace.format import catalogue_path

    items = np.random.default_rng(9).standard_normal((40, 8)).astype(np.float32) * 5
    for trace, c in zip(pair, (1.0, 3.0)):
        write_catalogue(catalogue_path(trace), Catalogue(np.array([f"i{j}" for j in range(40)]), c * items))
    spec = SweepSpec(policies=("lru",), object_policies=("obj-lru",), capacities=(15,), radii=(0.5, 1.5), k=3)
    res = compare_traces(pair, CompareConfig(analyses=("norms",), options=FAST, sweep=spec), out=tmp_path / "out")
    base, scaled = res.spaces[0].sweep, res.spaces[1].sweep
    assert [(r["family"], r["radius_normalised"]) for r in base] == [
        ("query", 0.5), ("query", 1.5), ("object", 0.5), ("object", 1.5)]
    values = [r["value"] for r in base]
    assert values[:2] == [r["value"] for r in scaled[:2]]  # hit ratios: identical decisions
    # NAG: costs are distances (x3 in float32), so equal within rounding
    assert values[2:] == pytest.approx([r["value"] for r in scaled[2:]], rel=1e-6)
    assert values[0] < values[1] and values[2] != values[3]  # the radius matters, so equality is not trivial
    for a, b in zip(base, scaled):
        assert b["radius"] == pytest.approx(3 * a["radius"], rel=1e-5)
    # the object's c_f is in units of the request-to-nearest-object distance, not the request scale
    assert base[2]["radius"] == pytest.approx(0.5 * res.spaces[0].distances["request to nearest object, 50%"])
    assert "## The same sweep at equal normalised radius" in (tmp_path / "out" / "report.md").read_text()


def test_cli_writes_the_report(pair, tmp_path, assert_png):
    out = tmp_path / "cmp"
    r = runner.invoke(app, ["analyze", "compare", str(pair[0]), str(pair[1]), "--out", str(out), "--fast",
                            "--labels", "one,two", "--analyses", "angles,gmm,map"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1] == str(out / "report.md")
    for name in ("angles", "gmm", "maps"):
        assert_png(out / f"compare_{name}.png")
    assert not (out / "compare_norms.png").exists()
    assert json.loads((out / "compare.json").read_text())["labels"] == ["one", "two"]
    r = runner.invoke(app, ["analyze", "compare", str(pair[0]), str(pair[1]), "--out", str(out), "--fast"])
    assert r.exit_code == 2 and "--overwrite" in r.output


@pytest.mark.parametrize("case", ["one trace", "missing file", "labels count", "sweep options", "analysis"])
def test_bad_input_one_error_line(pair, tmp_path, case):
    out = tmp_path / "never"
    args = {"one trace": [str(pair[0])],
            "missing file": [str(pair[0]), str(tmp_path / "absent.arrow")],
            "labels count": [str(pair[0]), str(pair[1]), "--labels", "a"],
            "sweep options": [str(pair[0]), str(pair[1]), "--capacity", "10"],
            "analysis": [str(pair[0]), str(pair[1]), "--analyses", "norms,nope"]}[case]
    r = runner.invoke(app, ["analyze", "compare", *args, "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output and not out.exists()
    needle = {"one trace": "at least 2 traces", "missing file": "absent.arrow", "labels count": "1 labels for 2",
              "sweep options": "need --sweep", "analysis": "unknown analysis 'nope'"}[case]
    assert needle in lines[0]
