"""Alternating RecVAE training (spec section 3), with per-epoch checkpoints and exact resume.

One epoch = ``encoder_passes`` passes over the shuffled training users updating only the encoder
(input dropout 0.5), then a refresh of the prior's frozen encoder copy, then ``decoder_passes``
passes updating only the decoder (dropout 0). Two Adam optimisers, lr 5e-4, batches of 500 users
(the last partial batch kept), users reshuffled every pass. After every epoch the model is scored
on the validation users (NDCG@100, fold-in -> held-out); the best state is ``best.pt``.

Two computational shortcuts, neither of which changes a gradient or an update:

* batches stay sparse: each CSR batch goes to the device as a :class:`~recvae.model.SparseRows`;
  on the CPU the first layer is a sparse-dense product and the only dense (batch, n_items) block
  is the decoder's logits; on a GPU the batch is densified there (one block per batch, never the
  whole matrix) because the dense GEMM is faster (:func:`recvae.model.as_input`);
* the decoder phase does not back-propagate into the encoder and skips the KL term (which does
  not depend on the decoder), so its loss is reported as the negative log-likelihood only.

Resuming (``resume=True``) restores the model (incl. the frozen prior encoder), both optimisers,
every RNG (torch, CUDA, the shuffling generator, numpy's and Python's global ones), the epoch
counter, best score and history: on the CPU, 2 epochs in one go and 1 + 1 resumed give identical
state dicts.

Output directory layout: ``best.pt``, ``last.pt`` (see :mod:`recvae.checkpoint`) and
``history.json`` (config, dataset, one row per epoch with its timings, ``finished``). The
checkpoints hold the same history without the timings, so their bytes depend only on the data,
the config and the seed: two identical trainings write identical checkpoints. The folder belongs
to one run (:mod:`recvae.outputs`): it is locked while training, and an existing run is refused
unless resumed or overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from recvae import checkpoint
from recvae.data.prepared import PreparedData
from recvae.errors import UserError
from recvae.evaluation import ModelScorer, evaluate
from recvae.model import RecVAE, RecVAEConfig, Rows, as_input
from recvae.outputs import FolderLock, clean_leftovers, clear, contents
from recvae.storage import atomic_path, cache_dir

log = logging.getLogger(__name__)

BEST = "best.pt"
LAST = "last.pt"
HISTORY = "history.json"
#: Everything a training run writes into its folder.
RUN_FILES = (BEST, LAST, HISTORY)
#: Per-epoch history fields that are measurements: kept in history.json, not in checkpoints.
TIMING_KEYS = ("encoder_seconds", "decoder_seconds", "eval_seconds", "seconds")
#: The validation metric that selects the best state.
SELECT_BY = "ndcg@100"

#: Per-dataset defaults (spec section 3 and the published re-runs). Datasets not listed get the
#: dataclass defaults (the ML-20M settings: gamma 0.005, 50 epochs).
DATASET_DEFAULTS: dict[str, dict] = {
    "ml20m": {"gamma": 0.005, "epochs": 50},
    "netflix": {"gamma": 0.0035, "epochs": 50},
    "msd": {"gamma": 0.01, "epochs": 100},
    # Smaller MovieLens sets: the ML-20M settings. On ML-100K (752 training users, 2 batches per
    # pass) validation NDCG@100 plateaus (~0.45) after about 30 epochs at lr 5e-4.
    "ml25m": {"gamma": 0.005, "epochs": 50},
    "ml10m": {"gamma": 0.005, "epochs": 50},
    "ml1m": {"gamma": 0.005, "epochs": 50},
    "ml100k": {"gamma": 0.005, "epochs": 50},
    "ml-latest-small": {"gamma": 0.005, "epochs": 50},
    # The generated quick-start dataset: short enough to finish in about a minute on a laptop.
    "synthetic": {"gamma": 0.005, "epochs": 20},
}

#: Config fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("epochs", "device", "eval_batch_size")


@dataclass
class TrainConfig:
    """Training hyper-parameters; defaults are the paper's ML-20M settings."""

    epochs: int = 50  # full epochs (encoder passes + decoder passes)
    gamma: float = 0.005  # KL weight per input item: beta_u = gamma * |x_u|
    batch_size: int = 500  # users per Adam step
    lr: float = 5e-4  # Adam learning rate, both optimisers
    seed: int = 0  # seeds initialisation, sampling, dropout and shuffling
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"
    encoder_passes: int = 3  # encoder-only passes per epoch (dropout `encoder_dropout`)
    decoder_passes: int = 1  # decoder-only passes per epoch (dropout 0)
    encoder_dropout: float = 0.5  # input dropout during the encoder passes
    hidden_dim: int = 600  # encoder width (RecVAEConfig.hidden_dim)
    latent_dim: int = 200  # embedding dimension K (RecVAEConfig.latent_dim)
    eval_batch_size: int = 1000  # users per validation batch (memory only, not results)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.gamma >= 0 and math.isfinite(self.gamma), f"gamma must be >= 0, got {self.gamma}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"learning rate must be > 0, got {self.lr}"),
            (self.encoder_passes >= 1, f"encoder passes must be >= 1, got {self.encoder_passes}"),
            (self.decoder_passes >= 1, f"decoder passes must be >= 1, got {self.decoder_passes}"),
            (0 <= self.encoder_dropout < 1, f"encoder dropout must be in [0, 1), got {self.encoder_dropout}"),
            (self.hidden_dim >= 1 and self.latent_dim >= 1, "hidden and latent dims must be >= 1"),
            (self.eval_batch_size >= 1, f"eval batch size must be >= 1, got {self.eval_batch_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        resolve_device(self.device, check_available=False)

    @classmethod
    def for_dataset(cls, name: str, **overrides: object) -> "TrainConfig":
        """Defaults for dataset ``name`` (see ``DATASET_DEFAULTS``), then ``overrides`` (None = keep)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UserError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        kw = dict(DATASET_DEFAULTS.get(name, {}))
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def identity(self) -> dict:
        """The fields that determine the trained model (all but device and eval batch size)."""
        d = self.to_dict()
        d.pop("device")
        d.pop("eval_batch_size")
        return d

    def model_config(self, n_items: int) -> RecVAEConfig:
        return RecVAEConfig(n_items=n_items, hidden_dim=self.hidden_dim, latent_dim=self.latent_dim)


def resolve_device(name: str, check_available: bool = True) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; asking for an absent CUDA device is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device '{name}'; use auto, cpu, cuda or cuda:N")
    if check_available and dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device '{name}' requested but CUDA is not available here; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"device '{name}' does not exist ({torch.cuda.device_count()} CUDA device(s))")
    return dev


# ----------------------------------------------------------------------------------------------
# RNG state


def _seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def _rng_state(shuffle: np.random.Generator, device: torch.device) -> dict:
    legacy = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "shuffle": shuffle.bit_generator.state,
        "numpy": [legacy[0], legacy[1].tolist(), *legacy[2:]],
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict, shuffle: np.random.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.bit_generator.state = state["shuffle"]
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------
# The loop


def _batches(matrix: sp.csr_matrix, order: np.ndarray, batch_size: int, device: torch.device) -> Iterator[Rows]:
    for start in range(0, order.size, batch_size):
        yield as_input(matrix[order[start : start + batch_size]], device)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has one for the device (one pass over the
    parameters instead of ~10; the same algorithm), else the default implementation."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _finite(value: float, what: str, epoch: int) -> float:
    if not math.isfinite(value):
        raise UserError(
            f"training diverged in epoch {epoch}: the {what} became {value}; try a lower --lr or --gamma"
        )
    return value


def _check_resume(stored: TrainConfig, given: TrainConfig, path: Path) -> None:
    a, b = stored.to_dict(), given.to_dict()
    diff = [k for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k]]
    if diff:
        detail = ", ".join(f"{k}: {a[k]} in the checkpoint, {b[k]} now" for k in diff)
        raise UserError(f"cannot resume {path}: the settings differ ({detail})")


def _check_resumable(ckpt: dict, path: Path) -> None:
    """A UserError unless ``ckpt`` is a ``last`` checkpoint with everything resuming needs."""
    training = ckpt.get("training")
    if ckpt.get("kind") != "last" or not isinstance(training, dict) or not {
            "opt_encoder", "opt_decoder", "rng"} <= set(training):  # fmt: skip
        raise UserError(f"{path} is not a resumable checkpoint (kind {ckpt.get('kind')!r}: it holds no optimiser "
                        "or random-generator state); --resume needs the last.pt that training writes after "
                        "every epoch")  # fmt: skip


def _refuse_existing_run(out: Path) -> None:
    """A UserError saying what ``out`` holds and which flag to pass."""
    hist = read_history(out)
    if hist is not None and hist.get("finished"):
        raise UserError(f"{out} already holds a finished run (best checkpoint {out / BEST}); evaluate it with "
                        "`simcache evaluate`, pass --overwrite to train again from scratch, or choose another --out")  # fmt: skip
    if (out / LAST).is_file():
        raise UserError(f"{out} already holds an unfinished training run; pass --resume to continue it, "
                        "--overwrite to start again, or choose another --out")  # fmt: skip
    raise UserError(f"{out} already holds files ({', '.join(contents(out)[:3])}); pass --overwrite to replace "
                    "them with a new run, or choose another --out")  # fmt: skip


def train(
    data: PreparedData,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log_line: Callable[[str], None] | None = None,
) -> Path:
    """Train RecVAE on ``data.train``, validating on ``data.val_tr -> data.val_te``.

    Writes ``best.pt``, ``last.pt`` and ``history.json`` into ``out_dir`` and returns the path of
    ``best.pt``. With ``resume``, continues the run in ``out_dir`` (a UserError when there is
    none, when its ``last.pt`` is not a resumable checkpoint, or when it was trained on other data
    or with other settings; ``epochs`` may grow). Without it, a folder that holds anything is a
    UserError, unless ``overwrite`` (which removes the previous run's files first, and refuses a
    folder holding other files). The folder is locked while training (a second run into it is
    refused). ``log_line`` receives the per-epoch lines (default: printed when ``progress``, else logged).
    """
    config.validate()
    out = Path(out_dir)
    device = resolve_device(config.device)
    emit = log_line or (tqdm.write if progress else log.info)
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    with FolderLock(out, "simcache train", emit):
        clean_leftovers(out, emit)
        return _train(data, config, out, device, emit, resume=resume, overwrite=overwrite, progress=progress)


def _train(data: PreparedData, config: TrainConfig, out: Path, device: torch.device, emit: Callable[[str], None],
           *, resume: bool, overwrite: bool, progress: bool) -> Path:  # fmt: skip
    last_path, best_path = out / LAST, out / BEST
    stored = None
    if resume:
        if not last_path.is_file():
            raise UserError(f"nothing to resume: {last_path} does not exist")
        stored = checkpoint.read(last_path)
        _check_resumable(stored, last_path)
        checkpoint.check_vocabulary(stored, data)
        _check_resume(TrainConfig.from_dict(stored["train_config"]), config, last_path)
    elif contents(out):
        if not overwrite:
            _refuse_existing_run(out)
        clear(out, RUN_FILES)
        emit(f"removed the previous run in {out}")

    shuffle = _seed_everything(config.seed)
    model = RecVAE(config.model_config(data.n_items)).to(device)
    opt_enc = adam(model.encoder.parameters(), config.lr)
    opt_dec = adam(model.decoder.parameters(), config.lr)
    record = checkpoint.dataset_record(data)
    start_epoch, best_epoch, best_score, history = 0, None, None, []
    if stored is not None:
        model.load_state_dict(stored["model"])
        opt_enc.load_state_dict(stored["training"]["opt_encoder"])
        opt_dec.load_state_dict(stored["training"]["opt_decoder"])
        _restore_rng(stored["training"]["rng"], shuffle, device)
        start_epoch, best_epoch, best_score = stored["epoch"], stored["best_epoch"], stored["best_score"]
        history = _with_timings(list(stored["history"]), read_history(out))
        del stored
        if start_epoch >= config.epochs:
            if not best_path.is_file():
                raise UserError(f"{out}: the run is complete but {BEST} is missing")
            emit(f"{out}: already trained for {start_epoch} epochs")
            return best_path

    train_m = sp.csr_matrix(data.train, dtype=np.float32)
    has_val = data.val_te.nnz > 0
    if not has_val:
        emit("note: no validation user has held-out items; the last epoch is kept as the best")
    n_users = train_m.shape[0]
    n_batches = math.ceil(n_users / config.batch_size)
    out.mkdir(parents=True, exist_ok=True)

    def payload(kind: str, epoch: int) -> dict:
        return {
            "kind": kind,
            "model_config": model.cfg.to_dict(),
            "train_config": config.to_dict(),
            "dataset": record,
            "epoch": epoch,
            "best_epoch": best_epoch,
            "best_score": best_score,
            "select_by": SELECT_BY,
            "history": [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history],
            "model": model.state_dict(),
        }

    def passes(kind: str, count: int, epoch: int, step: Callable[[Rows], float], bar: tqdm) -> float:
        losses = []
        for p in range(count):
            order = shuffle.permutation(n_users)
            bar.set_description(f"epoch {epoch}/{config.epochs} {kind} pass {p + 1}/{count}")
            for x in _batches(train_m, order, config.batch_size, device):
                losses.append(_finite(step(x), f"{kind} loss", epoch))
                bar.update()
        return float(np.mean(losses))

    def encoder_step(x: Rows) -> float:
        opt_enc.zero_grad(set_to_none=True)
        _, mll, kl = model(x, gamma=config.gamma, dropout_rate=config.encoder_dropout)
        loss = kl - mll
        loss.backward()
        opt_enc.step()
        return loss.item()

    def decoder_step(x: Rows) -> float:
        opt_dec.zero_grad(set_to_none=True)
        loss = -model.reconstruction(x)
        loss.backward()
        opt_dec.step()
        return loss.item()

    for epoch in range(start_epoch + 1, config.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        # one progress bar per epoch, over every pass of the epoch
        bar = tqdm(total=n_batches * (config.encoder_passes + config.decoder_passes), unit="batch", leave=False,
                   disable=not progress, file=sys.stderr)  # fmt: skip
        model.decoder.requires_grad_(False)  # no decoder gradients while only the encoder learns
        enc_loss = passes("encoder", config.encoder_passes, epoch, encoder_step, bar)
        model.decoder.requires_grad_(True)
        model.prior.refresh(model.encoder)
        _sync(device)
        t1 = time.perf_counter()
        dec_loss = passes("decoder", config.decoder_passes, epoch, decoder_step, bar)
        bar.close()
        _sync(device)
        t2 = time.perf_counter()
        val = None
        if has_val:
            res = evaluate(ModelScorer(model, device), data.val_tr, data.val_te, batch_size=config.eval_batch_size)
            val = {k: v["mean"] for k, v in res["metrics"].items()}
        model.train()
        t3 = time.perf_counter()

        score = val[SELECT_BY] if val is not None else None
        improved = best_epoch is None or (score is not None and score > best_score) or score is None
        if improved:
            best_epoch, best_score = epoch, score
        history.append(
            {
                "epoch": epoch,
                "encoder_loss": enc_loss,
                "decoder_nll": dec_loss,
                "validation": val,
                "best": improved,
                "encoder_seconds": t1 - t0,
                "decoder_seconds": t2 - t1,
                "eval_seconds": t3 - t2,
                "seconds": t3 - t0,
            }
        )
        if improved:
            checkpoint.save(best_path, payload("best", epoch))
        last = payload("last", epoch)
        last["training"] = {
            "opt_encoder": opt_enc.state_dict(),
            "opt_decoder": opt_dec.state_dict(),
            "rng": _rng_state(shuffle, device),
        }
        checkpoint.save(last_path, last)
        del last
        _write_history(out / HISTORY, config, record, history, best_epoch, best_score, finished=epoch == config.epochs)

        val_txt = f"val NDCG@100 {score:.4f}{' *' if improved else '  '}" if score is not None else "val -"
        emit(
            f"epoch {epoch:>3}/{config.epochs}  enc loss {enc_loss:9.3f}  dec nll {dec_loss:9.3f}  {val_txt}  "
            f"enc {t1 - t0:6.1f}s  dec {t2 - t1:6.1f}s  eval {t3 - t2:5.1f}s"
        )
    return best_path


def _with_timings(history: list[dict], logged: dict | None) -> list[dict]:
    """A checkpoint's history (no timings) with the timings ``history.json`` logged for its epochs."""
    seconds = {e.get("epoch"): {k: e[k] for k in TIMING_KEYS if k in e} for e in (logged or {}).get("epochs", [])}
    return [{**h, **seconds.get(h.get("epoch"), {})} for h in history]


def _write_history(path: Path, config: TrainConfig, record: dict, history: list, best_epoch, best_score, finished: bool) -> None:
    doc = {
        "config": config.to_dict(),
        "dataset": {k: v for k, v in record.items() if k != "items"},
        "select_by": SELECT_BY,
        "best_epoch": best_epoch,
        "best_score": best_score,
        "finished": finished,
        "epochs": history,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))


