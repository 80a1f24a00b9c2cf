"""Matrix factorisation of explicit ratings in PyTorch: Adam on the observed ratings with L2.

``r_ui ~ mu + b_u + b_i + p_u . q_i`` (``mu`` the mean of the fitted ratings, fixed). Each
mini-batch of observed ratings minimises::

    mean_batch [ (r_ui - r^_ui)^2 + reg * (|p_u|^2 + |q_i|^2) + bias_reg * (b_u^2 + b_i^2) ]

i.e. the regulariser is applied per observed rating (as SGD matrix factorisation does). The user
embedding of any history is the exact optimum of that objective for the user with the items
fixed: a ridge regression with penalty ``n_u * reg`` (``n_u * bias_reg`` for the bias), the same
fold-in solver as biased ALS (:class:`recvae.models.als.FoldIn` with ``per_rating=True``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recvae.errors import UserError
from recvae.models.als import FoldIn
from recvae.models.base import HistoryContext, ModelConfig, Recommender
from recvae.models.torchbase import cpu_state
from recvae.trace.catalogue import Catalogue
from recvae.trace.prefix import PrefixBatch
from recvae.training import adam


@dataclass
class MFConfig(ModelConfig):
    epochs: int = 30
    factors: int = 32
    lr: float = 5e-3
    batch_size: int = 1024  # ratings per Adam step
    reg: float = 0.05
    bias_reg: float = 0.01
    init_std: float = 0.1

    def validate(self) -> None:
        super().validate()
        if self.factors < 1 or self.lr <= 0 or self.batch_size < 1 or self.reg <= 0 or self.bias_reg <= 0:
            raise UserError("factors and batch_size must be >= 1; lr, reg and bias_reg > 0")


class MFNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, k: int, init_std: float) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, k)
        self.item = nn.Embedding(n_items, k)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        for e in (self.user, self.item):
            nn.init.normal_(e.weight, std=init_std)
        for e in (self.user_bias, self.item_bias):
            nn.init.zeros_(e.weight)


class TorchMF(Recommender):
    name = "mf"
    title = "biased matrix factorisation of explicit ratings, Adam + L2 in PyTorch"
    Config = MFConfig
    needs = frozenset({"ratings"})
    embedding_description = "user factor p_u by exact fold-in (the user's ridge optimum with the items fixed), float32"

    def __init__(self, config, n_items, items=None) -> None:
        super().__init__(config, n_items, items)
        self.mu = 0.0
        self.item_factors = np.zeros((n_items, config.factors))
        self.item_bias = np.zeros(n_items)
        self.net: MFNet | None = None
        self.opt = None

    def start(self, data, rng: np.random.Generator) -> None:
        r = data.require_ratings(self.name)
        self.mu = r.mean
        torch.manual_seed(int(rng.integers(2**62)))
        self.net = MFNet(r.fit.shape[0], self.n_items, self.config.factors, self.config.init_std).to(self.device)
        self.opt = None
        self._sync()

    def to(self, device) -> "TorchMF":
        super().to(device)
        if self.net is not None:
            self.net.to(self.device)
        return self

    def _optimizer(self):
        if self.opt is None:
            self.opt = adam(self.net.parameters(), self.config.lr)
        return self.opt

    def _sync(self) -> None:
        self.item_factors = self.net.item.weight.detach().double().cpu().numpy()
        self.item_bias = self.net.item_bias.weight.detach().double().cpu().numpy()[:, 0]

    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        fit = sp.coo_matrix(data.require_ratings(self.name).fit)
        users = torch.from_numpy(fit.row.astype(np.int64)).to(self.device)
        items = torch.from_numpy(fit.col.astype(np.int64)).to(self.device)
        target = torch.from_numpy(fit.data.astype(np.float32)).to(self.device)
        order = torch.from_numpy(rng.permutation(fit.nnz)).to(self.device)
        opt, net = self._optimizer(), self.net
        sq = 0.0
        for lo in range(0, fit.nnz, c.batch_size):
            idx = order[lo : lo + c.batch_size]
            u, i, r = users[idx], items[idx], target[idx]
            p, q = net.user(u), net.item(i)
            bu, bi = net.user_bias(u)[:, 0], net.item_bias(i)[:, 0]
            err = r - (self.mu + bu + bi + (p * q).sum(-1))
            loss = (err.pow(2) + c.reg * (p.pow(2).sum(-1) + q.pow(2).sum(-1)) + c.bias_reg * (bu.pow(2) + bi.pow(2))).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sq += float(err.detach().pow(2).sum())
        self._sync()
        return {"train_rmse": float(np.sqrt(sq / max(fit.nnz, 1)))}

    def training_state(self) -> dict:
        return {"optimizer": self._optimizer().state_dict(),
                "users": cpu_state(self.net)}

    def load_training_state(self, state: dict) -> None:
        users = state["users"]
        n_users = users["user.weight"].shape[0]
        self.net = MFNet(n_users, self.n_items, self.config.factors, self.config.init_std)
        self.net.load_state_dict(users)
        self.net.to(self.device)
        self.opt = None
        self._optimizer().load_state_dict(state["optimizer"])
        self._sync()

    def state_dict(self) -> dict:
        return {"mu": torch.tensor(self.mu, dtype=torch.float64),
                "item_bias": torch.from_numpy(self.item_bias.copy()),
                "item_factors": torch.from_numpy(self.item_factors.copy())}

    def load_state_dict(self, state: dict) -> None:
        self.mu = float(state["mu"])
        self.item_bias = state["item_bias"].numpy().astype(np.float64)
        self.item_factors = state["item_factors"].numpy().astype(np.float64)

    def fold_in(self) -> FoldIn:
        return FoldIn(self.mu, self.item_bias, self.item_factors, self.config.reg, self.config.bias_reg, per_rating=True)

    @property
    def dim(self) -> int:
        return int(self.config.factors)

    def embed(self, rows: sp.csr_matrix, users=None) -> np.ndarray:
        return self.fold_in().rows(rows)[:, 1:].astype(np.float32)

    def score(self, rows: sp.csr_matrix) -> np.ndarray:
        sol = self.fold_in().rows(rows)
        return (self.mu + sol[:, :1] + self.item_bias[None, :] + sol[:, 1:] @ self.item_factors.T).astype(np.float32)

    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        if context.values is None:
            raise UserError(f"model '{self.name}' folds users in from their ratings: none were given")
        return self.fold_in().prefixes(batch, context.values)[:, 1:].astype(np.float32)

    def scores_from_embeddings(self, z, batch, context) -> np.ndarray:
        return (self.item_bias[None, :] + np.asarray(z, np.float64) @ self.item_factors.T).astype(np.float32)

    def catalogue(self) -> Catalogue:
        return Catalogue(ids=self.items, vectors=self.item_factors.astype(np.float32),
                             bias=self.item_bias.astype(np.float32), metadata={"score": "user . vector + bias"})

    def predict(self, rows: sp.csr_matrix, targets: sp.csr_matrix) -> np.ndarray:
        sol = self.fold_in().rows(rows)
        t = sp.csr_matrix(targets)
        row = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
        col = t.indices
        return self.mu + sol[row, 0] + self.item_bias[col] + np.einsum("ij,ij->i", sol[row, 1:], self.item_factors[col])
