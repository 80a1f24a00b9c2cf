"""The analyses registry drives the CLI, ``analyze all``, the report and these tests.

A throwaway analysis registered from this module must show up in ``simcache analyze`` (its own
subcommand and option), run in ``analyze all`` and get a report section, with no other file
touched. The same ``analyze all`` run feeds the contract every registered analysis must meet.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from simcache.analysis import registry
from simcache.analysis.inputs import latest_per_user
from simcache.analysis.plotting import legend_below, new_figure, save_figure
from simcache.analysis.run import plot_result
from simcache.analysis.spec import Analysis, Option
from simcache.cli import analyze as analyze_cli
from simcache.cli.app import app
from simcache.cli.common import CommandGroup
from simcache.trace.io import load_requests, write_requests

REAL = registry.names()
FAST = ["--map-sample", "150", "--gmm-sample", "300", "--max-components", "4", "--no-umap", "--threads", "1",
        "--angle-pairs", "2000", "--drift-pairs", "2000", "--drift-queries", "100", "--centers", "5"]

TOY_SCALE = Option("toy_scale", float, 2.0, "toy: factor applied to the mean norm.", min=0.0)


def _toy_compute(ctx):
    x = ctx.points
    return {"analysis": "toy", "n": int(len(x)), "dim": int(x.shape[1]),
            "scaled_mean_norm": ctx.options.toy_scale * float(np.linalg.norm(x, axis=1).mean()), "sets": {}}


def _toy_plot(result, path):
    fig, axes = new_figure()
    axes[0, 0].plot([0.0, 1.0], [0.0, result["scaled_mean_norm"]], label="toy line")
    legend_below(axes[0, 0])
    save_figure(fig, path)
    return fig


TOY = Analysis("toy", "Toy: the mean norm times a factor (registered by a test).", "Toy analysis",
               _toy_compute, _toy_plot, lambda r: [f"Scaled mean norm: {r['scaled_mean_norm']:.6f}."],
               options=(TOY_SCALE,))


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory):
    """90 users in 3 groups, 3 embeddings each (270 rows, d = 8), time-sorted."""
    rng = np.random.default_rng(5)
    n_users, per, d = 90, 3, 8
    centres = 6.0 * rng.standard_normal((3, d))
    start = centres[np.arange(n_users) % 3] + rng.standard_normal((n_users, d))
    x = np.repeat(start, per, axis=0) + np.cumsum(0.2 * rng.standard_normal((n_users, per, d)), axis=1).reshape(-1, d)
    users = np.repeat([f"u{u}" for u in range(n_users)], per).astype(object)
    seq = np.tile(np.arange(per), n_users)
    ts = seq * 1000 + np.repeat(np.arange(n_users), per)
    order = np.lexsort((seq, ts))
    path = tmp_path_factory.mktemp("trace") / "small.arrow"
    write_requests(path, x[order].astype(np.float32), timestamp=ts[order].astype(np.int64), user_id=users[order],
                   seq=seq[order])
    return path


@pytest.fixture(scope="module")
def run_with_toy(small_trace, tmp_path_factory):
    """``analyze all`` through a CLI built while the toy analysis is registered."""
    out = tmp_path_factory.mktemp("all") / "out"
    with registry.registered(TOY):
        root = CommandGroup(name="simcache")
        root.callback()(lambda: None)
        analyze_cli.register(root)
        runner = CliRunner()
        shown = {"group": runner.invoke(root, ["analyze", "--help"], env={"COLUMNS": "200"}),
                 "toy": runner.invoke(root, ["analyze", "toy", "--help"], env={"COLUMNS": "200"}),
                 "all_help": runner.invoke(root, ["analyze", "all", "--help"], env={"COLUMNS": "200"})}
        shown["all"] = runner.invoke(root, ["analyze", "all", str(small_trace), "--out", str(out), "--toy-scale", "3",
                                            *FAST])
    return out, shown


def test_toy_analysis_appears_in_the_cli(run_with_toy):
    _, shown = run_with_toy
    assert "toy" in shown["group"].output and "the mean norm times a factor" in shown["group"].output
    assert "--toy-scale" in shown["toy"].output and "factor applied to the mean norm" in shown["toy"].output
    assert "--toy-scale" in shown["all_help"].output and "toy" in shown["all_help"].output


def test_toy_analysis_runs_in_all_and_lands_in_the_report(run_with_toy, small_trace, assert_png):
    out, shown = run_with_toy
    assert shown["all"].exit_code == 0, shown["all"].output
    res = json.loads((out / "toy.json").read_text())
    req = load_requests(small_trace, sort=True)
    latest = np.asarray(req.vectors, dtype=np.float64)[latest_per_user(req.user_id, req.seq)]
    assert res["options"]["toy_scale"] == 3.0
    assert res["scaled_mean_norm"] == pytest.approx(3.0 * np.linalg.norm(latest, axis=1).mean(), rel=1e-6)
    assert_png(out / "toy.png")
    report = (out / "report.md").read_text()
    assert "## Toy analysis (`toy`)" in report
    assert "- rows: latest embedding of each user, 90 rows (the default" in report
    shown_value = float(re.search(r"Scaled mean norm: ([0-9.]+)\.", report).group(1))
    assert shown_value == pytest.approx(res["scaled_mean_norm"], rel=1e-6)
    assert report.index("(`drift`)") < report.index("(`toy`)")  # registry order


def test_registration_ends_with_the_block():
    assert "toy" not in registry.names()
    with pytest.raises(TypeError, match="toy_scale"):
        registry.AnalysisOptions(toy_scale=1.0)


def test_registry_refuses_a_taken_name_and_a_conflicting_option():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Analysis("norms", "x", "x", _toy_compute, _toy_plot, lambda r: []))
    clash = Option("bins", int, 7, "another default for an option norms declares")
    with pytest.raises(ValueError, match="bins"):
        registry.register(Analysis("toy2", "x", "x", _toy_compute, _toy_plot, lambda r: [], options=(clash,)))
    assert "toy2" not in registry.names()


@pytest.mark.parametrize("name", REAL)
class TestEveryAnalysis:
    """What every registered analysis gives: JSON with its options, a PNG whose legends name every line,
    a report section, and its options on the command line."""

    def test_files_and_options(self, name, run_with_toy, assert_png):
        out, _ = run_with_toy
        res = json.loads((out / f"{name}.json").read_text())
        assert res["analysis"] == name and not res.get("skipped")
        for opt in registry.get(name).options:
            assert opt.name in res["options"]
        assert res["input"]["latest_per_user"] is True and res["input"]["rows_selected"] == 90
        assert_png(out / f"{name}.png")

    def test_legend_lists_every_line(self, name, run_with_toy, tmp_path, legend_lists_every_line):
        out, _ = run_with_toy
        res = json.loads((out / f"{name}.json").read_text())  # figures are drawn from the JSON alone
        legend_lists_every_line(plot_result(res, tmp_path / f"{name}.png"))

    def test_report_section(self, name, run_with_toy):
        out, _ = run_with_toy
        report = (out / "report.md").read_text()
        assert f"## {registry.get(name).title} (`{name}`)" in report and f"![{name}]({name}.png)" in report

    def test_cli_lists_its_options(self, name):
        for command in (name, "all"):
            r = CliRunner().invoke(app, ["analyze", command, "--help"], env={"COLUMNS": "200"})
            assert r.exit_code == 0
            for opt in registry.get(name).options:
                assert opt.cli_flag in r.output, (command, opt.cli_flag)


def test_the_legend_check_catches_an_unnamed_line(legend_lists_every_line):
    fig, axes = new_figure()
    axes[0, 0].plot([0, 1], [0, 1], label="named")
    axes[0, 0].plot([0, 1], [1, 0])
    legend_below(axes[0, 0])
    with pytest.raises(AssertionError, match="without a legend entry"):
        legend_lists_every_line(fig)
