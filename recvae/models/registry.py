"""The model registry: name -> class, the single list of the recommenders in :mod:`recvae.models`.

Adding a model is one module with a :class:`~recvae.models.base.Recommender` subclass and one
line here. Entries are import paths so that listing names imports nothing heavy (``implicit``,
torch models) until a model is used. ``recvae`` (the paper model, :mod:`recvae.model`) keeps its
own training code and checkpoint format; :data:`ALL_MODEL_NAMES` lists it first.
"""

from __future__ import annotations

import importlib

from recvae.errors import UserError

_MODELS: dict[str, str] = {
    "multvae": "recvae.models.multvae:MultVAE",
    "biases": "recvae.models.als:BiasesOnly",
    "als": "recvae.models.als:BiasedALS",
    "implicit-als": "recvae.models.implicit_als:ImplicitALS",
    "mf": "recvae.models.mf:TorchMF",
    "autorec": "recvae.models.autorec:AutoRec",
    "metadata": "recvae.models.metadata:MetadataProfile",
}

#: Models of this package, in registry order.
MODEL_NAMES: tuple[str, ...] = tuple(_MODELS)
#: Every ``--model`` value: RecVAE (the default, trained by :mod:`recvae.training`) and the others.
ALL_MODEL_NAMES: tuple[str, ...] = ("recvae", *MODEL_NAMES)


def get_model(name: str):
    """The :class:`~recvae.models.base.Recommender` subclass registered as ``name``."""
    if name not in _MODELS:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(ALL_MODEL_NAMES)}")
    module, attr = _MODELS[name].split(":")
    return getattr(importlib.import_module(module), attr)
