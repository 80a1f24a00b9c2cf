"""Mult-VAE (Liang et al., WWW 2018): the variational autoencoder with a multinomial likelihood RecVAE extends.

Architecture (paper / reference code): input ``x / ||x||_2`` (the binary row, L2-normalised),
inverted dropout 0.5 on the input while training, encoder ``[n_items -> 600 -> 2 x 200]`` with a
tanh hidden layer (the output split into ``mu`` and ``logvar``), decoder ``[200 -> 600 -> n_items]``
with tanh, weights Xavier-uniform and biases N(0, 0.001^2). Loss per batch::

    -mean_u sum_i x_ui log softmax(logits_u)_i + beta * mean_u KL(N(mu_u, e^logvar_u) || N(0, I))

with the analytic KL and ``beta = min(anneal_cap, updates / anneal_steps)`` (KL annealing: 0.2 and
200,000 updates in the reference code, ``beta`` taken before each update). Adam, lr 1e-3, batches
of 500 users, 200 epochs. The user embedding is ``mu`` (dropout off); its first layer is linear in
the normalised row, so prefix embeddings come from running sums of the first layer's columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recvae.errors import UserError
from recvae.model import Rows, SparseRows, as_input, normalize_rows, row_dot
from recvae.models.base import HistoryContext, ModelConfig, Recommender
from recvae.models.linalg import prefix_sums
from recvae.models.torchbase import batches, cpu_state
from recvae.trace.prefix import PrefixBatch, user_aligned_chunks
from recvae.training import adam


@dataclass
class MultVAEConfig(ModelConfig):
    """Mult-VAE hyper-parameters (reference-code defaults)."""

    epochs: int = 200
    hidden_dim: int = 600
    latent_dim: int = 200
    dropout: float = 0.5  # input dropout while training
    lr: float = 1e-3
    batch_size: int = 500
    weight_decay: float = 0.0  # L2 on the weights (the reference's lam = 0)
    anneal_cap: float = 0.2  # largest KL weight beta
    anneal_steps: int = 200_000  # updates over which beta rises linearly from 0 (until the cap)

    def validate(self) -> None:
        super().validate()
        checks = [
            (self.hidden_dim >= 1 and self.latent_dim >= 1, "hidden_dim and latent_dim must be >= 1"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.anneal_cap >= 0 and self.anneal_steps >= 1, "anneal_cap must be >= 0 and anneal_steps >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(msg)


def kl_weight(updates: int, cap: float, steps: int) -> float:
    """The KL annealing schedule: ``min(cap, updates / steps)``."""
    return min(float(cap), updates / float(steps))


class MultVAENet(nn.Module):
    """Encoder q(z | x) and decoder p(x | z); shapes (batch, n_items) -> (batch, latent) -> (batch, n_items)."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.latent = latent
        self.q1 = nn.Linear(n_items, hidden)
        self.q2 = nn.Linear(hidden, 2 * latent)
        self.p1 = nn.Linear(latent, hidden)
        self.p2 = nn.Linear(hidden, n_items)
        for layer in (self.q1, self.q2, self.p1, self.p2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)

    def encode(self, x: Rows, dropout: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (batch, latent); input dropout only in training mode."""
        if isinstance(x, SparseRows):
            x = x.normalized()
            x = x.with_values(F.dropout(x.values, p=dropout, training=self.training))
            a1 = x.matmul_t(self.q1.weight) + self.q1.bias
        else:
            a1 = self.q1(F.dropout(normalize_rows(x), p=dropout, training=self.training))
        return self.from_first_layer(a1)

    def from_first_layer(self, a1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.q2(torch.tanh(a1))
        return out[:, : self.latent], out[:, self.latent :]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.p2(torch.tanh(self.p1(z)))

    def forward(self, x: Rows, dropout: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, logvar); ``z`` is sampled in training mode, ``z = mu`` otherwise."""
        mu, logvar = self.encode(x, dropout)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar


def multvae_loss(x: Rows, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, mean negative log-likelihood, mean KL) of a batch."""
    nll = -row_dot(x, F.log_softmax(logits, dim=-1)).mean()
    kl = (0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0)).sum(dim=-1).mean()
    return nll + beta * kl, nll, kl


class MultVAE(Recommender):
    name = "multvae"
    title = "Mult-VAE (Liang et al. 2018): VAE with multinomial likelihood and KL annealing"
    Config = MultVAEConfig
    embedding_description = "encoder mean (mu), dropout off, float32"

    def __init__(self, config, n_items, items=None) -> None:
        super().__init__(config, n_items, items)
        self.net = MultVAENet(n_items, config.hidden_dim, config.latent_dim)
        self.opt: torch.optim.Optimizer | None = None
        self.updates = 0

    def to(self, device) -> "MultVAE":
        super().to(device)
        self.net.to(self.device)
        return self

    def _optimizer(self) -> torch.optim.Optimizer:
        if self.opt is None:
            self.opt = adam(self.net.parameters(), self.config.lr)
            if self.config.weight_decay:
                for g in self.opt.param_groups:
                    g["weight_decay"] = self.config.weight_decay
        return self.opt

    def start(self, data, rng: np.random.Generator) -> None:
        torch.manual_seed(int(rng.integers(2**62)))
        self.net = MultVAENet(self.n_items, self.config.hidden_dim, self.config.latent_dim).to(self.device)
        self.opt, self.updates = None, 0

    def train_epoch(self, data, rng: np.random.Generator) -> dict[str, float]:
        c = self.config
        train = sp.csr_matrix(data.prepared.train, dtype=np.float32)
        opt = self._optimizer()
        self.net.train()
        losses, nlls, kls = [], [], []
        for x in batches(train, rng.permutation(train.shape[0]), c.batch_size, self.device):
            beta = kl_weight(self.updates, c.anneal_cap, c.anneal_steps)
            opt.zero_grad(set_to_none=True)
            logits, mu, logvar = self.net(x, c.dropout)
            loss, nll, kl = multvae_loss(x, logits, mu, logvar, beta)
            loss.backward()
            opt.step()
            self.updates += 1
            losses.append(loss.item())
            nlls.append(nll.item())
            kls.append(kl.item())
        return {"loss": float(np.mean(losses)), "nll": float(np.mean(nlls)), "kl": float(np.mean(kls)),
                "beta": kl_weight(self.updates, c.anneal_cap, c.anneal_steps)}

    def training_state(self) -> dict:
        return {"optimizer": self._optimizer().state_dict(), "updates": self.updates}

    def load_training_state(self, state: dict) -> None:
        self._optimizer().load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])

    def state_dict(self) -> dict:
        return cpu_state(self.net)

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)

    @property
    def dim(self) -> int:
        return int(self.config.latent_dim)

    @torch.no_grad()
    def embed(self, rows: sp.csr_matrix, users=None) -> np.ndarray:
        self.net.eval()
        mu, _ = self.net.encode(as_input(sp.csr_matrix(rows, dtype=np.float32), self.device))
        return mu.float().cpu().numpy()

    @torch.no_grad()
    def score(self, rows: sp.csr_matrix) -> torch.Tensor:
        self.net.eval()
        mu, _ = self.net.encode(as_input(sp.csr_matrix(rows, dtype=np.float32), self.device))
        return self.net.decode(mu)

    @torch.no_grad()
    def embed_prefixes(self, batch: PrefixBatch, context: HistoryContext) -> np.ndarray:
        self.net.eval()
        w1t = self.net.q1.weight.detach().T.double().cpu().numpy()  # (n_items, hidden): item columns of W1
        b1 = self.net.q1.bias.detach().double().cpu().numpy()
        out = np.empty((len(batch), self.dim), dtype=np.float32)
        for lo, hi in user_aligned_chunks(batch.owner, 4096):
            part = batch.slice(lo, hi)
            a1 = prefix_sums(part, w1t) / np.sqrt(part.lengths.astype(np.float64))[:, None] + b1
            mu, _ = self.net.from_first_layer(torch.from_numpy(a1.astype(np.float32)).to(self.device))
            out[lo:hi] = mu.cpu().numpy()
        return out

    @torch.no_grad()
    def scores_from_embeddings(self, z, batch, context) -> torch.Tensor:
        self.net.eval()
        return self.net.decode(torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device)).cpu()
