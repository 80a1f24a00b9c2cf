"""The trace schedule: prefix lengths per user (pure functions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recvae.errors import UserError
from recvae.trace.schedule import Schedule, prefix_lengths, schedule_many


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, []),
        (1, [1]),
        (49, [49]),
        (50, [40, 50]),
        (51, [40, 50, 51]),
        (57, [45, 55, 57]),
        (60, [48, 58, 60]),
        (1000, list(range(800, 1001, 10))),
    ],
)
def test_default_schedule_edge_cases(n: int, expected: list[int]) -> None:
    assert prefix_lengths(n).tolist() == expected
    assert Schedule().prefix_lengths(n).tolist() == expected


def test_thousand_has_21_embeddings_ending_with_full_history() -> None:
    lengths = prefix_lengths(1000)
    assert lengths.size == 21 and lengths[0] == 800 and lengths[-1] == 1000


def test_fraction_is_read_as_a_decimal() -> None:
    # 0.8 * 55 is 44.00000000000001 in binary floating point; 0.7 * 10 is 7.000000000000001;
    # 0.29 * 100 is 28.999999999999996 -> the rule uses the decimal values 44, 7 and 29.
    assert prefix_lengths(55)[0] == 44
    assert prefix_lengths(10, min_history=1, initial_fraction=0.7)[0] == 7
    assert prefix_lengths(100, min_history=1, initial_fraction=0.29)[0] == 29


def test_first_prefix_is_at_least_one() -> None:
    assert prefix_lengths(3, min_history=1, initial_fraction=0.1, step=1).tolist() == [1, 2, 3]


def test_fraction_one_embeds_only_full_history() -> None:
    assert prefix_lengths(500, initial_fraction=1.0).tolist() == [500]


def test_min_history_zero_schedules_everyone() -> None:
    assert prefix_lengths(10, min_history=0, initial_fraction=0.5, step=2).tolist() == [5, 7, 9, 10]


@pytest.mark.parametrize("kw", [{"min_history": -1}, {"initial_fraction": 0.0}, {"initial_fraction": 1.5},
                                {"initial_fraction": float("nan")}, {"step": 0}])
def test_invalid_parameters_are_user_errors(kw: dict) -> None:
    with pytest.raises(UserError):
        Schedule(**kw)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 400), min_size=0, max_size=30),
    min_history=st.integers(0, 80),
    fraction=st.sampled_from([0.05, 0.3, 0.5, 0.8, 0.81, 0.99, 1.0]),
    step=st.integers(1, 25),
)
def test_vectorised_schedule_equals_per_user_rule(counts, min_history, fraction, step) -> None:
    sched = Schedule(min_history=min_history, initial_fraction=fraction, step=step)
    owner, lengths = schedule_many(np.asarray(counts, dtype=np.int64), sched)
    expected_owner, expected_lengths = [], []
    for u, n in enumerate(counts):
        # the rule written out once more, independently
        if n == 0:
            ls = []
        elif n < min_history:
            ls = [n]
        else:
            first = max(1, math.floor(round(fraction * 100) * n / 100 + 1e-9))
            ls = list(range(first, n + 1, step))
            if ls[-1] != n:
                ls.append(n)
        expected_owner += [u] * len(ls)
        expected_lengths += ls
    assert owner.tolist() == expected_owner
    assert lengths.tolist() == expected_lengths


def test_lengths_strictly_increase_and_end_at_n() -> None:
    counts = np.arange(0, 700)
    owner, lengths = schedule_many(counts, Schedule())
    for u in (1, 49, 50, 51, 57, 60, 333, 699):
        ls = lengths[owner == u]
        assert (np.diff(ls) > 0).all() and ls[-1] == u
    assert not (owner == 0).any()
