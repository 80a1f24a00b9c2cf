"""`simcache demo` end to end at a tiny size, and its radius/capacity choices."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from simcache.cli.app import app
from simcache.demo import DEMO_OBJECT_POLICIES, choose_capacities, choose_object_capacities, choose_radii


def test_choose_radii_uses_step_quartiles_and_drops_zero() -> None:
    assert choose_radii({"q0.25": 0.5, "q0.5": 1.0, "q0.75": 2.0, "q0.95": 9.0}) == [0.5, 1.0, 2.0]
    assert choose_radii({"q0.25": 0.0, "q0.5": 0.123456, "q0.75": 0.123456}) == [0.123]


def test_choose_radii_cover_both_regimes() -> None:
    steps = {"q0.25": 0.5, "q0.5": 1.0, "q0.75": 2.0}
    other = {"q0.05": 3.0, "q0.25": 4.0, "q0.5": 8.0}
    assert choose_radii(steps, other) == [0.5, 1.0, 2.0, 3.0, 4.0]


def test_choose_radii_falls_back_to_other_user_distances() -> None:
    other = {"q0.05": 0.2, "q0.25": 0.4, "q0.5": 0.8, "q0.75": 1.6}
    assert choose_radii({}, other) == [0.2, 0.4, 0.8]


def test_choose_radii_refuses_traces_without_distances() -> None:
    from recvae.errors import UserError

    with pytest.raises(UserError, match="no positive"):
        choose_radii({}, {})


def test_choose_capacities_are_fractions_of_users_within_trace() -> None:
    assert choose_capacities(2000, 10_000) == [20, 100, 400]
    assert choose_capacities(10, 5) == [1, 2]


def test_choose_object_capacities_are_fractions_of_the_catalogue() -> None:
    assert choose_object_capacities(1000, 10) == [20, 50, 100, 200]
    assert choose_object_capacities(100, 10) == [10, 20]
    assert choose_object_capacities(8, 10) == [8]


def test_demo_writes_complete_report(tmp_path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["demo", "--out", str(out), "--users", "300", "--items", "300", "--epochs", "1", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'README.md'}" in result.output
    readme = (out / "README.md").read_text()
    for heading in ("## Model quality", "## Trace", "## Similarity caching", "## Object caching", "## Embedding space"):
        assert heading in readme
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["metrics"]) == {"RecVAE", "popularity"}
    assert len(summary["sweep"]) == 5 * len(summary["radii"]) * len(summary["capacities"])
    for row in summary["sweep"]:
        assert row["hits"] + row["misses"] == row["requests"] == summary["trace"]["rows"]
    # the radii reach both regimes: hits by a user's own entries and by other users' entries
    assert any(r["same_user_hit_ratio"] > 0 for r in summary["sweep"])
    assert any(r["other_user_hit_ratio"] > 0 for r in summary["sweep"])
    # the defaults of rnd-lru and qlru-dc show their own character, not SIM-LRU's results
    lru = {(r["radius"], r["capacity"]): r["hits"] for r in summary["sweep"] if r["policy"] == "lru"}
    for policy in ("rnd-lru", "qlru-dc"):
        rows = [r for r in summary["sweep"] if r["policy"] == policy]
        assert any(r["hits"] != lru[(r["radius"], r["capacity"])] for r in rows), policy
    # the object-cache view: every object policy at every object capacity, over the trace's catalogue
    setup = summary["object_setup"]
    objects = summary["object_sweep"]
    assert len(objects) == len(DEMO_OBJECT_POLICIES) * len(setup["capacities"])
    assert {r["policy"] for r in objects} == set(DEMO_OBJECT_POLICIES)
    for row in objects:
        assert row["family"] == "object" and row["k"] == setup["k"] and row["requests"] == summary["trace"]["rows"]
        assert 0 <= row["nag"] <= 1 and 0 <= row["overlap_mean"] <= 1 and 0 <= row["local_share"] <= 1
    # GREEDY's content at a larger C contains its content at a smaller one: NAG never decreases
    greedy = [r["nag"] for r in sorted(objects, key=lambda r: r["capacity"]) if r["policy"] == "greedy"]
    assert greedy == sorted(greedy) and greedy[-1] > 0
    assert "object caches at capacity" in result.output
    for path in ("trace.arrow", "trace.catalogue.arrow", "object-sweep/results.csv", "model/best.pt",
                 "sweep/results.csv", "analysis/report.md", "analysis/norms.png"):
        assert (out / path).stat().st_size > 0, path
    # the sweeps point at the report's own trace, not at the temporary folder the demo built in
    for sweep in ("sweep", "object-sweep"):
        assert json.loads((out / sweep / "sweep.json").read_text())["trace"] == "../trace.arrow"
    # every figure the README links exists
    for line in readme.splitlines():
        if line.startswith("!["):
            assert (out / line.split("(", 1)[1].rstrip(")")).is_file(), line


def test_demo_refuses_non_empty_output_folder(tmp_path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_demo_run_twice_trains_once(tmp_path) -> None:
    """The second demo with the same settings reuses the cached model (bit-identical checkpoint)."""
    args = ["--users", "200", "--items", "150", "--epochs", "1", "--jobs", "1"]
    first = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "a"), *args])
    second = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "b"), *args])
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "reusing the finished model" not in first.output and "reusing the finished model" in second.output
    a, b = (tmp_path / d / "model" / "best.pt" for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


def test_demo_overwrite_refuses_a_folder_of_other_files(tmp_path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--overwrite"])
    assert result.exit_code == 2 and "keep.txt" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_a_failing_stage_leaves_no_report_folder(tmp_path, monkeypatch) -> None:
    """The report is built in a temporary folder: a failure leaves neither it nor a half report."""
    import recvae.data
    from recvae.errors import UserError

    def broken(*args, **kwargs):
        raise UserError("the data cannot be prepared")

    monkeypatch.setattr(recvae.data, "prepare", broken)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "report")])
    assert result.exit_code == 2 and "cannot be prepared" in result.output
    assert list(tmp_path.iterdir()) == []
