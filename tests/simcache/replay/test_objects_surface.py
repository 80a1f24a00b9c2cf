"""One replay/sweep surface for both cache families: object policies through run_replay, the CLI,
sweeps and curves, checked against the object engine called directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from recvae.errors import UserError
from recvae.trace.catalogue import Catalogue, write_catalogue
from recvae.trace.format import catalogue_path
from simcache.cli.app import app
from simcache.objects import OBJECT_POLICIES, ObjectReplayConfig, replay_objects, summarize_objects
from simcache.replay import run_replay
from simcache.replay.curves import metrics_of
from simcache.replay.families import FAMILIES, all_policies, family_of
from simcache.replay.sweep import ROW_COLUMNS, run_sweep
from simcache.trace.io import write_requests

N_OBJ, DIM, N_REQ = 40, 5, 160


def make_objects(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(requests, user ids, catalogue vectors, bias): Zipf-chosen objects plus noise, so caches hit."""
    rng = np.random.default_rng(seed)
    cat = rng.standard_normal((N_OBJ, DIM)).astype(np.float32)
    bias = rng.standard_normal(N_OBJ).astype(np.float32)
    p = 1.0 / np.arange(1, N_OBJ + 1) ** 1.1
    ids = rng.choice(N_OBJ, size=N_REQ, p=p / p.sum())
    x = (cat[ids] + 0.3 * rng.standard_normal((N_REQ, DIM))).astype(np.float32)
    users = np.array([f"u{u}" for u in rng.integers(0, 12, N_REQ)], dtype=object)
    return x, users, cat, bias


@pytest.fixture
def objects_trace(tmp_path: Path) -> Path:
    """A trace with its own catalogue beside it (``<stem>.catalogue.arrow``)."""
    x, users, cat, bias = make_objects()
    trace = write_requests(tmp_path / "objs.arrow", x, user_id=users,
                           timestamp=np.arange(N_REQ, dtype=np.int64))  # fmt: skip
    write_catalogue(catalogue_path(trace), Catalogue(np.array([f"i{i}" for i in range(N_OBJ)]), cat, bias))
    return trace


def direct(trace: Path, config: ObjectReplayConfig):
    x, users, cat, bias = make_objects()
    log = replay_objects(x, (cat, bias), config)
    return log, summarize_objects(log, user_id=users)


# Families ----------------------------------------------------------------------------------------
def test_every_policy_belongs_to_one_family() -> None:
    from simcache.cache import POLICIES

    known = all_policies()
    assert set(known) == set(POLICIES) | set(OBJECT_POLICIES)
    assert all(family_of(p).name == "object" for p in OBJECT_POLICIES)
    assert all(family_of(p).name == "query" for p in POLICIES)
    assert FAMILIES["object"].config_type is ObjectReplayConfig
    with pytest.raises(UserError, match="unknown policy"):
        family_of("no-such-policy")


# run_replay --------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy,metric,k", [("obj-lru", "l2", 3), ("obj-lfu", "ip", 2), ("greedy", "cosine", 4),
                                             ("obj-qlru-dc", "l2", 1)])
def test_run_replay_equals_the_object_engine(objects_trace, policy, metric, k) -> None:
    config = ObjectReplayConfig(policy=policy, capacity=8, k=k, metric=metric, c_f=0.7, seed=2)
    result = run_replay(objects_trace, config)
    log, summary = direct(objects_trace, config)
    for name in ("server", "served", "local", "origin", "cost", "cost_empty", "cost_opt"):
        np.testing.assert_array_equal(getattr(result.log, name), getattr(log, name))
    got, want = result.summary.to_dict(), summary.to_dict()
    got["config"].pop("stats"), want["config"].pop("stats")
    assert got == want
    assert result.to_dict()["family"] == "object"
    assert result.catalogue["objects"] == N_OBJ


def test_run_replay_keywords_choose_the_family(objects_trace, tmp_path) -> None:
    result = run_replay(objects_trace, policy="obj-lru", capacity=5, k=2, out=tmp_path / "o", request_log=True)
    assert isinstance(result.parameters["k"], int) and result.parameters["policy"] == "obj-lru"
    table = pq.read_table(tmp_path / "o" / "requests.parquet")
    assert table.num_rows == N_REQ and set(table.column_names) >= {"served", "server", "gain", "user_id"}


def test_run_replay_refuses_a_missing_catalogue(tmp_path) -> None:
    x, *_ = make_objects()
    trace = write_requests(tmp_path / "bare.arrow", x)
    with pytest.raises(UserError, match="need a catalogue"):
        run_replay(trace, ObjectReplayConfig(policy="obj-lru", capacity=5, k=2))


