"""Hand-built metadata embeddings (MovieLens-100K): demographics plus a genre / decade profile.

User embedding of a history (fixed length, three blocks)::

    [ demo_weight / sqrt(3) * (age bucket, gender, occupation one-hots)
    | genre_weight  * mean over the history's movies of the movie's genre distribution
    | decade_weight * mean over the history's movies of the movie's release-decade one-hot ]

Age buckets are MovieLens-1M's (<18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+); a movie with
several genres spreads its weight evenly over them; a movie without a release date adds zero
to the decade block. Items live in the same space: ``[0 | genre_weight * genres | decade_weight
* decade]``, so ``user . item`` is the history's affinity to the movie's genres and decade (the
demographics block only places users, it does not change a ranking). Scores add
``popularity_weight * log(1 + training count)``; "training" is choosing that one weight on the
validation users' NDCG@100 from a small grid, nothing else is learned. Profiles are sums over
the history, so prefix embeddings come from running sums (:mod:`recvae.models.linalg`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recvae.errors import UserError
from recvae.evaluation import evaluate
from recvae.models.base import HistoryContext, ModelConfig, Recommender, csr_parts
from recvae.models.linalg import group_sums, prefix_sums
from recvae.trace.catalogue import Catalogue
from recvae.trace.prefix import PrefixBatch

AGE_EDGES = (18, 25, 35, 45, 50, 56)  # bucket b holds ages in [edge[b-1], edge[b])
POPULARITY_GRID = (0.0, 0.1, 0.3, 1.0, 3.0)


@dataclass
class MetadataConfig(ModelConfig):
    epochs: int = 1  # one pass: choose the popularity weight
    demo_weight: float = 1.0
    genre_weight: float = 1.0
    decade_weight: float = 1.0


def age_bucket(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(AGE_EDGES), np.asarray(age), side="right")


class MetadataProfile(Recommender):
    name = "metadata"
    title = "metadata embeddings: demographics + genre/decade profile of the history (MovieLens-100K)"
    Config = MetadataConfig
    data_shaped_entries = frozenset({"item_table", "user_ids", "user_demo", "log_pop"})
    needs = frozenset({"side"})
    cpu_only = True
    embedding_description = "[demographics | genre profile | decade profile] of the prefix, float32"

    def __init__(self, config, n_items, items=None) -> None:
        super().__init__(config, n_items, items)
        self.item_table = np.zeros((n_items, 0))
        self.user_ids = np.zeros(0, dtype=np.int64)
        self.user_demo = np.zeros((0, 0))
        self.log_pop = np.zeros(n_items)
        self.pop_weight = 0.0

    # -- tables ----------------------------------------------------------------------------------
    def start(self, data, rng: np.random.Generator) -> None:
        side = data.require_side(self.name)
        c = self.config
        pos = pd.Index(side.item_ids).get_indexer(np.asarray(data.prepared.items))
        if (pos < 0).any():
            raise UserError(f"{int((pos < 0).sum())} vocabulary items have no metadata")
        genres = side.genres[pos].astype(np.float64)
        genres /= np.maximum(genres.sum(axis=1, keepdims=True), 1.0)
        year = side.year[pos]
        known = np.isfinite(year)
        decades = np.arange(np.floor(np.nanmin(side.year) / 10), np.floor(np.nanmax(side.year) / 10) + 1) * 10
        dec = np.zeros((self.n_items, decades.size))
        dec[np.flatnonzero(known), np.searchsorted(decades, np.floor(year[known] / 10) * 10)] = 1.0
        self.item_table = np.hstack([c.genre_weight * genres, c.decade_weight * dec])
        occupations = np.unique(side.occupation)
        genders = np.array(["F", "M"])
        demo = np.zeros((side.user_ids.size, len(AGE_EDGES) + 1 + genders.size + occupations.size))
        rows = np.arange(side.user_ids.size)
        demo[rows, age_bucket(side.age)] = 1.0
        demo[rows, len(AGE_EDGES) + 1 + np.searchsorted(genders, side.gender)] = 1.0
        demo[rows, len(AGE_EDGES) + 1 + genders.size + np.searchsorted(occupations, side.occupation)] = 1.0
        self.user_ids = side.user_ids.astype(np.int64)
        self.user_demo = demo * (c.demo_weight / np.sqrt(3.0))
        self.log_pop = np.log1p(np.asarray(sp.csr_matrix(data.prepared.train).getnnz(axis=0), dtype=np.float64))

    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        best = None
        for w in POPULARITY_GRID:
            self.pop_weight = w
            res = evaluate(self.score, data.prepared.val_tr, data.prepared.val_te)
            ndcg = res["metrics"]["ndcg@100"]["mean"]
            if best is None or ndcg > best[1]:
                best = (w, ndcg)
        self.pop_weight = best[0]
        return {"popularity_weight": float(best[0])}

    def state_dict(self) -> dict:
        return {"item_table": torch.from_numpy(self.item_table.copy()), "user_ids": torch.from_numpy(self.user_ids.copy()),
                "user_demo": torch.from_numpy(self.user_demo.copy()), "log_pop": torch.from_numpy(self.log_pop.copy()),
                "pop_weight": float(self.pop_weight)}

    def load_state_dict(self, state: dict) -> None:
        self.item_table = state["item_table"].numpy().copy()
        self.user_ids = state["user_ids"].numpy().copy()
        self.user_demo = state["user_demo"].numpy().copy()
        self.log_pop = state["log_pop"].numpy().copy()
        self.pop_weight = float(state["pop_weight"])

    # -- inference -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.user_demo.shape[1] + self.item_table.shape[1])

    def demographics(self, users: np.ndarray | None, n: int) -> np.ndarray:
        """(n, demo dims) demographics block of raw user ids ``users``."""
        if users is None:
            raise UserError("the metadata model embeds users by their demographics: the raw user ids are needed")
        pos = pd.Index(self.user_ids).get_indexer(np.asarray(users).astype(np.int64))
        if (pos < 0).any():
            raise UserError(f"{int((pos < 0).sum())} users have no demographics in the metadata")
        return self.user_demo[pos]

    def _profiles(self, rows: sp.csr_matrix) -> np.ndarray:
        starts, lengths, items, _ = csr_parts(rows)
        return group_sums(starts, lengths, items, self.item_table) / np.maximum(lengths, 1)[:, None]

    def embed(self, rows: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        prof = self._profiles(rows)
        return np.hstack([self.demographics(users, prof.shape[0]), prof]).astype(np.float32)

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return (self._profiles(rows) @ self.item_table.T + self.pop_weight * self.log_pop[None, :]).astype(np.float32)

    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        if context.users is None:
            raise UserError("the metadata model embeds users by their demographics: the raw user ids are needed")
        prof = prefix_sums(batch, self.item_table) / batch.lengths[:, None].astype(np.float64)
        demo = self.demographics(np.asarray(context.users)[batch.owner], len(batch))
        return np.hstack([demo, prof]).astype(np.float32)

    def scores_from_embeddings(self, z, batch, context) -> np.ndarray:
        prof = np.asarray(z, np.float64)[:, self.user_demo.shape[1] :]
        return (prof @ self.item_table.T + self.pop_weight * self.log_pop[None, :]).astype(np.float32)

    def catalogue(self) -> Catalogue:
        vectors = np.hstack([np.zeros((self.n_items, self.user_demo.shape[1])), self.item_table])
        return Catalogue(ids=self.items, vectors=vectors.astype(np.float32),
                             bias=(self.pop_weight * self.log_pop).astype(np.float32),
                             metadata={"score": "user . vector + bias (bias = popularity_weight * log(1 + count))"})
