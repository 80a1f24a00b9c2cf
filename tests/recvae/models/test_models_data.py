"""Ratings beside the binary split, the RMSE split, metadata, and datasets that cannot give ratings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recvae.data.prepared import PreparedData
from recvae.errors import UserError
from recvae.models.data import has_ratings, load_side_info, model_data, rating_matrix, split_ratings
from recvae.planted import make_planted


def test_rating_split_keeps_every_user_on_both_sides():
    m = sp.random(50, 40, density=0.3, random_state=0, format="csr", dtype=np.float32)
    m.data = np.ceil(m.data * 5)
    fit, held = split_ratings(m)
    assert abs((fit + held) - m).sum() == 0 and fit.multiply(held).nnz == 0
    n = np.diff(m.indptr)
    np.testing.assert_array_equal(np.diff(held.indptr), np.where(n >= 5, np.floor(0.2 * n), 0))
    assert ((np.diff(fit.indptr) > 0) | (n == 0)).all()
    fit2, held2 = split_ratings(m)
    assert abs(held2 - held).sum() == 0  # seeded


def test_rating_matrix_keeps_first_row_of_a_repeated_pair():
    df = pd.DataFrame({"user": [1, 1, 2, 3], "item": [10, 10, 11, 99], "value": [4.0, 2.0, 5.0, 1.0]})
    m = rating_matrix(df, np.array([1, 2]), np.array([10, 11]))
    np.testing.assert_array_equal(m.toarray(), [[4.0, 0.0], [0.0, 5.0]])


def test_ratings_align_with_the_protocol(datasets):
    data = datasets["ratings"]
    r, p = data.ratings, data.prepared
    assert r.fit.shape == p.train.shape and r.val_tr.shape == p.val_tr.shape
    assert ((r.val_tr > 0) != (p.val_tr > 0)).nnz == 0 and (r.val_tr.data > 3.5).all()  # fold-in positives' ratings
    assert r.fit.nnz + r.heldout.nnz >= p.train.nnz  # all ratings, low ones too
    assert set(np.unique(r.fit.data)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_datasets_without_ratings_are_refused_with_the_reason():
    assert not has_ratings("msd") and has_ratings("ml20m") and has_ratings("synthetic")
    with pytest.raises(UserError, match="binary by construction"):
        model_data(make_planted(100, 30), frozenset({"ratings"}), model="als")
    msd = make_planted(100, 30)
    msd = PreparedData(**{**msd.__dict__, "manifest": {"dataset": "msd"}})
    with pytest.raises(UserError, match="play counts, not ratings"):
        model_data(msd, frozenset({"ratings"}), model="als")
    with pytest.raises(UserError, match="ml100k only"):
        load_side_info("ml20m")


def test_movielens_100k_metadata(shared_data):
    side = load_side_info("ml100k", shared_data / "ml-100k")
    assert side.user_ids.size == 943 and side.item_ids.size == 1682 and side.genres.shape == (1682, 19)
    assert set(np.unique(side.gender)) == {"F", "M"} and np.isnan(side.year).sum() == 1
    assert side.genres[0, side.genre_names.index("Animation")] == 1.0  # Toy Story
