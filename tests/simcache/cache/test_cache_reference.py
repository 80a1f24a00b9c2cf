"""The engines against the plain pure-Python reference: exact equality of every logged field."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.cache import POLICIES, CostModel, engine as engine_module, replay
from tests.simcache.cache.helpers import assert_same_log, clustered, grid, mixed
from tests.simcache.cache.reference_policies import REFERENCES, reference_replay

# (policy, params, cost) variants: every example every registered policy declares
VARIANTS = [(name, ex.params, ex.cost) for name, cls in sorted(POLICIES.items()) for ex in cls.examples]
IDS = [f"{p}-{'-'.join(f'{k}={v}' for k, v in par.items())}-{c.kind if c else 'default'}" for p, par, c in VARIANTS]

TRACES = {
    "clustered": lambda: clustered(260, 6, 40, 0.25, seed=1),
    "grid": lambda: grid(260, 4, 3, seed=2),
    "mixed": lambda: mixed(260, 5, seed=3),
}
# radius per (trace, metric): chosen so hit ratios are well inside (0, 1)
RADII = {
    ("clustered", "l2"): [0.0, 0.6],
    ("clustered", "cosine"): [0.0, 0.02],
    ("grid", "l2"): [0.0, 1.0, 1.4142135],
    ("grid", "cosine"): [0.0, 0.05],
    ("mixed", "l2"): [0.0, 2.0],
    ("mixed", "cosine"): [0.0, 0.3],
}


def _cost(policy: str, cost: CostModel | None, radius: float) -> CostModel:
    """The cost model in force: the example's, else the policy's default for the radius."""
    return cost if cost is not None else POLICIES[policy].default_cost(radius)


@pytest.fixture(params=["dense", "topk"])
def block_mode(request, monkeypatch):
    """Run the block engine with its own dense search or with the FAISS search, both with a short
    top-m list (2 candidates: forces the stale-candidate and exact-fallback paths)."""
    monkeypatch.setattr(engine_module, "N_CANDIDATES", 2)
    if request.param == "topk":
        monkeypatch.setattr(engine_module, "DENSE_MAX_CAPACITY", 0)
    return request.param


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
@pytest.mark.parametrize("trace", sorted(TRACES))
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_engines_equal_reference(variant, trace, metric, block_mode):
    policy, params, cost = variant
    x = TRACES[trace]()
    if metric == "cosine":
        x = x + 0.5  # keep away from the zero vector on the grid
    for radius in RADII[(trace, metric)]:
        for capacity in (1, 4, 37):
            cm = _cost(policy, cost, radius)
            ref = reference_replay(x, policy, capacity, radius, metric, params, cm.to_dict(), seed=11)
            for engine, block in (("plain", None), ("block", 16), ("block", 1), ("block", None)):
                log = replay(x, policy=policy, capacity=capacity, radius=radius, metric=metric, params=params,
                             cost=cm, engine=engine, block_size=block, seed=11)  # fmt: skip
                assert_same_log(log, ref, f"{policy} {trace} {metric} r={radius} C={capacity} {engine}/{block}")


def test_traces_are_not_trivial():
    """The test traces give hit ratios strictly between 0 and 1 at r > 0 for SIM-LRU."""
    for (trace, metric), radii in RADII.items():
        x = TRACES[trace]() + (0.5 if metric == "cosine" else 0.0)
        ratio = replay(x, policy="lru", capacity=37, radius=radii[-1], metric=metric).hit_ratio
        assert 0.05 < ratio < 0.95, (trace, metric, ratio)


def test_every_registered_policy_has_a_reference_and_examples():
    assert set(POLICIES) <= set(REFERENCES)
    assert all(cls.examples for cls in POLICIES.values())


@pytest.mark.parametrize("policy", ["lru", "lfu", "qlru-dc"])
def test_exclude_self_equals_the_masked_reference(policy, block_mode):
    """With exclude_self a request never sees its own user's entries: every engine equals the
    reference that masks them, and no hit is served by an entry of the same user."""
    x = clustered(300, 5, 30, 0.2, seed=6)
    rng = np.random.default_rng(1)
    owners = np.repeat(rng.integers(0, 12, size=60), 5)  # users make runs of 5 close requests
    for capacity in (1, 6, 40):
        ref = reference_replay(x, policy, capacity, 0.7, "l2", {}, _cost(policy, None, 0.7).to_dict(), seed=2,
                               owners=owners)
        for engine, block in (("plain", None), ("block", 16), ("block", None)):
            log = replay(x, policy=policy, capacity=capacity, radius=0.7, engine=engine, block_size=block, seed=2,
                         exclude_self=True, owners=owners)  # fmt: skip
            assert_same_log(log, ref, f"{policy} C={capacity} {engine}/{block}")
            hits = np.flatnonzero(log.outcome > 0)
            assert hits.size and np.all(owners[log.served[hits]] != owners[hits])
    plain = replay(x, policy=policy, capacity=40, radius=0.7, seed=2)
    assert np.any(owners[plain.served[plain.outcome > 0]] == owners[plain.outcome > 0])  # the option matters
