"""Small datasets with planted structure and one tiny configuration per model, shared by the model tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from recvae.data import prepare
from recvae.models.data import ModelData, SideInfo, interactions_of, model_data
from recvae.planted import make_planted

PLANTED = dict(n_users=600, n_items=120, n_clusters=6, seed=0)


@dataclass(frozen=True)
class Case:
    """A model, the data it trains on (binary planted / rated synthetic / planted + metadata), tiny options."""

    name: str
    data: str  # "binary", "ratings" or "side"
    options: dict
    personalised: bool = True  # False: the same ranking for every user (cannot beat popularity)


CASES = [
    Case("multvae", "binary", dict(epochs=8, hidden_dim=48, latent_dim=12, batch_size=100, anneal_steps=50, lr=3e-3)),
    Case("implicit-als", "binary", dict(epochs=4, factors=12, threads=1)),
    Case("biases", "ratings", dict(epochs=3), personalised=False),
    Case("als", "ratings", dict(epochs=4, factors=6, reg=5.0)),
    Case("mf", "ratings", dict(epochs=10, factors=8, lr=2e-2, batch_size=512, reg=0.1, bias_reg=0.1)),
    Case("autorec", "ratings", dict(epochs=10, hidden_dim=24, batch_size=32, lr=1e-2)),
    Case("metadata", "side", dict()),
]
CASE_IDS = [c.name for c in CASES]


def planted_homes(n_items: int, n_clusters: int, seed: int) -> np.ndarray:
    """The home cluster of every planted item (replays the first draws of :func:`make_planted`)."""
    rng = np.random.default_rng(seed)
    rng.permutation(n_items)
    return rng.integers(0, n_clusters, size=n_items)


def planted_side(data) -> SideInfo:
    """Metadata for planted data: each item's genre is its home cluster, years and demographics random."""
    p = PLANTED
    homes = planted_homes(p["n_items"], p["n_clusters"], p["seed"])
    genres = np.zeros((p["n_items"], p["n_clusters"]), np.float32)
    genres[np.arange(p["n_items"]), homes] = 1.0
    rng = np.random.default_rng(1)
    users = np.sort(np.concatenate([data.train_users, data.val_users, data.test_users]))
    return SideInfo(
        user_ids=users.astype(np.int64), age=rng.integers(10, 70, users.size),
        gender=rng.choice(["F", "M"], users.size), occupation=rng.choice(["artist", "doctor", "student"], users.size),
        item_ids=np.asarray(data.items, np.int64), genres=genres,
        genre_names=tuple(f"g{k}" for k in range(p["n_clusters"])),
        year=np.where(rng.random(p["n_items"]) < 0.1, np.nan, rng.integers(1950, 2000, p["n_items"]).astype(float)),
    )


@pytest.fixture(scope="session")
def datasets(tmp_path_factory) -> dict:
    """The three kinds of data by ``Case.data`` (built once; the synthetic ratings live in their own
    cache folder), and the raw interactions of the rated one under ``"ratings_interactions"``."""
    import os

    before = os.environ.get("SIMCACHE_CACHE_DIR")
    os.environ["SIMCACHE_CACHE_DIR"] = str(tmp_path_factory.mktemp("models-cache"))
    try:
        rated = prepare("synthetic", n_users=800, n_items=150, n_clusters=5, popularity_exponent=0.5, seed=1,
                        progress=False)
        ratings = model_data(rated, frozenset({"ratings"}))
        interactions = interactions_of(rated)
    finally:
        if before is None:
            os.environ.pop("SIMCACHE_CACHE_DIR", None)
        else:
            os.environ["SIMCACHE_CACHE_DIR"] = before
    binary = make_planted(**PLANTED)
    return {"binary": ModelData(binary), "ratings": ratings, "side": ModelData(binary, side=planted_side(binary)),
            "ratings_interactions": interactions}
