"""map: t-SNE coordinates with labels; UMAP skipped with a note when umap-learn is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from simcache.analysis import analyze_map, plot_result
from simcache.analysis.maps import UMAP_MISSING


def test_tsne_map_with_labels_and_missing_umap(three_clusters, tmp_path, assert_png, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    x, labels = three_clusters
    res = analyze_map(x, labels=labels, seed=0, max_points=240, threads=1)
    data = res["sets"]["data"]
    assert res["subsampled"] and data["points"] == 240
    y = np.asarray(data["tsne"])
    assert y.shape == (240, 2) and np.isfinite(y).all()
    assert data["umap"] is None and res["umap_note"] == UMAP_MISSING
    assert sum(data["label_counts"].values()) == 240
    # the three clusters stay apart in the map: each label's centroid is far from the others
    lab = np.asarray(data["labels"])
    cents = np.array([y[lab == c].mean(axis=0) for c in range(3)])
    spread = max(y[lab == c].std() for c in range(3))
    gaps = [np.linalg.norm(cents[a] - cents[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread
    assert set(res["sets"]) == {"data", "uniform_ball", "gaussian"}
    plot_result(res, tmp_path / "map.png")
    assert_png(tmp_path / "map.png")


def test_labels_must_match_points(three_clusters):
    x, labels = three_clusters
    with pytest.raises(ValueError, match="labels"):
        analyze_map(x, labels=labels[:10], use_umap=False)
