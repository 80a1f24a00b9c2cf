"""RecVAE model: architecture, composite prior, loss terms, sparse vs dense input, NaN safety."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from scipy.special import log_softmax, logsumexp

from recvae.model import CompositePrior, Encoder, RecVAE, RecVAEConfig, SparseRows, as_input, log_normal, swish


def small_model(n_items: int = 50, seed: int = 0) -> RecVAE:
    torch.manual_seed(seed)
    return RecVAE(RecVAEConfig(n_items=n_items, hidden_dim=24, latent_dim=8))


def random_rows(n_rows: int, n_items: int, density: float = 0.2, seed: int = 0, empty: tuple[int, ...] = ()) -> sp.csr_matrix:
    m = sp.random(n_rows, n_items, density=density, format="lil", random_state=seed)
    for r in empty:
        m[r, :] = 0
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    m.data[:] = 1.0
    return m.astype(np.float32)


def test_parameter_count_at_ml20m_width():
    model = RecVAE(RecVAEConfig(n_items=20_108))
    assert model.n_trainable() == 17_795_908
    assert sum(p.numel() for p in model.encoder.parameters()) == 13_754_200
    assert sum(p.numel() for p in model.decoder.parameters()) == 4_041_708
    # the prior's frozen copy is in the state dict but not trainable
    assert all(not p.requires_grad for p in model.prior.encoder_old.parameters())


def test_state_dict_layout_is_the_plain_linear_one():
    model = small_model(n_items=30)
    sd = model.state_dict()
    assert sd["encoder.fc1.weight"].shape == (24, 30)
    assert sd["decoder.weight"].shape == (30, 8)
    assert {k.split(".")[0] for k in sd} == {"encoder", "prior", "decoder"}
    # a plain, contiguous copy loads back and gives the same function
    other = small_model(n_items=30, seed=1)
    other.load_state_dict({k: v.contiguous().clone() for k, v in sd.items()})
    x = torch.from_numpy(random_rows(4, 30).toarray())
    assert torch.equal(other.embed(x), model.embed(x))


def test_encoder_matches_the_written_out_equations():
    model = small_model()
    enc = model.encoder
    x = torch.from_numpy(random_rows(5, 50, seed=3).toarray())
    xn = x / x.norm(dim=1, keepdim=True)

    def ln(i, a):
        return getattr(enc, f"ln{i}")(a)

    h1 = ln(1, swish(enc.fc1(xn)))
    h2 = ln(2, swish(enc.fc2(h1) + h1))
    h3 = ln(3, swish(enc.fc3(h2) + h1 + h2))
    h4 = ln(4, swish(enc.fc4(h3) + h1 + h2 + h3))
    h5 = ln(5, swish(enc.fc5(h4) + h1 + h2 + h3 + h4))
    mu, logvar = enc.eval()(x)
    torch.testing.assert_close(mu, enc.fc_mu(h5))
    torch.testing.assert_close(logvar, enc.fc_logvar(h5))
    assert all(getattr(enc, f"ln{i}").eps == 0.1 for i in range(1, 6))


def test_composite_prior_matches_scipy():
    rng = np.random.default_rng(0)
    cfg = RecVAEConfig(n_items=10, hidden_dim=8, latent_dim=6)
    prior = CompositePrior(cfg, Encoder(cfg))
    z = rng.normal(scale=3.0, size=(7, 6))
    mu = rng.normal(size=(7, 6))
    logvar = rng.normal(scale=2.0, size=(7, 6))
    got = prior.log_prob_given(*(torch.tensor(a, dtype=torch.float64) for a in (z, mu, logvar))).numpy()
    dens = (
        0.15 * stats.norm.pdf(z, 0.0, 1.0)
        + 0.75 * stats.norm.pdf(z, mu, np.exp(logvar / 2))
        + 0.10 * stats.norm.pdf(z, 0.0, np.exp(10.0 / 2))
    )
    np.testing.assert_allclose(got, np.log(dens), rtol=1e-6)  # mixture weights are float32
    # far in the tail the mixture is dominated by the wide component, and stays finite
    far = prior.log_prob_given(torch.full((1, 6), 200.0, dtype=torch.float64), torch.zeros(1, 6, dtype=torch.float64), torch.zeros(1, 6, dtype=torch.float64))
    np.testing.assert_allclose(far.numpy(), np.log(0.10) + stats.norm.logpdf(200.0, 0.0, np.exp(5.0)), rtol=1e-6)


def test_prior_uses_the_frozen_encoder_and_refresh_copies_it():
    model = small_model()
    x = torch.from_numpy(random_rows(3, 50, seed=1).toarray())
    z = torch.randn(3, 8)
    with torch.no_grad():
        model.encoder.fc_mu.bias.add_(1.0)  # the live encoder moves on; the prior must not see it
    mu_old, lv_old = model.prior.encoder_old.eval()(x)
    torch.testing.assert_close(model.prior.log_prob(x, z), model.prior.log_prob_given(z, mu_old, lv_old))
    model.prior.refresh(model.encoder)
    mu_new, _ = model.prior.encoder_old(x)
    torch.testing.assert_close(mu_new, model.encoder.eval()(x)[0])


def test_loss_terms_match_a_direct_computation():
    model = small_model().eval()  # eval: z = mu, no dropout, so everything is deterministic
    xs = random_rows(6, 50, seed=2)
    x = torch.from_numpy(xs.toarray())
    gamma = 0.01
    logits, mll, kl = model(x, gamma=gamma, dropout_rate=0.5)
    mu, logvar = (t.detach().double().numpy() for t in model.encoder(x))
    mu_old, lv_old = (t.detach().double().numpy() for t in model.prior.encoder_old(x))
    xd = xs.toarray().astype(np.float64)
    want_mll = (log_softmax(logits.detach().double().numpy(), axis=1) * xd).sum(1).mean()
    z = mu
    log_q = stats.norm.logpdf(z, mu, np.exp(logvar / 2))
    log_p = logsumexp(
        np.stack(
            [
                np.log(0.15) + stats.norm.logpdf(z, 0, 1),
                np.log(0.75) + stats.norm.logpdf(z, mu_old, np.exp(lv_old / 2)),
                np.log(0.10) + stats.norm.logpdf(z, 0, np.exp(5.0)),
            ]
        ),
        axis=0,
    )
    want_kl = (gamma * xd.sum(1) * (log_q - log_p).sum(1)).mean()
    np.testing.assert_allclose(mll.item(), want_mll, rtol=1e-5)
    np.testing.assert_allclose(kl.item(), want_kl, rtol=1e-4, atol=1e-6)


def test_sparse_and_dense_inputs_compute_the_same_function():
    model = small_model()
    xs = random_rows(9, 50, seed=4, empty=(3,))
    xd = torch.from_numpy(xs.toarray())
    xr = SparseRows.from_scipy(xs)
    torch.testing.assert_close(xr.to_dense(), xd)
    torch.testing.assert_close(xr.row_sums(), xd.sum(1))
    torch.testing.assert_close(model.embed(xr), model.embed(xd))
    torch.testing.assert_close(model.score(xr), model.score(xd))
    model.eval()
    for a, b in zip(model(xr, 0.005, 0.5), model(xd, 0.005, 0.5)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(model.reconstruction(xr), model.reconstruction(xd))
    # gradients of the first layer agree too
    model.train()
    grads = []
    for x in (xr, xd):
        model.zero_grad()
        torch.manual_seed(5)
        model.eval()
        _, mll, kl = model(x)
        (kl - mll).backward()
        grads.append(model.encoder.fc1.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_sparse_dropout_is_inverted_dropout_on_stored_entries():
    model = small_model().train()
    xs = random_rows(200, 50, density=0.3, seed=6)
    xr = SparseRows.from_scipy(xs).normalized()
    torch.manual_seed(0)
    dropped = torch.nn.functional.dropout(xr.values, p=0.5, training=True)
    kept = dropped != 0
    assert 0.4 < kept.float().mean().item() < 0.6
    torch.testing.assert_close(dropped[kept], 2 * xr.values[kept])


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_empty_rows_give_finite_outputs_and_gradients(form):
    model = small_model().train()
    xs = random_rows(4, 50, seed=7, empty=(0, 2))
    x = SparseRows.from_scipy(xs) if form == "sparse" else torch.from_numpy(xs.toarray())
    logits, mll, kl = model(x, gamma=0.005, dropout_rate=0.5)
    assert torch.isfinite(logits).all() and torch.isfinite(mll) and torch.isfinite(kl)
    (kl - mll).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.encoder.parameters() if p.grad is not None)
    assert torch.isfinite(model.embed(x)).all()
    # an all-empty batch works as well
    empty = sp.csr_matrix((3, 50), dtype=np.float32)
    xe = SparseRows.from_scipy(empty) if form == "sparse" else torch.zeros(3, 50)
    assert torch.isfinite(model.score(xe)).all()
    _, mll, kl = model(xe)
    assert mll.item() == 0.0 and kl.item() == 0.0


def test_reparameterisation_is_full_scale_in_training_and_the_mean_in_eval():
    model = small_model()
    mu = torch.zeros(20_000, 1)
    logvar = torch.full((20_000, 1), 2.0 * np.log(3.0))
    model.train()
    z = model.reparameterize(mu, logvar)
    assert abs(z.std().item() - 3.0) < 0.1
    model.eval()
    assert torch.equal(model.reparameterize(mu, logvar), mu)


def test_first_layer_split_supports_incremental_prefix_embeddings():
    model = small_model().eval()
    items = [3, 17, 22, 40]
    x = torch.zeros(1, 50)
    x[0, items] = 1.0
    w1 = model.encoder.fc1.weight
    a1 = w1[:, items].sum(dim=1) / np.sqrt(len(items)) + model.encoder.fc1.bias
    mu, _ = model.encoder.from_first_layer(a1[None])
    torch.testing.assert_close(mu, model.embed(x), atol=1e-5, rtol=1e-5)


def _devices():
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


@pytest.mark.parametrize("device", _devices())
def test_shapes_are_device_independent(device):
    model = small_model(n_items=40).to(device)
    xs = random_rows(5, 40, seed=8)
    for x in (SparseRows.from_scipy(xs, device), torch.from_numpy(xs.toarray()).to(device)):
        logits, mll, kl = model.train()(x)
        assert logits.shape == (5, 40) and mll.shape == () and kl.shape == ()
        assert model.embed(x).shape == (5, 8)
        assert model.score(x).shape == (5, 40)
        assert model.score(x).device.type == device
    x = as_input(xs, device)  # what the trainer feeds: sparse on the CPU, dense on a GPU
    assert isinstance(x, SparseRows) == (device == "cpu")
    torch.testing.assert_close(model.score(x), model.score(torch.from_numpy(xs.toarray()).to(device)))


def test_log_normal_is_the_gaussian_log_density():
    z, mu, lv = torch.tensor([0.3, -2.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.5])
    want = stats.norm.logpdf(z.numpy(), mu.numpy(), np.exp(lv.numpy() / 2))
    np.testing.assert_allclose(log_normal(z, mu, lv).numpy(), want, rtol=1e-6)


def test_sparse_rows_with_explicit_zeros_and_duplicates():
    # row 0: an explicit zero only; row 1: item 2 stored twice (canonically it is 2.0 there)
    m = sp.csr_matrix((np.array([0.0, 1.0, 1.0], np.float32), np.array([4, 2, 2]), np.array([0, 1, 3])), shape=(2, 6))
    xr = SparseRows.from_scipy(m)
    assert xr.to_dense().tolist() == m.toarray().tolist()
    assert torch.isfinite(xr.normalized().values).all()
    model = small_model(n_items=6)
    torch.testing.assert_close(model.embed(xr), model.embed(torch.from_numpy(m.toarray())))
