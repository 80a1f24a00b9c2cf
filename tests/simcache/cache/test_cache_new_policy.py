"""The CONTRIBUTING.md recipe, exercised: a policy written and registered by this test module (one
class, one registry entry, one test class) gets the whole contract, the reference oracle, the
CLI listing and the sweep without any change to the package.

The policy uses float per-entry state: each entry has a score (1 on insertion, halved then +1 on
every hit it serves), and the entry with the lowest score is evicted (ties: the lowest slot).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest
from typer.testing import CliRunner

from simcache.cache import POLICIES, Example, Param, Policy
from simcache.cache.kernels.distances import within_radius
from simcache.cache.kernels.signatures import DECIDE_SIG, HIT, INSERT, INSERT_SIG, REFRESH, TOUCH_SIG, VICTIM_SIG
from simcache.cache.policies.base import Kernels
from simcache.cache.policies.rand import no_remove
from tests.simcache.cache.contract import PolicyContract
from tests.simcache.cache.reference_policies import REFERENCES, Order, Request

NAME = "test-decay"
SCORE = 0  # fmeta column


@nb.njit(DECIDE_SIG, cache=True)
def decide_scaled_radius(has1, d1, has2, d2, u0, u1, fpar):
    """Hit iff d1 <= reach * r (fpar = [r, reach])."""
    if has1 and within_radius(d1, fpar[0] * fpar[1]):
        return HIT | REFRESH
    return INSERT


@nb.njit(TOUCH_SIG, cache=True)
def decay_touch(slot, t, meta, fmeta, glob):
    fmeta[slot, SCORE] = 0.5 * fmeta[slot, SCORE] + 1.0


@nb.njit(INSERT_SIG, cache=True)
def decay_insert(slot, t, meta, fmeta, glob):
    fmeta[slot, SCORE] = 1.0


@nb.njit(VICTIM_SIG, cache=True)
def lowest_score(t, u, meta, fmeta, glob):
    best = 0
    for s in range(1, fmeta.shape[0]):
        if fmeta[s, SCORE] < fmeta[best, SCORE]:
            best = s
    return best


class Decay(Policy):
    """Decaying-score eviction with a scaled radius (a test policy)."""

    name = NAME
    summary = "test policy: evict the lowest decayed hit score"
    params = (Param("reach", float, 1.0, "hit iff d <= reach * r"),)
    examples = (Example(hard_radius=True), Example({"reach": 0.5}))
    float_fields = 1

    @classmethod
    def kernels(cls) -> Kernels:
        return Kernels(decide_scaled_radius, decay_touch, decay_insert, no_remove, lowest_score)

    def rule_parameters(self) -> np.ndarray:
        return np.array([self.radius, float(self.values["reach"])], dtype=np.float64)


def scaled_radius_rule(r: Request) -> tuple[bool, bool, bool]:
    hit = r.n_cached >= 1 and r.d1 <= r.radius * r.params.get("reach", 1.0)
    return hit, hit, not hit


class DecayOrder(Order):
    """The reference of the eviction order, in plain Python (the score lives on the entry)."""

    def refresh(self, slots, recency, pos, t):
        slots[pos].score = 0.5 * slots[pos].score + 1.0

    def victim(self, slots, recency, u2):
        return min(range(len(slots)), key=lambda p: (slots[p].score, p))


@pytest.fixture
def policy(monkeypatch) -> str:
    """Register the test policy and its reference for the duration of one test."""
    monkeypatch.setitem(POLICIES, NAME, Decay)
    monkeypatch.setitem(REFERENCES, NAME, (scaled_radius_rule, DecayOrder()))
    return NAME


class TestDecay(PolicyContract):
    """The whole contract on a policy the package has never seen."""

    name = NAME

    def test_scores_keep_a_frequently_hit_entry(self, policy):
        from simcache.cache import replay

        e = np.eye(4, dtype=np.float32)
        log = replay(e[[0, 0, 0, 1, 2, 3, 0]], policy=policy, capacity=2)
        assert log.outcome[-1] == 1  # entry 0 (score 1.75) outlives the entries scored 1

    def test_listed_by_the_cli_and_sweepable(self, policy, tmp_path):
        from simcache.cli.app import app
        from simcache.cli.replay import policy_options
        from simcache.replay.sweep import run_sweep

        res = CliRunner().invoke(app, ["policies"])
        assert res.exit_code == 0 and NAME in res.output and "reach:" in res.output
        assert "reach" in policy_options()
        x = np.random.default_rng(0).standard_normal((300, 4)).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        df = run_sweep(tmp_path / "x.npy", policies=f"lru,{NAME}", capacities="5,10", radii="1.0",
                       params={"reach": 0.5}, out=tmp_path / "sw", jobs=1, progress=False, plots=False)
        assert set(df["policy"]) == {"lru", NAME} and (df["params"] == "reach=0.5").sum() == 2
