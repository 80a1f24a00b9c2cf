"""AutoRec (Sedhain et al., WWW 2015), user-based: a one-hidden-layer autoencoder of a user's ratings.

``h = sigmoid(V r_u + b)`` (hidden width 500), ``r^_u = W h + c``; the loss counts observed
ratings only::

    sum_u sum_{i observed in u} (r_ui - r^_ui)^2 + (reg / 2) (|W|_F^2 + |V|_F^2)

(unobserved entries are 0 in the input and ignored by the loss; :func:`masked_loss`). Trained
with Adam over mini-batches of users, each batch weighing the regulariser by its share of users so
that an epoch sums to the objective. The user embedding is the hidden layer ``h``; ``V r`` is
linear in the ratings, so prefix embeddings come from running rating-weighted sums of ``V``'s
columns. Item vectors in the same space: the rows of ``W`` (score = ``h . W_i + c_i``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recvae.errors import UserError
from recvae.model import SparseRows
from recvae.models.base import HistoryContext, ModelConfig, Recommender
from recvae.models.linalg import prefix_sums
from recvae.models.torchbase import cpu_state, dense_rows
from recvae.trace.catalogue import Catalogue
from recvae.trace.prefix import PrefixBatch, user_aligned_chunks
from recvae.training import adam


@dataclass
class AutoRecConfig(ModelConfig):
    epochs: int = 50
    hidden_dim: int = 500
    lr: float = 1e-3
    batch_size: int = 64  # users per Adam step
    reg: float = 1.0  # lambda of the (reg / 2) |W|^2 + |V|^2 penalty

    def validate(self) -> None:
        super().validate()
        if self.hidden_dim < 1 or self.batch_size < 1 or self.lr <= 0 or self.reg < 0:
            raise UserError("hidden_dim and batch_size must be >= 1, lr > 0, reg >= 0")


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over observed entries (``mask`` true) of the squared error; other entries do not count."""
    return torch.where(mask, pred - target, torch.zeros((), dtype=pred.dtype, device=pred.device)).pow(2).sum()


class AutoRecNet(nn.Module):
    def __init__(self, n_items: int, hidden: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(n_items, hidden)  # V, b
        self.decoder = nn.Linear(hidden, n_items)  # W, c

    def hidden(self, r: SparseRows) -> torch.Tensor:
        return torch.sigmoid(r.matmul_t(self.encoder.weight) + self.encoder.bias)

    def forward(self, r: SparseRows) -> torch.Tensor:
        return self.decoder(self.hidden(r))


class AutoRec(Recommender):
    name = "autorec"
    title = "U-AutoRec (Sedhain et al. 2015): autoencoder of a user's ratings, loss on observed entries"
    Config = AutoRecConfig
    needs = frozenset({"ratings"})
    embedding_description = "hidden layer sigmoid(V r + b) of the prefix's rating vector, float32"

    def __init__(self, config, n_items, items=None) -> None:
        super().__init__(config, n_items, items)
        self.net = AutoRecNet(n_items, config.hidden_dim)
        self.opt = None

    def to(self, device) -> "AutoRec":
        super().to(device)
        self.net.to(self.device)
        return self

    def _optimizer(self):
        if self.opt is None:
            self.opt = adam(self.net.parameters(), self.config.lr)
        return self.opt

    def start(self, data, rng: np.random.Generator) -> None:
        data.require_ratings(self.name)
        torch.manual_seed(int(rng.integers(2**62)))
        self.net = AutoRecNet(self.n_items, self.config.hidden_dim).to(self.device)
        self.opt = None

    def _rows(self, rows: sp.csr_matrix) -> SparseRows:
        return SparseRows.from_scipy(sp.csr_matrix(rows, dtype=np.float32), self.device)

    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        fit = sp.csr_matrix(data.require_ratings(self.name).fit, dtype=np.float32)
        n_users = fit.shape[0]
        opt, net = self._optimizer(), self.net
        net.train()
        sq, nnz = 0.0, 0
        order = rng.permutation(n_users)
        for lo in range(0, n_users, c.batch_size):
            part = fit[order[lo : lo + c.batch_size]]
            r = self._rows(part)
            target = dense_rows(part, self.device)
            pred = net(r)
            sse = masked_loss(pred, target, target != 0)
            penalty = 0.5 * c.reg * (net.encoder.weight.pow(2).sum() + net.decoder.weight.pow(2).sum())
            loss = sse / part.shape[0] + penalty / n_users
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sq += float(sse.detach())
            nnz += part.nnz
        return {"train_rmse": float(np.sqrt(sq / max(nnz, 1)))}

    def training_state(self) -> dict:
        return {"optimizer": self._optimizer().state_dict()}

    def load_training_state(self, state: dict) -> None:
        self._optimizer().load_state_dict(state["optimizer"])

    def state_dict(self) -> dict:
        return cpu_state(self.net)

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)

    @property
    def dim(self) -> int:
        return int(self.config.hidden_dim)

    @torch.no_grad()
    def embed(self, rows: sp.csr_matrix, users=None) -> np.ndarray:
        self.net.eval()
        return self.net.hidden(self._rows(rows)).cpu().numpy()

    @torch.no_grad()
    def score(self, rows: sp.csr_matrix) -> torch.Tensor:
        self.net.eval()
        return self.net(self._rows(rows))

    @torch.no_grad()
    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        if context.values is None:
            raise UserError(f"model '{self.name}' embeds rating vectors: no ratings were given")
        vt = self.net.encoder.weight.detach().T.double().cpu().numpy()  # (n_items, hidden)
        b = self.net.encoder.bias.detach().double().cpu().numpy()
        out = np.empty((len(batch), self.dim), dtype=np.float32)
        for lo, hi in user_aligned_chunks(batch.owner, 4096):
            part = batch.slice(lo, hi)
            a = prefix_sums(part, vt, context.values) + b
            out[lo:hi] = (1.0 / (1.0 + np.exp(-a))).astype(np.float32)
        return out

    @torch.no_grad()
    def scores_from_embeddings(self, z, batch, context) -> torch.Tensor:
        return self.net.decoder(torch.as_tensor(np.asarray(z, np.float32), device=self.device)).cpu()

    def catalogue(self) -> Catalogue:
        return Catalogue(ids=self.items, vectors=self.net.decoder.weight.detach().float().cpu().numpy(),
                             bias=self.net.decoder.bias.detach().float().cpu().numpy(),
                             metadata={"score": "user . vector + bias (the decoder's rows)"})

    @torch.no_grad()
    def predict(self, rows: sp.csr_matrix, targets: sp.csr_matrix) -> np.ndarray:
        self.net.eval()
        t = sp.csr_matrix(targets)
        out = []
        for lo in range(0, t.shape[0], 1024):
            pred = self.net(self._rows(sp.csr_matrix(rows)[lo : lo + 1024])).cpu().numpy()
            part = t[lo : lo + 1024]
            row = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
            out.append(pred[row, part.indices])
        return np.concatenate(out) if out else np.zeros(0)
