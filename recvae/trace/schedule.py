"""When a user is embedded: the prefix lengths of the user's time-ordered history.

The rule (all three numbers are options of ``build-trace``):

* a user with ``n < min_history`` interactions is embedded once, on the whole history: ``[n]``;
* otherwise the first prefix holds ``first = max(1, floor(initial_fraction * n))`` interactions
  (``initial_fraction`` is read as the decimal it is written as, so ``0.8 * 55`` is exactly 44),
  then one more embedding after every ``step`` further interactions
  (``first + step, first + 2 step, ...`` while ``<= n``), and a final one on the full history
  ``n`` when interactions remain after the last step.

Examples with the defaults (50, 0.8, 10): n = 1 -> [1]; 49 -> [49]; 50 -> [40, 50];
51 -> [40, 50, 51]; 57 -> [45, 55, 57]; 60 -> [48, 58, 60]; 1000 -> [800, 810, ..., 1000].
A user with no interaction (n = 0) gets no embedding.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from recvae.errors import UserError


@dataclass(frozen=True)
class Schedule:
    """The schedule parameters, validated once."""

    min_history: int = 50  # users with fewer interactions get one embedding on everything
    initial_fraction: float = 0.8  # share of the history in the first embedding
    step: int = 10  # one more embedding after every `step` further interactions

    def __post_init__(self) -> None:
        if self.min_history < 0:
            raise UserError(f"--min-history must be >= 0, got {self.min_history}")
        if not (0.0 < self.initial_fraction <= 1.0) or not math.isfinite(self.initial_fraction):
            raise UserError(f"--initial-fraction must be in (0, 1], got {self.initial_fraction}")
        if self.step < 1:
            raise UserError(f"--step must be >= 1, got {self.step}")

    @property
    def _fraction(self) -> Fraction:
        # repr() gives the shortest decimal that round-trips, so 0.8 becomes exactly 4/5.
        return Fraction(repr(float(self.initial_fraction)))

    def first(self, n: int) -> int:
        """Length of the first prefix of a user with ``n >= min_history`` interactions."""
        return max(1, math.floor(self._fraction * n))

    def prefix_lengths(self, n: int) -> np.ndarray:
        """Increasing prefix lengths (int64) for a user with ``n`` interactions; empty when n = 0."""
        return prefix_lengths(n, self.min_history, self.initial_fraction, self.step)

    def to_dict(self) -> dict:
        return asdict(self)


def prefix_lengths(n: int, min_history: int = 50, initial_fraction: float = 0.8, step: int = 10) -> np.ndarray:
    """Prefix lengths (int64, strictly increasing, last = n) at which a user with n interactions is embedded."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n < min_history:
        return np.array([n], dtype=np.int64)
    first = max(1, math.floor(Fraction(repr(float(initial_fraction))) * n))
    first = min(first, n)
    lengths = np.arange(first, n + 1, step, dtype=np.int64)
    if lengths[-1] < n:
        lengths = np.append(lengths, np.int64(n))
    return lengths


def schedule_many(counts: np.ndarray, schedule: Schedule) -> tuple[np.ndarray, np.ndarray]:
    """Prefix lengths for many users at once.

    Returns ``(owner, lengths)``: for every embedding, the index into ``counts`` of its user and
    its prefix length; embeddings of one user are contiguous and in increasing length order.
    Equal to concatenating :func:`prefix_lengths` per user (tested), without a Python loop per user.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 0:
        raise ValueError("counts must be >= 0")
    frac = schedule._fraction
    long = counts >= schedule.min_history
    # floor(p/q * n) in exact integer arithmetic
    first = np.where(long, np.maximum(1, (counts * frac.numerator) // frac.denominator), counts)
    first = np.minimum(first, counts)
    # number of steps first, first+step, ... <= n, plus one when the last one falls short of n
    n_steps = np.where(counts > 0, (counts - first) // schedule.step + 1, 0)
    last = first + (n_steps - 1) * schedule.step
    n_emb = n_steps + ((counts > 0) & (last < counts)).astype(np.int64)
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), n_emb)
    starts = np.cumsum(n_emb) - n_emb
    j = np.arange(owner.size, dtype=np.int64) - np.repeat(starts, n_emb)  # rank within the user
    lengths = np.minimum(first[owner] + j * schedule.step, counts[owner])
    return owner, lengths
