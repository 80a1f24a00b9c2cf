"""Mult-VAE against the paper's description: shapes, input normalisation and dropout, loss, KL annealing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recvae.errors import UserError
from recvae.model import SparseRows
from recvae.models.multvae import MultVAE, MultVAEConfig, MultVAENet, kl_weight, multvae_loss


def test_default_architecture_matches_the_paper():
    cfg = MultVAEConfig()
    assert (cfg.hidden_dim, cfg.latent_dim, cfg.dropout, cfg.lr, cfg.batch_size) == (600, 200, 0.5, 1e-3, 500)
    assert (cfg.anneal_cap, cfg.anneal_steps, cfg.epochs) == (0.2, 200_000, 200)
    n = 1000
    net = MultVAENet(n, 600, 200)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {"q1.weight": (600, n), "q1.bias": (600,), "q2.weight": (400, 600), "q2.bias": (400,),
                      "p1.weight": (600, 200), "p1.bias": (600,), "p2.weight": (n, 600), "p2.bias": (n,)}
    assert float(net.q1.bias.detach().std()) < 0.01  # biases N(0, 0.001^2), weights Xavier-uniform
    bound = math.sqrt(6.0 / (n + 600))
    assert float(net.q1.weight.detach().abs().max()) <= bound + 1e-6
    with pytest.raises(UserError):
        MultVAEConfig(dropout=1.0).validate()


def test_forward_is_tanh_mlp_on_the_normalised_row():
    torch.manual_seed(0)
    net = MultVAENet(30, 8, 3).eval()
    x = (torch.rand(4, 30) < 0.3).float()
    x[0, :3] = 1.0
    xn = x / x.norm(dim=1, keepdim=True)
    h = torch.tanh(xn @ net.q1.weight.T + net.q1.bias)
    out = h @ net.q2.weight.T + net.q2.bias
    mu, logvar = net.encode(x)
    torch.testing.assert_close(mu, out[:, :3])
    torch.testing.assert_close(logvar, out[:, 3:])
    logits, mu2, _ = net(x)
    torch.testing.assert_close(mu2, mu)  # eval mode: z = mu
    torch.testing.assert_close(logits, torch.tanh(mu @ net.p1.weight.T + net.p1.bias) @ net.p2.weight.T + net.p2.bias)
    sparse = SparseRows.from_scipy(sp.csr_matrix(x.numpy()))
    torch.testing.assert_close(net.encode(sparse)[0], mu, rtol=1e-5, atol=1e-6)


def test_dropout_acts_on_the_input_in_training_only():
    torch.manual_seed(0)
    net = MultVAENet(50, 16, 4)
    x = torch.ones(2, 50)
    net.eval()
    assert torch.equal(net.encode(x, 0.5)[0], net.encode(x, 0.5)[0])  # no dropout in eval mode
    net.train()
    a, b = net.encode(x, 0.5)[0], net.encode(x, 0.5)[0]
    assert not torch.equal(a, b)
    assert torch.equal(net.encode(x, 0.0)[0], net.eval().encode(x, 0.5)[0])  # p = 0: no dropout either


def test_loss_is_multinomial_nll_plus_weighted_analytic_kl():
    torch.manual_seed(1)
    x = (torch.rand(3, 10) < 0.4).float()
    logits, mu, logvar = torch.randn(3, 10), torch.randn(3, 4), torch.randn(3, 4)
    loss, nll, kl = multvae_loss(x, logits, mu, logvar, beta=0.3)
    ref_nll = -(F.log_softmax(logits, 1) * x).sum(1).mean()
    var = logvar.exp()
    ref_kl = (0.5 * (var + mu**2 - 1 - logvar)).sum(1).mean()  # KL(N(mu, var) || N(0, 1))
    torch.testing.assert_close(nll, ref_nll)
    torch.testing.assert_close(kl, ref_kl)
    torch.testing.assert_close(loss, ref_nll + 0.3 * ref_kl)


def test_kl_annealing_rises_linearly_to_the_cap():
    assert kl_weight(0, 0.2, 1000) == 0.0
    assert kl_weight(100, 0.2, 1000) == pytest.approx(0.1)
    assert kl_weight(200, 0.2, 1000) == pytest.approx(0.2)
    assert kl_weight(10_000, 0.2, 1000) == 0.2


def test_training_counts_updates_and_reports_the_annealed_beta():
    rng = np.random.default_rng(0)
    from recvae.models.data import ModelData
    from recvae.planted import make_planted

    data = ModelData(make_planted(200, 40, seed=1))
    model = MultVAE(MultVAEConfig(epochs=1, hidden_dim=8, latent_dim=2, batch_size=50, anneal_steps=8), 40)
    model.start(data, rng)
    out = model.train_epoch(data, rng)
    steps = math.ceil(data.prepared.train.shape[0] / 50)
    assert model.updates == steps and out["beta"] == pytest.approx(min(0.2, steps / 8))
