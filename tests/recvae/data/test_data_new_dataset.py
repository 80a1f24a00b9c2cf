"""The CONTRIBUTING.md dataset recipe, exercised: one DatasetSpec entry registered by this test
module (a local-only dataset in an existing raw format) is listed, validated, ingested and
prepared with the Mult-VAE protocol with no other change."""

from __future__ import annotations

import numpy as np
import pytest

from recvae.data import REGISTRY, DatasetSpec, get_dataset, prepare
from simcache.cli.app import app

SPEC = DatasetSpec(name="toy-tab", title="A test dataset in the ML-100K layout", format="movielens-tab",
                   archive_name="toy-tab.zip", member="u.data", threshold=3.5, min_items_per_user=5, heldout_users=4,
                   notes="local files only")  # fmt: skip


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.setitem(REGISTRY, SPEC.name, SPEC)
    rng = np.random.default_rng(0)
    lines = []
    for user in range(1, 41):
        for item in rng.choice(np.arange(1, 61), size=12, replace=False):
            lines.append(f"{user}\t{item}\t{rng.integers(3, 6)}\t{880000000 + len(lines)}")
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_registered_dataset_is_listed_and_prepared(toy, runner):
    assert get_dataset("toy-tab") is SPEC
    res = runner.invoke(app, ["data", "list"])
    assert res.exit_code == 0 and "toy-tab" in res.output
    data = prepare("toy-tab", toy)
    assert len(data.val_users) == 4 and len(data.test_users) == 4
    assert data.train.shape[0] == 40 - 8 and data.n_items > 0
    res = runner.invoke(app, ["data", "info", "toy-tab", "--data-dir", str(toy)])
    assert res.exit_code == 0, res.output


def test_data_commands_find_a_dataset_fetched_before(toy, runner, monkeypatch):
    """After `data fetch --data-dir`, prepare/info work without --data-dir and never download."""
    import recvae.data.interactions as interactions

    assert runner.invoke(app, ["data", "fetch", "toy-tab", "--data-dir", str(toy)]).exit_code == 0

    def no_download(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(interactions, "fetch", no_download)
    for cmd in (["data", "prepare", "toy-tab"], ["data", "info", "toy-tab"]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0, res.output
