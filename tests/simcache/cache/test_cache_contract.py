"""One contract, run over every registered policy (cachetools style), plus one class per policy for
what is specific to it. A new policy gets the contract by being in POLICIES."""

from __future__ import annotations

import numpy as np
import pytest

from recvae.errors import UserError
from simcache.cache import POLICIES, CostModel, replay
from tests.simcache.cache.contract import PolicyContract, run
from tests.simcache.cache.helpers import assert_same_log


@pytest.fixture(params=sorted(POLICIES))
def policy(request) -> str:
    return request.param


class TestContract(PolicyContract):
    """The contract over every registered policy."""


def test_every_registered_policy_has_its_own_test_class():
    """One test class per policy (``name`` attribute), beside the shared contract."""
    tested = {cls.name for cls in globals().values() if isinstance(cls, type) and cls.__name__.startswith("Test")
              and hasattr(cls, "name")}
    assert set(POLICIES) <= tested


class TestLRU:
    name = "lru"

    def test_hit_refreshes(self):
        e = np.eye(4, dtype=np.float32)
        log = replay(e[[0, 1, 0, 2, 0]], policy="lru", capacity=2)
        assert log.outcome.tolist() == [0, 0, 1, 0, 1] and log.evicted[3] == 1


class TestFIFO:
    name = "fifo"

    def test_hit_does_not_refresh(self):
        e = np.eye(4, dtype=np.float32)
        log = replay(e[[0, 1, 0, 2, 0]], policy="fifo", capacity=2)
        assert log.outcome.tolist() == [0, 0, 1, 0, 0] and log.evicted[3] == 0


class TestLFU:
    name = "lfu"

    def test_frequent_entry_survives(self):
        e = np.eye(4, dtype=np.float32)
        log = replay(e[[0, 0, 0, 1, 2, 3, 0]], policy="lfu", capacity=2)
        assert log.outcome[-1] == 1 and log.evicted.tolist()[4:6] == [3, 4]


class TestRandom:
    name = "random"

    def test_seed_changes_victims(self):
        a, b = run("random", seed=1), run("random", seed=2)
        assert not np.array_equal(a.evicted, b.evicted)


class TestRndLRU:
    name = "rnd-lru"

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
    name = "qlru-dc"

    def test_small_q_inserts_less(self):
        full, rare = run("qlru-dc", params={"q": 1.0}), run("qlru-dc", params={"q": 0.1}, seed=4)
        assert rare.inserted.sum() < 0.3 * full.inserted.sum()

    def test_partial_cost_hits_may_insert(self):
        cost = CostModel("linear", retrieval_cost=1.0, scale=1.0)
        log = run("qlru-dc", params={"q": 1.0}, cost=cost)
        hits = log.outcome == 2
        assert (hits & log.inserted).any()  # insertion probability q * h(d) / C_r > 0 on a hit
        assert np.all(log.distance[hits] < 1.0)  # h(d) < C_r on every hit


class TestClsLRU:
    name = "cls-lru"

    def test_update_none_is_sim_lru(self):
        assert_same_log(run("cls-lru", params={"update": "none"}), run("lru"), "none")

    def test_key_is_the_running_mean_and_the_answer_stays_the_first(self):
        x = np.array([[0, 0], [1, 0], [0, 1], [1 / 3, 1 / 3]], dtype=np.float32)
        log = replay(x, policy="cls-lru", capacity=2, radius=1.2)
        assert log.outcome.tolist() == [0, 2, 2, 1]  # the key (0, 0) -> (0.5, 0) -> (1/3, 1/3)
        assert log.served.tolist() == [-1, 0, 0, 0] and not log.inserted[1:].any()
        step = replay(x, policy="cls-lru", capacity=2, radius=1.2, params={"update": "step", "rate": 1.0})
        assert step.outcome.tolist() == [0, 2, 0, 2]  # rate = 1: the key jumps to (1, 0), sqrt(2) from (0, 1)
        assert step.served[3] == 0 and np.isclose(step.distance[3], np.hypot(1 / 3, 2 / 3))  # tie: the oldest

    def test_moving_keys_change_the_hits(self):
        assert not np.array_equal(run("cls-lru", params={}).outcome, run("lru").outcome)

    def test_rate_is_checked(self):
        with pytest.raises(UserError, match="rate"):
            replay(np.zeros((2, 2), np.float32), policy="cls-lru", capacity=2, params={"update": "step", "rate": 0})
