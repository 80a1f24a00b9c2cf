"""``simcache data list|fetch|prepare|info`` end to end."""

from __future__ import annotations

from pathlib import Path

from recvae.data import DATASET_NAMES, PreparedData
from simcache.cli.app import app


def _ok(runner, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_list(runner):
    out = _ok(runner, ["data", "list"])
    for name in DATASET_NAMES:
        assert name in out
    assert "ml-20m.zip" in out and "local files only" in out


def test_synthetic_fetch_prepare_info(runner, cache):
    opts = ["--n-users", "600", "--n-items", "300", "--seed", "3"]
    out = _ok(runner, ["data", "fetch", "synthetic", *opts])
    assert out.startswith("synthetic: ") and "600 users" in out
    assert Path(out.strip().splitlines()[-1]).is_file()
    out = _ok(runner, ["data", "prepare", "synthetic", *opts, "--heldout-users", "50"])
    assert "50 validation and 50 test users" in out
    d = Path(out.strip().splitlines()[-1])
    data = PreparedData.load(d)
    assert data.manifest["params"]["heldout_users"] == 50 and len(data.test_users) == 50
    assert data.manifest["generator"]["n_users"] == 600
    info = _ok(runner, ["data", "info", "synthetic", *opts, "--heldout-users", "50"])
    for needle in ("raw ", "600 users", "positive (value > 3.5)", "after filter", "sparsity", "time span", "UTC",
                   "50 validation", str(d)):
        assert needle in info, needle


def test_ml100k_info(runner, shared_data):
    info = _ok(runner, ["data", "info", "ml100k", "--data-dir", str(shared_data / "ml-100k")])
    assert "100,000 events, 943 users, 1,682 items, sparsity 93.695%" in info
    assert "55,361 events, 938 users" in info
    assert "1997-09-20 .. 1998-04-22 UTC" in info
    assert "752 train / 93 validation / 93 test users" in info


def test_msd_info_says_no_timestamps(runner, shared_data):
    info = _ok(runner, ["data", "info", "msd", "--data-dir", str(shared_data / "msd-sample"),
                        "--min-users-per-item", "3", "--min-items-per-user", "5", "--heldout-users", "40"])
    assert "no timestamps" in info and "positive (all rows)" in info


def test_prepare_force_recomputes(runner, cache):
    opts = ["--n-users", "300", "--n-items", "100"]
    d1 = _ok(runner, ["data", "prepare", "synthetic", *opts]).strip().splitlines()[-1]
    mtime = (Path(d1) / "manifest.json").stat().st_mtime_ns
    d2 = _ok(runner, ["data", "prepare", "synthetic", *opts]).strip().splitlines()[-1]
    assert d1 == d2 and (Path(d2) / "manifest.json").stat().st_mtime_ns == mtime
    d3 = _ok(runner, ["data", "prepare", "synthetic", *opts, "--force"]).strip().splitlines()[-1]
    assert d3 == d1 and (Path(d3) / "manifest.json").stat().st_mtime_ns != mtime


def test_synthetic_options_are_generator_fields():
    """The data commands' "synthetic only" options each name a field of the generator's config."""
    from dataclasses import fields

    import typer

    from recvae.data import SyntheticConfig

    names = {f.name for f in fields(SyntheticConfig)}
    data = typer.main.get_command(app).commands["data"]
    for command in ("fetch", "prepare", "info"):
        synthetic = [p.name for p in data.commands[command].params if (p.help or "").startswith("synthetic only")]
        assert synthetic, command
        assert set(synthetic) <= names, (command, set(synthetic) - names)
