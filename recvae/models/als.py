"""Biased matrix factorisation of explicit ratings by alternating least squares, and its biases-only base.

Model: ``r_ui ~ mu + b_u + b_i + x_u . y_i`` (``mu`` the mean of the fitted ratings). Objective::

    sum_{(u,i) observed} (r_ui - mu - b_u - b_i - x_u . y_i)^2
        + reg * (sum_u |x_u|^2 + sum_i |y_i|^2) + bias_reg * (sum_u b_u^2 + sum_i b_i^2)

One epoch is the exact user step (every ``(b_u, x_u)`` solved with the items fixed: a ridge
regression on ``[1, y_i]``) then the exact item step. With ``factors = 0`` only the biases remain:
the *biases-only* model (registry name ``biases``), the baseline recommender tutorials start from.

The user embedding is ``x_u`` (``[b_u]`` for the biases-only model), obtained by **exact fold-in**:
the user step on the given ratings with the item side fixed. Prefix embeddings for traces solve
the same system from running sums of ``[1, y_i][1, y_i]^T`` and ``(r_ui - mu - b_i) [1, y_i]``
(:mod:`recvae.models.linalg`), so each trace row is that prefix's optimum. Items are in the same
space: ``score = x_u . y_i + b_i`` (plus the per-user constant ``mu + b_u``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recvae.errors import UserError
from recvae.models.base import HistoryContext, ModelConfig, Recommender, csr_parts
from recvae.models.linalg import group_grams, group_sums, map_chunks, prefix_grams, prefix_sums, ridge_solve
from recvae.trace.catalogue import Catalogue
from recvae.trace.prefix import PrefixBatch, user_aligned_chunks

#: Prefix rows solved at once (bounds the (rows, d, d) Gram stack in memory).
CHUNK_ROWS = 2048


class FoldIn:
    """The exact user step of a biased factor model with the item side fixed.

    Solves ``min sum_i (r_ui - mu - b_i - b_u - x_u . y_i)^2 + scale_u * (bias_reg b_u^2 + reg |x_u|^2)``
    with ``scale_u = 1`` (``per_rating=False``, ALS) or the user's number of ratings
    (``per_rating=True``: a regulariser applied per observed rating, as SGD matrix factorisation does).
    Returns ``[b_u, x_u]`` per row.
    """

    def __init__(self, mu: float, item_bias: np.ndarray, item_factors: np.ndarray, reg: float, bias_reg: float,
                 per_rating: bool = False) -> None:
        self.mu = float(mu)
        self.item_bias = np.asarray(item_bias, dtype=np.float64)
        factors = np.asarray(item_factors, dtype=np.float64).reshape(self.item_bias.size, -1)
        self.table = np.hstack([np.ones((self.item_bias.size, 1)), factors])  # rows [1, y_i]
        self.penalty = np.r_[bias_reg, np.full(factors.shape[1], reg)]
        self.per_rating = per_rating

    def _reg(self, counts: np.ndarray) -> np.ndarray:
        scale = counts.astype(np.float64) if self.per_rating else np.ones(counts.size)
        return scale[:, None] * self.penalty[None, :]

    def rows(self, rows: sp.csr_matrix) -> np.ndarray:
        """(n, 1 + k) ``[b_u, x_u]`` of each CSR row of ratings."""
        starts, lengths, items, values = csr_parts(rows)
        target = values.astype(np.float64) - self.mu - self.item_bias[items]
        gram = group_grams(starts, lengths, items, self.table)
        rhs = group_sums(starts, lengths, items, self.table, target)
        return ridge_solve(gram, rhs, self._reg(lengths))

    def prefixes(self, batch: PrefixBatch, values: np.ndarray) -> np.ndarray:
        """(m, 1 + k) ``[b_u, x_u]`` of each prefix of ``batch`` (``values``: ratings aligned with ``batch.items``)."""
        target = np.asarray(values, dtype=np.float64) - self.mu - self.item_bias[batch.items]

        def chunk(lo: int, hi: int) -> np.ndarray:
            part = batch.slice(lo, hi)
            gram = prefix_grams(part, self.table)
            return ridge_solve(gram, prefix_sums(part, self.table, target), self._reg(part.lengths))

        out = np.empty((len(batch), self.table.shape[1]))
        return map_chunks(chunk, user_aligned_chunks(batch.owner, CHUNK_ROWS), out)


@dataclass
class ALSConfig(ModelConfig):
    """Biased ALS (defaults tuned on MovieLens-100K's RMSE split)."""

    epochs: int = 15  # ALS sweeps (user step + item step)
    factors: int = 32  # k, the embedding dimension
    reg: float = 10.0  # L2 weight on the factors
    bias_reg: float = 5.0  # L2 weight on the biases
    init_std: float = 0.1  # item factors start as N(0, init_std^2)

    def validate(self) -> None:
        super().validate()
        if self.factors < 0:
            raise UserError(f"factors must be >= 0, got {self.factors}")
        if self.reg <= 0 or self.bias_reg <= 0:
            raise UserError("reg and bias_reg must be > 0 (the least-squares steps need them)")


@dataclass
class BiasesConfig(ModelConfig):
    """Biases-only model: global mean + user bias + item bias."""

    epochs: int = 10
    bias_reg: float = 5.0

    def validate(self) -> None:
        super().validate()
        if self.bias_reg <= 0:
            raise UserError("bias_reg must be > 0")


class BiasedALS(Recommender):
    name = "als"
    title = "biased matrix factorisation of explicit ratings by alternating least squares"
    Config = ALSConfig
    needs = frozenset({"ratings"})
    cpu_only = True
    embedding_description = "user factor x_u by exact fold-in (the ALS user step on the prefix's ratings), float32"

    def __init__(self, config, n_items, items=None) -> None:
        super().__init__(config, n_items, items)
        self.k = int(getattr(config, "factors", 0))
        self.reg = float(getattr(config, "reg", 1.0))
        self.mu = 0.0
        self.item_bias = np.zeros(n_items)
        self.item_factors = np.zeros((n_items, self.k))

    # -- training ------------------------------------------------------------------------------
    def start(self, data, rng: np.random.Generator) -> None:
        r = data.require_ratings(self.name)
        self.mu = r.mean
        self.item_bias = np.zeros(self.n_items)
        self.item_factors = rng.normal(0.0, getattr(self.config, "init_std", 0.1), size=(self.n_items, self.k))

    def fold_in(self) -> FoldIn:
        return FoldIn(self.mu, self.item_bias, self.item_factors, self.reg, self.config.bias_reg)

    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        fit = data.require_ratings(self.name).fit
        users = self.fold_in().rows(fit)  # the user step
        # the item step: the same solve on the transposed matrix with the users fixed
        item_side = FoldIn(self.mu, users[:, 0], users[:, 1:], self.reg, self.config.bias_reg)
        items = item_side.rows(sp.csr_matrix(fit.T))
        self.item_bias, self.item_factors = items[:, 0], items[:, 1:]
        pred = self._predict(users, fit)
        return {"train_rmse": float(np.sqrt(np.mean((pred - fit.data) ** 2)))}

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "mu": torch.tensor(self.mu, dtype=torch.float64),
            "item_bias": torch.from_numpy(np.asarray(self.item_bias, dtype=np.float64)),
            "item_factors": torch.from_numpy(np.asarray(self.item_factors, dtype=np.float64)),
        }

    def load_state_dict(self, state: dict) -> None:
        self.mu = float(state["mu"])
        self.item_bias = state["item_bias"].numpy().astype(np.float64)
        self.item_factors = state["item_factors"].numpy().astype(np.float64).reshape(self.n_items, self.k)

    # -- inference -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.k if self.k else 1

    def _embedding(self, sol: np.ndarray) -> np.ndarray:
        return (sol[:, 1:] if self.k else sol[:, :1]).astype(np.float32)

    def embed(self, rows: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return self._embedding(self.fold_in().rows(rows))

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        sol = self.fold_in().rows(rows)
        return (self.mu + sol[:, :1] + self.item_bias[None, :] + sol[:, 1:] @ self.item_factors.T).astype(np.float32)

    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        if context.values is None:
            raise UserError(f"model '{self.name}' folds users in from their ratings: none were given")
        return self._embedding(self.fold_in().prefixes(batch, context.values))

    def scores_from_embeddings(self, z: np.ndarray, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        base = self.item_bias[None, :] + (z @ self.item_factors.T if self.k else z)
        return base.astype(np.float32)

    def catalogue(self) -> Catalogue:
        vectors = self.item_factors if self.k else np.ones((self.n_items, 1))
        return Catalogue(ids=self.items, vectors=vectors.astype(np.float32), bias=self.item_bias.astype(np.float32),
                             metadata={"score": "user . vector + bias (+ the user's constant mu + b_u)"})

    def _predict(self, users: np.ndarray, targets: sp.csr_matrix) -> np.ndarray:
        t = sp.csr_matrix(targets)
        row = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
        col = t.indices
        dot = np.einsum("ij,ij->i", users[row, 1:], self.item_factors[col]) if self.k else 0.0
        return self.mu + users[row, 0] + self.item_bias[col] + dot

    def predict(self, rows: sp.csr_matrix, targets: sp.csr_matrix) -> np.ndarray:
        return self._predict(self.fold_in().rows(rows), targets)


class BiasesOnly(BiasedALS):
    name = "biases"
    title = "biases only: global mean + user bias + item bias (by alternating least squares)"
    Config = BiasesConfig
    embedding_description = "user bias b_u by exact fold-in (1-D), float32"
