"""Evaluating any model of :mod:`recvae.models`: the shared top-N protocol, and RMSE for explicit models.

* Top-N: :func:`recvae.evaluation.evaluate` on the validation/test users, fold-in -> held-out,
  fold-in items excluded (the same code and metrics as RecVAE and the popularity baseline).
  Explicit models receive the fold-in rows with their ratings.
* RMSE (explicit models): each training user's held-out ratings predicted from the same user's
  fitted ratings (:class:`~recvae.models.data.RatingsData`), beside two baselines: the global mean
  of the fitted ratings and the biases-only model (global mean + user bias + item bias, by ALS).
"""

from __future__ import annotations

import math

import numpy as np

from recvae.evaluation import evaluate, split_matrices
from recvae.models.data import ModelData


def fold_in_rows(model, data: ModelData, split: str):
    """The fold-in rows ``model`` is given for ``split`` (ratings for explicit models)."""
    fold_in, _ = split_matrices(data.prepared, split)
    return data.require_ratings(model.name).fold_in(split) if model.explicit else fold_in


def evaluate_topn(model, data: ModelData, split: str = "test", *, batch_size: int = 1000) -> dict:
    """Top-N metrics of ``model`` (see :func:`recvae.evaluation.evaluate` for the result dict)."""
    _, held_out = split_matrices(data.prepared, split)
    return evaluate(model.score, fold_in_rows(model, data, split), held_out, batch_size=batch_size)


def rmse(model, data: ModelData) -> float:
    """RMSE of ``model`` on the held-out ratings of the training users."""
    r = data.require_ratings(model.name)
    pred = model.predict(r.fit, r.heldout)
    return float(math.sqrt(np.mean((pred - r.heldout.data.astype(np.float64)) ** 2)))


def rmse_global_mean(data: ModelData) -> float:
    """RMSE of predicting every held-out rating by the mean of the fitted ratings."""
    r = data.require_ratings("global mean")
    return float(math.sqrt(np.mean((r.heldout.data.astype(np.float64) - r.mean) ** 2)))


def rmse_biases(data: ModelData, epochs: int = 10) -> float:
    """RMSE of the biases-only model fitted on ``data`` (deterministic, seconds)."""
    from recvae.models.registry import get_model

    cls = get_model("biases")
    model = cls(cls.Config(epochs=epochs), data.n_items, data.prepared.items)
    model.start(data, np.random.default_rng(0))
    for _ in range(epochs):
        model.train_epoch(data, np.random.default_rng(0))
    return rmse(model, data)


def rmse_table(model, data: ModelData) -> dict[str, float]:
    """{model name: RMSE, "biases": ..., "global mean": ...} on the same split."""
    return {model.name: rmse(model, data), "biases": rmse_biases(data), "global mean": rmse_global_mean(data)}
