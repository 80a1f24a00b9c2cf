"""The synthetic generator: deterministic, realistic shape, planted structure a model can find."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recvae.data import SyntheticConfig, load_interactions, prepare
from recvae.data.synthetic import generate
from recvae.errors import UserError


@pytest.fixture(scope="module")
def default_table():
    return generate()


def test_deterministic_from_seed(default_table):
    again = generate()
    assert again.equals(default_table)
    other = generate(seed=1)
    assert not other.equals(default_table)


def test_shape_of_default(default_table):
    df = default_table.to_pandas()
    cfg = SyntheticConfig()
    assert df.user.nunique() == cfg.n_users and df.item.max() <= cfg.n_items
    assert set(df.value.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert not df.duplicated(["user", "item"]).any()
    # rows grouped by user (ascending ids), strictly increasing time within each user
    assert (np.diff(df.user.to_numpy()) >= 0).all()
    same = df.user.to_numpy()[1:] == df.user.to_numpy()[:-1]
    assert (np.diff(df.timestamp.to_numpy())[same] > 0).all()
    # heavy-tailed activity: some users with > 100 items, max far above the median
    per_user = df.groupby("user").size()
    assert per_user.min() >= cfg.min_items
    assert (per_user > 100).sum() >= 50
    assert per_user.max() > 8 * per_user.median()
    assert 0.8 * cfg.mean_items < per_user.mean() < 1.2 * cfg.mean_items
    # power-law popularity: the top 10% of items get a large share of the interactions
    per_item = df.groupby("item").size().sort_values(ascending=False)
    assert per_item.iloc[: len(per_item) // 10].sum() > 0.3 * len(df)


def test_users_come_back_in_sessions_and_overlap(default_table):
    """Interactions come in sessions (minutes apart) separated by days, and many users are
    active at the same time, so a trace interleaves users instead of playing them one by one."""
    df = default_table.to_pandas()
    cfg = SyntheticConfig()
    users = df.user.to_numpy()
    gaps = np.diff(df.timestamp.to_numpy())[users[1:] == users[:-1]]
    assert np.median(gaps) < 3_600
    long = np.mean(gaps > 86_400)
    assert 0.5 / cfg.session_items < long < 1.5 / cfg.session_items
    span = df.groupby("user").timestamp.agg(["min", "max"])
    middle = np.median(df.timestamp)
    active = ((span["min"] <= middle) & (span["max"] >= middle)).mean()
    assert active > 0.05


def test_liked_items_rated_high(default_table):
    """Ratings >= 4 are common and the binarised data keep most users."""
    df = default_table.to_pandas()
    assert 0.4 < (df.value >= 4).mean() < 0.8


def test_planted_structure_beats_popularity():
    """Item-item co-occurrence (a stand-in for any collaborative model) beats popularity clearly."""
    p = prepare("synthetic")
    x = p.train.astype(np.float64)
    pop = np.asarray(x.sum(axis=0)).ravel()
    norm = np.sqrt(pop) + 1e-9
    sim = (x.T @ x).toarray() / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0)

    def recall(scores, k=20):
        scores = np.array(scores, dtype=np.float64)
        scores[p.test_tr.toarray() > 0] = -np.inf
        out = []
        for u in range(p.test_te.shape[0]):
            held = set(p.test_te[u].indices)
            if held:
                top = np.argpartition(-scores[u], k)[:k]
                out.append(len(held & set(top.tolist())) / min(k, len(held)))
        return float(np.mean(out))

    r_pop = recall(np.tile(pop, (p.test_tr.shape[0], 1)))
    r_knn = recall(p.test_tr @ sim)
    assert r_knn > 1.5 * r_pop, (r_knn, r_pop)


def test_fast_at_quick_start_size():
    generate(n_users=50, n_items=50)  # numba compilation / cache load outside the timing
    t = time.perf_counter()
    generate(n_users=5_000, n_items=2_000)
    assert time.perf_counter() - t < 10


def test_options_via_load_interactions():
    df = load_interactions("synthetic", n_users=300, n_items=200, seed=7, mean_items=20)
    assert df.user.nunique() == 300 and df.item.max() <= 200
    assert list(df.columns) == ["user", "item", "value", "timestamp"]


@pytest.mark.parametrize("bad", [{"n_users": 0}, {"n_items": 1}, {"min_items": 600, "n_items": 1000}, {"colour": 3}])
def test_bad_options(bad):
    with pytest.raises(UserError):
        load_interactions("synthetic", **bad)
