"""CLS-LRU's moving keys against the plain reference: decisions, costs and the final keys, bit for
bit, on every engine and block size (row scans and the FAISS top-m path), including requests
whose hit or miss depends on a key moved earlier in the same block; and its invariants."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simcache.cache import engine as engine_module, kernels as K, replay
from tests.simcache.cache.helpers import assert_same_log, clustered, grid
from tests.simcache.cache.reference_policies import reference_replay

ENGINES = (("plain", None), ("block", 1), ("block", 7), ("block", None))


def replay_keeping_keys(x: np.ndarray, **kw) -> tuple:
    """``replay`` and the cache it ends with: entry id -> key (float32)."""
    made = []

    class Recording(engine_module._Engine):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    with mock.patch.object(engine_module, "_Engine", Recording):
        log = replay(x, **kw)
    eng = made[-1]
    used = int(eng.counters[K.N_USED])
    return log, {int(eng.slot_id[s]): eng.slots[s].copy() for s in range(used)}


def assert_same_keys(keys: dict, ref_keys: dict, context: str) -> None:
    assert sorted(keys) == sorted(ref_keys), context
    for e, key in keys.items():
        assert np.array_equal(key, np.asarray(ref_keys[e], dtype=np.float32)), f"{context}: key of entry {e}"


@pytest.fixture(params=["dense", "topk"])
def block_mode(request, monkeypatch):
    """The block engine with its row scans, or with the FAISS top-m search and a 2-candidate list
    (stale candidates and the exact fallback scan exercised)."""
    if request.param == "topk":
        monkeypatch.setattr(engine_module, "DENSE_MAX_CAPACITY", 0)
        monkeypatch.setattr(engine_module, "N_CANDIDATES", 2)
    return request.param


def _check_against_reference(x, metric, radius, params, capacities=(1, 5, 23)):
    for capacity in capacities:
        ref = reference_replay(x, "cls-lru", capacity, radius, metric, params, seed=3)
        for engine, block in ENGINES:
            ctx = f"{params} {metric} r={radius} C={capacity} {engine}/{block}"
            log, keys = replay_keeping_keys(x, policy="cls-lru", capacity=capacity, radius=radius, metric=metric,
                                            params=params, engine=engine, block_size=block, seed=3)  # fmt: skip
            assert_same_log(log, ref, ctx)
            assert_same_keys(keys, ref.keys, ctx)
    cached = ref.keys.items()
    if metric == "l2":  # (cosine keys are the normalised requests)
        assert any(not np.array_equal(np.float32(key), x[e]) for e, key in cached), "no key moved"


@pytest.mark.parametrize("params", [{}, {"update": "step", "rate": 0.3}])
@pytest.mark.parametrize(("metric", "radius"), [("l2", 0.7), ("cosine", 0.03)])
def test_engines_and_keys_equal_the_reference(params, metric, radius, block_mode):
    x = clustered(240, 5, 30, 0.25, seed=5)
    if metric == "cosine":
        x = x + 0.5
    _check_against_reference(x, metric, radius, params)


def test_tied_distances_and_exact_repeats_equal_the_reference(block_mode):
    """Small-integer vectors: moved keys land on other requests' vectors (exact hits, ties)."""
    _check_against_reference(grid(240, 3, 3, seed=6), "l2", 1.0, {})


