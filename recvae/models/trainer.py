"""The training loop every model of :mod:`recvae.models` shares: epochs, validation, checkpoints, resume.

After each epoch (:meth:`~recvae.models.base.Recommender.train_epoch`) the model is scored on the
validation users (NDCG@100, fold-in -> held-out, the shared protocol); the best state is
``best.pt``, the newest ``last.pt`` (with the optimiser states and every RNG), and
``history.json`` lists the epochs. ``resume=True`` continues a run exactly: on the CPU, 2 epochs
in one go and 1 + 1 resumed give identical parameters (tested for every model).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from recvae.checkpoint import check_vocabulary, dataset_record
from recvae.errors import UserError
from recvae.models import checkpoint
from recvae.models.base import ModelConfig, Recommender, model_device
from recvae.models.checkpoint import BEST, HISTORY, LAST
from recvae.models.data import ModelData
from recvae.storage import atomic_path, cache_dir

log = logging.getLogger(__name__)
SELECT_BY = "ndcg@100"


def _seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _rng_state(rng: np.random.Generator, device: torch.device) -> dict:
    legacy = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "generator": rng.bit_generator.state,
        "numpy": [legacy[0], legacy[1].tolist(), *legacy[2:]],
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict, rng: np.random.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["generator"]
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_resume(stored: dict, given: ModelConfig, path: Path) -> None:
    now = given.to_dict()
    diff = [k for k in now if k not in ("epochs", "device", "eval_batch_size") and stored.get(k) != now[k]]
    if diff:
        detail = ", ".join(f"{k}: {stored.get(k)} in the checkpoint, {now[k]} now" for k in diff)
        raise UserError(f"cannot resume {path}: the settings differ ({detail})")


def run_dir(data: ModelData, name: str, config: ModelConfig) -> Path:
    """The model-cache folder for this model, data and config (where build-trace can find it)."""
    key = {
        "model": name,
        "vocabulary": data.prepared.vocabulary_fingerprint(),
        "train_shape": list(data.prepared.train.shape),
        "train_nnz": int(data.prepared.train.nnz),
        "config": config.identity(),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{data.name.replace('/', '_')}-{name}-{digest}"


def read_history(out_dir: str | Path) -> dict | None:
    p = Path(out_dir) / HISTORY
    return json.loads(p.read_text()) if p.is_file() else None


def train_model(
    name: str,
    data: ModelData,
    config: ModelConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log_line: Callable[[str], None] | None = None,
) -> Path:
    """Train model ``name`` on ``data``; returns the path of ``best.pt`` in ``out_dir``.

    Without ``resume`` an existing run in ``out_dir`` is a UserError; with it, the run continues
    (``epochs`` may grow; other settings must match).
    """
    from recvae.models.evaluation import evaluate_topn
    from recvae.models.registry import get_model

    cls = get_model(name)
    if not isinstance(config, cls.Config):
        raise TypeError(f"config must be a {cls.Config.__name__}")
    config.validate()
    for need in cls.needs:
        (data.require_ratings if need == "ratings" else data.require_side)(name)
    out = Path(out_dir)
    last_path, best_path = out / LAST, out / BEST
    device = model_device(cls, config.device)
    emit = log_line or (print if progress else log.info)

    stored = None
    if resume:
        if not last_path.is_file():
            raise UserError(f"nothing to resume: {last_path} does not exist")
        stored = checkpoint.read(last_path, expect_type=name)
        check_vocabulary(stored, data.prepared)
        _check_resume(stored["config"], config, last_path)
    elif last_path.exists():
        hist = read_history(out)
        what = "a finished" if hist is not None and hist.get("finished") else "an unfinished"
        raise UserError(f"{out} already holds {what} training run; pass --resume to continue it or choose another --out")

    rng = _seed_everything(config.seed)
    model: Recommender = cls(config, data.n_items, data.prepared.items)
    model.to(device)
    record = dataset_record(data.prepared)
    start_epoch, best_epoch, best_score, history = 0, None, None, []
    if stored is None:
        model.start(data, rng)
    else:
        model.load_state_dict(stored["state"])
        model.to(device)
        model.load_training_state(stored["training"]["model"])
        _restore_rng(stored["training"]["rng"], rng, device)
        start_epoch, best_epoch, best_score = stored["epoch"], stored["best_epoch"], stored["best_score"]
        history = list(stored["history"])
        del stored
        if start_epoch >= config.epochs:
            emit(f"{out}: already trained for {start_epoch} epochs")
            return best_path
    has_val = data.prepared.val_te.nnz > 0
    out.mkdir(parents=True, exist_ok=True)

    def payload(kind: str, epoch: int) -> dict:
        return {
            "kind": kind, "model_type": name, "config": config.to_dict(), "dataset": record, "epoch": epoch,
            "best_epoch": best_epoch, "best_score": best_score, "select_by": SELECT_BY, "history": history,
            "state": model.state_dict(),
        }

    for epoch in range(start_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        losses = model.train_epoch(data, rng)
        for k, v in losses.items():
            if not math.isfinite(v):
                raise UserError(f"training diverged in epoch {epoch}: the {k} became {v}; try a lower learning rate")
        t1 = time.perf_counter()
        val = None
        if has_val:
            res = evaluate_topn(model, data, "validation", batch_size=config.eval_batch_size)
            val = {k: v["mean"] for k, v in res["metrics"].items()}
        t2 = time.perf_counter()
        score = val[SELECT_BY] if val is not None else None
        improved = best_epoch is None or score is None or score > best_score
        if improved:
            best_epoch, best_score = epoch, score
        history.append({"epoch": epoch, **losses, "validation": val, "best": improved,
                        "train_seconds": t1 - t0, "eval_seconds": t2 - t1})
        if improved:
            checkpoint.save(best_path, payload("best", epoch))
        last = payload("last", epoch)
        last["training"] = {"model": model.training_state(), "rng": _rng_state(rng, device)}
        checkpoint.save(last_path, last)
        _write_history(out / HISTORY, name, config, record, history, best_epoch, best_score, epoch == config.epochs)
        loss_txt = "  ".join(f"{k} {v:9.4f}" for k, v in losses.items())
        val_txt = f"val NDCG@100 {score:.4f}{' *' if improved else '  '}" if score is not None else "val -"
        emit(f"epoch {epoch:>3}/{config.epochs}  {loss_txt}  {val_txt}  train {t1 - t0:6.1f}s  eval {t2 - t1:5.1f}s")
    return best_path


def _write_history(path: Path, name: str, config: ModelConfig, record: dict, history: list, best_epoch, best_score,
                   finished: bool) -> None:
    doc = {
        "model_type": name, "config": config.to_dict(),
        "dataset": {k: v for k, v in record.items() if k != "items"},
        "select_by": SELECT_BY, "best_epoch": best_epoch, "best_score": best_score, "finished": finished,
        "epochs": history,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))


def train_or_reuse(name: str, data: ModelData, config: ModelConfig, *, progress: bool = True,
                   log_line: Callable[[str], None] | None = None) -> Path:
    """The best checkpoint of a finished run in :func:`run_dir`, training (or resuming) it if needed."""
    out = run_dir(data, name, config)
    hist = read_history(out)
    if hist is not None and hist.get("finished") and (out / BEST).is_file():
        (log_line or log.info)(f"reusing the finished model in {out}")
        return out / BEST
    return train_model(name, data, config, out, resume=(out / LAST).is_file(), progress=progress, log_line=log_line)
