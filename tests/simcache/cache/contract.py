"""The contract every query-cache policy must meet (cachetools style): one class of tests that a
test class per policy inherits, so a new policy gets the whole contract with one test class.

Subclasses provide a ``policy`` fixture (the registered name); see ``test_cache_contract.py`` for
the registered policies and ``test_cache_new_policy.py`` for a policy registered by a test module.
"""

from __future__ import annotations

import numpy as np

from simcache.cache import POLICIES, Policy, replay
from tests.simcache.cache.helpers import assert_same_log, clustered
from tests.simcache.cache.reference_policies import reference_replay

TRACE = clustered(1500, 8, 150, 0.3, seed=7)
RADIUS = 0.9
SMALL = clustered(200, 5, 30, 0.3, seed=8)


def run(policy: str, capacity: int = 30, seed: int = 0, **kw):
    """Replay the contract trace; without ``params``/``cost``, at the policy's hard-radius example
    (hit iff d <= r), where the contract's radius statements hold."""
    if "params" not in kw and "cost" not in kw:
        kw.update(POLICIES[policy].hard_radius_settings() or {})
    return replay(TRACE, policy=policy, capacity=capacity, radius=RADIUS, seed=seed, **kw)


class PolicyContract:
    """Every test takes the ``policy`` fixture of the subclass."""

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
        log = replay(x, policy=policy, capacity=30, radius=RADIUS, **(POLICIES[policy].hard_radius_settings() or {}))
        assert log.outcome[-1] == 1 and log.distance[-1] == 0

    def test_same_seed_same_result(self, policy):
        assert_same_log(run(policy, seed=3), run(policy, seed=3), policy)

    def test_provenance(self, policy):
        log = run(policy, capacity=17)
        assert (log.policy, log.capacity, log.radius, log.metric) == (policy, 17, RADIUS, "l2")
        assert set(log.params) >= {p.name for p in POLICIES[policy].params}
        assert log.outcome.dtype == np.int8 and log.served.dtype == np.int64
        assert log.distance.dtype == np.float32 and log.inserted.dtype == bool and log.evicted.dtype == np.int64

    def test_engines_equal_the_reference_on_every_example(self, policy):
        """Both engines, every example setting, against the plain reference (see test_cache_reference
        for the full grid of traces, metrics and capacities)."""
        for ex in POLICIES[policy].examples:
            cost = (ex.cost or POLICIES[policy].default_cost(0.8)).to_dict()
            for capacity in (1, 7):
                ref = reference_replay(SMALL, policy, capacity, 0.8, "l2", ex.params, cost, seed=4)
                for engine in ("plain", "block"):
                    log = replay(SMALL, policy=policy, capacity=capacity, radius=0.8, params=ex.params,
                                 cost=ex.cost, engine=engine, seed=4)  # fmt: skip
                    assert_same_log(log, ref, f"{policy} {ex.label} C={capacity} {engine}")
