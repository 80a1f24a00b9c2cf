"""RecVAE as published (Shenbin et al., WSDM 2020): dense-residual encoder, composite prior, linear decoder.

Shapes: ``x`` is (batch, n_items) binary, given either as a dense tensor or as :class:`SparseRows`
(a CSR batch, so that the first layer costs O(nnz * hidden) instead of O(batch * n_items * hidden)
and no dense user-by-item block is ever built for the input). Latent codes are (batch, latent_dim);
logits are (batch, n_items).

Both input forms compute the same function; ``tests/recvae/test_model_*.py`` checks them against
each other and the composite prior against a direct scipy computation.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Union

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class RecVAEConfig:
    """Architecture hyper-parameters (paper defaults)."""

    n_items: int
    hidden_dim: int = 600  # width of the five dense-residual layers
    latent_dim: int = 200  # K, the embedding dimension
    ln_eps: float = 0.1  # LayerNorm epsilon used by the reference model
    prior_weights: tuple[float, float, float] = (0.15, 0.75, 0.10)  # N(0,1), frozen posterior, wide
    wide_logvar: float = 10.0  # the wide component is N(0, e^10)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["prior_weights"] = list(self.prior_weights)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RecVAEConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "prior_weights" in kw:
            kw["prior_weights"] = tuple(float(w) for w in kw["prior_weights"])
        return cls(**kw)


class SparseRows:
    """A batch of binary rows in CSR form on one device; the model's sparse input.

    ``indptr`` (batch + 1,) int64, ``indices`` (nnz,) int64 column ids, ``values`` (nnz,) float32.
    """

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, n_cols: int) -> None:
        self.indptr = indptr
        self.indices = indices
        self.values = values
        self.n_cols = int(n_cols)
        counts = indptr[1:] - indptr[:-1]
        #: Row id of every stored entry, (nnz,).
        self.row_ids = torch.repeat_interleave(torch.arange(counts.numel(), device=indptr.device), counts)

    @classmethod
    def from_scipy(cls, m: sp.csr_matrix, device: torch.device | str = "cpu") -> "SparseRows":
        m = sp.csr_matrix(m)
        if not m.has_canonical_format:  # duplicates would be summed by one op and not another
            m = m.copy()
            m.sum_duplicates()
        return cls(
            torch.from_numpy(m.indptr.astype(np.int64)).to(device),
            torch.from_numpy(m.indices.astype(np.int64)).to(device),
            torch.from_numpy(m.data.astype(np.float32)).to(device),
            m.shape[1],
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.indptr.numel() - 1, self.n_cols)

    @property
    def device(self) -> torch.device:
        return self.values.device

    def with_values(self, values: torch.Tensor) -> "SparseRows":
        out = copy.copy(self)
        out.values = values
        return out

    def row_sums(self) -> torch.Tensor:
        """(batch,) sum of each row."""
        out = torch.zeros(self.shape[0], dtype=self.values.dtype, device=self.device)
        return out.index_add_(0, self.row_ids, self.values)

    def row_dot(self, dense: torch.Tensor) -> torch.Tensor:
        """(batch,) ``sum_j x_ij * dense_ij`` for a dense (batch, n_cols) tensor; differentiable in ``dense``."""
        picked = dense[self.row_ids, self.indices] * self.values
        out = torch.zeros(self.shape[0], dtype=dense.dtype, device=dense.device)
        return out.index_add(0, self.row_ids, picked)

    def normalized(self) -> "SparseRows":
        """Each row divided by its L2 norm; empty rows stay empty."""
        norms = torch.zeros(self.shape[0], dtype=self.values.dtype, device=self.device)
        norms = norms.index_add_(0, self.row_ids, self.values.pow(2)).sqrt()
        norms = torch.where(norms > 0, norms, torch.ones_like(norms))  # rows of explicit zeros
        return self.with_values(self.values / norms[self.row_ids])

    def matmul_t(self, weight: torch.Tensor) -> torch.Tensor:
        """``x @ weight.T`` for ``weight`` of shape (out, n_cols): (batch, out), differentiable in ``weight``."""
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is stable
            warnings.simplefilter("ignore", UserWarning)
            csr = torch.sparse_csr_tensor(self.indptr, self.indices, self.values, self.shape, check_invariants=False)
        return torch.sparse.mm(csr, weight.t())

    def to_dense(self) -> torch.Tensor:
        out = torch.zeros(self.shape, dtype=self.values.dtype, device=self.device)
        out[self.row_ids, self.indices] = self.values
        return out


Rows = Union[torch.Tensor, SparseRows]
#: Supplies the affine map of an encoder layer by name (see :meth:`Encoder.hidden`).
Linear = Callable[[str], Callable[[torch.Tensor], torch.Tensor]]


def as_input(m: sp.csr_matrix, device: torch.device | str = "cpu") -> Rows:
    """A CSR batch as model input on ``device``: sparse on the CPU, densified on the GPU.

    The batch always travels as CSR; on a GPU one dense (batch, n_items) block is cheap and the
    dense GEMM is the fastest first layer, on the CPU the sparse product is (see
    ``benchmarks/train_speed.py``).
    """
    rows = SparseRows.from_scipy(m, device)
    return rows.to_dense() if rows.device.type == "cuda" else rows


def swish(a: torch.Tensor) -> torch.Tensor:
    return a * torch.sigmoid(a)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(z | mu, exp(logvar))."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """x / ||x||_2 per row; all-zero rows stay zero instead of becoming NaN."""
    norm = x.pow(2).sum(dim=-1, keepdim=True).sqrt()
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def row_sums(x: Rows) -> torch.Tensor:
    """(batch,) number of items of each row (sum of the row)."""
    return x.row_sums() if isinstance(x, SparseRows) else x.sum(dim=-1)


def row_dot(x: Rows, dense: torch.Tensor) -> torch.Tensor:
    """(batch,) ``sum_i x_ui * dense_ui``."""
    return x.row_dot(dense) if isinstance(x, SparseRows) else (x * dense).sum(dim=-1)


class Encoder(nn.Module):
    """q(z | x): five dense-residual swish + LayerNorm layers, then mean and log-variance heads."""

    def __init__(self, cfg: RecVAEConfig) -> None:
        super().__init__()
        h = cfg.hidden_dim
        self.fc1 = nn.Linear(cfg.n_items, h)
        # Same (hidden, n_items) parameter, stored item-major (strides (1, hidden)): a sparse
        # batch then reads whole contiguous item rows of W1^T, and W1.t() costs no copy.
        self.fc1.weight = nn.Parameter(self.fc1.weight.detach().t().contiguous().t())
        self.fc2 = nn.Linear(h, h)
        self.fc3 = nn.Linear(h, h)
        self.fc4 = nn.Linear(h, h)
        self.fc5 = nn.Linear(h, h)
        self.ln1 = nn.LayerNorm(h, eps=cfg.ln_eps)
        self.ln2 = nn.LayerNorm(h, eps=cfg.ln_eps)
        self.ln3 = nn.LayerNorm(h, eps=cfg.ln_eps)
        self.ln4 = nn.LayerNorm(h, eps=cfg.ln_eps)
        self.ln5 = nn.LayerNorm(h, eps=cfg.ln_eps)
        self.fc_mu = nn.Linear(h, cfg.latent_dim)
        self.fc_logvar = nn.Linear(h, cfg.latent_dim)

    def forward(self, x: Rows, dropout_rate: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (batch, latent_dim). Input dropout applies only in training mode."""
        if isinstance(x, SparseRows):
            # Inverted dropout on the stored entries only: zeros stay zero either way.
            x = x.normalized()
            x = x.with_values(F.dropout(x.values, p=dropout_rate, training=self.training))
            a1 = x.matmul_t(self.fc1.weight) + self.fc1.bias
        else:
            x = normalize_rows(x)
            x = F.dropout(x, p=dropout_rate, training=self.training)
            a1 = self.fc1(x)
        return self.from_first_layer(a1)

    def from_first_layer(self, a1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Finish the encoder from the first layer's pre-activation ``W1 x + b1``.

        Split out so that prefix embeddings can reuse running sums of ``W1`` columns.
        """
        h5 = self.hidden(a1)
        return self.fc_mu(h5), self.fc_logvar(h5)

    def hidden(self, a1: torch.Tensor, linear: Linear | None = None) -> torch.Tensor:
        """The last hidden layer ``h5`` (batch, hidden) from the first layer's pre-activation.

        The encoder chain, written once. ``linear(name)`` supplies the affine map of the layer
        ``name`` (``"fc2"`` ... ``"fc5"``); the default is the layer itself. The incremental
        trace embedder passes BLAS-backed equivalents of the same weights.
        """
        fc2, fc3, fc4, fc5 = (linear(n) if linear else getattr(self, n) for n in ("fc2", "fc3", "fc4", "fc5"))
        h1 = self.ln1(swish(a1))
        h2 = self.ln2(swish(fc2(h1) + h1))
        h3 = self.ln3(swish(fc3(h2) + h1 + h2))
        h4 = self.ln4(swish(fc4(h3) + h1 + h2 + h3))
        return self.ln5(swish(fc5(h4) + h1 + h2 + h3 + h4))


class CompositePrior(nn.Module):
    """p(z) = 0.15 N(0, 1) + 0.75 q_old(z | x) + 0.10 N(0, e^10), per latent coordinate.

    ``q_old`` is a frozen copy of the encoder, refreshed by :meth:`refresh` after each encoder phase.
    """

    def __init__(self, cfg: RecVAEConfig, encoder: Encoder) -> None:
        super().__init__()
        self.register_buffer("log_weights", torch.tensor(cfg.prior_weights).log())
        self.wide_logvar = cfg.wide_logvar
        self.encoder_old = copy.deepcopy(encoder)
        self.encoder_old.requires_grad_(False)

    @torch.no_grad()
    def refresh(self, encoder: Encoder) -> None:
        self.encoder_old.load_state_dict(encoder.state_dict())

    def log_prob(self, x: Rows, z: torch.Tensor) -> torch.Tensor:
        """Element-wise log p(z_d | x), shape like ``z``."""
        self.encoder_old.eval()
        with torch.no_grad():
            post_mu, post_logvar = self.encoder_old(x, 0.0)
        return self.log_prob_given(z, post_mu, post_logvar)

    def log_prob_given(self, z: torch.Tensor, post_mu: torch.Tensor, post_logvar: torch.Tensor) -> torch.Tensor:
        """Element-wise mixture log-density for a given frozen-posterior (mu, logvar)."""
        zeros = torch.zeros_like(z)
        stnd = log_normal(z, zeros, zeros) + self.log_weights[0]
        post = log_normal(z, post_mu, post_logvar) + self.log_weights[1]
        wide = log_normal(z, zeros, zeros + self.wide_logvar) + self.log_weights[2]
        return torch.logsumexp(torch.stack([stnd, post, wide], dim=-1), dim=-1)


class RecVAE(nn.Module):
    """Encoder, composite prior and linear decoder.

    Trainable parameters are the encoder's and the decoder's; the prior's frozen encoder copy is
    part of the state dict (it is needed to resume training) but not trainable.
    """

    def __init__(self, cfg: RecVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.prior = CompositePrior(cfg, self.encoder)
        self.decoder = nn.Linear(cfg.latent_dim, cfg.n_items)

    def n_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Full-scale sampling while training, the mean otherwise."""
        if self.training:
            return mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return mu

    @torch.no_grad()
    def embed(self, x: Rows) -> torch.Tensor:
        """Encoder mean with dropout off: the user embedding, (batch, latent_dim)."""
        was = self.encoder.training
        self.encoder.eval()
        try:
            mu, _ = self.encoder(x, 0.0)
        finally:
            self.encoder.train(was)
        return mu

    @torch.no_grad()
    def score(self, x: Rows) -> torch.Tensor:
        """Decoder logits for ``z = mu`` (evaluation scores), (batch, n_items)."""
        return self.decoder(self.embed(x))

    def forward(
        self, x: Rows, gamma: float = 0.005, dropout_rate: float = 0.5
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (logits, mean log-likelihood, mean beta-weighted KL); the loss is ``kl - mll``.

        ``beta_u = gamma * |x_u|``; the KL is the one-sample estimate
        ``sum_d [log q(z_d | x) - log p(z_d | x)]`` at the sampled ``z``.
        """
        mu, logvar = self.encoder(x, dropout_rate)
        z = self.reparameterize(mu, logvar)
        logits = self.decoder(z)
        mll = row_dot(x, F.log_softmax(logits, dim=-1)).mean()
        beta = gamma * row_sums(x)
        kl = (log_normal(z, mu, logvar) - self.prior.log_prob(x, z)).sum(dim=-1)
        return logits, mll, (beta * kl).mean()

    def reconstruction(self, x: Rows) -> torch.Tensor:
        """Mean log-likelihood with the encoder held fixed (no gradient to it, no input dropout).

        This is the decoder phase's objective: the KL term does not depend on the decoder, so
        its gradient for the decoder equals that of the full loss with dropout 0.
        """
        with torch.no_grad():
            mu, logvar = self.encoder(x, 0.0)
            z = self.reparameterize(mu, logvar)
        return row_dot(x, F.log_softmax(self.decoder(z), dim=-1)).mean()
