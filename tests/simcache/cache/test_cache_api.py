"""Public API: validation, input forms (arrays, memory maps, iterables of blocks), searchers."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from recvae.errors import UserError
from simcache.cache import POLICIES, CostModel, ReplayLog, engine as engine_module, kernels as K, replay
from simcache.cache.engine import search_seconds
from simcache.cache.search import FlatCPU, FlatTorch
from tests.simcache.cache.helpers import assert_same_log, clustered

X = clustered(800, 6, 80, 0.2, seed=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policy": "nope"},
        {"capacity": 0},
        {"capacity": -3},
        {"capacity": 2.5},
        {"capacity": True},
        {"radius": -0.1},
        {"radius": float("nan")},
        {"metric": "ip"},
        {"engine": "fast"},
        {"index": "lsh"},
        {"device": "tpu"},
        {"block_size": 0},
        {"policy": "lru", "params": {"q": 0.5}},
        {"policy": "rnd-lru", "params": {"acceptance": "cubic"}},
        {"policy": "rnd-lru", "params": {"scale": -1.0}},
        {"policy": "qlru-dc", "params": {"q": 0.0}},
        {"policy": "qlru-dc", "params": {"q": "many"}},
    ],
)
def test_bad_options_are_user_errors(kwargs):
    kw = {"capacity": 10, **kwargs}
    with pytest.raises(UserError):
        replay(X, **kw)


@pytest.mark.parametrize(
    "vectors",
    [
        np.zeros(5, dtype=np.float32),
        np.zeros((2, 3, 4), dtype=np.float32),
        np.zeros((4, 0), dtype=np.float32),
        "not vectors",
        [np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)],
        np.array([[0.0, np.nan]], dtype=np.float32),
    ],
)
def test_bad_vectors_are_user_errors(vectors):
    with pytest.raises(UserError):
        replay(vectors, capacity=3)


def test_huge_norm_is_a_user_error():
    """Squared norms beyond float32 distance arithmetic are refused (finite components)."""
    x = np.ones((3, 4), dtype=np.float32)
    x[2] = 3e18
    with pytest.raises(UserError, match="request 2 has a squared norm"):
        replay(x, capacity=3)
    x[2] = 1e18  # squared norm 4e36: accepted
    assert replay(x, capacity=3).outcome.shape == (3,)


@pytest.mark.parametrize("engine", ["block", "plain"])
@pytest.mark.parametrize("bad", [0, 63, 64, 700, 8200])
@pytest.mark.parametrize("value, message", [(np.nan, "non-finite"), (4e18, "squared norm above")])
def test_a_bad_request_in_any_block_or_chunk_is_named(engine, bad, value, message):
    """The block engine checks each block as it reaches it (the dense kernel computes the norms
    block by block); the first bad request is named, whichever block and read chunk it is in."""
    x = np.random.default_rng(0).standard_normal((8300, 8)).astype(np.float32)
    x[bad, 3] = value
    with pytest.raises(UserError, match=f"request {bad} has a {message}"):
        replay(x, capacity=50, radius=0.5, engine=engine, block_size=64)


@pytest.mark.parametrize("row", [[np.inf, 0.0], [np.nan, 1.0], [np.inf, np.inf]])
def test_cosine_non_finite_vector_is_a_user_error(row):
    """Normalising keeps the row non-finite, so the norm check names it."""
    with pytest.raises(UserError, match="request 1 has a non-finite"):
        replay(np.array([[1, 0], row], dtype=np.float32), capacity=3, metric="cosine")


def test_cosine_zero_vector_is_a_user_error():
    with pytest.raises(UserError, match="zero vector"):
        replay(np.array([[1, 0], [0, 0]], dtype=np.float32), capacity=3, metric="cosine")


def test_cost_model():
    with pytest.raises(UserError):
        CostModel("quadratic")
    with pytest.raises(UserError):
        CostModel("linear", retrieval_cost=0.0)
    c = CostModel("power", retrieval_cost=2.0, scale=3.0, exponent=2.0)
    assert np.allclose(c.approx_cost(np.array([0.0, 1.0, 2.0])), [0.0, 3.0, 12.0])
    assert np.allclose(CostModel("linear", scale=2.0).approx_cost(np.array([0.5])), [1.0])
    assert np.all(CostModel().approx_cost(np.array([0.0, 5.0])) == 0)
    assert np.allclose(c.service_cost(np.array([0.5, 1.0, 9.0]), np.array([True, True, False])), [0.75, 2.0, 2.0])


def test_registry_names():
    """The spec's query-cache policies are registered (more may be: adding one edits no test)."""
    assert set(POLICIES) >= {"lru", "fifo", "lfu", "random", "rnd-lru", "qlru-dc"}
    assert all(name == cls.name and cls.family == "query" for name, cls in POLICIES.items())


