"""Training: configuration, learning beats popularity, checkpoints, exact resume, reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recvae import checkpoint
from recvae.checkpoint import load_model
from recvae.errors import UserError
from recvae.evaluation import evaluate_model, evaluate_popularity
from recvae.planted import make_planted
from recvae.training import BEST, HISTORY, LAST, TrainConfig, model_dir, train, train_or_reuse


@pytest.fixture(scope="module")
def planted():
    return make_planted(1000, 300, n_clusters=8, seed=0)


def tiny(**kw) -> TrainConfig:
    """A small architecture that trains in about a second on 1,000 x 300 data."""
    base = dict(epochs=2, hidden_dim=32, latent_dim=16, batch_size=100, lr=2e-3, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def quiet(data, config, out, **kw) -> Path:
    return train(data, config, out, progress=False, log_line=lambda s: None, **kw)


# ---- configuration ----


def test_dataset_defaults_and_overrides():
    assert (TrainConfig.for_dataset("ml20m").gamma, TrainConfig.for_dataset("ml20m").epochs) == (0.005, 50)
    assert (TrainConfig.for_dataset("netflix").gamma, TrainConfig.for_dataset("netflix").epochs) == (0.0035, 50)
    assert (TrainConfig.for_dataset("msd").gamma, TrainConfig.for_dataset("msd").epochs) == (0.01, 100)
    c = TrainConfig.for_dataset("ml20m")
    assert (c.batch_size, c.lr, c.encoder_passes, c.decoder_passes, c.encoder_dropout) == (500, 5e-4, 3, 1, 0.5)
    assert (c.hidden_dim, c.latent_dim) == (600, 200)
    c = TrainConfig.for_dataset("msd", epochs=3, gamma=None, lr=1e-3)
    assert (c.epochs, c.gamma, c.lr) == (3, 0.01, 1e-3)
    assert TrainConfig.for_dataset("some-new-set").gamma == 0.005
    with pytest.raises(UserError, match="unknown training option"):
        TrainConfig.for_dataset("ml20m", learning_rate=1.0)
    for bad in (dict(epochs=0), dict(lr=-1.0), dict(batch_size=0), dict(gamma=-0.1), dict(device="tpu")):
        with pytest.raises(UserError):
            TrainConfig(**bad)
    assert TrainConfig.from_dict(c.to_dict()) == c


# ---- learning ----


def test_short_run_beats_popularity_by_a_clear_margin(planted, tmp_path):
    best = quiet(planted, tiny(epochs=6), tmp_path)
    model, info = load_model(best, expect=planted)
    ours = evaluate_model(model, planted, "test")["metrics"]
    pop = evaluate_popularity(planted, "test")["metrics"]
    assert ours["ndcg@100"]["mean"] > pop["ndcg@100"]["mean"] + 0.08  # ~0.45 vs 0.29 over seeds 0-2
    assert ours["recall@20"]["mean"] > pop["recall@20"]["mean"] + 0.08
    hist = json.loads((tmp_path / HISTORY).read_text())
    assert hist["finished"] and len(hist["epochs"]) == 6
    ndcg = [e["validation"]["ndcg@100"] for e in hist["epochs"]]
    assert ndcg[-1] > ndcg[0]
    assert info["best_score"] == pytest.approx(max(ndcg))
    assert info["best_epoch"] == 1 + int(np.argmax(ndcg))


def test_ml100k_beats_popularity(shared_data, tmp_path):
    if not (shared_data / "ml-100k" / "u.data").is_file():
        pytest.skip("ml-100k not in ../shared/data")
    from recvae.data import prepare

    data = prepare("ml100k", data_dir=shared_data / "ml-100k")
    best = quiet(data, TrainConfig.for_dataset("ml100k", epochs=10, lr=2e-3, hidden_dim=200, latent_dim=64, device="cpu"), tmp_path)
    model, _ = load_model(best, expect=data)
    ours = evaluate_model(model, data, "test")["metrics"]["ndcg@100"]["mean"]
    pop = evaluate_popularity(data, "test")["metrics"]["ndcg@100"]["mean"]
    assert ours > pop + 0.05, (ours, pop)  # ~0.37 vs 0.26 over seeds 0-2


# ---- checkpoints ----


def test_checkpoint_contents_and_vocabulary_check(planted, tmp_path):
    best = quiet(planted, tiny(epochs=1), tmp_path)
    assert best == tmp_path / BEST and (tmp_path / LAST).is_file()
    model, info = load_model(best, expect=planted)
    assert not model.training
    assert info["vocabulary_fingerprint"] == planted.vocabulary_fingerprint()
    assert info["manifest"] == planted.manifest and info["dataset"] == "planted"
    assert info["config"]["hidden_dim"] == 32 and info["epoch"] == 1 and info["best_epoch"] == 1
    assert len(info["sha256"]) == 64 and info["items"] == planted.items.tolist()
    # a run directory works as well as its best.pt
    assert load_model(tmp_path)[1]["sha256"] == info["sha256"]

    other = make_planted(1000, 301, seed=0)
    with pytest.raises(UserError, match="vocabular"):
        load_model(best, expect=other)
    shuffled = make_planted(1000, 300, seed=0)
    shuffled.items = shuffled.items[::-1].copy()  # same size, other vocabulary
    with pytest.raises(UserError, match="vocabular"):
        load_model(best, expect=shuffled)


def test_unreadable_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_model(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(UserError, match="not a RecVAE checkpoint"):
        load_model(foreign)


# ---- resume ----


def _tensors_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_resume_gives_the_same_result_as_an_uninterrupted_run(planted, tmp_path):
    cfg = tiny(epochs=3)
    straight, split = tmp_path / "straight", tmp_path / "split"
    quiet(planted, cfg, straight)
    quiet(planted, tiny(epochs=1), split)  # "killed" after epoch 1 ...
    quiet(planted, cfg, split, resume=True)  # ... and resumed for the rest
    for name in (LAST, BEST):
        a, b = checkpoint.read(straight / name), checkpoint.read(split / name)
        assert a["epoch"] == b["epoch"] and a["best_epoch"] == b["best_epoch"]
        assert _tensors_equal(a["model"], b["model"]), name
        assert [e["validation"] for e in a["history"]] == [e["validation"] for e in b["history"]]
    a, b = checkpoint.read(straight / LAST), checkpoint.read(split / LAST)
    assert _tensors_equal(a["training"]["opt_encoder"], b["training"]["opt_encoder"])
    assert _tensors_equal(a["training"]["opt_decoder"], b["training"]["opt_decoder"])
    assert _tensors_equal(a["training"]["rng"], b["training"]["rng"])


def test_prior_encoder_is_refreshed_after_every_encoder_phase(planted, tmp_path):
    # the decoder phase leaves the encoder alone, so at the end of an epoch the frozen copy the
    # prior uses equals the live encoder exactly
    quiet(planted, tiny(epochs=1), tmp_path)
    state = checkpoint.read(tmp_path / LAST)["model"]
    enc = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    old = {k[len("prior.encoder_old."):]: v for k, v in state.items() if k.startswith("prior.encoder_old.")}
    assert enc.keys() == old.keys() and all(torch.equal(enc[k], old[k]) for k in enc)


def test_resume_refuses_other_settings_or_data_and_train_refuses_to_overwrite(planted, tmp_path):
    quiet(planted, tiny(epochs=1), tmp_path)
    with pytest.raises(UserError, match="already holds a finished run"):
        quiet(planted, tiny(epochs=1), tmp_path)
    with pytest.raises(UserError, match=r"settings differ \(gamma"):
        quiet(planted, tiny(epochs=2, gamma=0.01), tmp_path, resume=True)
    with pytest.raises(UserError, match="vocabular"):
        quiet(make_planted(1000, 290, seed=0), tiny(epochs=2), tmp_path, resume=True)
    with pytest.raises(UserError, match="nothing to resume"):
        quiet(planted, tiny(epochs=2), tmp_path / "empty", resume=True)
    # resuming a finished run with the same epochs is a no-op returning the best checkpoint
    assert quiet(planted, tiny(epochs=1), tmp_path, resume=True) == tmp_path / BEST


def test_train_or_reuse_trains_once(planted, monkeypatch):
    cfg = tiny(epochs=1)
    first = train_or_reuse(planted, cfg, progress=False)
    assert first.parent == model_dir(planted, cfg) and first.is_file()
    stamp = first.stat().st_mtime_ns
    import recvae.training as training

    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("retrained a finished model"))
    assert train_or_reuse(planted, cfg, progress=False) == first
    assert first.stat().st_mtime_ns == stamp
    # another config is another model
    assert model_dir(planted, tiny(epochs=2)) != model_dir(planted, cfg)
    # the device does not change the model's identity
    assert model_dir(planted, tiny(epochs=1, device="auto")) == model_dir(planted, cfg)


def test_divergence_is_reported_not_trained_through(planted, tmp_path, monkeypatch):
    from recvae.model import RecVAE

    real = RecVAE.forward

    def poisoned(self, x, gamma=0.005, dropout_rate=0.5):
        logits, mll, kl = real(self, x, gamma, dropout_rate)
        return logits, mll * float("nan"), kl

    monkeypatch.setattr(RecVAE, "forward", poisoned)
    with pytest.raises(UserError, match="diverged in epoch 1"):
        quiet(planted, tiny(epochs=1), tmp_path)


def test_empty_training_rows_and_no_validation_users_are_handled(tmp_path):
    import scipy.sparse as sp

    data = make_planted(300, 60, seed=2)
    train_m = data.train.tolil()
    train_m[:5, :] = 0  # a few users with no items at all
    data.train = sp.csr_matrix(train_m)
    data.val_te = sp.csr_matrix(data.val_te.shape, dtype=np.float32)  # no held-out item anywhere
    best = quiet(data, tiny(epochs=2, batch_size=64), tmp_path)
    _, info = load_model(best)
    assert info["best_epoch"] == 2 and info["best_score"] is None
    hist = json.loads((tmp_path / HISTORY).read_text())
    assert all(np.isfinite(e["encoder_loss"]) and e["validation"] is None for e in hist["epochs"])


# ---- one run per folder ----


def test_an_existing_run_folder_needs_overwrite(planted, tmp_path):
    quiet(planted, tiny(epochs=1), tmp_path)
    (tmp_path / LAST).unlink()  # a finished run without its last.pt is still a run
    with pytest.raises(UserError, match=r"already holds a finished run .* pass --overwrite to train again"):
        quiet(planted, tiny(epochs=1), tmp_path)
    (tmp_path / HISTORY).unlink()
    with pytest.raises(UserError, match=r"already holds files \(best.pt\); pass --overwrite"):
        quiet(planted, tiny(epochs=1), tmp_path)
    old = (tmp_path / BEST).read_bytes()
    quiet(planted, tiny(epochs=1, seed=1), tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [BEST, HISTORY, LAST]
    assert (tmp_path / BEST).read_bytes() != old
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"does not write \(notes.txt\)"):
        quiet(planted, tiny(epochs=1), tmp_path, overwrite=True)
    assert (tmp_path / BEST).is_file()  # nothing removed


def test_resume_needs_a_resumable_checkpoint(planted, tmp_path):
    quiet(planted, tiny(epochs=1), tmp_path)
    (tmp_path / LAST).write_bytes((tmp_path / BEST).read_bytes())  # a best checkpoint copied to last.pt
    with pytest.raises(UserError, match=r"last.pt is not a resumable checkpoint \(kind 'best'"):
        quiet(planted, tiny(epochs=2), tmp_path, resume=True)


def test_a_second_training_into_a_locked_folder_is_refused(planted, tmp_path):
    from recvae.outputs import FolderLock

    with FolderLock(tmp_path / "run", "simcache train"):
        with pytest.raises(UserError, match="in use by another run"):
            quiet(planted, tiny(epochs=1), tmp_path / "run")


def test_one_progress_bar_per_epoch(planted, tmp_path, monkeypatch):
    """A bar per epoch over all its passes (not one per one-batch pass)."""
    import recvae.training as training

    bars = []
    real = training.tqdm

    def counting(*args, **kwargs):
        bar = real(*args, **kwargs)
        bars.append(kwargs.get("total"))
        return bar

    monkeypatch.setattr(training, "tqdm", counting)
    cfg = tiny()
    train(planted, cfg, tmp_path / "run", progress=True, log_line=lambda s: None)
    n_batches = -(-planted.train.shape[0] // cfg.batch_size)
    per_epoch = n_batches * (cfg.encoder_passes + cfg.decoder_passes)
    assert bars == [per_epoch] * cfg.epochs