def read_history(out_dir: str | Path) -> dict | None:
    """The ``history.json`` of a training directory, or None when there is none."""
    p = Path(out_dir) / HISTORY
    return json.loads(p.read_text()) if p.is_file() else None


def model_dir(data: PreparedData, config: TrainConfig) -> Path:
    """Where :func:`train_or_reuse` keeps the model for this data and config (a cache folder)."""
    key = {
        "vocabulary": data.vocabulary_fingerprint(),
        "train_shape": list(data.train.shape),
        "train_nnz": int(data.train.nnz),
        "config": config.identity(),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    name = str(data.manifest.get("dataset", "data")).replace("/", "_")
    return cache_dir() / "models" / f"{name}-{digest}"


def train_or_reuse(
    data: PreparedData,
    config: TrainConfig,
    *,
    progress: bool = True,
    log_line: Callable[[str], None] | None = None,
) -> Path:
    """The best checkpoint of a finished model for ``data`` and ``config``, training it if needed.

    Looks in :func:`model_dir`; a finished run there is reused, an interrupted one is resumed,
    otherwise a new one is trained.
    """
    out = model_dir(data, config)
    hist = read_history(out)
    if hist is not None and hist.get("finished") and (out / BEST).is_file():
        (log_line or log.info)(f"reusing the finished model in {out}")
        return out / BEST
    resumable = (out / LAST).is_file()
    if resumable:
        try:
            _check_resumable(checkpoint.read(out / LAST), out / LAST)
        except UserError:
            resumable = False
    # a cache folder: an unusable earlier attempt is replaced rather than refused
    return train(data, config, out, resume=resumable, overwrite=not resumable, progress=progress, log_line=log_line)
