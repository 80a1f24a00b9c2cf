"""Sweeps: grid parsing, parallel points equal single replays, result files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recvae.errors import UserError
from simcache.replay import run_replay
from simcache.replay.sweep import ROW_COLUMNS, parse_grid, policy_params, run_sweep


@pytest.mark.parametrize(
    "spec,kind,expected",
    [
        ("100,1000,10000", int, [100, 1000, 10000]),
        ("100:100000:x10", int, [100, 1000, 10000, 100000]),
        ("10:40:10", int, [10, 20, 30, 40]),
        ("10:45:10", int, [10, 20, 30, 40]),
        ("0:0.3:0.1", float, [0.0, 0.1, 0.2, 0.3]),
        ("0.5, 1.5 ,0.5", float, [0.5, 1.5]),
        ("1:8:x2,3", int, [1, 2, 4, 8, 3]),
        ("7", int, [7]),
    ],
)
def test_parse_grid(spec, kind, expected):
    assert parse_grid(spec, kind=kind, name="x") == expected


@pytest.mark.parametrize(
    "spec,kind,message",
    [
        ("", float, "empty"),
        ("1,a", float, "not a number"),
        ("1.5", int, "not an integer"),
        ("1:2", float, "use START:STOP:STEP"),
        ("5:1:1", float, "STOP is below START"),
        ("0:10:x2", float, "START > 0 and FACTOR > 1"),
        ("1:10:0", float, "STEP must be > 0"),
    ],
)
def test_parse_grid_errors(spec, kind, message):
    with pytest.raises(UserError, match=message):
        parse_grid(spec, kind=kind, name="x")


def test_policy_params_keeps_only_documented_ones():
    params = {"q": 0.5, "acceptance": "linear"}
    assert policy_params("qlru-dc", params) == {"q": 0.5}
    assert policy_params("rnd-lru", params) == {"acceptance": "linear"}
    assert policy_params("lru", params) == {}


@pytest.mark.parametrize("jobs", [1, 2])
def test_sweep_rows_equal_single_replays(tmp_path, trace_file, jobs):
    out = tmp_path / f"sweep{jobs}"
    df = run_sweep(trace_file, policies="lru,rnd-lru", capacities="5,20", radii="0.1,0.2", out=out,
                   jobs=jobs, params={"acceptance": "linear"}, seed=3, progress=False)
    assert list(df.columns) == list(ROW_COLUMNS)
    assert len(df) == 8
    assert df[["policy", "radius", "capacity"]].values.tolist() == [
        [p, r, c] for p in ("lru", "rnd-lru") for r in (0.1, 0.2) for c in (5, 20)
    ]
    for row in df.itertuples(index=False):
        params = {"acceptance": "linear"} if row.policy == "rnd-lru" else {}
        single = run_replay(trace_file, policy=row.policy, capacity=row.capacity, radius=row.radius,
                            params=params, seed=3)
        c = single.summary.counts
        assert (row.hits, row.exact_hits, row.approx_hits, row.misses) == (
            c["hits"], c["exact_hits"], c["approx_hits"], c["misses"])
        assert row.hit_ratio == pytest.approx(c["hit_ratio"])
        assert row.mean_service_cost == pytest.approx(single.summary.cost["mean_service_cost"])
        assert row.overlap_approx_mean == pytest.approx(single.summary.overlap["approx_hits"]["mean"])
    assert df.loc[df.policy == "rnd-lru", "params"].str.contains("acceptance=linear").all()

    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 8 and csv["hits"].tolist() == df["hits"].tolist()
    assert len(pd.read_parquet(out / "results.parquet")) == 8
    assert (out / "curves_capacity.png").stat().st_size > 1000
    assert (out / "curves_radius.png").stat().st_size > 1000
    points = sorted(p.name for p in (out / "points").glob("*.json"))
    assert len(points) == 8 and "lru_C5_r0.1.json" in points
    one = json.loads((out / "points" / "rnd-lru_C20_r0.2.json").read_text())
    assert one["parameters"]["params"]["acceptance"] == "linear"
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["capacities"] == [5, 20] and meta["radii"] == [0.1, 0.2] and meta["jobs"] == jobs
    assert meta["trace"] == "../trace.arrow"  # beside the sweep folder: recorded relative to it


def test_sweep_records_a_trace_elsewhere_by_its_absolute_path(tmp_path, trace_file):
    out = tmp_path / "deeper" / "runs" / "s"
    run_sweep(trace_file, capacities="10", radii="0.1", out=out, jobs=1, progress=False)
    assert json.loads((out / "sweep.json").read_text())["trace"] == str(trace_file.resolve())


def test_sweep_single_capacity_writes_radius_curve_only(tmp_path, trace_file):
    out = tmp_path / "s"
    run_sweep(trace_file, capacities="10", radii="0:0.2:0.1", out=out, jobs=1, progress=False)
    assert (out / "curves_radius.png").is_file() and not (out / "curves_capacity.png").exists()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"policies": "lru,nope", "capacities": "5"}, "unknown policy 'nope'"),
        ({"capacities": "0,5"}, "capacity must be a positive integer"),
        ({"capacities": "5", "radii": "-1,1"}, "radius must be a finite number >= 0"),
        ({"capacities": "5", "jobs": 0}, "jobs must be >= 1"),
        ({"capacities": "5", "params": {"q": 0.5}}, "q apply to none of the policies lru"),
    ],
)
def test_sweep_bad_arguments(tmp_path, trace_file, kwargs, message):
    with pytest.raises(UserError, match=message):
        run_sweep(trace_file, out=tmp_path / "x", progress=False, **kwargs)
