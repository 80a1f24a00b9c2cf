"""Checkpoint files of the models in :mod:`recvae.models`: what they hold, writing, safe reading.

One ``torch.save`` file of plain containers and tensors (it loads with ``weights_only=True``)::

    format, version, kind            "simcache-model", 1, "best" | "last"
    model_type                       registry name ("multvae", "als", ...)
    config                           the model's config dataclass as a dict
    dataset                          as recvae.checkpoint.dataset_record (name, manifest, vocabulary)
    epoch, best_epoch, best_score    epochs completed; best validation NDCG@100 so far
    history                          one dict per completed epoch
    state                            the model's state dict (tensors and plain values)
    training (kind "last" only)      the model's training state and every RNG: what resuming needs

A checkpoint of one model given where another is expected, or a RecVAE checkpoint given to these
models (and the reverse), is a :class:`~recvae.errors.UserError` naming both.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from recvae.checkpoint import FORMAT as RECVAE_FORMAT
from recvae.errors import UserError
from recvae.storage import atomic_path

FORMAT = "simcache-model"
VERSION = 1
BEST, LAST, HISTORY = "best.pt", "last.pt", "history.json"


def save(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (format and version added) atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)


def _file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        if not (p / BEST).is_file():
            raise UserError(f"{p}: directory holds no {BEST} checkpoint")
        p = p / BEST
    if not p.is_file():
        raise UserError(f"{p}: no such checkpoint file")
    return p


def load_raw(path: str | os.PathLike) -> dict:
    """Any checkpoint of this package (RecVAE's or a model's) as a dict, on the CPU, ``path`` added."""
    p = _file(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of all kinds: one line
        raise UserError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (FORMAT, RECVAE_FORMAT):
        raise UserError(f"{p}: not a simcache checkpoint")
    ckpt["path"] = str(p)
    return ckpt


def model_type(ckpt: dict) -> str:
    """The registry name of the model a checkpoint dict holds ("recvae" for RecVAE's own format)."""
    return "recvae" if ckpt.get("format") == RECVAE_FORMAT else str(ckpt.get("model_type"))


def read(path: str | os.PathLike, expect_type: str | None = None) -> dict:
    """A model checkpoint (not RecVAE's); ``expect_type`` set: a checkpoint of another model is a UserError."""
    ckpt = load_raw(path)
    kind = model_type(ckpt)
    if expect_type is not None and kind != expect_type:
        raise UserError(
            f"{ckpt['path']} holds a '{kind}' model, not a '{expect_type}' model; "
            f"pass --model-type {kind} (or a checkpoint of a '{expect_type}' model)"
        )
    if kind == "recvae":
        raise UserError(f"{ckpt['path']} is a RecVAE checkpoint; load it with recvae.checkpoint.load_model")
    if ckpt.get("version") != VERSION:
        raise UserError(f"{ckpt['path']}: checkpoint version {ckpt.get('version')} is not supported (expected {VERSION})")
    return ckpt


def build(ckpt: dict):
    """The model a checkpoint dict describes, with its weights loaded (on the CPU)."""
    from recvae.models.registry import get_model

    cls = get_model(model_type(ckpt))
    config = cls.Config.from_dict(ckpt["config"])
    rec = ckpt["dataset"]
    model = cls(config, rec["n_items"], rec.get("items"))
    model.load_state_dict(ckpt["state"])
    return model


def load(path: str | os.PathLike, expect_type: str | None = None, device: torch.device | str = "cpu",
         expect=None):
    """(model on ``device``, info dict) of a model checkpoint file or run directory.

    ``info`` has the keys of :func:`recvae.checkpoint.load_model`'s dict plus ``model_type``.
    ``expect`` (a PreparedData): another item vocabulary is a UserError.
    """
    from recvae.checkpoint import check_vocabulary, checkpoint_record

    ckpt = read(path, expect_type)
    if expect is not None:
        check_vocabulary(ckpt, expect)
    model = build(ckpt).to(device)
    info = {"model_type": model_type(ckpt), "config": ckpt["config"], **checkpoint_record(ckpt)}
    return model, info
