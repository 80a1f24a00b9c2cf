"""``simcache analyze``: files written, subsampling reported, user errors as one line with exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from simcache.analysis import ANALYSIS_NAMES
from simcache.cli.app import app
from simcache.trace.io import write_requests

runner = CliRunner()


@pytest.fixture
def trace(tmp_path):
    """150 users in 3 groups, 4 embeddings each (600 rows, d = 10), time-sorted like a real trace."""
    rng = np.random.default_rng(0)
    n_users, per, d = 150, 4, 10
    centres = 6.0 * rng.standard_normal((3, d))
    start = centres[np.arange(n_users) % 3] + rng.standard_normal((n_users, d))
    x = np.repeat(start, per, axis=0) + np.cumsum(
        0.2 * rng.standard_normal((n_users, per, d)), axis=1).reshape(-1, d)
    users = np.repeat([f"u{u}" for u in range(n_users)], per).astype(object)
    seq = np.tile(np.arange(per), n_users)
    ts = seq * 1000 + np.repeat(np.arange(n_users), per)
    order = np.lexsort((seq, ts))
    path = tmp_path / "trace.arrow"
    write_requests(path, x[order].astype(np.float32), timestamp=ts[order].astype(np.int64), user_id=users[order],
                   seq=seq[order], n_items=(10 * seq[order] + 50))
    return path


FAST = ["--map-sample", "150", "--gmm-sample", "300", "--max-components", "4", "--no-umap", "--threads", "1",
        "--angle-pairs", "2000", "--drift-pairs", "2000", "--drift-queries", "100", "--centers", "5"]


def test_all_writes_every_figure_json_and_report(trace, tmp_path, assert_png):
    out = tmp_path / "out"
    r = runner.invoke(app, ["analyze", "all", str(trace), "--out", str(out), "--all-rows", "--sample", "400", *FAST])
    assert r.exit_code == 0, r.output
    assert "subsampled: analysing 400 of 600 rows" in r.output
    assert f"wrote {out / 'norms.png'}" in r.output and ".tmp" not in r.output  # the final folder, not the temporary one
    report = (out / "report.md").read_text()
    for name in ANALYSIS_NAMES:
        assert_png(out / f"{name}.png")
        res = json.loads((out / f"{name}.json").read_text())
        assert res["analysis"] == name
        assert res["input"]["subsampled"] is True and res["input"]["rows_analysed"] == 400
        assert res["options"]["seed"] == 0
        assert f"![{name}]({name}.png)" in report
    assert "**subsampled**" in report
    drift = json.loads((out / "drift.json").read_text())
    assert drift["consecutive_pairs"] == 150 * 3  # drift uses every row, not the subsample
    gmm = json.loads((out / "gmm.json").read_text())
    assert gmm["chosen_k"] == 3
    mapped = json.loads((out / "map.json").read_text())
    assert mapped["colours"]["components"] == 3 and mapped["umap_note"] == "UMAP not requested"


def test_latest_per_user_and_single_analysis(trace, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["analyze", "norms", str(trace), "--out", str(out), "--latest-per-user"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "norms.json").read_text())
    assert res["input"]["rows_selected"] == 150 and res["input"]["subsampled"] is False
    assert res["n"] == 150
    assert sorted(p.name for p in out.iterdir()) == ["norms.json", "norms.png"]


def test_npy_input_and_user_errors(tmp_path):
    m = tmp_path / "m.npy"
    np.save(m, np.random.default_rng(0).standard_normal((200, 6)).astype(np.float32))
    out = tmp_path / "out"
    r = runner.invoke(app, ["analyze", "knn-radius", str(m), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "knn-radius.json").read_text())["dim"] == 6

    for args, message in [
        (["analyze", "norms", str(m), "--out", str(out), "--latest-per-user"], "user_id column"),
        (["analyze", "drift", str(m), "--out", str(out)], "drift needs"),
        (["analyze", "knn-radius", str(m), "--out", str(out), "--k-min", "9", "--k-max", "5"], "--k-min"),
        (["analyze", "norms", str(tmp_path / "missing.npy"), "--out", str(out)], "no such file"),
    ]:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output and "Traceback" not in r.output


def test_help_lists_every_analysis():
    r = runner.invoke(app, ["analyze", "--help"])
    assert r.exit_code == 0
    for name in (*ANALYSIS_NAMES, "all"):
        assert name in r.output


def test_default_rows_are_each_users_latest_and_say_so(trace, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["analyze", "norms", str(trace), "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "norms.json").read_text())
    assert res["input"]["latest_per_user"] is True and res["input"]["rows_selected"] == res["n"] == 150
    assert res["input"]["row_selection"].startswith("latest embedding of each user, 150 rows (the default")
    assert "rows: latest embedding of each user" in r.stderr
    r = runner.invoke(app, ["analyze", "norms", str(trace), "--out", str(out), "--all-rows"])
    res = json.loads((out / "norms.json").read_text())
    assert res["n"] == 600 and res["input"]["row_selection"].startswith("every row, 600 rows (--all-rows")
    r = runner.invoke(app, ["analyze", "norms", str(trace), "--out", str(out), "--all-rows", "--latest-per-user"])
    assert r.exit_code == 2 and "exclude each other" in r.output


def test_input_without_users_uses_every_row(tmp_path):
    m = tmp_path / "m.npy"
    np.save(m, np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32))
    r = runner.invoke(app, ["analyze", "norms", str(m), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "out" / "norms.json").read_text())["input"]
    assert info["latest_per_user"] is False and "(the input has no user ids)" in info["row_selection"]


def test_default_output_folder_is_its_own(trace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["analyze", "norms", str(trace)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "simcache-report-analyze-trace" / "norms.json").is_file()
    assert not (tmp_path / "simcache-report").exists()  # the demo's default folder stays free
    assert r.stdout.strip() == "simcache-report-analyze-trace"


def test_progress_bars_when_asked(trace, tmp_path):
    args = ["analyze", "gmm", str(trace), "--out", str(tmp_path / "out"), "--max-components", "4"]
    r = runner.invoke(app, [*args, "--progress"])
    assert r.exit_code == 0, r.output
    assert "gmm data" in r.stderr
    r = runner.invoke(app, args)  # not a terminal: no bars
    assert "gmm data" not in r.stderr
