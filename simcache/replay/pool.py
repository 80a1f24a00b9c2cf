"""The local backend of sweeps: a small process pool that survives killed workers and dies with its driver.

:func:`run_local` runs ``fn(arg)`` for every item in ``spawn``-started worker processes (forking
after FAISS/OpenMP started is unsafe), one item per worker at a time, so the driver always knows
which item each worker holds:

- a worker that dies mid-item (killed, out of memory, crashed) is replaced and its item is queued
  again, up to ``max_attempts`` tries; the other workers go on;
- an item whose ``fn`` raises is reported through ``on_error`` and the others go on;
- workers die with the driver however it ends: Linux's parent-death signal, plus a thread that
  polls the parent (other systems); SIGINT (Ctrl-C reaches the whole process group) is left to the
  driver, which stops the workers itself.

With ``jobs == 1`` items run in the calling process (no pool, no retries).
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

OnResult = Callable[[str, Any], None]
OnError = Callable[[str, str], None]


def set_threads(threads: int) -> None:
    """Give this process's replays, FAISS and numba at most ``threads`` threads (called in every
    worker)."""
    from simcache.cache.threads import limit_threads

    limit_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    with contextlib.suppress(ImportError):
        import faiss

        faiss.omp_set_num_threads(threads)
    with contextlib.suppress(ImportError, ValueError):
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends: ``PR_SET_PDEATHSIG`` on Linux, and a watchdog thread."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def format_error(exc: BaseException) -> str:
    """One line for the failure summary: the exception type and message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _worker_main(conn: Any, parent_pid: int, threads: int) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_threads(threads)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        key, fn, arg = msg
        try:
            reply = (key, True, fn(arg))
        except Exception as exc:  # reported to the driver, which records the item as failed
            reply = (key, False, (format_error(exc), traceback.format_exc()))
        conn.send(reply)


class _Worker:
    def __init__(self, ctx: Any, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, os.getpid(), threads), daemon=True,
                                   name="simcache-sweep-worker")  # fmt: skip
        self.process.start()
        child.close()
        self.key: str | None = None

    def stop(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.key is None:
                self.conn.send(None)
        self.process.join(timeout if self.key is None else 0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def run_local(items: Sequence[tuple[str, Any]], fn: Callable[[Any], Any], *, jobs: int, threads: int,
              on_result: OnResult, on_error: OnError, max_attempts: int = 3) -> None:  # fmt: skip
    """Run ``fn(arg)`` for every ``(key, arg)`` of ``items`` in ``jobs`` worker processes.

    ``on_result(key, value)`` is called in the driver as each item ends, ``on_error(key, message)``
    for an item that raised or whose worker died ``max_attempts`` times. Items start in the given order.
    """
    if jobs <= 1:
        for key, arg in items:
            try:
                value = fn(arg)
            except Exception as exc:
                on_error(key, format_error(exc))
            else:
                on_result(key, value)
        return
    args = dict(items)
    queue = collections.deque(args)
    attempts = collections.Counter[str]()
    ctx = multiprocessing.get_context("spawn")
    workers = [_Worker(ctx, threads) for _ in range(min(jobs, len(queue)))]
    try:
        while queue or any(w.key is not None for w in workers):
            for w in workers:
                if w.key is None and queue:
                    key = queue.popleft()
                    w.key = key
                    attempts[key] += 1
                    with contextlib.suppress(OSError):  # a worker that died idle: seen below as dead
                        w.conn.send((key, fn, args[key]))
            busy = [w for w in workers if w.key is not None]
            ready = set(multiprocessing.connection.wait([x for w in busy for x in (w.conn, w.process.sentinel)]))
            for i, w in enumerate(workers):
                if w.key is None:
                    continue
                if w.conn in ready:
                    try:
                        key, ok, value = w.conn.recv()
                    except (EOFError, OSError):
                        pass  # died while answering: handled below as a dead worker
                    else:
                        w.key = None
                        if ok:
                            on_result(key, value)
                        else:
                            on_error(key, value[0])
                        continue
                if w.process.sentinel in ready or not w.process.is_alive():
                    key, w.key = w.key, None
                    w.stop()
                    code = w.process.exitcode
                    if attempts[key] < max_attempts:
                        queue.appendleft(key)
                    else:
                        on_error(key, f"worker died {attempts[key]} times while computing it (exit code {code})")
                    workers[i] = _Worker(ctx, threads)
    finally:
        for w in workers:
            w.stop()


__all__ = ["die_with_parent", "format_error", "run_local", "set_threads"]