def test_run_replay_refuses_a_catalogue_for_a_query_policy(objects_trace) -> None:
    from simcache.cache import ReplayConfig
    from simcache.replay.run import RunOptions

    with pytest.raises(UserError, match="catalogue is for object policies"):
        run_replay(objects_trace, ReplayConfig(policy="lru", capacity=4), RunOptions(catalogue=objects_trace))


# CLI ---------------------------------------------------------------------------------------------
def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_replay_object_policy_prints_and_writes_the_summary(objects_trace, tmp_path) -> None:
    out = tmp_path / "run"
    res = invoke("replay", objects_trace, "--policy", "obj-sim-lru", "--capacity", 6, "--k", 3,
                 "--fetch-cost", 2, "--rho", 1.5, "--out", out, "--log")
    assert res.exit_code == 0, res.output
    for word in ("NAG", "mean gain", "objects served locally", "objects fetched", "overlap@3", "same user"):
        assert word in res.output
    summary = json.loads((out / "summary.json").read_text())
    config = ObjectReplayConfig(policy="obj-sim-lru", capacity=6, k=3, c_f=2.0, params={"rho": 1.5})
    _, want = direct(objects_trace, config)
    assert summary["cost"]["nag"] == pytest.approx(want.cost["nag"], abs=0)
    assert summary["parameters"]["params"]["rho"] == 1.5
    assert pq.read_table(out / "requests.parquet").num_rows == N_REQ


def test_cli_renamed_policy_option_reaches_the_policy(objects_trace, tmp_path) -> None:
    res = invoke("replay", objects_trace, "--policy", "obj-sim-lru", "--capacity", 6, "--k", 2,
                 "--object-radius", 0.25, "--out", tmp_path / "r")
    assert res.exit_code == 0, res.output
    params = json.loads((tmp_path / "r" / "summary.json").read_text())["parameters"]["params"]
    assert params["radius"] == 0.25


def test_cli_policies_lists_both_families() -> None:
    res = invoke("policies")
    assert res.exit_code == 0, res.output
    for name in OBJECT_POLICIES:
        assert any(line.split()[:2] == [name, "[object"] for line in res.output.splitlines()), name
    assert "  lru " in res.output and "[query cache]" in res.output
    assert "(default: 1.0) [--rho]" in res.output and "[--object-window]" in res.output


def _npy(tmp_path: Path, d: int) -> Path:
    path = tmp_path / f"cat{d}.npy"
    np.save(path, np.random.default_rng(0).standard_normal((N_OBJ, d)).astype(np.float32))
    return path


@pytest.mark.parametrize("case", ["dimension", "k", "missing", "object-option", "query-option", "unknown-param"])
def test_cli_bad_input_is_one_error_line(objects_trace, tmp_path, case) -> None:
    out = tmp_path / "never"
    bare = write_requests(tmp_path / "bare.arrow", make_objects()[0])
    args = {
        "dimension": [objects_trace, "--policy", "obj-lru", "--catalogue", _npy(tmp_path, DIM + 1)],
        "k": [objects_trace, "--policy", "obj-lru", "--k", N_OBJ + 1],
        "missing": [bare, "--policy", "greedy"],
        "object-option": [objects_trace, "--policy", "lru", "--k", 3, "--radius", 0.1],
        "query-option": [objects_trace, "--policy", "obj-lru", "--exclude-self"],
        "unknown-param": [objects_trace, "--policy", "lru", "--rho", 2],
    }[case]
    res = invoke("replay", *args, "--capacity", 5, "--out", out)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists()
    expect = {"dimension": "dimension", "k": "larger than the catalogue", "missing": "catalogue",
              "object-option": "--k apply to object-cache", "query-option": "--exclude-self apply to query-cache",
              "unknown-param": "no parameter rho"}[case]  # fmt: skip
    assert expect in errors[0]


# Sweeps and curves -------------------------------------------------------------------------------
def test_sweep_over_object_policies_equals_single_replays(objects_trace, tmp_path) -> None:
    base = ObjectReplayConfig(policy="obj-lru", capacity=1, c_f=1.5)
    df = run_sweep(objects_trace, policies="obj-lru,greedy", capacities="4,12", ks="1,3", radii="0.5,1",
                   out=tmp_path / "s", jobs=1, config=base, progress=False)  # fmt: skip
    assert list(df.columns) == list(ROW_COLUMNS)
    assert len(df) == 2 * 2 * 2  # the radii do not apply with c_d = distance
    for _, row in df.iterrows():
        cfg = ObjectReplayConfig(policy=row["policy"], capacity=int(row["capacity"]), k=int(row["k"]), c_f=1.5)
        _, want = direct(objects_trace, cfg)
        assert row["nag"] == want.cost["nag"] and row["mean_cost"] == want.cost["mean_cost"]
        assert row["local_share"] == want.objects["local_ratio"]
        assert row["overlap_mean"] == want.quality["overlap_mean"]
    assert (tmp_path / "s" / "object_curves_capacity.png").stat().st_size > 0
    assert (tmp_path / "s" / "object_curves_k.png").stat().st_size > 0
    assert (tmp_path / "s" / "points" / "greedy_C12_k3.json").is_file()


