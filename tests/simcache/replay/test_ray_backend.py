"""The Ray backend (on a local Ray started by the test): the same tables as the local backend, bit
for bit, by path and through the object store; a killed worker's task is retried; no Ray, one clear error."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from recvae.errors import UserError
from simcache.replay.sweep import TIMING_COLUMNS, run_sweep

from .test_pool import Flaky


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # the test modules are not importable by name in Ray's workers: send their classes by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[Flaky.__module__])
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_tables(tmp_path, trace_file, ray):
    grid = dict(policies="lru,rnd-lru", capacities="5,20", radii="0.1", params={"acceptance": "linear"},
                seed=3, progress=False)
    local = run_sweep(trace_file, out=tmp_path / "local", jobs=1, **grid)
    by_path = run_sweep(trace_file, out=tmp_path / "ray", backend="ray", jobs=2, **grid)
    shipped = run_sweep(trace_file, out=tmp_path / "shipped", backend="ray", ship_trace=True, jobs=2, **grid)
    for df in (by_path, shipped):
        pd.testing.assert_frame_equal(df.drop(columns=list(TIMING_COLUMNS)), local.drop(columns=list(TIMING_COLUMNS)),
                                      check_exact=True)
    for name in ("ray", "shipped"):
        assert sorted(p.name for p in (tmp_path / name / "points").iterdir()) == sorted(
            p.name for p in (tmp_path / "local" / "points").iterdir())


def test_killed_ray_worker_is_retried(tmp_path, ray):
    from simcache.replay.ray_backend import run_ray

    results, errors = {}, {}
    run_ray([(str(i), i) for i in range(4)], Flaky(str(tmp_path), fail=frozenset({3}), crash_once=frozenset({1})),
            address=None, jobs=2, threads=1, on_result=results.__setitem__, on_error=errors.__setitem__)
    assert {k: v[0] for k, v in results.items()} == {"0": 0, "1": 2, "2": 4}
    assert (tmp_path / "1.crashed").exists()  # its first worker was killed mid-task
    assert errors == {"3": "ValueError: bad parameter 3"}


def test_missing_ray_is_one_clear_error(tmp_path, trace_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserError, match=r"needs Ray, an optional extra: pip install 'simcache\[ray\]'"):
        run_sweep(trace_file, capacities="5", out=tmp_path / "x", backend="ray", progress=False)
    assert not (tmp_path / "x").exists()
