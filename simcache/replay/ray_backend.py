"""The Ray backend of sweeps: every item a Ray task, on a local Ray instance or an existing cluster.

Ray is an optional extra (``pip install -e ".[ray]"``); without it :func:`import_ray` is a
:class:`~recvae.errors.UserError` saying how to install it. Without an address a local Ray
instance of ``jobs`` CPUs is started for the sweep and stopped after it; with one
(``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others) the sweep joins
that cluster. A Ray session the caller already opened (``ray.init``) is used as it is and left open.

Fault tolerance is Ray's: a task whose worker process dies is retried (``max_attempts`` tries in
all); a task that raises is reported and the others go on. Ray ends a job's task workers when its
driver exits, however it exits; a local instance's own helper processes (raylet agents) can linger
for a minute or two after a killed driver, so a small reaper process (:func:`reap_when_parent_dies`)
ends every process the driver started as soon as it is gone.

How the trace reaches the workers (see :class:`ShippedTrace`): by default by its path, which must
name the same file on every node (a shared file system); with ``ship_trace`` the driver puts the
file's bytes into Ray's object store once, and each node copies them into its local cache once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recvae.errors import UserError
from recvae.storage import atomic_path, cache_dir
from simcache.replay.pool import OnError, OnResult, format_error, set_threads


def import_ray() -> Any:
    """The ``ray`` module, or a UserError saying how to install the optional extra."""
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs Ray, an optional extra: pip install 'simcache[ray]' "
                        "(or pip install ray), or use --backend local") from None  # fmt: skip
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[Any]:
    """An initialised Ray: the caller's session, a new local instance, or a connection to ``address``."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kw: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    reaper = None
    try:
        if address is None:
            reaper = subprocess.Popen([sys.executable, "-c", "from simcache.replay.ray_backend import "
                                       "reap_when_parent_dies as r; r()"], stdin=subprocess.DEVNULL)  # fmt: skip
            ray.init(address="local", num_cpus=num_cpus, **kw)
        else:
            ray.init(address=address, **kw)
    except ConnectionError as exc:
        raise UserError(f"cannot join the Ray cluster at {address}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
        if reaper is not None:
            reaper.terminate()
            reaper.wait()


def reap_when_parent_dies(interval: float = 0.5) -> None:
    """Main of the reaper process: remember the parent's descendants; when the parent is gone
    (killed), kill those that still run. Ends quietly with SIGTERM (the parent's normal exit)."""
    import psutil

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    parent_pid = os.getppid()
    me = os.getpid()
    known: dict[int, float] = {}
    while os.getppid() == parent_pid:
        with contextlib.suppress(psutil.Error):
            for p in psutil.Process(parent_pid).children(recursive=True):
                if p.pid != me:
                    with contextlib.suppress(psutil.Error):
                        known.setdefault(p.pid, p.create_time())
        time.sleep(interval)
    for pid, started in known.items():
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            if abs(p.create_time() - started) < 1.0:
                p.kill()


@dataclass(frozen=True)
class ShippedTrace:
    """A trace file carried by Ray's object store instead of a shared file system.

    ``ref`` is the ObjectRef of the file's bytes (put once by the driver). The first task on a node
    copies them to ``<cache>/ray-traces/<sha256><suffix>`` there (atomically); later tasks on that
    node find the file, so the bytes cross the network once per node, never once per task.
    """

    ref: Any
    sha256: str
    suffix: str

    @classmethod
    def put(cls, path: str | Path, sha256: str) -> ShippedTrace:
        """Put the file at ``path`` into the object store (in the driver)."""
        import numpy as np

        ray = import_ray()
        return cls(ray.put(np.fromfile(path, dtype=np.uint8)), sha256, Path(path).suffix)

    def local_path(self) -> str:
        """This node's copy of the trace (made on first use)."""
        dest = cache_dir() / "ray-traces" / f"{self.sha256}{self.suffix}"
        if not dest.is_file():
            data = import_ray().get(self.ref)
            with atomic_path(dest) as tmp, open(tmp, "wb") as f:
                f.write(memoryview(data))
        return str(dest)


def _run_item(fn: Callable[[Any], Any], arg: Any, threads: int) -> Any:
    set_threads(threads)
    return fn(arg)


def run_ray(items: Sequence[tuple[str, Any]], fn: Callable[[Any], Any], *, address: str | None,
            jobs: int | None, threads: int, on_result: OnResult, on_error: OnError, max_attempts: int = 3) -> None:  # fmt: skip
    """Run ``fn(arg)`` for every ``(key, arg)`` of ``items`` as Ray tasks; see :func:`simcache.replay.pool.run_local`
    for ``on_result`` / ``on_error``. At most ``jobs`` tasks are in flight at once (None: as many as
    the cluster has CPUs); a local instance gets ``jobs`` CPUs."""
    from ray import exceptions as rex

    with ray_session(address, jobs if address is None else None) as ray:
        limit = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(_run_item).options(num_cpus=1, max_retries=max_attempts - 1, retry_exceptions=False)
        fn_ref = ray.put(fn)  # the task object once, not once per task
        waiting = list(items)[::-1]
        pending: dict[Any, str] = {}
        try:
            while waiting or pending:
                while waiting and len(pending) < limit:
                    key, arg = waiting.pop()
                    pending[task.remote(fn_ref, arg, threads)] = key
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    key = pending.pop(ref)
                    try:
                        value = ray.get(ref)
                    except rex.RayTaskError as exc:
                        cause = getattr(exc, "cause", None)
                        on_error(key, format_error(cause) if isinstance(cause, BaseException) else format_error(exc))
                    except (rex.WorkerCrashedError, rex.NodeDiedError, rex.OutOfMemoryError) as exc:
                        on_error(key, f"worker died {max_attempts} times while computing it ({type(exc).__name__})")
                    else:
                        on_result(key, value)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


__all__ = ["ShippedTrace", "import_ray", "ray_session", "reap_when_parent_dies", "run_ray"]
