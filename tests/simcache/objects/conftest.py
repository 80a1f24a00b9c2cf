"""Small random catalogues and clustered request traces for the object-cache tests."""

from __future__ import annotations

import numpy as np
import pytest


def make_instance(seed: int, n_obj: int = 60, dim: int = 7, n_req: int = 150, noise: float = 0.3):
    """(requests, catalogue vectors, bias): requests are Zipf-chosen objects plus noise, so caches hit."""
    rng = np.random.default_rng(seed)
    cat = rng.standard_normal((n_obj, dim)).astype(np.float32)
    bias = rng.standard_normal(n_obj).astype(np.float32)
    p = 1.0 / np.arange(1, n_obj + 1) ** 1.1
    ids = rng.choice(n_obj, size=n_req, p=p / p.sum())
    x = (cat[ids] + noise * rng.standard_normal((n_req, dim))).astype(np.float32)
    return x, cat, bias


@pytest.fixture
def instance():
    return make_instance(0)
