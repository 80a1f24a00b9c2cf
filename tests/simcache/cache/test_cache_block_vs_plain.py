"""Block engine == plain engine on larger traces, for every policy, both metrics, both block modes
(dense products for small caches, FAISS top-m with staleness and exact fallback for large ones)."""

from __future__ import annotations

import pytest

from simcache.cache import POLICIES, CostModel, replay
from tests.simcache.cache.helpers import assert_same_log, clustered, mixed

PARAMS = {"rnd-lru": {"acceptance": "linear", "scale": 1.0}, "qlru-dc": {"q": 0.7}}
COST = CostModel("linear", retrieval_cost=1.0, scale=0.5)


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize(
    ("trace", "metric", "radius"),
    [("clustered", "l2", 0.8), ("clustered", "cosine", 0.01), ("mixed", "l2", 0.0), ("mixed", "cosine", 0.2)],
)
def test_block_equals_plain(policy, trace, metric, radius):
    if trace == "clustered":
        x = clustered(4000, 24, 2000, 0.1, seed=11, zipf=0.8)
    else:
        x = mixed(4000, 24, seed=12)
    for capacity in (40, 700, 2500):  # 2500 > the dense limit: FAISS top-m path
        kw = dict(policy=policy, capacity=capacity, radius=radius, metric=metric, params=PARAMS.get(policy),
                  cost=COST, seed=5)  # fmt: skip
        plain = replay(x, engine="plain", **kw)
        for block in (None, 97):
            block_log = replay(x, engine="block", block_size=block, **kw)
            assert_same_log(block_log, plain, f"{policy} {trace} {metric} C={capacity} B={block}")
        assert 0.0 < plain.hit_ratio < 1.0
