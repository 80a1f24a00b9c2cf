"""Users' time-ordered histories: binarization, vocabulary, ties, duplicates, clocks, consistency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recvae.data import load_interactions, prepare
from recvae.errors import UserError
from recvae.trace.history import build_histories, check_against_prepared

ITEMS = np.array([10, 20, 30, 40])  # vocabulary: column j is raw item ITEMS[j]


def histories(df: pd.DataFrame, **kw):
    args = dict(items=ITEMS, train_users=np.array([2, 1]), val_users=np.array([3]),
                test_users=np.array([4]), threshold=3.5)
    args.update(kw)
    return build_histories(df, **args)


def user_items(h, raw_user) -> list[int]:
    u = int(np.flatnonzero(h.users == raw_user)[0])
    return ITEMS[h.items[h.offsets[u] : h.offsets[u + 1]]].tolist()


def test_time_order_with_ties_broken_by_file_position() -> None:
    df = pd.DataFrame({
        "user": [1, 1, 1, 1, 2],
        "item": [30, 10, 20, 40, 10],
        "value": [5.0, 5.0, 5.0, 5.0, 4.0],
        "timestamp": [100, 200, 100, 50, 7],
    })
    h = histories(df)
    assert h.users.tolist() == [1, 2, 3, 4]
    assert h.split.tolist() == [0, 0, 1, 2]
    # 40 (t=50); then 30 and 20 tie at t=100: file order (30 first); then 10 (t=200)
    assert user_items(h, 1) == [40, 30, 20, 10]
    assert h.times[h.offsets[0] : h.offsets[1]].tolist() == [50, 100, 100, 200]
    assert h.counts.tolist() == [4, 1, 0, 0]


def test_binarization_vocabulary_users_and_duplicates() -> None:
    df = pd.DataFrame({
        "user": [1, 1, 1, 1, 1, 9, 3, 3],
        "item": [10, 20, 99, 30, 10, 10, 40, 20],
        "value": [4.0, 3.5, 5.0, 3.0, 5.0, 5.0, 4.5, 4.0],
        "timestamp": [5, 1, 2, 3, 4, 1, 9, 8],
    })
    h = histories(df)
    # 20 (3.5) and 30 (3.0) are not positives; 99 is not in the vocabulary; user 9 is in no split;
    # item 10 twice counts once, at its first time (t=4 after sorting, before t=5)
    assert user_items(h, 1) == [10]
    assert h.times[h.offsets[0]] == 4
    assert user_items(h, 3) == [20, 40]
    # without a threshold every row is a positive
    h_all = histories(df, threshold=None)
    assert user_items(h_all, 1) == [20, 30, 10]


def test_file_order_clock_and_missing_timestamps() -> None:
    df = pd.DataFrame({"user": [1, 2, 1], "item": [10, 20, 30], "value": [1.0, 1.0, 1.0]})
    h = histories(df, threshold=None, clock="file-order")
    assert user_items(h, 1) == [10, 30]
    assert h.times[h.offsets[0] : h.offsets[1]].tolist() == [0, 2]
    with pytest.raises(UserError, match="timestamp"):
        histories(df, threshold=None)
    with pytest.raises(UserError, match="clock"):
        histories(df, clock="wall")


def test_string_and_categorical_ids() -> None:
    df = pd.DataFrame({
        "user": pd.Categorical(["b", "a", "b"]),
        "item": pd.Categorical(["s2", "s1", "s9"]),
        "value": [1.0, 1.0, 1.0],
    })
    h = build_histories(df, items=np.array(["s1", "s2"]), train_users=np.array(["a", "b"]),
                        val_users=np.array([], dtype=str), test_users=np.array([], dtype=str),
                        threshold=None, clock="file-order")
    assert h.users.tolist() == ["a", "b"]
    assert h.items.tolist() == [0, 1]


def test_histories_match_the_prepared_data() -> None:
    params = dict(n_users=400, n_items=300, seed=3)
    prepared = prepare("synthetic", progress=False, **params)
    df = load_interactions("synthetic", **params)
    h = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                        val_users=prepared.val_users, test_users=prepared.test_users,
                        threshold=prepared.manifest["params"]["threshold"])
    check_against_prepared(h, prepared)  # raises on any difference
    assert h.n_users == len(prepared.train_users) + len(prepared.val_users) + len(prepared.test_users)
    # per-user timestamps are non-decreasing
    for u in range(h.n_users):
        assert (np.diff(h.times[h.offsets[u] : h.offsets[u + 1]]) >= 0).all()
    # a different threshold gives different sets: the check notices
    h_other = build_histories(df, items=prepared.items, train_users=prepared.train_users,
                              val_users=prepared.val_users, test_users=prepared.test_users, threshold=2.5)
    with pytest.raises(RuntimeError, match="disagree"):
        check_against_prepared(h_other, prepared)
