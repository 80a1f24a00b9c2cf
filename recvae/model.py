"""RecVAE as published (Shenbin et al., WSDM 2020): dense-residual encoder, composite prior, linear decoder.

Shapes: ``x`` is (batch, n_items) binary; latent codes are (batch, latent_dim).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

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
        return asdict(self)


def swish(a: torch.Tensor) -> torch.Tensor:
    return a * torch.sigmoid(a)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(z | mu, exp(logvar))."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """x / ||x||_2 per row; all-zero rows stay zero instead of becoming NaN."""
    norm = x.pow(2).sum(dim=-1, keepdim=True).sqrt()
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


class Encoder(nn.Module):
    """q(z | x): five dense-residual swish + LayerNorm layers, then mean and log-variance heads."""

    def __init__(self, cfg: RecVAEConfig) -> None:
        super().__init__()
        h = cfg.hidden_dim
        self.fc1 = nn.Linear(cfg.n_items, h)
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

    def forward(self, x: torch.Tensor, dropout_rate: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalize_rows(x)
        x = F.dropout(x, p=dropout_rate, training=self.training)
        return self.from_first_layer(self.fc1(x))

    def from_first_layer(self, a1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Finish the encoder from the first layer's pre-activation ``W1 x + b1``.

        Split out so that prefix embeddings can reuse running sums of ``W1`` columns.
        """
        h1 = self.ln1(swish(a1))
        h2 = self.ln2(swish(self.fc2(h1) + h1))
        h3 = self.ln3(swish(self.fc3(h2) + h1 + h2))
        h4 = self.ln4(swish(self.fc4(h3) + h1 + h2 + h3))
        h5 = self.ln5(swish(self.fc5(h4) + h1 + h2 + h3 + h4))
        return self.fc_mu(h5), self.fc_logvar(h5)


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

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Element-wise log p(z_d | x), shape like ``z``."""
        self.encoder_old.eval()
        with torch.no_grad():
            post_mu, post_logvar = self.encoder_old(x, 0.0)
        zeros = torch.zeros_like(z)
        stnd = log_normal(z, zeros, zeros) + self.log_weights[0]
        post = log_normal(z, post_mu, post_logvar) + self.log_weights[1]
        wide = log_normal(z, zeros, zeros + self.wide_logvar) + self.log_weights[2]
        return torch.logsumexp(torch.stack([stnd, post, wide], dim=-1), dim=-1)


class RecVAE(nn.Module):
    """Encoder, composite prior and linear decoder; ``forward`` returns logits and the loss terms."""

    def __init__(self, cfg: RecVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.prior = CompositePrior(cfg, self.encoder)
        self.decoder = nn.Linear(cfg.latent_dim, cfg.n_items)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Full-scale sampling while training, the mean otherwise."""
        if self.training:
            return mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return mu

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder mean with dropout off: the user embedding."""
        was = self.encoder.training
        self.encoder.eval()
        mu, _ = self.encoder(x, 0.0)
        self.encoder.train(was)
        return mu

    def forward(
        self, x: torch.Tensor, gamma: float = 0.005, dropout_rate: float = 0.5
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (logits, mean log-likelihood, mean beta-weighted KL); loss = kl - mll."""
        mu, logvar = self.encoder(x, dropout_rate)
        z = self.reparameterize(mu, logvar)
        logits = self.decoder(z)
        mll = (F.log_softmax(logits, dim=-1) * x).sum(dim=-1).mean()
        beta = gamma * x.sum(dim=-1)
        kl = (log_normal(z, mu, logvar) - self.prior.log_prob(x, z)).sum(dim=-1)
        return logits, mll, (beta * kl).mean()
