"""One contract, run over every registered policy (cachetools style), plus one class per policy for
what is specific to it. A new policy gets the contract by being in POLICIES."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.cache import POLICIES, CostModel, Policy, replay
from tests.simcache.cache.helpers import assert_same_log, clustered

TRACE = clustered(1500, 8, 150, 0.3, seed=7)
RADIUS = 0.9


def run(policy: str, capacity: int = 30, seed: int = 0, **kw):
    return replay(TRACE, policy=policy, capacity=capacity, radius=RADIUS, seed=seed, **kw)


@pytest.fixture(params=sorted(POLICIES))
def policy(request) -> str:
    return request.param


class TestContract:
    def test_registry_entry_is_a_documented_policy(self, policy):
        cls = POLICIES[policy]
        assert issubclass(cls, Policy) and cls.name == policy and cls.summary and cls.__doc__
        for p in cls.params:
            assert p.help and p.type in (int, float, str)

    def test_capacity_never_exceeded_and_evictions_only_when_full(self, policy):
        for capacity in (1, 5, 30):
            log = run(policy, capacity)
            occupancy = np.cumsum(log.inserted.astype(int)) - np.cumsum(log.evicted >= 0)
            assert occupancy.max() <= capacity
            before = np.concatenate([[0], occupancy[:-1]])
            assert np.all((log.evicted >= 0) == (log.inserted & (before == capacity)))

    def test_outcomes_are_consistent(self, policy):
        log = run(policy)
        hits = log.outcome != 0
        assert hits.sum() + (~hits).sum() == len(TRACE)
        assert np.all((log.served >= 0) == hits)
        assert np.all(log.served[hits] < np.flatnonzero(hits))
        assert np.all(log.distance[hits] <= RADIUS)
        assert np.all((log.outcome == 1) == (hits & (log.distance == 0)))

    def test_served_entry_is_cached_and_distance_is_the_nearest(self, policy):
        """Rebuild the cache content from the log and check each lookup against it in numpy."""
        log = run(policy, capacity=12)
        live: set[int] = set()
        for t in range(len(TRACE)):
            if live:
                ids = np.fromiter(live, dtype=np.int64)
                d = np.sqrt(((TRACE[ids].astype(np.float64) - TRACE[t]) ** 2).sum(1))
                assert abs(log.distance[t] - d.min()) <= 1e-5 * max(1.0, d.min())
                if log.served[t] >= 0:
                    assert log.served[t] in live
            else:
                assert np.isinf(log.distance[t])
            if log.evicted[t] >= 0:
                live.remove(int(log.evicted[t]))
            if log.inserted[t]:
                live.add(t)

    def test_a_cached_vector_requested_again_is_an_exact_hit(self, policy):
        x = np.concatenate([TRACE[:20], TRACE[:1]])  # request 0 is always inserted, never evicted here
        log = replay(x, policy=policy, capacity=30, radius=RADIUS)
        assert log.outcome[-1] == 1 and log.distance[-1] == 0

    def test_same_seed_same_result(self, policy):
        assert_same_log(run(policy, seed=3), run(policy, seed=3), policy)

    def test_provenance(self, policy):
        log = run(policy, capacity=17)
        assert (log.policy, log.capacity, log.radius, log.metric) == (policy, 17, RADIUS, "l2")
        assert set(log.params) >= {p.name for p in POLICIES[policy].params}
        assert log.outcome.dtype == np.int8 and log.served.dtype == np.int64
        assert log.distance.dtype == np.float32 and log.inserted.dtype == bool and log.evicted.dtype == np.int64


class TestLRU:
    def test_hit_refreshes(self):
        e = np.eye(4, dtype=np.float32)
        log = replay(e[[0, 1, 0, 2, 0]], policy="lru", capacity=2)
        assert log.outcome.tolist() == [0, 0, 1, 0, 1] and log.evicted[3] == 1


class TestFIFO:
    def test_hit_does_not_refresh(self):
        e = np.eye(4, dtype=np.float32)
        log = replay(e[[0, 1, 0, 2, 0]], policy="fifo", capacity=2)
        assert log.outcome.tolist() == [0, 0, 1, 0, 0] and log.evicted[3] == 0


class TestLFU:
    def test_frequent_entry_survives(self):
        e = np.eye(4, dtype=np.float32)
        log = replay(e[[0, 0, 0, 1, 2, 3, 0]], policy="lfu", capacity=2)
        assert log.outcome[-1] == 1 and log.evicted.tolist()[4:6] == [3, 4]


class TestRandom:
    def test_seed_changes_victims(self):
        a, b = run("random", seed=1), run("random", seed=2)
        assert not np.array_equal(a.evicted, b.evicted)


class TestRndLRU:
    def test_step_equals_sim_lru(self):
        assert_same_log(run("rnd-lru", params={"acceptance": "step"}), run("lru"), "step")

    @pytest.mark.parametrize("acceptance", ["linear", "exp"])
    def test_soft_acceptance_hits_less_and_depends_on_seed(self, acceptance):
        soft = [run("rnd-lru", params={"acceptance": acceptance, "scale": 0.5}, seed=s) for s in (1, 2)]
        assert soft[0].hit_ratio < run("lru").hit_ratio
        assert not np.array_equal(soft[0].outcome, soft[1].outcome)
        rejected = (soft[0].outcome == 0) & (soft[0].distance == 0)
        assert not rejected.any()  # p(0) = 1


class TestQLRUDC:
    def test_small_q_inserts_less(self):
        full, rare = run("qlru-dc", params={"q": 1.0}), run("qlru-dc", params={"q": 0.1}, seed=4)
        assert rare.inserted.sum() < 0.3 * full.inserted.sum()

    def test_partial_cost_hits_may_insert(self):
        cost = CostModel("linear", retrieval_cost=1.0, scale=1.0)
        log = run("qlru-dc", params={"q": 1.0}, cost=cost)
        hits = log.outcome == 2
        assert (hits & log.inserted).any()  # insertion probability q * h(d) / C_r > 0 on a hit
        assert np.all(log.distance[hits] < 1.0)  # h(d) < C_r on every hit
