"""Report helpers: metadata compaction, sparkline, the text table."""

from __future__ import annotations

import numpy as np

from simcache.replay import run_replay
from simcache.replay.report import compact_metadata, sparkline


def test_compact_metadata_drops_huge_fields_only():
    meta = {"dataset": "ml20m", "items": list(range(20_000)), "schedule": {"step": 10, "ids": [1, 2]},
            "blob": "x" * 5000}
    out = compact_metadata(meta)
    assert out["dataset"] == "ml20m" and out["schedule"] == {"step": 10, "ids": [1, 2]}
    assert out["items"] == "<list of 20000 values omitted>"
    assert out["blob"] == "<string of 5000 characters omitted>"
    assert len(meta["items"]) == 20_000  # input untouched


def test_sparkline():
    assert sparkline([0.0, 1.0, 0.5]) == "▁█▅"
    assert len(sparkline(list(np.linspace(0, 1, 1000)), width=50)) == 50
    assert sparkline([]) == ""


def test_table_mentions_every_section(trace_file):
    res = run_replay(trace_file, policy="lru", capacity=20, radius=0.2)
    text = res.table()
    for word in ("requests", "exact hits", "approximate hits", "misses", "cost", "d(x,y*)", "over time",
                 "split", "users", "overlap@10"):
        assert word in text
    c = res.summary.counts
    assert f"{c['hit_ratio']:.4f}" in text
