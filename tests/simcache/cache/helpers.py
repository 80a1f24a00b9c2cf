"""Test traces and comparison helpers for the cache tests."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import mmap
from collections.abc import Callable, Iterator

import numpy as np

FIELDS = ("outcome", "served", "distance", "inserted", "evicted")


def clustered(n: int, d: int, n_centers: int, noise: float, seed: int, zipf: float = 1.1) -> np.ndarray:
    """Noisy copies of Zipf-popular centres (plenty of near and exact repeats when noise is 0)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centers, d))
    p = 1.0 / np.arange(1, n_centers + 1) ** zipf
    ids = rng.choice(n_centers, size=n, p=p / p.sum())
    x = centres[ids] + noise * rng.standard_normal((n, d))
    return x.astype(np.float32)


def grid(n: int, d: int, levels: int, seed: int) -> np.ndarray:
    """Small-integer vectors: many exact duplicates and exactly tied distances."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, levels, size=(n, d)).astype(np.float32)


def mixed(n: int, d: int, seed: int) -> np.ndarray:
    """Random vectors where a third of the requests repeat an earlier one exactly."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    for t in range(1, n):
        if rng.random() < 0.33:
            x[t] = x[rng.integers(0, t)]
    return x


def assert_same_log(a, b, context: str = "") -> None:
    """Field-by-field exact equality of two logs (ReplayLog or RefLog)."""
    for f in FIELDS:
        x = np.asarray(getattr(a, f))
        y = np.asarray(getattr(b, f))
        if f == "distance":
            x, y = x.astype(np.float32), y.astype(np.float32)
        else:
            x, y = x.astype(np.int64), y.astype(np.int64)
        if not np.array_equal(x, y):
            first = int(np.flatnonzero(x != y)[0]) if x.shape == y.shape else -1
            raise AssertionError(f"{context}: field {f!r} differs first at request {first}: {x[first]} vs {y[first]}")


def unpack_panels(panels: np.ndarray, d: int) -> np.ndarray:
    """The columns of packed panels (:mod:`simcache.cache.kernels.panels`) as rows, in the layout
    that module documents (written here independently of its code)."""
    from simcache.cache.kernels.panels import PANEL

    return panels.reshape(-1, d, PANEL).transpose(0, 2, 1).reshape(-1, d)


@contextlib.contextmanager
def page_end() -> Iterator[Callable[[int], np.ndarray]]:
    """Make float32 arrays of ``n`` elements that end where an inaccessible page begins, so that
    compiled code reading past their end faults (and the test fails)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    page = mmap.PAGESIZE
    buf = mmap.mmap(-1, 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + page, page, 0) == 0, "mprotect failed"
    try:
        yield lambda n: np.frombuffer(buf, np.float32, count=n, offset=page - 4 * n)
    finally:
        libc.mprotect(base + page, page, mmap.PROT_READ | mmap.PROT_WRITE)
        with contextlib.suppress(BufferError):  # an array the test still holds: unmapped when freed
            buf.close()
