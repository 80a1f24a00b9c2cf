"""A registered model (:mod:`recvae.models.registry`) loaded or trained for a trace build.

:func:`load_model_encoder` is what ``simcache build-trace --model-type NAME`` runs: the model of a
checkpoint (refused when it holds another model or another vocabulary), or, without one, the
model trained with its defaults on the prepared data (a finished run in the cache is reused), as
a :class:`~recvae.models.base.PrefixEncoder` for the model-neutral trace builder.
"""

from __future__ import annotations

from pathlib import Path

from recvae.data.prepared import PreparedData
from recvae.models.base import PrefixEncoder, model_device
from recvae.models.registry import get_model
from recvae.storage import sha256_file


def load_model_encoder(name: str, prepared: PreparedData, checkpoint: str | Path | None = None, *,
                       data_dir: str | Path | None = None, device: str = "auto", seed: int = 0,
                       progress: bool = True) -> PrefixEncoder:  # fmt: skip
    """The trace encoder of model ``name``: from ``checkpoint``, or trained (or reused) with defaults."""
    from recvae.models import checkpoint as ckpt
    from recvae.models.data import model_data
    from recvae.models.trainer import train_or_reuse

    cls = get_model(name)
    dev = model_device(cls, device)
    if checkpoint is None:
        data = model_data(prepared, cls.needs, data_dir, name)
        checkpoint = train_or_reuse(name, data, cls.Config.with_options(None, seed=seed, device=str(dev)),
                                    progress=progress)
    model, _ = ckpt.load(checkpoint, expect_type=name, device=dev, expect=prepared)
    path = Path(checkpoint)
    sha = sha256_file(path) if path.is_file() else ""
    return model.prefix_encoder(checkpoint_sha256=sha)
