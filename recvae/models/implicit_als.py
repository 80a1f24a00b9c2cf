"""ALS for implicit feedback (Hu, Koren & Volinsky, ICDM 2008), trained by the `implicit` library.

The binary training matrix is the preference ``p_ui``; the confidence of an observed entry is
``alpha`` (implicit's convention: ``C = alpha * value``, unobserved entries weigh 1). One epoch is
one iteration of ``implicit``'s ALS (its conjugate-gradient solver by default), continuing from
the factors of the previous epoch; the library is used rather than a second hand-written ALS.

Fold-in (user embedding of any history) is the exact user step with the items fixed::

    x_u = (Y^T Y + (alpha - 1) sum_{i in u} y_i y_i^T + reg I)^{-1}  alpha sum_{i in u} y_i

computed here from running sums (:mod:`recvae.models.linalg`) for traces; it is tested against
``implicit``'s own ``recalculate_user``. Scores are ``x_u . y_i``: the item factors are the
catalogue, in the users' space.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

from recvae.errors import UserError
from recvae.models.base import HistoryContext, ModelConfig, Recommender, csr_parts
from recvae.models.linalg import group_grams, group_sums, map_chunks, prefix_grams, prefix_sums, ridge_solve
from recvae.trace.catalogue import Catalogue
from recvae.trace.prefix import PrefixBatch, user_aligned_chunks


@dataclass
class ImplicitALSConfig(ModelConfig):
    """Options passed to ``implicit.cpu.als.AlternatingLeastSquares``."""

    epochs: int = 15  # ALS iterations
    factors: int = 64
    reg: float = 0.05  # L2 weight ("regularization")
    alpha: float = 10.0  # confidence of an observed interaction
    use_cg: bool = True  # implicit's conjugate-gradient solver (False: exact Cholesky steps)
    threads: int = 0  # 0: all cores (results do not depend on it: users are solved independently)

    def validate(self) -> None:
        super().validate()
        if self.factors < 1 or self.reg <= 0 or self.alpha <= 0:
            raise UserError("factors must be >= 1, reg and alpha > 0")


class ImplicitALS(Recommender):
    name = "implicit-als"
    title = "ALS for implicit feedback (Hu et al. 2008), trained by the implicit library"
    Config = ImplicitALSConfig
    cpu_only = True
    embedding_description = "user factor x_u by exact fold-in (the implicit-ALS user step on the prefix), float32"

    def __init__(self, config, n_items, items=None) -> None:
        super().__init__(config, n_items, items)
        self.item_factors = np.zeros((n_items, config.factors), dtype=np.float32)
        self.user_factors: np.ndarray | None = None

    def _library_model(self, seed: int | None = None):
        """implicit's CPU model; its BLAS-threads warning is moot, :meth:`train_epoch` limits BLAS to one thread."""
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="OpenBLAS is configured", category=RuntimeWarning)
            return AlternatingLeastSquares(
                factors=c.factors, regularization=c.reg, alpha=c.alpha, iterations=1, use_cg=c.use_cg,
                calculate_training_loss=True, num_threads=c.threads, random_state=seed,
            )

    def start(self, data, rng: np.random.Generator) -> None:
        self._seed = int(rng.integers(2**31))
        self.user_factors = None
        self.item_factors = np.zeros((self.n_items, self.config.factors), dtype=np.float32)
        self._fresh = True

    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        lib = self._library_model(getattr(self, "_seed", 0))
        if not getattr(self, "_fresh", False):  # continue from the stored factors
            lib.user_factors = self.user_factors
            lib.item_factors = self.item_factors
        losses: list[float] = []
        train = sp.csr_matrix(data.prepared.train, dtype=np.float32)
        with threadpool_limits(1, "blas"):  # implicit parallelises over users itself
            lib.fit(train, show_progress=False, callback=lambda it, elapsed, loss: losses.append(float(loss)))
        self.user_factors, self.item_factors = np.asarray(lib.user_factors), np.asarray(lib.item_factors)
        self._fresh = False
        return {"loss": losses[-1] if losses else float("nan")}

    def training_state(self) -> dict:
        return {"user_factors": torch.from_numpy(np.asarray(self.user_factors, dtype=np.float32).copy())}

    def load_training_state(self, state: dict) -> None:
        self.user_factors = state["user_factors"].numpy().copy()
        self._fresh = False

    def state_dict(self) -> dict:
        return {"item_factors": torch.from_numpy(np.asarray(self.item_factors, dtype=np.float32).copy())}

    def load_state_dict(self, state: dict) -> None:
        self.item_factors = state["item_factors"].numpy().copy()

    # -- fold-in -------------------------------------------------------------------------------
    def _system(self) -> tuple[np.ndarray, np.ndarray]:
        y = self.item_factors.astype(np.float64)
        return y, y.T @ y

    def _solve(self, gram: np.ndarray, sums: np.ndarray, yty: np.ndarray) -> np.ndarray:
        a = self.config.alpha
        return ridge_solve(yty[None] + (a - 1.0) * gram, a * sums, self.config.reg)

    @property
    def dim(self) -> int:
        return int(self.config.factors)

    def embed(self, rows: sp.csr_matrix, users=None) -> np.ndarray:
        y, yty = self._system()
        starts, lengths, items, _ = csr_parts(rows)
        x = self._solve(group_grams(starts, lengths, items, y), group_sums(starts, lengths, items, y), yty)
        return x.astype(np.float32)

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        return self.embed(rows) @ self.item_factors.T

    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        y, yty = self._system()

        def chunk(lo: int, hi: int) -> np.ndarray:
            part = batch.slice(lo, hi)
            return self._solve(prefix_grams(part, y), prefix_sums(part, y), yty)

        out = np.empty((len(batch), self.dim), dtype=np.float32)
        return map_chunks(chunk, user_aligned_chunks(batch.owner, 2048), out)

    def scores_from_embeddings(self, z, batch, context) -> np.ndarray:
        return np.asarray(z, dtype=np.float32) @ self.item_factors.T

    def catalogue(self) -> Catalogue:
        return Catalogue(ids=self.items, vectors=self.item_factors.astype(np.float32), bias=None,
                             metadata={"score": "user . vector"})
