"""AÇAI, DUEL and GRADES approach the static GREEDY cache on a stationary trace (two Gaussian
clusters of requests over a 12 x 12 grid catalogue, k = 1, c_f = 2): in the last quarter of the
trace each is within 7% of GREEDY's gain and above LRU's (GREEDY is within (1 - 1/e) of the best
static cache, so a dynamic policy may also exceed it)."""

from __future__ import annotations

import numpy as np
import pytest

from simcache.objects import ObjectReplayConfig, replay_objects


def stationary_trace(n: int = 4000):
    g = 12
    xs, ys = np.meshgrid(np.arange(g), np.arange(g))
    cat = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    rng = np.random.default_rng(0)
    centres = np.array([[3, 3], [8, 7]], np.float32)
    x = (centres[rng.choice(2, n, p=[0.6, 0.4])] + 1.5 * rng.standard_normal((n, 2))).astype(np.float32)
    return x, cat


def last_quarter_gain(policy: str, capacity: int) -> float:
    x, cat = stationary_trace()
    log = replay_objects(x, cat, ObjectReplayConfig(policy=policy, capacity=capacity, k=1, c_f=2.0, seed=0))
    return float(log.gain[3 * len(log) // 4 :].mean())


@pytest.mark.parametrize("capacity", [6, 12])
@pytest.mark.parametrize("policy", ["acai", "duel", "grades"])
def test_dynamic_policies_approach_greedy(policy, capacity):
    gain = last_quarter_gain(policy, capacity)
    assert gain >= 0.93 * last_quarter_gain("greedy", capacity)
    assert gain > last_quarter_gain("obj-lru", capacity)