def test_a_key_moved_earlier_in_the_block_decides_later_requests(block_mode):
    """Key 0 moves to 0.45 (request 1), so request 2 at 1.3 hits (0.85 <= 1; 1.3 from the key as
    it was at block start) and moves it to 0.7333; request 3 at -0.95 then misses (0.95 from the
    original key) and request 4, at the moved key, is an exact hit. Every engine and block size
    sees the moved key."""
    x = np.array([[0.0, 0.0], [0.9, 0.0], [1.3, 0.0], [-0.95, 0.0], [0.7333333, 0.0]], dtype=np.float32)
    for engine, block in ENGINES:
        log, keys = replay_keeping_keys(x, policy="cls-lru", capacity=4, radius=1.0, engine=engine, block_size=block)
        assert log.outcome.tolist() == [0, 2, 2, 0, 1], (engine, block)
        assert log.served.tolist() == [-1, 0, 0, -1, 0], (engine, block)
        np.testing.assert_allclose(log.distance[1:4], [0.9, 0.85, 1.6833333], rtol=1e-6)
        assert sorted(keys) == [0, 3]
    lru = replay(x, policy="lru", capacity=4, radius=1.0)
    assert lru.outcome.tolist()[:4] == [0, 2, 0, 2]  # the same requests with fixed keys


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 80),
    dim=st.integers(1, 4),
    capacity=st.integers(1, 12),
    radius=st.floats(0.0, 2.0),
    block=st.sampled_from([1, 3, 16, None]),
)
def test_keys_stay_in_their_clusters_bounding_box(seed, n, dim, capacity, radius, block):
    """update=mean: every cached key lies, component by component, between the smallest and the
    largest value of the requests its entry served (its first included) -- exactly, since each
    float32 step rounds a value between two float32 numbers -- and within float32 rounding of
    their mean; update=none is SIM-LRU exactly."""
    x = (np.random.default_rng(seed).standard_normal((n, dim)) * 0.7).astype(np.float32)
    log, keys = replay_keeping_keys(x, policy="cls-lru", capacity=capacity, radius=radius, block_size=block)
    for e, key in keys.items():
        members = x[np.concatenate([[e], np.flatnonzero(log.served == e)])]
        assert np.all(members.min(0) <= key) and np.all(key <= members.max(0)), e
        np.testing.assert_allclose(key, members.astype(np.float64).mean(0), atol=1e-5 * len(members))
    assert np.all(log.distance[log.outcome > 0] <= radius)
    assert_same_log(replay(x, policy="cls-lru", capacity=capacity, radius=radius, block_size=block,
                           params={"update": "none"}),
                    replay(x, policy="lru", capacity=capacity, radius=radius, block_size=block), "none = lru")


@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_approximate_indexes_reindex_moved_keys(index):
    """The HNSW/IVF searchers keep their own copy of the keys: a moved key is re-indexed, so on a
    cache small enough for the index to be exact both engines equal the flat reference."""
    x = clustered(400, 6, 40, 0.25, seed=1)
    kw = dict(policy="cls-lru", capacity=30, radius=0.6)
    ref = reference_replay(x, "cls-lru", 30, 0.6, "l2", {})
    for engine in ("plain", "block"):
        log, keys = replay_keeping_keys(x, engine=engine, index=index, **kw)
        assert_same_log(log, ref, f"{index} {engine}")
        assert_same_keys(keys, ref.keys, f"{index} {engine}")


def test_listed_by_the_cli_and_sweepable(tmp_path):
    from typer.testing import CliRunner

    from simcache.cli.app import app
    from simcache.replay.sweep import run_sweep

    res = CliRunner().invoke(app, ["policies"])
    assert res.exit_code == 0 and "cls-lru" in res.output and "update:" in res.output
    x = clustered(300, 4, 30, 0.25, seed=2)
    np.save(tmp_path / "x.npy", x)
    df = run_sweep(tmp_path / "x.npy", policies="lru,cls-lru", capacities="10", radii="0.6",
                   params={"update": "step", "rate": 0.3}, out=tmp_path / "sw", jobs=1, progress=False, plots=False)
    row = df[df["policy"] == "cls-lru"].iloc[0]
    assert row["params"] == "rate=0.3;update=step"
    want = replay(x, policy="cls-lru", capacity=10, radius=0.6, params={"update": "step", "rate": 0.3})
    assert row["hit_ratio"] == pytest.approx(want.hit_ratio)


def test_torch_searcher_uploads_moved_keys(monkeypatch):
    """The torch searcher (the GPU path, run here on the CPU) keeps a device copy of the keys: a
    moved key is uploaded like a new entry, on both engines."""
    pytest.importorskip("torch")
    from simcache.cache.search import FlatTorch

    x = clustered(400, 6, 40, 0.25, seed=1)
    ref = reference_replay(x, "cls-lru", 30, 0.6, "l2", {})
    monkeypatch.setattr(engine_module, "make_searcher",
                        lambda index, device, slots, version, counters: FlatTorch(slots, version, counters, "cpu"))
    for engine in ("plain", "block"):
        log, keys = replay_keeping_keys(x, policy="cls-lru", capacity=30, radius=0.6, engine=engine)
        assert log.stats["searcher"] == "flat-torch"
        assert_same_log(log, ref, f"torch {engine}")
        assert_same_keys(keys, ref.keys, f"torch {engine}")
