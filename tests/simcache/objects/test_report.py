"""Report numbers against direct computations from the log."""

from __future__ import annotations

import numpy as np

from simcache.objects import ObjectReplayConfig, replay_objects, summarize_objects
from tests.simcache.objects.conftest import make_instance


def _log(policy="obj-lru", **kw):
    x, cat, _ = make_instance(6, n_req=200)
    return replay_objects(x, cat, ObjectReplayConfig(policy=policy, capacity=10, k=4, **kw))


def test_counts_and_costs():
    log = _log()
    s = summarize_objects(log)
    n, k = log.local.shape
    assert s.objects["local"] == sum(int(v) for row in log.local for v in row)
    assert s.objects["local"] + s.objects["fetched"] == n * k
    assert sum(s.objects["local_histogram"]) == n
    exact = sum(set(a) == set(b) for a, b in zip(log.served.tolist(), log.server.tolist()))
    assert s.answers["exact"] == exact and s.answers["approximate"] == n - exact
    ov = np.mean([len(set(a) & set(b)) / k for a, b in zip(log.served.tolist(), log.server.tolist())])
    assert abs(s.quality["overlap_mean"] - ov) < 1e-12
    assert abs(s.cost["nag"] - (log.cost_empty - log.cost).mean() / (k * 1.0)) < 1e-12
    assert not s.quality["future"]["available"] and "future=" in s.quality["future"]["reason"]
    text = s.table()
    assert "NAG" in text and "overlap@4" in text and "unavailable" in text


def test_provenance_equals_direct_count():
    log = _log()
    users = np.random.default_rng(0).integers(0, 5, len(log)).astype(str)
    s = summarize_objects(log, user_id=users)
    same = other = 0
    for t in range(len(log)):
        for o, loc in zip(log.origin[t], log.local[t]):
            if loc:
                if users[o] == users[t]:
                    same += 1
                else:
                    other += 1
    assert (s.provenance["same_user"], s.provenance["other_user"], s.provenance["preloaded"]) == (same, other, 0)
    g = summarize_objects(_log("greedy", params={"candidates": 60}), user_id=users)
    assert g.provenance["preloaded"] == g.provenance["local"] > 0


def test_future_recall_against_direct_count():
    log = _log()
    rng = np.random.default_rng(1)
    futures = [rng.choice(60, size=rng.integers(0, 8), replace=False) for _ in range(len(log))]
    indptr = np.concatenate([[0], np.cumsum([len(f) for f in futures])])
    s = summarize_objects(log, future=(indptr, np.concatenate(futures)))
    fut = s.quality["future"]
    assert fut["hits_served"] == sum(len(set(log.served[t]) & set(f)) for t, f in enumerate(futures))
    assert fut["hits_server"] == sum(len(set(log.server[t]) & set(f)) for t, f in enumerate(futures))
    rec = [len(set(log.served[t]) & set(f)) / min(4, len(f)) for t, f in enumerate(futures) if len(f)]
    assert abs(fut["recall_served"] - np.mean(rec)) < 1e-12


def test_approximate_index_is_marked():
    x, cat, _ = make_instance(6, n_req=100)
    log = replay_objects(x, cat, ObjectReplayConfig(policy="obj-lru", capacity=10, k=4, index="hnsw",
                                                    index_params={"m": 8, "ef_search": 8}))  # fmt: skip
    s = summarize_objects(log)
    assert s.config["index"] == "hnsw" and "(approximate)" in s.table()
    assert s.config["stats"]["index_options"]["m"] == 8
