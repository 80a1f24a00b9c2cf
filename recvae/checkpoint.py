"""Checkpoint files: what they hold, writing them atomically, reading them back safely.

A checkpoint is one ``torch.save`` file holding only plain containers and tensors (so it loads
with ``weights_only=True``)::

    format, version, kind            "recvae-checkpoint", 2, "best" | "last"
    tensors_sha256                   :func:`tensors_sha256` of ``model`` (version 2; version 1 had none)
    record_sha256                    :func:`record_sha256`: of everything but ``model`` and ``training``
                                     (absent in version-2 files written before it existed)
    model_config                     RecVAEConfig as a dict
    train_config                     TrainConfig as a dict
    dataset                          {"name", "manifest", "vocabulary_fingerprint", "n_items", "items"}
    epoch, best_epoch, best_score    epochs completed; best validation NDCG@100 so far (None: none)
    history                          one dict per completed epoch (losses, validation metrics; the
                                     timings are in the run's history.json, not here)
    model                            the model's state dict (incl. the prior's frozen encoder)
    training (kind "last" only)      optimisers, RNG states: everything needed to resume

``best.pt`` (kind "best") is the state with the best validation score; ``last.pt`` (kind "last") is
written after every epoch for ``--resume``.

A checkpoint's bytes depend only on what it holds (written through a file object, so the archive
inside is not named after the temporary file), and :func:`checkpoint_identity` names a model by
a hash of its tensors and configuration: two identical trainings give the same identity, which is
what trace metadata and default trace names should record.

Reading (:func:`load_file`, shared with :mod:`recvae.models.checkpoint`) refuses, each with one
:class:`UserError` line naming the file: an unreadable file, another format or version, a missing
entry or dataset record, tensors or settings that do not match their checksums, and NaN/inf weights; building
the model (:func:`model_from`) refuses weights whose names or shapes do not fit the config.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from recvae.data.prepared import PreparedData
from recvae.errors import UserError
from recvae.model import RecVAE, RecVAEConfig
from recvae.storage import atomic_path, sha256_file

FORMAT = "recvae-checkpoint"
VERSION = 2
#: Versions this reader accepts (1: before the tensors' checksum).
READABLE_VERSIONS = (1, 2)
CHECKSUM_KEY = "tensors_sha256"
#: The checksum of everything else a checkpoint says (see :func:`record_sha256`); absent in older files.
RECORD_KEY = "record_sha256"
#: What :func:`record_sha256` leaves out: the weights (checksummed by :data:`CHECKSUM_KEY`), the
#: resume state, the checksums themselves and the ``path`` the loader adds.
_UNRECORDED = ("model", "state", "training", "path", CHECKSUM_KEY, RECORD_KEY)
#: What every checkpoint must hold besides its model entry, and what its dataset record must hold.
REQUIRED = ("dataset", "epoch")
DATASET_KEYS = ("name", "manifest", "vocabulary_fingerprint", "n_items", "items")


def dataset_record(data: PreparedData) -> dict:
    """What a checkpoint records about the data it was trained on."""
    items = data.items.tolist()
    return {
        "name": str(data.manifest.get("dataset", "unknown")),
        "manifest": data.manifest,
        "vocabulary_fingerprint": data.vocabulary_fingerprint(),
        "n_items": data.n_items,
        "items": items,
    }


def save(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (with format, version, the model's :func:`tensors_sha256` and the
    :func:`record_sha256` added) atomically."""
    write(path, with_record_checksum({"format": FORMAT, "version": VERSION, **payload,
                                      CHECKSUM_KEY: tensors_sha256(payload["model"])}))


def record_sha256(ckpt: dict) -> str:
    """:func:`tensors_sha256` of every entry but the weights and the resume state (format, configs,
    dataset record, epochs, history): a corrupted setting is refused, not silently used."""
    return tensors_sha256({k: v for k, v in ckpt.items() if k not in _UNRECORDED})


def with_record_checksum(ckpt: dict) -> dict:
    """``ckpt`` with its :data:`RECORD_KEY` entry (what every checkpoint writer stores)."""
    return {**ckpt, RECORD_KEY: record_sha256(ckpt)}


