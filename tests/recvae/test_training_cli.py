"""`simcache train` and `simcache evaluate` through Typer's CliRunner, on a small synthetic dataset."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from simcache.cli.app import app

runner = CliRunner()
SYN = ["synthetic", "--n-users", "400", "--n-items", "120", "--data-seed", "1"]


def run(*args: str):
    return runner.invoke(app, list(args))


def test_train_resume_and_evaluate(tmp_path):
    out = tmp_path / "run"
    res = run("train", *SYN, "--epochs", "2", "--device", "cpu", "--out", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    assert "epoch   1/2" in res.output and "epoch   2/2" in res.output and "val NDCG@100" in res.output
    assert "best epoch" in res.output and "popularity" in res.output and "ndcg@100" in res.output
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file() and (out / "history.json").is_file()

    # the same command again does not silently overwrite the run
    res = run("train", *SYN, "--epochs", "2", "--device", "cpu", "--out", str(out), "--no-progress")
    assert res.exit_code == 2 and "already holds a finished run" in res.output

    # --resume with more epochs continues from epoch 3; other settings come from the run
    res = run("train", *SYN, "--epochs", "3", "--out", str(out), "--resume", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "epoch   3/3" in res.output and "epoch   1/" not in res.output
    hist = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2, 3] and hist["finished"]

    res = run("evaluate", str(out / "best.pt"), "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["dataset"] == "synthetic" and doc["split"] == "test" and len(doc["sha256"]) == 64
    recvae, pop = doc["results"]["RecVAE"], doc["results"]["popularity"]
    assert set(recvae["metrics"]) >= {"ndcg@100", "recall@20", "recall@50"}
    assert recvae["n_evaluated"] + recvae["n_excluded"] == recvae["n_users"]
    assert 0.0 <= pop["metrics"]["ndcg@100"]["mean"] <= 1.0

    res = run("evaluate", str(out), "--split", "validation", "--no-baseline", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "validation metrics" in res.output and "popularity" not in res.output
    val = hist["epochs"][hist["best_epoch"] - 1]["validation"]["ndcg@100"]
    assert f"{val:.4f}" in res.output  # the same number training selected the best state by


def test_default_run_directory_is_the_model_cache_and_is_reused():
    args = ("train", *SYN, "--epochs", "1", "--device", "cpu", "--no-progress")
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "epoch   1/1" in first.output
    again = run(*args)
    assert again.exit_code == 0, again.output
    assert "reusing the finished model" in again.output and "epoch   1/1" not in again.output
    best = [ln for ln in first.output.splitlines() if ln.startswith("best epoch")]
    assert best and best == [ln for ln in again.output.splitlines() if ln.startswith("best epoch")]


def test_bad_inputs_are_one_line_errors(tmp_path):
    res = run("evaluate", str(tmp_path / "nope.pt"))
    assert res.exit_code == 2 and "no such checkpoint" in res.output
    res = run("train", *SYN, "--epochs", "0", "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and "epochs must be >= 1" in res.output
    res = run("train", *SYN, "--out", str(tmp_path / "y"), "--resume")
    assert res.exit_code == 2 and "nothing to resume" in res.output
    if not torch.cuda.is_available():
        res = run("train", *SYN, "--device", "cuda", "--out", str(tmp_path / "z"))
        assert res.exit_code == 2 and "CUDA is not available" in res.output


def test_resume_of_a_best_checkpoint_is_one_error_line(tmp_path):
    out = tmp_path / "run"
    res = run("train", *SYN, "--epochs", "1", "--device", "cpu", "--out", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    (out / "last.pt").write_bytes((out / "best.pt").read_bytes())
    res = run("train", *SYN, "--epochs", "2", "--out", str(out), "--resume", "--no-progress")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1].startswith(f"error: {out / 'last.pt'} is not a resumable checkpoint")
    res = run("train", *SYN, "--epochs", "1", "--device", "cpu", "--out", str(out), "--overwrite", "--no-progress")
    assert res.exit_code == 0 and "removed the previous run" in res.output
