"""`simcache replay`, `simcache sweep` and `simcache policies` through Typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from simcache.cache.costs import CostModel
from simcache.cli.app import app
from simcache.cli.replay import parse_params
from simcache.replay import run_replay

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_replay_prints_table(trace_file):
    res = invoke("replay", trace_file, "--policy", "lru", "--capacity", "20", "--radius", "0.2")
    assert res.exit_code == 0, res.output
    expected = run_replay(trace_file, policy="lru", capacity=20, radius=0.2).summary.counts
    out = res.output
    for label, key in (("hits", "hits"), ("exact hits", "exact_hits"), ("approximate hits", "approx_hits"),
                       ("misses", "misses")):
        line = next(x for x in out.splitlines() if x.strip().startswith(label + " "))
        assert f"{expected[key]:,}" in line
        if key != "requests":
            assert f"{expected[key] / 400:.4f}" in line
    assert "overlap@10" in out and "validation" in out and "users" in out


def test_replay_out_and_log(tmp_path, trace_file):
    out = tmp_path / "o"
    res = invoke("replay", trace_file, "-C", "10", "-r", "0.2", "--policy", "rnd-lru", "--acceptance", "exp",
                 "--scale", "0.1", "--cost", "linear", "--retrieval-cost", "2", "--seed", "5",
                 "--window", "40", "--out", out, "--log")
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    p = summary["parameters"]
    assert p["policy"] == "rnd-lru" and p["capacity"] == 10 and p["radius"] == 0.2 and p["seed"] == 5
    assert p["params"] == {"acceptance": "exp", "scale": 0.1}
    assert p["cost"]["kind"] == "linear" and p["cost"]["retrieval_cost"] == 2.0
    assert p["window"] == 40 and len(summary["windows"]["hit_ratio"]) == 10
    assert (out / "requests.parquet").is_file() and (out / "per_user.parquet").is_file()
    assert "wrote" in res.output


def test_replay_generic_param_option(trace_file):
    res = invoke("replay", trace_file, "-C", "10", "--policy", "qlru-dc", "--param", "q=0.25", "-r", "0.1")
    assert res.exit_code == 0, res.output
    assert "q=0.25" in res.output


@pytest.mark.parametrize(
    "args,message",
    [
        (("-C", "0"), "capacity must be a positive integer"),
        (("-C", "5", "--radius", "-1"), "radius must be a finite number >= 0"),
        (("-C", "5", "--policy", "belady"), "unknown policy 'belady'"),
        (("-C", "5", "--policy", "lru", "--q", "0.5"), "has no parameter q"),
        (("-C", "5", "--param", "novalue"), "--param expects NAME=VALUE"),
        (("-C", "5", "--cost", "cubic"), "unknown cost model 'cubic'"),
        (("-C", "5", "--log"), "--log needs --out"),
        (("-C", "5", "--metric", "hamming"), "unknown metric"),
    ],
)
def test_replay_bad_arguments_exit_2(trace_file, args, message):
    res = invoke("replay", trace_file, *args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output


def test_replay_input_errors_exit_2(tmp_path):
    res = invoke("replay", tmp_path / "missing.arrow", "-C", "5")
    assert res.exit_code == 2 and "no such file" in res.output
    pq.write_table(pa.table({"v": pa.array([[1.0, 2.0], [3.0]])}), tmp_path / "ragged.parquet")
    res = invoke("replay", tmp_path / "ragged.parquet", "-C", "5")
    assert res.exit_code == 2 and "different lengths" in res.output
    v = np.zeros((4, 3), np.float32)
    v[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", v)
    res = invoke("replay", tmp_path / "nan.npy", "-C", "5")
    assert res.exit_code == 2 and "request 2 contains NaN" in res.output


def test_replay_missing_capacity_is_a_usage_error(trace_file):
    res = invoke("replay", trace_file)
    assert res.exit_code == 2


def test_sweep_command(tmp_path, trace_file):
    out = tmp_path / "sw"
    res = invoke("sweep", trace_file, "--policy", "lru,fifo", "--capacity", "5:20:x2", "--radius", "0.2",
                 "--jobs", "1", "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    df = pd_read(out / "results.csv")
    assert sorted(set(df["capacity"])) == [5, 10, 20] and len(df) == 6
    assert (out / "curves_capacity.png").is_file()
    assert "hit_ratio" in res.output and "results.csv" in res.output


def test_sweep_bad_grid_exit_2(tmp_path, trace_file):
    res = invoke("sweep", trace_file, "--capacity", "10:1:1", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "STOP is below START" in res.output


def test_policies_lists_parameters():
    res = invoke("policies")
    assert res.exit_code == 0
    from simcache.cache import POLICIES

    for name, cls in POLICIES.items():
        assert name in res.output
        for p in cls.params:
            assert f"{p.name}:" in res.output


@pytest.mark.parametrize("command", ["replay", "sweep"])
def test_every_declared_policy_parameter_is_an_option(command):
    """The CLI's policy options are derived from the registry: one per declared parameter."""
    from simcache.cache import POLICIES

    res = invoke(command, "--help")
    assert res.exit_code == 0
    for cls in POLICIES.values():
        for p in cls.params:
            assert f"--{p.name.replace('_', '-')}" in res.output, (cls.name, p.name)
    assert parse_params({"q": 0.5, "scale": None}, ["some-name=3"]) == {"q": 0.5, "some_name": "3"}


def test_radius_inf_is_accepted(trace_file):
    """A pure cost model (qLRU-DeltaC with r = inf) runs from the command line as in the API."""
    res = invoke("replay", trace_file, "-C", "10", "--policy", "qlru-dc", "--radius", "inf", "--cost", "linear",
                 "--q", "0.5")
    assert res.exit_code == 0, res.output
    assert run_replay(trace_file, policy="qlru-dc", capacity=10, radius=float("inf"),
                      cost=CostModel("linear"), params={"q": 0.5}).summary.counts["hits"] > 0


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)


def test_exclude_self_option(trace_file):
    res = invoke("replay", trace_file, "-C", "20", "-r", "0.3", "--exclude-self")
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.strip().startswith("same-user hits"))
    assert line.split()[2] == "0"


def test_replay_out_is_one_run_even_when_killed(tmp_path, trace_file):
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o"
    assert invoke("replay", trace_file, "-C", "5", "--out", out, "--log").exit_code == 0  # an earlier run
    res = invoke("replay", trace_file, "-C", "7", "--out", out)
    assert res.exit_code == 2 and "already holds a previous result; pass --overwrite" in res.output

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-c", "from simcache.cli.app import main; main()", "replay", str(trace_file), "-C", "7",
           "--out", str(out), "--overwrite"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.Random(0).uniform(1.0, 5.0))  # somewhere between start-up and the end
    proc.kill()
    proc.wait()
    caps = json.loads((out / "summary.json").read_text())["parameters"]["capacity"]
    names = sorted(p.name for p in out.iterdir())
    assert (caps, names) in [(5, ["per_user.parquet", "requests.parquet", "summary.json"]),
                             (7, ["per_user.parquet", "summary.json"])]  # one run's files, never a mix

    res = invoke("replay", trace_file, "-C", "9", "--out", out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["per_user.parquet", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["parameters"]["capacity"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "trace.arrow"]  # no lock, no leftovers
