"""Sweeps survive interruptions: resume after a killed driver equals an uninterrupted sweep, corrupt
point files are recomputed, a reused folder is refused or replaced whole, failures are summarised."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from typer.testing import CliRunner

from recvae.errors import UserError
from recvae.outputs import FolderLock, lock_path
from simcache.cli.app import app
from simcache.replay.sweep import TIMING_COLUMNS, SweepFailed, run_sweep
from simcache.trace.io import write_requests

from .conftest import make_columns

GRID = {"policies": "lru,fifo", "capacities": "20,80", "radii": "0.05,0.1"}
CLI_GRID = ["--policy", "lru,fifo", "--capacity", "20,80", "--radius", "0.05,0.1"]
NAMES = sorted(f"{p}_C{c}_r{r}.json" for p in ("lru", "fifo") for c in (20, 80) for r in ("0.05", "0.1"))
FILES = sorted(["results.csv", "results.parquet", "sweep.json", "curves_capacity.png", "curves_radius.png",
                *(f"points/{n}" for n in NAMES)])


def numbers(df: pd.DataFrame) -> pd.DataFrame:
    """The table without its timing columns (measurements, not results)."""
    return df.drop(columns=list(TIMING_COLUMNS))


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> Path:
    c = make_columns(n=3000, d=16, seed=1)
    return write_requests(tmp_path_factory.mktemp("trace") / "t.arrow", c["vectors"], timestamp=c["timestamp"],
                          user_id=c["user_id"], split=c["split"], topk=c["topk"])


@pytest.fixture(scope="module")
def reference(trace, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """An uninterrupted sweep (seed 3)."""
    out = tmp_path_factory.mktemp("ref") / "sweep"
    return out, run_sweep(trace, **GRID, out=out, jobs=1, seed=3, progress=False)


def check_resumed(out: Path, trace: Path, reference: tuple[Path, pd.DataFrame], done: list[str]) -> None:
    """Resuming the interrupted sweep in ``out`` gives the uninterrupted one, and only it."""
    said: list[str] = []
    df = run_sweep(trace, **GRID, out=out, jobs=1, seed=3, resume=True, progress=False, echo=said.append)
    ref_dir, ref = reference
    pd.testing.assert_frame_equal(numbers(df), numbers(ref))
    pd.testing.assert_frame_equal(numbers(pd.read_csv(out / "results.csv")),
                                  numbers(pd.read_csv(ref_dir / "results.csv")))
    assert f"{len(done)} already done" in " ".join(said)
    assert files(out) == FILES
    assert all(json.loads((out / "points" / n).read_text())["parameters"]["seed"] == 3 for n in NAMES)
    assert json.loads((out / "sweep.json").read_text())["status"] == "complete"
    assert not lock_path(out).exists()


KILL_AFTER = """
import os, signal, sys
import simcache.replay.sweep as sweep
real, written, after = sweep.write_point, [], int(sys.argv[1])
def write_then_die(path, doc):
    real(path, doc)
    written.append(path)
    if len(written) == after:
        os.kill(os.getpid(), signal.SIGKILL)  # the driver dies right after this point file
