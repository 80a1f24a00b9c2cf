"""The cost model: bounds, the hard-radius reduction, the ip reduction, GREEDY, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recvae.errors import UserError
from simcache.objects import OBJECT_POLICIES, ObjectReplayConfig, replay_objects
from simcache.objects.engine import fit_static
from simcache.objects.metrics import l2_queries, l2_vectors, prepare_catalogue, prepare_queries
from simcache.objects.server import server_answers
from tests.simcache.objects.conftest import make_instance
from tests.simcache.objects.reference import Model, plain_greedy, total_gain

DYNAMIC = [p for p in OBJECT_POLICIES if p != "greedy"]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    metric=st.sampled_from(["l2", "cosine", "ip"]),
    k=st.integers(1, 6),
    capacity=st.integers(1, 30),
    c_f=st.floats(0.01, 10.0),
    policy=st.sampled_from(list(OBJECT_POLICIES)),
)
def test_costs_between_full_catalogue_optimum_and_empty_cache(seed, metric, k, capacity, c_f, policy):
    x, cat, bias = make_instance(seed, n_obj=40, n_req=60)
    k = 1 if policy == "obj-qlru-dc" else k
    log = replay_objects(x, (cat, bias), ObjectReplayConfig(policy=policy, capacity=capacity, k=k, c_f=c_f,
                                                              metric=metric, seed=seed))  # fmt: skip
    assert (log.cost >= log.cost_opt).all() and (log.cost <= log.cost_empty).all()
    assert (log.gain >= 0).all() and (log.gain <= k * c_f * (1 + 1e-12)).all()
    assert 0.0 <= log.nag <= 1.0 + 1e-12  # gain = (h + c_f) - h rounds
    assert (log.local.sum() == (log.origin != -1).sum())
    assert log.stats["final_objects"] <= capacity


def test_optimal_answer_against_enumeration():
    """Among every k-subset of a tiny catalogue, the served answer has the least cost."""
    x, cat, _ = make_instance(1, n_obj=8, dim=3, n_req=40)
    k, c_f = 3, 0.7
    log = replay_objects(x, cat, ObjectReplayConfig(policy="obj-lru", capacity=4, k=k, c_f=c_f))
    model = Model.make(cat, None, "l2", k, c_f)
    # the cache content seen by request t: replay the reference's LRU content is what the engine
    # reports through ``local``; enumerate answers with those local flags per object
    for t in range(len(x)):
        h = model.costs(model.keys(model.prepare(x[t])))
        local = {int(o) for o, loc in zip(log.served[t], log.local[t]) if loc}
        best = min(sum(h[j] + (0.0 if j in local else c_f) for j in sub) for sub in itertools.combinations(range(8), k))
        assert log.cost[t] <= best + 1e-12


def test_hard_radius_reduction_to_single_object_model():
    """k = 1, c_d = 0 within r (c_f beyond), c_f = 1, requests that are catalogue objects: the
    cost is 0 on a hit and 1 on a miss, and obj-lru / obj-sim-lru decide as the query cache's
    SIM-LRU does."""
    from simcache.cache import replay

    rng = np.random.default_rng(7)
    cat = rng.standard_normal((200, 5)).astype(np.float32)
    p = 1.0 / np.arange(1, 201) ** 0.9
    x = cat[rng.choice(200, size=800, p=p / p.sum())]
    r = 1.2
    query = replay(x, policy="lru", capacity=15, radius=r)
    for policy, params in (("obj-lru", {}), ("obj-sim-lru", {"radius": r})):
        cfg = ObjectReplayConfig(policy=policy, capacity=15, k=1, c_f=1.0, dissimilarity="radius", radius=r,
                                 params=params)  # fmt: skip
        log = replay_objects(x, cat, cfg)
        np.testing.assert_array_equal(log.cost, np.where(query.hits, 0.0, 1.0))
        np.testing.assert_array_equal(log.inserted, query.inserted.astype(int))


def test_ip_reduction_is_score_order():
    """The augmented L2 vectors rank objects exactly as the score <x, w> + b."""
    x, cat, bias = make_instance(2, n_obj=300, dim=16, n_req=50)
    pc = prepare_catalogue(cat, bias, "ip")
    q, _, _ = prepare_queries(x, pc)
    v, qq = l2_vectors(pc).astype(np.float64), l2_queries(q, pc).astype(np.float64)
    dist = ((qq[:, None, :] - v[None, :, :]) ** 2).sum(-1)
    score = x.astype(np.float64) @ cat.T.astype(np.float64) + bias
    np.testing.assert_allclose(dist, (qq**2).sum(1)[:, None] + (v**2).sum(1)[None, :] - 2 * (score + 0.0), atol=1e-3)
    assert (np.argsort(dist, axis=1, kind="stable")[:, :10] == np.argsort(-score, axis=1, kind="stable")[:, :10]).all()


def test_ip_server_answer_is_the_recvae_decoder_top_k():
    torch = pytest.importorskip("torch")
    import scipy.sparse as sp

    from recvae.model import RecVAE, RecVAEConfig, as_input

    torch.manual_seed(0)
    model = RecVAE(RecVAEConfig(n_items=400, hidden_dim=32, latent_dim=24))
    with torch.no_grad():
        model.decoder.bias.normal_()
    rng = np.random.default_rng(0)
    rows = sp.csr_matrix((rng.random((30, 400)) < 0.05).astype(np.float32))
    mu = model.embed(as_input(rows)).numpy()
    scores = model.decoder(torch.from_numpy(mu)).detach().numpy()
    w = model.decoder.weight.detach().numpy()
    b = model.decoder.bias.detach().numpy()
    k = 10
    log = replay_objects(mu, (w, b), ObjectReplayConfig(policy="obj-lru", capacity=5, k=k, metric="ip"))
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    gaps = np.sort(scores, axis=1)[:, ::-1]
    clear = np.abs(np.diff(gaps[:, : k + 1], axis=1)).min(axis=1) > 1e-4  # no float32 near-ties
    assert clear.sum() >= 25
    np.testing.assert_array_equal(log.server[clear], expected[clear])
    np.testing.assert_array_equal(server_answers(mu, (w, b), k, metric="ip")[clear], expected[clear])


def test_greedy_equals_plain_greedy_and_is_within_bound_of_optimum():
    x, cat, _ = make_instance(3, n_obj=10, dim=3, n_req=30)
    k, c_f, capacity = 2, 0.8, 3
    model = Model.make(cat, None, "l2", k, c_f)
    cfg = ObjectReplayConfig(policy="greedy", capacity=capacity, k=k, c_f=c_f, params={"candidates": 10})
    fit = fit_static(x, prepare_catalogue(cat, None, "l2"), cfg, 10)
    assert list(fit.objects) == plain_greedy(model, x, capacity)
    value = total_gain(model, x, set(fit.objects.tolist()))
    assert math.isclose(fit.objective, value, rel_tol=1e-9)
    best = max(total_gain(model, x, set(s)) for s in itertools.combinations(range(10), capacity))
    assert value >= (1 - 1 / math.e) * best
    log = replay_objects(x, cat, cfg)
    assert math.isclose(log.gain.sum(), value, rel_tol=1e-9)
    assert (log.inserted == 0).all() and (log.origin[log.local] == -2).all()


def test_greedy_beats_dynamic_policies_on_a_stationary_trace():
    x, cat, _ = make_instance(4, n_obj=80, n_req=400)
    nag = {p: replay_objects(x, cat, ObjectReplayConfig(policy=p, capacity=10, k=3, params=(
        {"candidates": 80} if p == "greedy" else {}))).nag for p in ("obj-lru", "obj-lfu", "greedy")}  # fmt: skip
    assert nag["greedy"] >= max(nag["obj-lru"], nag["obj-lfu"])


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(k=61), "k = 61 is larger than the catalogue"),
        (dict(capacity=61), "capacity C = 61 is larger than the catalogue"),
        (dict(metric="hamming"), "unknown metric"),
        (dict(policy="nope"), "unknown object policy"),
        (dict(c_f=0.0), "c_f"),
        (dict(policy="obj-qlru-dc", k=2), "k = 1"),
        (dict(params={"bogus": 1}), "no parameter"),
        (dict(index="ivf", index_params={"m": 3}), "no option"),
    ],
)
def test_bad_config_is_one_user_error(change, message):
    x, cat, _ = make_instance(0)
    with pytest.raises(UserError, match=message):
        replay_objects(x, cat, ObjectReplayConfig(**{"capacity": 10, **change}))


def test_bad_vectors_are_user_errors():
    x, cat, _ = make_instance(0)
    with pytest.raises(UserError, match="dimension"):
        replay_objects(x[:, :5], cat, ObjectReplayConfig(capacity=10))
    bad = cat.copy()
    bad[3, 1] = np.nan
    with pytest.raises(UserError, match="catalogue object 3"):
        replay_objects(x, bad, ObjectReplayConfig(capacity=10))
    badx = x.copy()
    badx[17, 0] = np.inf
    with pytest.raises(UserError, match="request 17"):
        replay_objects(badx, cat, ObjectReplayConfig(capacity=10, block_size=8))
    with pytest.raises(UserError, match="zero vector"):
        replay_objects(np.zeros((2, 7), np.float32), cat, ObjectReplayConfig(capacity=10, metric="cosine"))


def test_blas_threads_of_the_products_change_nothing(monkeypatch):
    """Small products keep one BLAS thread; with every product allowed on all cores (blocks from the
    third on may then run on them) the answers and costs are the same."""
    import simcache.objects.engine as engine

    x, cat, bias = make_instance(3, n_obj=40, n_req=80)
    config = ObjectReplayConfig(policy="obj-lru", capacity=6, k=3, block_size=8)
    small = replay_objects(x, (cat, bias), config)
    assert set(small.stats["threads"]) == {1}
    monkeypatch.setattr(engine, "MIN_SPLIT_MACS", 0)
    split = replay_objects(x, (cat, bias), config)
    assert sum(split.stats["threads"].values()) == 10 and split.stats["threads"].get(1, 0) >= 2
    for field in ("served", "local", "cost", "cost_empty", "cost_opt", "inserted", "evicted"):
        np.testing.assert_array_equal(getattr(small, field), getattr(split, field), err_msg=field)
