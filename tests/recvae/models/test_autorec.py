"""AutoRec: the loss counts observed ratings only; the hidden layer is the embedding.

The training path computes predictions at the observed entries only and adds the penalty's
gradient in place; the oracle here is the plain statement of the objective: the dense forward
pass, a masked squared error and the L2 penalty, differentiated by autograd.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recvae.model import SparseRows
from recvae.models.autorec import AutoRec, AutoRecNet, batch_gradients


def dense_objective(net: AutoRecNet, ratings: sp.csr_matrix, n_users: int, reg: float) -> torch.Tensor:
    """The batch's share of the objective, written out densely (reference)."""
    target = torch.from_numpy(ratings.toarray())
    pred = net(SparseRows.from_scipy(ratings))
    sse = torch.where(target != 0, pred - target, torch.zeros(())).pow(2).sum()
    penalty = 0.5 * reg * (net.encoder_weight.pow(2).sum() + net.decoder.weight.pow(2).sum())
    return sse / ratings.shape[0] + penalty / n_users


def _ratings(seed: int, users: int = 7, items: int = 15, density: float = 0.3) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 6, size=(users, items)) * (rng.random((users, items)) < density)
    dense[-1] = 0  # a user with no ratings in the batch
    dense[:, 0] = 0  # an item nobody in the batch rated
    return sp.csr_matrix(dense.astype(np.float32))


def test_observed_predictions_are_the_dense_outputs_at_the_stored_entries():
    torch.manual_seed(0)
    net = AutoRecNet(15, 4)
    ratings = _ratings(1)
    r = SparseRows.from_scipy(ratings)
    coo = ratings.tocoo()
    dense = net(r).detach().numpy()
    np.testing.assert_allclose(net.observed(r).detach().numpy(), dense[coo.row, coo.col], rtol=1e-5, atol=1e-7)


def test_batch_gradients_equal_the_dense_objective():
    """Every parameter's gradient (penalty included) equals autograd of the plain objective."""
    for seed in range(3):
        torch.manual_seed(seed)
        net = AutoRecNet(15, 4)
        ratings = _ratings(seed)
        batch_gradients(net, SparseRows.from_scipy(ratings), n_users=40, reg=0.7)
        got = {n: p.grad.clone() for n, p in net.named_parameters()}
        net.zero_grad(set_to_none=True)
        dense_objective(net, ratings, 40, 0.7).backward()
        for n, p in net.named_parameters():
            torch.testing.assert_close(got[n], p.grad, rtol=1e-5, atol=1e-6, msg=n)
        assert got["item_in"][np.setdiff1d(np.arange(15), ratings.indices)].abs().sum() > 0  # the penalty's part


def test_gradient_of_an_unrated_item_is_the_penalty_only():
    torch.manual_seed(0)
    net = AutoRecNet(6, 3)
    ratings = sp.csr_matrix(np.array([[5, 0, 3, 0, 0, 1]], dtype=np.float32))
    batch_gradients(net, SparseRows.from_scipy(ratings), n_users=10, reg=0.5)
    for unrated in (1, 3, 4):
        torch.testing.assert_close(net.decoder.weight.grad[unrated], 0.05 * net.decoder.weight[unrated].detach())
        assert net.decoder.bias.grad[unrated] == 0
    assert (net.decoder.bias.grad[[0, 2, 5]] != 0).all()


def test_embedding_is_the_sigmoid_hidden_layer():
    torch.manual_seed(0)
    model = AutoRec(AutoRec.Config(hidden_dim=4), 6)
    rows = sp.csr_matrix(np.array([[5, 0, 3, 0, 0, 1], [0, 2, 0, 0, 4, 0]], dtype=np.float32))
    state = model.state_dict()
    w, b = state["encoder.weight"].numpy(), state["encoder.bias"].numpy()
    assert w.shape == (4, 6)  # nn.Linear's layout in checkpoints
    ref = 1 / (1 + np.exp(-(rows.toarray() @ w.T + b)))
    np.testing.assert_allclose(model.embed(rows), ref, rtol=1e-5)


def test_state_round_trips_in_linear_layout_and_old_optimizer_states_load():
    torch.manual_seed(0)
    a = AutoRec(AutoRec.Config(hidden_dim=3, lr=0.1), 5)
    ratings = _ratings(2, users=4, items=5, density=0.6)
    opt = a._optimizer()
    opt.zero_grad()
    batch_gradients(a.net, SparseRows.from_scipy(ratings), 4, 1.0)
    opt.step()
    b = AutoRec(AutoRec.Config(hidden_dim=3, lr=0.1), 5)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.embed(ratings), a.embed(ratings))
    old = a.training_state()
    moments = old["optimizer"]["state"][0]  # item_in's: stored as nn.Linear's (hidden, n_items) before
    old = {"optimizer": {**old["optimizer"], "state": {**old["optimizer"]["state"], 0: {
        **moments, "exp_avg": moments["exp_avg"].t().clone(), "exp_avg_sq": moments["exp_avg_sq"].t().clone()}}}}
    b.load_training_state(old)
    torch.testing.assert_close(b.opt.state[b.net.item_in]["exp_avg"], a.opt.state[a.net.item_in]["exp_avg"])
