"""Fixtures for the trace tests."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from recvae.data import load_interactions, prepare


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[object, pd.DataFrame]]:
    """``make(**generator_params)`` -> (prepared synthetic data, its raw interactions), in a private cache."""

    def make(**params: object) -> tuple[object, pd.DataFrame]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SIMCACHE_CACHE_DIR", str(tmp_path_factory.mktemp("synthetic-cache")))
            return prepare("synthetic", progress=False, **params), load_interactions("synthetic", **params)

    return make
