"""Checkpoints depend only on data, config and seed: identical trainings give identical bytes,
identities and traces; timings stay in history.json."""

from __future__ import annotations

import json

import pytest

from recvae import checkpoint
from recvae.checkpoint import checkpoint_identity, load_model
from recvae.data import prepare
from recvae.trace.build import build_trace
from recvae.trace.format import read_metadata
from recvae.training import BEST, HISTORY, LAST, TIMING_KEYS, TrainConfig, train

SYNTH = dict(n_users=300, n_items=200, seed=4)


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**dict(epochs=1, hidden_dim=24, latent_dim=8, batch_size=100, device="cpu"), **kw})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two trainings with the same seed and one with another, on the same synthetic data."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIMCACHE_CACHE_DIR", str(root / "cache"))
        data = prepare("synthetic", progress=False, **SYNTH)
        out = {}
        for name, seed in (("a", 0), ("b", 0), ("c", 1)):
            train(data, tiny(seed=seed), root / name, progress=False, log_line=lambda s: None)
            out[name] = root / name
        yield root, out


def test_same_seed_gives_the_same_bytes_and_identity(runs):
    _, d = runs
    for name in (BEST, LAST):
        assert (d["a"] / name).read_bytes() == (d["b"] / name).read_bytes(), name
        assert (d["a"] / name).read_bytes() != (d["c"] / name).read_bytes(), name
    ident = checkpoint_identity(d["a"] / BEST)
    assert len(ident) == 64 and ident == checkpoint_identity(d["b"] / BEST) != checkpoint_identity(d["c"] / BEST)
    assert load_model(d["a"])[1]["identity"] == ident
    # the timings are in the log, not in the checkpoint
    logged = json.loads((d["a"] / HISTORY).read_text())["epochs"]
    assert all(set(TIMING_KEYS) <= set(e) for e in logged)
    assert all(not set(TIMING_KEYS) & set(e) for e in checkpoint.read(d["a"] / LAST)["history"])


def test_identity_is_of_tensors_and_config_not_of_file_bytes(runs, tmp_path):
    _, d = runs
    ckpt = checkpoint.read(d["a"] / BEST)
    ckpt.pop("path")
    checkpoint.save(tmp_path / "copy.pt", {**ckpt, "history": [], "kind": "renamed"})  # other bytes, same model
    assert checkpoint_identity(tmp_path / "copy.pt") == checkpoint_identity(d["a"] / BEST)
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = ckpt["model"][name].clone().contiguous()
    ckpt["model"][name].view(-1)[0] += 1e-6
    assert checkpoint_identity(ckpt) != checkpoint_identity(d["a"] / BEST)
    ckpt = checkpoint.read(d["a"] / BEST)
    ckpt["train_config"] = {**ckpt["train_config"], "device": "cuda", "eval_batch_size": 7}  # not the model
    assert checkpoint_identity(ckpt) == checkpoint_identity(d["a"] / BEST)


def test_same_seed_trainings_give_identical_traces(runs, monkeypatch):
    root, d = runs
    monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(root / "cache"))
    traces = [build_trace("synthetic", model=d[n] / BEST, out=root / f"{n}.arrow", topk=5, progress=False,
                          prepare_params=SYNTH) for n in ("a", "b")]  # fmt: skip
    assert traces[0].read_bytes() == traces[1].read_bytes()
    assert read_metadata(traces[0])["model"]["checkpoint_sha256"] == read_metadata(traces[1])["model"]["checkpoint_sha256"]
