"""`simcache train --model`, `simcache evaluate` and `simcache models` through Typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from simcache.cli.app import app

runner = CliRunner()
SYN = ["synthetic", "--n-users", "300", "--n-items", "80", "--data-seed", "1"]


def run(*args: str):
    return runner.invoke(app, list(args))


def test_train_resume_evaluate_an_explicit_model(tmp_path):
    out = tmp_path / "als"
    res = run("train", *SYN, "--model", "als", "--epochs", "1", "--param", "factors=3", "--device", "cpu",
              "--out", str(out), "--no-progress")
    assert res.exit_code == 0, res.output
    assert "epoch   1/1" in res.output and "RMSE" in res.output and "global mean" in res.output
    res = run("train", *SYN, "--model", "als", "--epochs", "2", "--out", str(out), "--resume", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "epoch   2/2" in res.output and "epoch   1/" not in res.output
    res = run("evaluate", str(out), "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["model_type"] == "als" and doc["epoch"] == 2 and set(doc["rmse"]) == {"als", "biases", "global mean"}
    assert set(doc["results"]) == {"als", "popularity"}


def test_train_a_binary_model_with_params(tmp_path):
    res = run("train", *SYN, "--model", "multvae", "--epochs", "1", "--param", "hidden_dim=16",
              "--param", "latent_dim=4", "--batch-size", "50", "--out", str(tmp_path / "m"), "--no-progress", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    assert doc["model_type"] == "multvae" and "multvae" in doc["test"] and doc["rmse"] is None


def test_bad_input_is_one_error_line_and_exit_2(tmp_path):
    cases = [
        (("train", *SYN, "--model", "nope"), "unknown model 'nope'"),
        (("train", *SYN, "--model", "multvae", "--gamma", "0.1"), "--gamma is RecVAE's"),
        (("train", *SYN, "--model", "multvae", "--param", "width=3"), "unknown option(s) width"),
        (("train", *SYN, "--model", "multvae", "--param", "hidden_dim=wide"), "cannot read 'wide' as int"),
        (("train", *SYN, "--model", "als", "--param", "factors"), "--param expects key=value"),
        (("train", *SYN, "--model", "metadata"), "needs user and item metadata"),
        (("train", *SYN, "--param", "lr=1"), "RecVAE takes"),
    ]
    for args, message in cases:
        res = run(*args)
        assert res.exit_code == 2, (args, res.output)
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert lines[-1].startswith("error: ") and message in lines[-1], (args, res.output)


def test_a_checkpoint_of_one_model_given_as_another(tmp_path):
    out = tmp_path / "b"
    assert run("train", *SYN, "--model", "biases", "--epochs", "1", "--out", str(out), "--no-progress").exit_code == 0
    res = run("evaluate", str(out), "--model-type", "mf")
    assert res.exit_code == 2 and "holds a 'biases' model, not a 'mf' model" in res.output
    res = run("train", *SYN, "--model", "als", "--epochs", "2", "--out", str(out), "--resume")
    assert res.exit_code == 2 and "holds a 'biases' model, not a 'als' model" in res.output


def test_models_lists_the_registry():
    res = run("models")
    assert res.exit_code == 0
    for name in ("recvae", "multvae", "biases", "als", "implicit-als", "mf", "autorec", "metadata"):
        assert f"{name}:" in res.output
