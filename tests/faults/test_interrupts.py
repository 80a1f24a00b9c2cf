"""Killed runs (SIGKILL, SIGINT at seeded random points) then rerun: the same result as an
uninterrupted run, and no file of two runs mixed.

``sweep`` is covered where it lives: ``tests/simcache/replay/test_sweep_resume.py`` kills the
driver (SIGKILL and SIGINT, after a random point) in a folder and checks that ``--resume`` gives
the uninterrupted table. Here: ``train`` (resume, bit-exact checkpoints), ``build-trace`` (the
rerun's trace byte-identical) and ``analyze all`` (killed in a folder holding a run of another
seed: the old run stays whole, the rerun leaves exactly the files of one complete run; after a
Ctrl-C nothing of the interrupted run is left at all).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from recvae import checkpoint
from recvae.outputs import find_leftovers
from recvae.training import BEST, LAST
from simcache.cli.app import app
from simcache.trace.io import write_requests
from tests.faults.conftest import REPO
from tests.faults.interrupt_jobs import trace_job, train_job

SIGNALS = [signal.SIGKILL, signal.SIGINT]
RNG = random.Random(21)  # the kill points: random, but the same on every run of the suite


def child(*args: str, stdout: int | None = subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, *args], env=env, stdout=stdout, stderr=subprocess.DEVNULL, text=True)


def job(*args: str) -> subprocess.Popen:
    return child("-c", "from tests.faults.interrupt_jobs import main; main()", *args)


def stop(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` and wait for the end (a SIGINT that is caught must still end the job)."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, "the job ended before it could be interrupted"


def tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else (tensors_equal(x, y) if isinstance(x, dict) else x == y)
        for x, y in ((a[k], b[k]) for k in a)
    )


# ----------------------------------------------------------------------------------------------
# train: killed after a random epoch (and a random fraction of the next), resumed
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_job(tmp_path_factory.mktemp("straight") / "run").parent


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_train_killed_and_resumed_equals_an_uninterrupted_run(sig, trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    epochs, delay = RNG.randint(1, 2), RNG.uniform(0.0, 0.3)
    proc = job("train", str(run))
    seen = 0
    while seen < epochs:
        line = proc.stdout.readline()
        assert line, "the training ended before it could be killed"
        seen += line.startswith("epoch")
    time.sleep(delay)
    stop(proc, sig)
    assert (run / LAST).is_file() and not (run / LAST).with_suffix(".pt.tmp").exists()
    train_job(run, resume=True)
    for name in (LAST, BEST):
        a, b = checkpoint.read(trained / name), checkpoint.read(run / name)
        assert (a["epoch"], a["best_epoch"]) == (b["epoch"], b["best_epoch"]), name
        assert tensors_equal(a["model"], b["model"]), name
        assert [e["validation"] for e in a["history"]] == [e["validation"] for e in b["history"]]
    a, b = checkpoint.read(trained / LAST), checkpoint.read(run / LAST)
    assert tensors_equal(a["training"]["opt_encoder"], b["training"]["opt_encoder"])
    assert not [lo for lo in find_leftovers(run) if lo.path.parent == run]


# ----------------------------------------------------------------------------------------------
# build-trace: killed while writing, rebuilt into the same path
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_trace(tmp_path_factory) -> bytes:
    return trace_job(tmp_path_factory.mktemp("trace") / "t.arrow").read_bytes()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_build_trace_killed_then_rebuilt_is_byte_identical(sig, reference_trace: bytes, tmp_path: Path) -> None:
    out = tmp_path / "t.arrow"
    proc = job("trace", str(out))
    assert proc.stdout.readline().startswith("writing")
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".t.arrow.*.tmp")):  # the writer has started
        assert proc.poll() is None and time.monotonic() < deadline, "the writer never started"
        time.sleep(0.02)
    time.sleep(RNG.uniform(0.0, 0.5))
    stop(proc, sig)
    assert not out.exists()  # never a half-written trace under its final name
    trace_job(out)
    assert out.read_bytes() == reference_trace


# ----------------------------------------------------------------------------------------------
# analyze all: killed in a folder that holds a complete run of another seed
# ----------------------------------------------------------------------------------------------
FAST = ["--sample", "200", "--map-sample", "100", "--gmm-sample", "150", "--max-components", "3", "--no-umap",
        "--threads", "1", "--angle-pairs", "500", "--drift-pairs", "500", "--drift-queries", "50", "--centers", "4",
        "--no-baseline-maps", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    users = np.repeat([f"u{u}" for u in range(60)], 3).astype(object)
    x = (rng.normal(size=(60, 6))[np.repeat(np.arange(60), 3)] + 0.1 * rng.normal(size=(180, 6))).astype(np.float32)
    seq = np.tile(np.arange(3), 60).astype(np.int64)
    order = np.argsort(seq, kind="stable")
    return write_requests(tmp_path_factory.mktemp("small") / "s.arrow", x[order], user_id=users[order],
                          timestamp=np.arange(180, dtype=np.int64), seq=seq[order])  # fmt: skip


def analyze_all(trace: Path, out: Path, seed: int, *extra: str) -> None:
    r = CliRunner().invoke(app, ["analyze", "all", str(trace), "--out", str(out), "--seed", str(seed), *FAST, *extra])
    assert r.exit_code == 0, r.output


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def numbers(folder: Path) -> dict[str, dict]:
    """Every JSON of a report without its timings (measurements, not results)."""
    out = {}
    for p in sorted(folder.glob("*.json")):
        res = json.loads(p.read_text())
        res.pop("seconds", None)
        out[p.name] = res
    return out


@pytest.fixture(scope="module")
def earlier(small_trace: Path, tmp_path_factory) -> Path:
    """A complete report of seed 0: the folder the killed run (seed 5) replaces."""
    out = tmp_path_factory.mktemp("seed0") / "report"
    analyze_all(small_trace, out, 0)
    return out


def kill_analyze_all(sig: int, trace: Path, out: Path) -> None:
    """Start ``analyze all --seed 5 --overwrite`` into ``out`` and send ``sig`` once a random
    number (at most half) of its files are written (into its temporary folder)."""
    at = RNG.randint(1, max(1, len(snapshot(out)) // 2))  # with half the work left, the signal always comes in time
    args = ["analyze", "all", str(trace), "--out", str(out), "--seed", "5", *FAST, "--overwrite"]
    proc = child("-c", "from simcache.cli.app import main; main()", *args, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while sum(1 for p in out.parent.glob(f".{out.name}.*.tmp/*") if not p.name.startswith(".")) < at:
        assert proc.poll() is None, "analyze all ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stop(proc, sig)


def test_analyze_all_killed_in_an_earlier_report_then_rerun(small_trace: Path, earlier: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    shutil.copytree(earlier, out)
    before = snapshot(out)
    kill_analyze_all(signal.SIGKILL, small_trace, out)
    assert snapshot(out) == before  # the earlier run, whole: nothing of the killed one mixed in
    analyze_all(small_trace, out, 5, "--overwrite")
    assert sorted(snapshot(out)) == sorted(before)  # every file of a complete run, no other
    assert all(res["options"]["seed"] == 5 for res in numbers(out).values())
    assert "report.md" in snapshot(out)
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # the killed run's temporary folder and lock gone


def test_analyze_all_interrupted_leaves_the_earlier_report_and_nothing_else(small_trace: Path, earlier: Path,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    """Ctrl-C: the run removes its own temporary folder and lock on the way out."""
    out = tmp_path / "report"
    shutil.copytree(earlier, out)
    before = snapshot(out)
    kill_analyze_all(signal.SIGINT, small_trace, out)
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
