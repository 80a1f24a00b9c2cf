"""Thread control for the engines: BLAS on one thread, and safe behaviour after ``fork``.

* During a replay numpy's and scipy's OpenBLAS run on one thread (:func:`single_threaded_blas`):
  the per-block products are small, and OpenBLAS's own threads wake and wait for each of them,
  which costs most when other jobs share the cores. The dense search splits its products between
  two numba threads instead, each making single-threaded BLAS calls.
* GNU OpenMP (numba's ``omp`` threading layer, FAISS) cannot be used again in a process forked
  after it started threads: numba terminates such a child and FAISS hangs in it. A child forked
  from a process that imported this module (e.g. a ``multiprocessing`` pool on Linux) therefore
  replays single-threaded: FAISS gets one thread and the dense search runs its serial variant
  (:func:`forked_child`). Results are the same; only the speed differs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_FORKED = False
_CONTROLLER = None


def _after_fork_in_child() -> None:
    global _FORKED
    _FORKED = True
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except Exception:  # pragma: no cover - faiss is a dependency; never fail a fork
        pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def forked_child() -> bool:
    """Whether this process was forked from one that had imported the engine (see module doc)."""
    return _FORKED


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run numpy's and scipy's BLAS on one thread inside the block; FAISS keeps its own threads."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        yield
        return
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    # numpy's and scipy's OpenBLAS builds (FAISS bundles its own, named libopenblas)
    # (select() matches any of its criteria, so select by file prefix only: limiting FAISS's
    # OpenMP OpenBLAS would also limit FAISS's own threads)
    numpy_blas = _CONTROLLER.select(prefix="libscipy_openblas")
    if not numpy_blas.lib_controllers:  # pragma: no cover - other BLAS builds: leave them alone
        yield
        return
    with numpy_blas.limit(limits=1):
        yield


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run FAISS on ``n`` OpenMP threads inside the block (its previous setting restored after)."""
    import faiss

    old = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(old)
