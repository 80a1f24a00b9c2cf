"""The contract every registered model keeps: it learns planted structure, its incremental prefix
embeddings equal direct ones, top-k lists and item catalogues agree with its scores, checkpoints
round-trip and refuse another model, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recvae.errors import UserError
from recvae.evaluation import evaluate_popularity
from recvae.models import checkpoint
from recvae.models.base import HistoryContext, prefix_rows
from recvae.models.evaluation import evaluate_topn, rmse, rmse_biases, rmse_global_mean
from recvae.models.registry import MODEL_NAMES, get_model
from recvae.models.trainer import train_model
from recvae.trace.prefix import PrefixBatch
from recvae.trace.schedule import Schedule, schedule_many

from .conftest import CASE_IDS, CASES

_FITTED: dict[str, object] = {}


def fit(case, data):
    """The model of ``case`` trained for its epochs (memoised: several tests read it)."""
    if case.name not in _FITTED:
        cls = get_model(case.name)
        model = cls(cls.Config(**case.options), data.n_items, data.prepared.items)
        rng = np.random.default_rng(0)
        model.start(data, rng)
        for _ in range(model.config.epochs):
            model.train_epoch(data, rng)
        _FITTED[case.name] = model
    return _FITTED[case.name]


def histories(model, data, n_users: int = 40, seed: int = 3):
    """Shuffled item sequences of the first training users, a prefix batch over them and its context."""
    rows = data.ratings.fit if model.explicit else sp.csr_matrix(data.prepared.train)
    rng = np.random.default_rng(seed)
    items, values, counts = [], [], []
    for u in range(n_users):
        lo, hi = rows.indptr[u], rows.indptr[u + 1]
        perm = rng.permutation(hi - lo)
        items.append(rows.indices[lo:hi][perm])
        values.append(rows.data[lo:hi][perm])
        counts.append(hi - lo)
    counts = np.asarray(counts)
    owner, lengths = schedule_many(counts, Schedule(min_history=8, initial_fraction=0.3, step=3))
    batch = PrefixBatch(np.concatenate(items).astype(np.int64), np.r_[0, np.cumsum(counts)].astype(np.int64), owner, lengths)
    users = np.asarray(data.prepared.train_users)[:n_users]
    context = HistoryContext(users=users, values=np.concatenate(values).astype(np.float32) if model.explicit else None)
    return batch, context


def data_of(case, datasets):
    return datasets[case.data]


def test_every_registered_model_has_a_case():
    assert sorted(CASE_IDS) == sorted(MODEL_NAMES)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_beats_popularity_on_planted_structure(case, datasets):
    if not case.personalised:
        pytest.skip(f"{case.name} ranks items the same way for everyone")
    data = data_of(case, datasets)
    model = fit(case, data)
    ours = evaluate_topn(model, data, "test")["metrics"]["ndcg@20"]["mean"]
    pop = evaluate_popularity(data.prepared, "test")["metrics"]["ndcg@20"]["mean"]
    assert ours > 1.1 * pop, (case.name, ours, pop)


@pytest.mark.parametrize("case", [c for c in CASES if c.data == "ratings"], ids=lambda c: c.name)
def test_explicit_models_beat_the_rmse_baselines(case, datasets):
    data = datasets["ratings"]
    model = fit(case, data)
    ours = rmse(model, data)
    assert ours < rmse_global_mean(data) - 0.003, case.name
    if case.personalised:
        assert ours < rmse_biases(data) - 0.02, case.name


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_incremental_prefix_embeddings_equal_direct_ones(case, datasets):
    data = data_of(case, datasets)
    model = fit(case, data)
    batch, context = histories(model, data)
    assert len(batch) > 60 and (np.diff(batch.owner) == 0).any()  # several prefixes per user
    enc = model.prefix_encoder(context)
    got = enc.embed_prefixes(batch)
    assert got.shape == (len(batch), enc.dim) and got.dtype == np.float32
    direct = model.embed(prefix_rows(batch, context.values, data.n_items), users=context.users[batch.owner])
    np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-5)
    assert enc.describe()["type"] == case.name


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_topk_follows_scores_and_excludes_the_prefix(case, datasets):
    data = data_of(case, datasets)
    model = fit(case, data)
    batch, context = histories(model, data, n_users=15)
    enc = model.prefix_encoder(context)
    k = 10
    top = enc.topk(batch, k)
    rows = prefix_rows(batch, context.values, data.n_items)
    scores = np.asarray(torch.as_tensor(model.score(rows)).cpu(), dtype=np.float64)
    for r in range(len(batch)):
        seen = set(rows.indices[rows.indptr[r] : rows.indptr[r + 1]].tolist())
        assert not seen & set(top[r].tolist())
        rest = np.array([i for i in range(data.n_items) if i not in seen and i not in set(top[r].tolist())])
        assert scores[r, top[r]].min() >= scores[r, rest].max() - 1e-4
        assert (np.diff(scores[r, top[r]]) <= 1e-4).all()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_catalogue_is_in_the_users_space(case, datasets):
    data = data_of(case, datasets)
    model = fit(case, data)
    cat = model.catalogue()
    if cat is None:
        pytest.skip(f"{case.name} has no item vectors in the users' space")
    batch, context = histories(model, data, n_users=10)
    z = model.prefix_encoder(context).embed_prefixes(batch)
    assert cat.vectors.shape == (data.n_items, z.shape[1]) and len(cat.ids) == data.n_items
    via_catalogue = z.astype(np.float64) @ cat.vectors.T + (0 if cat.bias is None else cat.bias)
    direct = np.asarray(torch.as_tensor(model.scores_from_embeddings(z, batch, context)), dtype=np.float64)
    diff = via_catalogue - direct  # equal up to a per-user constant (it does not change a ranking)
    np.testing.assert_allclose(diff - diff[:, :1], 0.0, atol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_checkpoint_round_trip_and_wrong_model_type(case, datasets, tmp_path):
    data = data_of(case, datasets)
    model = fit(case, data)
    path = tmp_path / "model.pt"
    model.save(path, data.prepared)
    back = get_model(case.name).load(path)
    rows = sp.csr_matrix(data.ratings.val_tr if model.explicit else data.prepared.val_tr)
    users = np.asarray(data.prepared.val_users)
    np.testing.assert_array_equal(back.embed(rows, users=users), model.embed(rows, users=users))
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and containers only
    assert raw["model_type"] == case.name
    other = "als" if case.name != "als" else "multvae"
    with pytest.raises(UserError, match=f"holds a '{case.name}' model, not a '{other}' model"):
        get_model(other).load(path)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_resumed_training_equals_an_uninterrupted_run(case, datasets, tmp_path):
    data = data_of(case, datasets)
    cls = get_model(case.name)
    opts = {**case.options, "epochs": 2}
    quiet = dict(progress=False, log_line=lambda s: None)
    train_model(case.name, data, cls.Config(**opts), tmp_path / "a", **quiet)
    train_model(case.name, data, cls.Config(**{**opts, "epochs": 1}), tmp_path / "b", **quiet)
    with pytest.raises(UserError, match="already holds"):
        train_model(case.name, data, cls.Config(**opts), tmp_path / "b", **quiet)
    train_model(case.name, data, cls.Config(**opts), tmp_path / "b", resume=True, **quiet)
    a = checkpoint.read(tmp_path / "a" / "last.pt", case.name)
    b = checkpoint.read(tmp_path / "b" / "last.pt", case.name)
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["state"].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b["state"][key]), key
        else:
            assert value == b["state"][key], key
    with pytest.raises(UserError, match="settings differ"):
        changed = {**opts, "seed": 5}
        train_model(case.name, data, cls.Config(**changed), tmp_path / "b", resume=True, **quiet)


@pytest.mark.parametrize("case", [c for c in CASES if c.data == "ratings"], ids=lambda c: c.name)
def test_prefixes_of_real_trace_histories_with_their_ratings(case, datasets):
    """The trace builder's own histories and schedule: rated models read each entry's rating."""
    from recvae.models.data import history_context
    from recvae.trace.history import build_histories

    data = datasets["ratings"]
    model = fit(case, data)
    p = data.prepared
    inter = datasets["ratings_interactions"]
    hist = build_histories(inter, items=p.items, train_users=p.train_users, val_users=p.val_users,
                           test_users=p.test_users, threshold=p.manifest["params"]["threshold"]).subset(np.arange(60))
    context = history_context(hist, inter, p.items, model.needs)
    assert context.values is not None and (context.values > 3.5).all()  # positives, with their ratings
    owner, lengths = schedule_many(hist.counts, Schedule(min_history=10, initial_fraction=0.5, step=4))
    batch = PrefixBatch(hist.items, hist.offsets, owner, lengths)
    got = model.prefix_encoder(context).embed_prefixes(batch)
    direct = model.embed(prefix_rows(batch, context.values, data.n_items))
    np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-5)
