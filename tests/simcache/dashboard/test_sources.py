"""What ``simcache dashboard`` finds under its input paths, and how it refuses bad ones."""

from __future__ import annotations

import pytest

from recvae.errors import UserError
from simcache.dashboard.sources import detect


def test_demo_report_folder_yields_its_trace_sweep_points_and_analysis(outputs) -> None:
    found = detect([outputs.report])
    assert found.traces == [outputs.trace]
    assert found.sweeps == [outputs.sweep]
    assert found.analyses == [outputs.analysis]
    points = sorted((outputs.sweep / "points").glob("*.json"))
    assert [r.summary for r in found.runs] == points and len(points) == 3 * 3 * 2
    assert all(r.log is None for r in found.runs)
    assert found.inputs == [outputs.report]


def test_replay_folder_with_log_and_files_given_directly(outputs) -> None:
    found = detect([outputs.run_lru, outputs.run_fifo / "requests.parquet", outputs.sweep / "results.csv",
                    outputs.analysis / "norms.json", outputs.trace_b])
    assert [(r.summary.parent, r.log) for r in found.runs[:2]] == [
        (outputs.run_lru, outputs.run_lru / "requests.parquet"),
        (outputs.run_fifo, outputs.run_fifo / "requests.parquet")]
    assert found.sweeps == [outputs.sweep]
    assert found.analyses == [outputs.analysis]
    assert found.traces == [outputs.trace_b]


def test_a_path_given_twice_is_listed_once(outputs) -> None:
    found = detect([outputs.report, outputs.report, outputs.trace])
    assert found.traces == [outputs.trace] and found.sweeps == [outputs.sweep]
    assert found.describe().startswith("1 trace, 1 sweep, 18 replay runs, 1 analysis folder")


def test_sweep_without_points_and_nag_table_is_a_sweep(outputs) -> None:
    found = detect([outputs.nag_sweep])
    assert found.sweeps == [outputs.nag_sweep] and found.runs == []


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "no such file or folder"),
    (lambda d: d, "holds no trace, sweep, replay run or analysis"),
    (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "not a trace"),
])
def test_bad_paths_are_one_line_user_errors_naming_the_path(tmp_path, make, message) -> None:
    path = make(tmp_path)
    with pytest.raises(UserError, match=message) as err:
        detect([path])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_no_paths_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no input path"):
        detect([])


def test_a_summary_json_that_is_not_a_replay_stands_for_its_folder(outputs) -> None:
    # the demo report's own summary.json has no replay parameters: the report folder is searched
    found = detect([outputs.report / "summary.json"])
    assert found.traces == [outputs.trace] and found.sweeps == [outputs.sweep]
    assert all(r.summary.parent.name == "points" for r in found.runs)