@pytest.mark.parametrize("policy", ["lru", "qlru-dc", "random"])
def test_iterable_memmap_and_float64_inputs_equal_the_array(policy, tmp_path):
    kw = dict(policy=policy, capacity=25, radius=0.5, seed=1)
    ref = replay(X, **kw)
    uneven = [X[:7], X[7:300], X[300:301], X[301:]]
    assert_same_log(replay(iter(uneven), **kw), ref, "iterable")
    assert_same_log(replay(uneven, block_size=64, **kw), ref, "list, block 64")
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape)
    mm[:] = X
    mm.flush()
    assert_same_log(replay(np.load(tmp_path / "x.npy", mmap_mode="r"), **kw), ref, "memmap")
    assert_same_log(replay(X.astype(np.float64), **kw), ref, "float64")
    assert_same_log(replay(np.asfortranarray(X), **kw), ref, "fortran order")


def test_memory_is_bounded_by_blocks_not_the_trace(tmp_path):
    n, d = 120_000, 64  # 30 MB of vectors on disk
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    for i in range(0, n, 20_000):
        mm[i : i + 20_000] = rng.standard_normal((20_000, d), dtype=np.float32)
    mm.flush()
    del mm
    vectors = np.load(path, mmap_mode="r")
    tracemalloc.start()
    log = replay(vectors, capacity=200, radius=1.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(log) == n
    log_bytes = n * (1 + 8 + 4 + 1 + 8)
    assert peak < log_bytes + 8 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {n * d * 4 / 2**20:.0f} MiB trace"


def test_stats_and_progress():
    log = replay(X, capacity=10, radius=0.5, progress=True)
    assert isinstance(log, ReplayLog) and log.stats["engine"] == "block" and log.stats["seconds"] >= 0
    assert log.stats["exact_fallback_scans"] == 0


@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_approximate_indexes_are_close_to_exact(index):
    x = clustered(4000, 16, 300, 0.1, seed=4)
    exact = replay(x, capacity=200, radius=0.6)
    for engine in ("block", "plain"):
        approx = replay(x, capacity=200, radius=0.6, index=index, engine=engine)
        assert abs(approx.hit_ratio - exact.hit_ratio) < 0.05, (index, engine)
        hits = approx.outcome != 0
        assert np.all(approx.distance[hits] <= 0.6)
        occupancy = np.cumsum(approx.inserted.astype(int)) - np.cumsum(approx.evicted >= 0)
        assert occupancy.max() <= 200


def test_torch_flat_search_matches_faiss(monkeypatch):
    """The torch searcher (the GPU path when CUDA is present) run on the CPU gives the same log."""
    pytest.importorskip("torch")
    x = clustered(3000, 16, 200, 0.1, seed=5)
    kw = dict(policy="lru", capacity=300, radius=0.5)
    ref = replay(x, engine="plain", **kw)

    def torch_searcher(index, device, slots, slot_req, counters):
        return FlatTorch(slots, slot_req, counters, device="cpu")

    monkeypatch.setattr(engine_module, "make_searcher", torch_searcher)
    log = replay(x, **kw)
    assert log.stats["searcher"] == "flat-torch"
    assert_same_log(log, ref, "torch")


@pytest.mark.parametrize("capacity", [30, 1100])  # dense search / FAISS search
def test_one_thread_replay_equals_the_parallel_one(capacity):
    x = clustered(2500, 12, 400, 0.1, seed=3)
    logs = [replay(x, policy="lru", capacity=capacity, radius=0.5, threads=t) for t in (2, 1, None)]
    assert 0 < logs[0].hit_ratio < 1
    assert_same_log(logs[0], logs[1])
    assert_same_log(logs[0], logs[2])


@pytest.mark.parametrize(("capacity", "searched"), [(20, [1300]), (1100, [1024, 276])])  # dense / FAISS
def test_search_seconds_searches_every_request_as_the_replay_does(capacity, searched, monkeypatch):
    """One dense call per input chunk, or one FAISS search per 1,024-request block."""
    monkeypatch.setattr(engine_module, "DENSE_MAX_CAPACITY", 1024)  # C = 1100 takes the FAISS path
    x = np.random.default_rng(0).standard_normal((1300, 8)).astype(np.float32)
    rows: list[int] = []
    dense, flat = K.search_chunk_dense, FlatCPU.search
    monkeypatch.setattr(K, "search_chunk_dense", lambda q, *a: (rows.append(len(q)), dense(q, *a))[1])
    monkeypatch.setattr(FlatCPU, "search", lambda self, q, m: (rows.append(len(q)), flat(self, q, m))[1])
    for threads in (2, 1):
        rows.clear()
        assert search_seconds(x, capacity, threads=threads) > 0.0
        assert rows == searched


def test_search_seconds_needs_capacity_rows():
    with pytest.raises(UserError, match="n >= capacity"):
        search_seconds(np.zeros((5, 3), np.float32), 10)


@pytest.mark.parametrize("kind", ["zero", "linear", "power"])
def test_compiled_cost_rule_equals_the_cost_model(kind):
    """qLRU-ΔC's compiled h(d) and C(x, S) are the CostModel's rule (the one Python statement)."""
    from simcache.cache.policies.qlru_dc import approx_cost, service_cost

    c = CostModel(kind, retrieval_cost=1.5, scale=0.7, exponent=2.5)
    d = np.array([0.0, 0.3, 1.0, 2.0, 9.0])
    assert [approx_cost(v, c.code, c.scale, c.exponent) for v in d] == pytest.approx(c.approx_cost(d).tolist())
    hit = d <= 2.0  # radius 2: entries beyond it are not usable
    compiled = [service_cost(True, v, 2.0, c.retrieval_cost, c.code, c.scale, c.exponent) for v in d]
    assert compiled == pytest.approx(c.service_cost(d, hit).tolist())


def _plan_choices(speeds, chunks: int, **kwargs) -> list[int]:
    """The thread counts an auto plan choosing between one and two threads runs over ``chunks``
    chunks of 100 rows when ``n`` threads take ``speeds[n]`` seconds per row (a dict, or a
    function of the chunk index giving one) on a fake clock."""
    from simcache.cache.threads import ThreadPlan

    now = [0.0]
    plan = ThreadPlan(None, clock=lambda: now[0], **kwargs)
    plan.most, plan.fixed = 2, None
    chosen = []
    for i in range(chunks):
        with plan.chunk(100) as n:
            chosen.append(n)
            now[0] += 100 * (speeds(i) if callable(speeds) else speeds)[n]
    return chosen


def test_thread_plan_on_a_busy_machine_stays_on_one_thread_and_backs_off_its_probes():
    """One thread for the warm-up and the first measurement, all threads once, then the faster;
    probes of the slower choice after 4, then 8, then 16 chunks while they keep losing."""
    chosen = _plan_choices({2: 10.0, 1: 1.0}, 40, probe_every=4)  # two threads slow: a busy machine
    twos = [i for i, n in enumerate(chosen) if n == 2]
    assert chosen[:3] == [1, 1, 2]
    assert [b - a for a, b in zip(twos, twos[1:])] == [5, 9, 17]  # each probe waits twice as long


def test_thread_plan_keeps_all_threads_only_when_clearly_faster():
    """A team of threads 5 % faster (within the 10 % margin) is not worth it; 40 % faster is; and
    when the machine gets busy, the next probe of one thread switches back to it."""
    assert set(_plan_choices({2: 0.95, 1: 1.0}, 12, probe_every=100)[3:]) == {1}
    assert set(_plan_choices({2: 0.6, 1: 1.0}, 12, probe_every=100)[3:]) == {2}
    idle, busy = {2: 0.6, 1: 1.0}, {2: 3.0, 1: 1.2}
    chosen = _plan_choices(lambda i: idle if i < 5 else busy, 16, probe_every=4)
    assert chosen == [1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1]  # slowed at chunk 5; probed again at 10


def test_thread_plan_fixed_counts():
    from simcache.cache.threads import ThreadPlan

    assert ThreadPlan(1).next() == 1 and ThreadPlan(3).next() <= 3


def test_small_block_products_are_never_split_between_threads():
    """Auto threads: below MIN_SPLIT_MACS multiply-adds per block the engine keeps to one thread
    (a team cannot win there); above it, the plan may use every available core; a fixed count is
    always kept."""
    from simcache.cache.config import ReplayConfig
    from simcache.cache.engine import _Engine, default_block_size
    from simcache.cache.threads import MIN_SPLIT_MACS, available_cores

    def plan_most(capacity: int, dim: int, threads: int | None = None) -> int:
        cfg = ReplayConfig(capacity=capacity, radius=0.5, threads=threads)
        block = default_block_size(capacity)
        eng = _Engine(cfg, dim, block)
        assert (block * (capacity + block) * dim < MIN_SPLIT_MACS) == (capacity == 100)
        return eng.plan.fixed if eng.plan.fixed is not None else eng.plan.most

    assert plan_most(100, 200) == 1
    assert plan_most(4000, 512) == available_cores()
    assert plan_most(100, 200, threads=2) == min(2, available_cores())