def test_object_sweep_in_worker_processes_equals_one_process(objects_trace, tmp_path) -> None:
    import pickle

    base = ObjectReplayConfig(policy="obj-sim-lru", capacity=1, k=2, params={"rho": 1.3})
    assert pickle.loads(pickle.dumps(base)) == base
    kw = dict(policies="obj-sim-lru,obj-lru", capacities="4,9", config=base, progress=False)
    one = run_sweep(objects_trace, out=tmp_path / "one", jobs=1, **kw)
    two = run_sweep(objects_trace, out=tmp_path / "two", jobs=2, plots=False, **kw)
    cols = ["policy", "capacity", "k", "nag", "mean_cost", "local_share", "overlap_mean", "params"]
    pd.testing.assert_frame_equal(one[cols], two[cols])
    assert set(one["params"]) == {"radius=None;rho=1.3", ""}


def test_sweep_grids_the_radius_of_the_radius_dissimilarity(objects_trace, tmp_path) -> None:
    base = ObjectReplayConfig(policy="obj-lru", capacity=1, k=2, dissimilarity="radius")
    df = run_sweep(objects_trace, policies="obj-lru", capacities="6", radii="0.5,1.5", out=tmp_path / "r",
                   jobs=1, config=base, progress=False)  # fmt: skip
    assert list(df["radius"]) == [0.5, 1.5]
    for _, row in df.iterrows():
        _, want = direct(objects_trace, ObjectReplayConfig(policy="obj-lru", capacity=6, k=2, dissimilarity="radius",
                                                           radius=row["radius"]))  # fmt: skip
        assert row["nag"] == want.cost["nag"]
    assert (tmp_path / "r" / "points" / "obj-lru_C6_k2_r1.5.json").is_file()


def test_mixed_sweep_has_rows_of_both_families(objects_trace, tmp_path) -> None:
    df = run_sweep(objects_trace, policies="lru,obj-lfu", capacities="4,8", radii="0.2,0.4", ks="2",
                   out=tmp_path / "m", jobs=1, progress=False)  # fmt: skip
    assert sorted(df["family"].value_counts().items()) == [("object", 2), ("query", 4)]
    assert df[df["family"] == "query"]["nag"].isna().all()
    assert df[df["family"] == "object"]["hit_ratio"].isna().all()
    names = sorted(p.name for p in (tmp_path / "m").glob("*.png"))
    assert names == ["curves_capacity.png", "curves_radius.png", "object_curves_capacity.png"]


def test_sweep_validates_the_catalogue_before_any_replay(objects_trace, tmp_path) -> None:
    with pytest.raises(UserError, match="larger than the catalogue"):
        run_sweep(objects_trace, policies="obj-lru", capacities=f"4,{N_OBJ + 1}", out=tmp_path / "x", jobs=1,
                  progress=False)  # fmt: skip
    assert not (tmp_path / "x" / "points").exists() or not any((tmp_path / "x" / "points").iterdir())


def test_metrics_of_shows_nag_for_object_rows() -> None:
    obj = pd.DataFrame({"family": ["object"], "nag": [0.3], "overlap_mean": [0.9], "mean_cost": [1.0],
                        "hit_ratio": [None]})  # fmt: skip
    assert [c for c, _ in metrics_of(obj)] == ["nag", "overlap_mean", "mean_cost"]
    query = pd.DataFrame({"hit_ratio": [0.5], "mean_service_cost": [0.2], "nag": [None]})
    assert [c for c, _ in metrics_of(query)] == ["hit_ratio", "mean_service_cost"]


def test_cli_sweep_grids_k(objects_trace, tmp_path) -> None:
    out = tmp_path / "cs"
    res = invoke("sweep", objects_trace, "--policy", "obj-lru,obj-sim-lru", "--capacity", "4,8", "--k", "1,2",
                 "--jobs", 1, "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 8 and set(df["k"]) == {1, 2} and df["nag"].notna().all()
    assert "nag" in res.output.splitlines()[0] or any("nag" in line for line in res.output.splitlines())
    bad = invoke("sweep", objects_trace, "--policy", "lru", "--capacity", "4", "--k", "2", "--out", tmp_path / "b")
    assert bad.exit_code == 2 and "--k apply to object-cache" in bad.output