sweep.write_point = write_then_die
from simcache.cli.app import main
sys.argv = ["simcache", *sys.argv[2:]]
main()
"""


def test_resume_after_sigkill_of_the_driver(tmp_path, trace, reference):
    out = tmp_path / "sweep"
    run_sweep(trace, capacities="5", out=out, jobs=1, progress=False)  # an earlier, different run
    after = random.Random(0).randint(1, len(NAMES) - 1)  # somewhere in the middle
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    driver = subprocess.Popen([sys.executable, "-c", KILL_AFTER, str(after), "sweep", str(trace), *CLI_GRID, "--seed",
                               "3", "--jobs", "2", "--out", str(out), "--overwrite", "--no-progress", "--no-plots"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        proc = psutil.Process(driver.pid)
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            with contextlib.suppress(psutil.Error):
                workers += [c for c in proc.children(recursive=True) if c not in workers]
            time.sleep(0.01)
        assert driver.wait(30) == -signal.SIGKILL
    finally:
        driver.kill()
    done = sorted(p.name for p in (out / "points").glob("*.json"))
    assert len(done) == after, done
    assert not (out / "results.csv").exists()  # neither the earlier run's table nor a partial one
    assert len(workers) >= 2
    _, alive = psutil.wait_procs(workers, timeout=10)  # the two workers and the resource tracker
    assert alive == [], f"still running after their driver was killed: {[p.pid for p in alive]}"
    assert lock_path(out).exists()  # stale: taken over by the resumed run
    check_resumed(out, trace, reference, done)


def test_resume_after_sigint_of_the_driver(tmp_path, trace, reference, monkeypatch):
    import simcache.replay.sweep as sweep

    out = tmp_path / "sweep"
    after = random.Random(1).randint(1, len(NAMES) - 1)  # somewhere in the middle
    real = sweep.write_point
    written = []

    def write_then_interrupt(path, doc):
        real(path, doc)
        written.append(path)
        if len(written) == after:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C reaches the driver here

    monkeypatch.setattr(sweep, "write_point", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(trace, **GRID, out=out, jobs=1, seed=3, progress=False)
    monkeypatch.setattr(sweep, "write_point", real)
    done = sorted(p.name for p in (out / "points").glob("*.json"))
    assert len(done) == after and files(out) == sorted(["sweep.json", *(f"points/{n}" for n in done)])
    assert json.loads((out / "sweep.json").read_text())["status"] == "running"
    assert not lock_path(out).exists()  # released on the way out
    check_resumed(out, trace, reference, done)


def test_corrupt_or_altered_points_are_recomputed(tmp_path, trace, reference):
    ref_dir, ref = reference
    out = tmp_path / "sweep"
    shutil.copytree(ref_dir, out)
    (out / "points" / NAMES[0]).write_text((out / "points" / NAMES[0]).read_text()[:100])  # truncated
    doc = json.loads((out / "points" / NAMES[1]).read_text())
    doc["row"]["hits"] += 1  # a plausible but wrong number
    (out / "points" / NAMES[1]).write_text(json.dumps(doc))
    before = {n: (out / "points" / n).stat().st_mtime_ns for n in NAMES[2:]}
    said: list[str] = []
    df = run_sweep(trace, **GRID, out=out, jobs=1, seed=3, resume=True, progress=False, echo=said.append)
    pd.testing.assert_frame_equal(numbers(df), numbers(ref))
    assert f"recomputing 2 point file(s) that are corrupt or were computed differently: {NAMES[0]}, {NAMES[1]}" in said
    assert {n: (out / "points" / n).stat().st_mtime_ns for n in NAMES[2:]} == before  # trusted, not recomputed


def test_reused_folder_is_refused_without_resume_or_overwrite(tmp_path, trace, reference):
    out = tmp_path / "sweep"
    shutil.copytree(reference[0], out)
    with pytest.raises(UserError, match=r"already holds a finished sweep \(8 point file\(s\)\); pass --resume .* or --overwrite"):
        run_sweep(trace, **GRID, out=out, jobs=1, seed=3, progress=False)
    with pytest.raises(UserError, match=r"cannot resume the sweep in .*: replay.seed is 3 there, 4 now; pass --overwrite"):
        run_sweep(trace, **GRID, out=out, jobs=1, seed=4, resume=True, progress=False)
    c = make_columns(n=3000, d=16, seed=1)  # the same requests in another file
    other = write_requests(tmp_path / "other.arrow", c["vectors"], timestamp=c["timestamp"], user_id=c["user_id"],
                           split=c["split"], topk=c["topk"], metadata={"note": "another file"})
    with pytest.raises(UserError, match="computed on another trace file"):
        run_sweep(other, **GRID, out=out, jobs=1, seed=3, resume=True, progress=False)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"does not write \(notes.txt\)"):
        run_sweep(trace, **GRID, out=out, jobs=1, seed=3, overwrite=True, progress=False)
    assert files(out) == sorted([*FILES, "notes.txt"])  # nothing removed


def test_overwrite_and_a_smaller_grid_leave_one_sweep(tmp_path, trace, reference):
    out = tmp_path / "sweep"
    shutil.copytree(reference[0], out)
    run_sweep(trace, policies="lru", capacities="20", radii="0.05,0.1", out=out, jobs=1, seed=3, resume=True,
              plots=False, progress=False)
    assert files(out) == ["points/lru_C20_r0.05.json", "points/lru_C20_r0.1.json", "results.csv",
                          "results.parquet", "sweep.json"]
    df = run_sweep(trace, policies="fifo", capacities="5", out=out, jobs=1, seed=0, overwrite=True, progress=False)
    assert files(out) == ["points/fifo_C5_r0.json", "results.csv", "results.parquet", "sweep.json"]
    assert df["policy"].tolist() == ["fifo"]


def test_concurrent_sweep_is_refused(tmp_path, trace):
    out = tmp_path / "sweep"
    with FolderLock(out, "simcache sweep"):
        res = CliRunner().invoke(app, ["sweep", str(trace), "--capacity", "5", "--out", str(out), "--jobs", "1"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith(f"error: {out} is in use by another run (simcache sweep, pid")
    assert not (out / "points").exists()


def test_failed_points_are_summarised_and_retried_by_resume(tmp_path, trace, monkeypatch):
    import simcache.replay.points as points

    real = points.run_replay

    def fragile(requests, config, options):
        if config.capacity == 20 and config.policy == "fifo":
            raise ValueError(f"cannot replay capacity {config.capacity}")
        return real(requests, config, options)

    monkeypatch.setattr(points, "run_replay", fragile)
    out = tmp_path / "sweep"
    args = ["sweep", str(trace), "--policy", "lru,fifo", "--capacity", "20,80", "--out", str(out), "--jobs", "1",
            "--no-plots"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "1 point(s) failed (rerun with --resume to retry them):" in res.output
    assert "  fifo_C20_r0: ValueError: cannot replay capacity 20" in res.output
    assert len(pd.read_csv(out / "results.csv")) == 3
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["status"] == "incomplete" and list(meta["failures"]) == ["fifo_C20_r0"]
    with pytest.raises(SweepFailed, match="1 of 4 points failed"):
        run_sweep(trace, policies="lru,fifo", capacities="20,80", out=out, jobs=1, resume=True, progress=False)

    monkeypatch.setattr(points, "run_replay", real)
    res = CliRunner().invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out / "results.csv")) == 4
    assert json.loads((out / "sweep.json").read_text())["status"] == "complete"
