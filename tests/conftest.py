"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the package cache at a fresh temporary folder so tests never touch ~/.cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def shared_data() -> Path:
    """The real data samples in ../shared/data; tests using it skip on a fresh clone without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data samples not found at {SHARED_DATA} (only present in the dev workspace)")
    return SHARED_DATA
