"""AutoRec: the loss counts observed ratings only; the hidden layer is the embedding."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recvae.model import SparseRows
from recvae.models.autorec import AutoRec, AutoRecNet, masked_loss


def test_masked_loss_ignores_unobserved_entries():
    torch.manual_seed(0)
    target = torch.randint(1, 6, (5, 12)).float()
    mask = torch.rand(5, 12) < 0.3
    pred = torch.randn(5, 12) + 3
    base = masked_loss(pred, target, mask)
    assert torch.isclose(base, ((pred - target)[mask] ** 2).sum())
    changed_target = torch.where(mask, target, torch.full_like(target, 100.0))
    changed_pred = torch.where(mask, pred, torch.randn_like(pred) * 50)
    assert torch.equal(masked_loss(changed_pred, changed_target, mask), base)
    flipped = mask.clone()
    flipped[0, int(torch.nonzero(~mask[0])[0, 0])] = True  # an extra observed entry does count
    assert not torch.equal(masked_loss(changed_pred, changed_target, flipped), base)


def test_gradient_of_an_unobserved_output_is_zero():
    torch.manual_seed(0)
    net = AutoRecNet(6, 3)
    ratings = sp.csr_matrix(np.array([[5, 0, 3, 0, 0, 1]], dtype=np.float32))
    pred = net(SparseRows.from_scipy(ratings))
    pred.retain_grad()
    target = torch.from_numpy(ratings.toarray())
    masked_loss(pred, target, target != 0).backward()
    assert (pred.grad[0, [1, 3, 4]] == 0).all() and (pred.grad[0, [0, 2, 5]] != 0).all()


def test_embedding_is_the_sigmoid_hidden_layer():
    torch.manual_seed(0)
    model = AutoRec(AutoRec.Config(hidden_dim=4), 6)
    rows = sp.csr_matrix(np.array([[5, 0, 3, 0, 0, 1], [0, 2, 0, 0, 4, 0]], dtype=np.float32))
    w, b = model.net.encoder.weight.detach().numpy(), model.net.encoder.bias.detach().numpy()
    ref = 1 / (1 + np.exp(-(rows.toarray() @ w.T + b)))
    np.testing.assert_allclose(model.embed(rows), ref, rtol=1e-5)
