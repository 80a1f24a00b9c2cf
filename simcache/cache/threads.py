"""Thread control for the engines: how many threads, BLAS on one thread, and safe behaviour after
``fork``.

* **How many threads** (:class:`ThreadPlan`). A replay may use the cores available to the process
  (its CPU affinity), but on a machine busy with other jobs a team of threads that meets at a
  barrier after every small block can be many times slower than one thread. With ``threads=None``
  (the default) the engine therefore measures: it runs a chunk of requests on a single thread and
  one on all available threads, keeps all threads only while they are clearly faster (time per
  request), and tries the other again now and then, so a replay is never much slower than on one
  thread, whatever the load.
  Results do not depend on the choice. ``threads=N`` fixes the number.
* OpenMP threads (numba's ``omp`` layer, FAISS) wait passively at barriers
  (``OMP_WAIT_POLICY=PASSIVE``, set when this module is imported unless the environment says
  otherwise): spinning threads take cores from other jobs and from each other.

* During a replay numpy's and scipy's OpenBLAS run on one thread (:func:`single_threaded_blas`):
  the per-block products are small, and OpenBLAS's own threads wake and wait for each of them,
  which costs most when other jobs share the cores. The block products (not BLAS: see
  :mod:`~simcache.cache.kernels.panels`) are split between two numba threads. The object engine's
  products with the whole catalogue, larger, run on one BLAS thread or on all cores
  (:func:`numpy_blas_threads`), chosen block by block by a :class:`ThreadPlan`.
* GNU OpenMP (numba's ``omp`` threading layer, FAISS) cannot be used again in a process forked
  after it started threads: numba terminates such a child and FAISS hangs in it. A child forked
  from a process that imported this module (e.g. a ``multiprocessing`` pool on Linux) therefore
  replays single-threaded: FAISS gets one thread and the block products run on the calling thread
  (:func:`forked_child`). Results are the same; only the speed differs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

# must be set before the OpenMP runtime starts (it reads the environment once)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_FORKED = False
_CONTROLLER = None
_LIMIT: int | None = None  # most threads one replay of this process may use (limit_threads)


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
def numpy_blas_threads(n: int) -> Iterator[None]:
    """Run numpy's and scipy's BLAS on ``n`` threads inside the block; FAISS keeps its own threads."""
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
    with numpy_blas.limit(limits=n):
        yield


def single_threaded_blas() -> contextlib.AbstractContextManager[None]:
    """Run numpy's and scipy's BLAS on one thread inside the block; FAISS keeps its own threads."""
    return numpy_blas_threads(1)


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


#: with threads chosen automatically, a product is split between threads only from this many
#: multiply-adds: smaller ones end before a passively waiting thread has woken up
#: (``python -m benchmarks.replay_threads``: the query engine's default on two threads was slower
#: than one thread at C = 100 and 1,000, d = 200, about 2 and 29 million per block, and faster at
#: 10,000)
MIN_SPLIT_MACS = 100_000_000


def limit_threads(n: int | None) -> None:
    """Cap the threads of every replay in this process (a sweep worker sharing the cores with
    other workers gets ``cores // workers``, so one thread when workers >= cores); None: no cap."""
    global _LIMIT
    _LIMIT = None if n is None else max(1, int(n))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class ThreadPlan:
    """Chunk by chunk, how many threads the engine uses (see the module doc).

    ``threads``: a fixed number, or None to choose between one thread and ``available_cores()``
    (at most ``auto_most``) by measured time per request. One thread first: a warm-up chunk that
    is not measured (it loads the compiled kernels and starts with an empty cache), then one
    measured chunk on one thread and one on all threads. All threads then run only while they
    are faster by more than ``margin`` (measurement noise must not buy a team of threads on a
    busy machine). The other choice is tried again after ``probe_every`` chunks (the machine's
    load changes), and after twice as many each time such a probe confirms the choice, so that
    a machine that stays busy pays for few probes.
    """

    def __init__(self, threads: int | None, *, auto_most: int | None = None, probe_every: int = 8,
                 margin: float = 0.1, clock: Callable[[], float] = time.perf_counter) -> None:  # fmt: skip
        most = 1 if forked_child() else available_cores()
        if _LIMIT is not None:
            most = min(most, _LIMIT)
        if threads is None and auto_most is not None:  # the work cannot use more (the engine knows)
            most = min(most, auto_most)
        self.fixed = min(threads, most) if threads is not None else (1 if most < 2 else None)
        self.most = most
        self.probe_every = probe_every
        self.margin = margin
        self.clock = clock
        self.seconds_per_row: dict[int, float] = {}
        self.chunks = 0
        self.used: dict[int, int] = {}  # threads -> chunks run with them (for the log's stats)
        self._interval = probe_every
        self._next_probe: int | None = None  # chunk index of the next probe (once both are measured)
        self._probing = False

    def best(self) -> int:
        """The faster of the measured choices (all threads only when faster by more than the margin)."""
        one, most = self.seconds_per_row[1], self.seconds_per_row[self.most]
        return self.most if most < (1.0 - self.margin) * one else 1

    def next(self) -> int:
        """Threads for the next chunk."""
        if self.fixed is not None:
            return self.fixed
        if self.chunks == 0 or 1 not in self.seconds_per_row:
            return 1
        if self.most not in self.seconds_per_row:
            return self.most
        best = self.best()
        if self._next_probe is None:
            self._next_probe = self.chunks + self._interval
        self._probing = self.chunks >= self._next_probe
        if self._probing:
            return 1 if best == self.most else self.most
        return best

    @contextlib.contextmanager
    def chunk(self, rows: int) -> Iterator[int]:
        """Run one chunk of ``rows`` requests: yields the thread count, records the time taken."""
        n = self.next()
        before = self.best() if self._next_probe is not None else None
        start = self.clock()
        yield n
        if rows and self.chunks > 0:
            self.seconds_per_row[n] = (self.clock() - start) / rows
        if before is not None and (self._probing or self.best() != before):
            # after a probe that confirms the choice, wait twice as long for the next one; after a
            # switch (found by a probe, or by the chosen count slowing down), start again
            self._interval = self._interval * 2 if self.best() == before else self.probe_every
            self._next_probe = self.chunks + 1 + self._interval
            self._probing = False
        self.chunks += 1
        self.used[n] = self.used.get(n, 0) + 1
