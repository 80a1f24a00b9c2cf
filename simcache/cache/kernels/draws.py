"""Randomness: uniform draws that are a pure function of (seed, request index, purpose).

Draws do not depend on processing order (:func:`uniform`, a splitmix64 hash): purpose 0 is the
acceptance/refresh draw, 1 the insertion draw, 2 the random-victim draw.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_U53 = 1.0 / 9007199254740992.0  # 2**-53
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@nb.njit(cache=True)
def splitmix64(z: np.uint64) -> np.uint64:
    """One splitmix64 step (wrapping 64-bit arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@nb.njit(cache=True)
def uniform(key: np.uint64, t: int, k: int) -> float:
    """U[0, 1) draw number ``k`` (0, 1, 2) of request ``t`` under ``key = splitmix64(seed)``."""
    z = splitmix64(key ^ np.uint64(t * 4 + k))
    return float(z >> _S11) * _U53


def seed_key(seed: int) -> np.uint64:
    """The key passed to :func:`uniform` for a user seed."""
    return np.uint64(splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))