def write(path: str | os.PathLike, payload: dict) -> None:
    """``torch.save`` ``payload`` to ``path`` atomically, with bytes that depend only on ``payload``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: the archive is named "archive"
        torch.save(payload, f)


def _leaves(value: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(dotted name, value) of every tensor or plain value in nested dicts, names sorted."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _leaves(value[key], f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def tensors_sha256(state: dict) -> str:
    """Hex sha256 of a state dict: every entry's name, and a tensor's dtype, shape and bytes (or a
    plain value's JSON). Deterministic: it depends only on the values, not on how they were saved."""
    h = hashlib.sha256()
    for name, value in _leaves(state):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(f"\0{name}\0{json.dumps(value, sort_keys=True, default=str)}\0".encode())
    return h.hexdigest()


def checkpoint_file(path: str | os.PathLike, best: str = "best.pt") -> Path:
    """The checkpoint file ``path`` names: itself, or a run directory's ``best``; missing: a UserError."""
    p = Path(path)
    if p.is_dir():
        if not (p / best).is_file():
            raise UserError(f"{p}: directory holds no {best} checkpoint")
        p = p / best
    if not p.is_file():
        raise UserError(f"{p}: no such checkpoint file")
    return p


def load_file(path: str | os.PathLike, formats: Sequence[str] = (FORMAT,), what: str = "RecVAE") -> dict:
    """A checkpoint file (or run directory) of one of ``formats`` as a dict on the CPU, ``path`` added.

    Unreadable, foreign (``what`` names the expected kind) files are a UserError; the version,
    entries, checksum and finiteness are checked by :func:`verify` once the kind is known.
    """
    p = checkpoint_file(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of all kinds: report them as one line
        raise UserError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") \
            from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in formats:
        raise UserError(f"{p}: not a {what} checkpoint")
    ckpt["path"] = str(p)
    return ckpt


def verify(ckpt: dict, state_key: str, required: Sequence[str], versions: Sequence[int] = READABLE_VERSIONS) -> dict:
    """Check a loaded checkpoint (see the module docstring) and return it; each failure is one UserError line.

    ``state_key``: the entry holding the model's tensors; ``required``: the other entries it must hold.
    """
    p = ckpt["path"]
    if ckpt.get("version") not in versions:
        raise UserError(f"{p}: checkpoint version {ckpt.get('version')} is not supported "
                        f"(this version reads {', '.join(map(str, versions))})")
    for key in (state_key, *REQUIRED, *required):
        if key not in ckpt:
            raise UserError(f"{p}: corrupt checkpoint: no {key!r} entry")
    rec = ckpt["dataset"]
    missing = [k for k in DATASET_KEYS if not isinstance(rec, dict) or k not in rec]
    if missing:
        raise UserError(f"{p}: corrupt checkpoint: the dataset record lacks {', '.join(missing)}")
    state = ckpt[state_key]
    if not isinstance(state, dict) or not state:
        raise UserError(f"{p}: corrupt checkpoint: the {state_key!r} entry holds no weights")
    if ckpt["version"] >= 2:
        if CHECKSUM_KEY not in ckpt:
            raise UserError(f"{p}: corrupt checkpoint: no {CHECKSUM_KEY!r} entry")
        if tensors_sha256(state) != ckpt[CHECKSUM_KEY]:
            raise UserError(f"{p}: corrupt checkpoint: the weights do not match their checksum")
        if RECORD_KEY in ckpt and record_sha256(ckpt) != ckpt[RECORD_KEY]:
            raise UserError(f"{p}: corrupt checkpoint: its configuration, dataset record or history does not "
                            "match its checksum")
    for name, value in _leaves(state):
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            what = "NaN" if bool(torch.isnan(value).any()) else "inf"
            raise UserError(f"{p}: the weights {name!r} contain {what}; refusing a model that cannot give finite "
                            "embeddings")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{p}: the weight {name!r} is {value}; refusing a model that cannot give finite embeddings")
    return ckpt


def check_state_fits(path: str, expected: dict, given: dict, data_shaped: Iterable[str] = ()) -> None:
    """Refuse a state dict whose entry names or tensor shapes differ from a freshly built model's.

    ``data_shaped``: entries whose shapes come from the training data, not the config (their
    presence is checked, not their shape)."""
    missing = sorted(set(expected) - set(given))
    if missing:
        raise UserError(f"{path}: corrupt checkpoint: no model entry {missing[0]!r}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = sorted(set(given) - set(expected))
    if extra:
        raise UserError(f"{path}: the checkpoint has model entry {extra[0]!r}, which its model does not")
    for name in sorted(set(expected) - set(data_shaped)):
        want, got = expected[name], given[name]
        if isinstance(want, torch.Tensor) and (not isinstance(got, torch.Tensor) or got.shape != want.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise UserError(f"{path}: model entry {name!r} has shape {shape}, but its config gives {tuple(want.shape)}")


def checkpoint_identity(source: str | os.PathLike | dict) -> str:
    """Hex sha256 naming the trained model: its tensors (names, dtypes, shapes, bytes), its model
    config, the training config that decides the result (not device or evaluation batch size)
    and the item vocabulary. ``source``: a checkpoint path, a run directory, or a read checkpoint."""
    ckpt = read(source) if not isinstance(source, dict) else source
    train_cfg = {k: v for k, v in ckpt["train_config"].items() if k not in ("device", "eval_batch_size")}
    head = {"model_config": ckpt["model_config"], "train_config": train_cfg,
            "vocabulary": ckpt["dataset"]["vocabulary_fingerprint"]}  # fmt: skip
    h = hashlib.sha256(json.dumps(head, sort_keys=True, default=str).encode())
    for name in sorted(ckpt["model"]):
        t = ckpt["model"][name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def read(path: str | os.PathLike) -> dict:
    """Load and verify a RecVAE checkpoint on the CPU; a missing, foreign or corrupt file is a :class:`UserError`."""
    return verify(load_file(path), "model", ("model_config", "train_config"))


def check_vocabulary(ckpt: dict, data: PreparedData, what: str = "checkpoint") -> None:
    """Raise :class:`UserError` unless ``data`` has the item vocabulary the checkpoint was trained on."""
    rec = ckpt["dataset"]
    fp = data.vocabulary_fingerprint()
    if rec["vocabulary_fingerprint"] != fp or rec["n_items"] != data.n_items:
        theirs = data.manifest.get("dataset", "unknown")
        raise UserError(
            f"{what} {ckpt.get('path', '')} was trained on dataset '{rec['name']}' "
            f"({rec['n_items']} items, vocabulary {rec['vocabulary_fingerprint']}), "
            f"but the data given is '{theirs}' ({data.n_items} items, vocabulary {fp}); "
            "the item vocabularies differ"
        )


def model_from(ckpt: dict, device: torch.device | str = "cpu") -> RecVAE:
    """Build the model a checkpoint describes and load its weights (strictly: names and shapes must fit)."""
    try:
        model = RecVAE(RecVAEConfig.from_dict(ckpt["model_config"]))
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise UserError(f"{ckpt.get('path', 'checkpoint')}: corrupt checkpoint: its model config is not valid "
                        f"({' '.join(str(exc).split())[:200]})") from None
    check_state_fits(ckpt.get("path", "checkpoint"), model.state_dict(), ckpt["model"])
    model.load_state_dict(ckpt["model"])
    return model.to(device)


def load_model(
    path: str | os.PathLike, device: torch.device | str = "cpu", expect: PreparedData | None = None
) -> tuple[RecVAE, dict]:
    """The trained model (in eval mode, on ``device``) and a description of the checkpoint.

    ``path`` is a checkpoint file or a training directory (its ``best.pt``). The dict holds
    ``config`` (training config), ``model_config``, ``dataset`` (name), ``manifest``,
    ``vocabulary_fingerprint``, ``items``, ``epoch``, ``best_epoch``, ``best_score``, ``history``,
    ``kind``, ``path``, ``sha256`` (of the checkpoint file) and ``identity``
    (:func:`checkpoint_identity`, what a trace should record). With ``expect``, a dataset with
    another item vocabulary is a :class:`UserError`.
    """
    ckpt = read(path)
    if expect is not None:
        check_vocabulary(ckpt, expect)
    model = model_from(ckpt, device)
    model.eval()
    info = {"config": ckpt["train_config"], "model_config": ckpt["model_config"], **checkpoint_record(ckpt),
            "identity": checkpoint_identity(ckpt)}  # fmt: skip
    return model, info


def checkpoint_record(ckpt: dict) -> dict:
    """What every model's checkpoint says about itself: the dataset it was trained on (name,
    manifest, vocabulary), epochs and best score, history, kind, path and file sha256."""
    rec = ckpt["dataset"]
    return {
        "dataset": rec["name"],
        "manifest": rec["manifest"],
        "vocabulary_fingerprint": rec["vocabulary_fingerprint"],
        "items": rec["items"],
        "n_items": rec["n_items"],
        "epoch": ckpt["epoch"],
        "best_epoch": ckpt.get("best_epoch"),
        "best_score": ckpt.get("best_score"),
        "history": ckpt.get("history", []),
        "kind": ckpt.get("kind"),
        "path": ckpt["path"],
        "sha256": sha256_file(ckpt["path"]),
    }


def training_data(info: dict, data_dir: str | os.PathLike | None = None) -> PreparedData:
    """Re-create the PreparedData a checkpoint was trained on, from its recorded manifest.

    ``info`` is :func:`load_model`'s dict. Named datasets go through :func:`recvae.data.prepare`
    with the recorded preprocessing parameters (and generator options for ``synthetic``; a
    cached result is reused); ``data_dir`` defaults to the folder recorded at training time.
    """
    manifest = info["manifest"]
    name = manifest.get("dataset")
    if name == "planted":
        from recvae.planted import make_planted

        return make_planted(**manifest["params"])
    from recvae.data import dataset_names, prepare

    if name not in dataset_names():
        raise UserError(f"checkpoint was trained on '{name}', which is not a named dataset; cannot re-create its data")
    params = manifest.get("params", {})
    kw = {k: params[k] for k in ("threshold", "min_items_per_user", "min_users_per_item") if k in params}
    if params.get("heldout_fraction") is None and params.get("heldout_users") is not None:
        kw["heldout_users"] = params["heldout_users"]
    kw.update(manifest.get("generator") or {})
    if data_dir is None:
        src = manifest.get("source") or {}
        root = src.get("root")
        if src.get("origin") == "local" and root and Path(root).exists():
            data_dir = root
    data = prepare(name, data_dir, **kw)
    check_vocabulary({"dataset": {"name": name, "vocabulary_fingerprint": info["vocabulary_fingerprint"],
                                  "n_items": info["n_items"]}, "path": info["path"]}, data)
    return data
