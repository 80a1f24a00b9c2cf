"""Checkpoint files of the models in :mod:`recvae.models`: what they hold, writing, safe reading.

One ``torch.save`` file of plain containers and tensors (it loads with ``weights_only=True``)::

    format, version, kind            "simcache-model", 2, "best" | "last"
    tensors_sha256                   recvae.checkpoint.tensors_sha256 of ``state`` (version 2)
    record_sha256                    recvae.checkpoint.record_sha256: of everything but ``state``, ``training``
    model_type                       registry name ("multvae", "als", ...)
    config                           the model's config dataclass as a dict
    dataset                          as recvae.checkpoint.dataset_record (name, manifest, vocabulary)
    epoch, best_epoch, best_score    epochs completed; best validation NDCG@100 so far
    history                          one dict per completed epoch
    state                            the model's state dict (tensors and plain values)
    training (kind "last" only)      the model's training state and every RNG: what resuming needs

A checkpoint of one model given where another is expected, or a RecVAE checkpoint given to these
models (and the reverse), is a :class:`~recvae.errors.UserError` naming both. Reading goes through
RecVAE's checks (:func:`recvae.checkpoint.load_file` and :func:`~recvae.checkpoint.verify`: entries,
dataset record, checksum, finite weights), and :func:`build` refuses weights that do not fit the config.
"""

from __future__ import annotations

import os

import torch

from recvae import checkpoint as rc
from recvae.checkpoint import FORMAT as RECVAE_FORMAT
from recvae.errors import UserError

FORMAT = "simcache-model"
VERSION = 2
BEST, LAST, HISTORY = "best.pt", "last.pt", "history.json"


def save(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (format, version, the state's checksum and the record checksum added) atomically."""
    rc.write(path, rc.with_record_checksum({"format": FORMAT, "version": VERSION, **payload,
                                            rc.CHECKSUM_KEY: rc.tensors_sha256(payload["state"])}))


def load_raw(path: str | os.PathLike) -> dict:
    """Any checkpoint of this package (RecVAE's or a model's) as a dict, on the CPU, ``path`` added."""
    return rc.load_file(rc.checkpoint_file(path, BEST), (FORMAT, RECVAE_FORMAT), "simcache")


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
    return rc.verify(ckpt, "state", ("model_type", "config"))


def build(ckpt: dict):
    """The model a checkpoint dict describes, with its weights loaded (on the CPU)."""
    from recvae.models.registry import get_model

    cls = get_model(model_type(ckpt))
    path = ckpt.get("path", "checkpoint")
    rec = ckpt["dataset"]
    try:
        model = cls(cls.Config.from_dict(ckpt["config"]), rec["n_items"], rec.get("items"))
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise UserError(f"{path}: corrupt checkpoint: its config is not valid ({' '.join(str(exc).split())[:200]})") \
            from None
    try:
        expected = model.state_dict()
    except (AttributeError, TypeError, ValueError, RuntimeError):
        expected = None  # a model without weights before training: only loading below checks them
    if expected:
        rc.check_state_fits(path, expected, ckpt["state"], type(model).data_shaped_entries)
    try:
        model.load_state_dict(ckpt["state"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        raise UserError(f"{path}: the checkpoint's weights do not fit its model "
                        f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
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
