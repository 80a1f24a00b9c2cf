"""The local sweep backend: killed workers are replaced and their item retried, failing items
reported without stopping the others, and workers end with their driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from simcache.replay.pool import run_local


@dataclass(frozen=True)
class Flaky:
    """A task that doubles its argument, raises for ``fail`` and SIGKILLs its own worker the first
    time it meets an item of ``crash_once`` (``always``: every time)."""

    marks: str
    fail: frozenset = field(default_factory=frozenset)
    crash_once: frozenset = field(default_factory=frozenset)
    always: frozenset = field(default_factory=frozenset)

    def __call__(self, x: int) -> tuple[int, int]:
        if x in self.fail:
            raise ValueError(f"bad parameter {x}")
        mark = Path(self.marks) / f"{x}.crashed"
        if x in self.always or (x in self.crash_once and not mark.exists()):
            mark.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return 2 * x, os.getpid()


def collect(items, fn, jobs, max_attempts=3):
    results, errors = {}, {}
    run_local(items, fn, jobs=jobs, threads=1, on_result=results.__setitem__, on_error=errors.__setitem__,
              max_attempts=max_attempts)
    return results, errors


def test_killed_worker_is_replaced_and_its_item_retried(tmp_path):
    items = [(str(i), i) for i in range(6)]
    results, errors = collect(items, Flaky(str(tmp_path), crash_once=frozenset({1, 4})), jobs=2)
    assert errors == {}
    assert {k: v[0] for k, v in results.items()} == {str(i): 2 * i for i in range(6)}  # each once, none lost
    assert (tmp_path / "1.crashed").exists() and (tmp_path / "4.crashed").exists()
    assert len({pid for _, pid in results.values()}) >= 2  # the dead workers were replaced


def test_failures_are_reported_and_the_others_go_on(tmp_path):
    items = [(str(i), i) for i in range(5)]
    results, errors = collect(items, Flaky(str(tmp_path), fail=frozenset({2}), always=frozenset({3})), jobs=2,
                              max_attempts=2)
    assert sorted(results) == ["0", "1", "4"]
    assert errors["2"] == "ValueError: bad parameter 2"
    assert errors["3"].startswith("worker died 2 times while computing it (exit code -9)")


def test_in_process_with_one_job(tmp_path):
    results, errors = collect([("a", 1), ("b", 2)], Flaky(str(tmp_path), fail=frozenset({2})), jobs=1)
    assert results == {"a": (2, os.getpid())} and errors == {"b": "ValueError: bad parameter 2"}


DRIVER = textwrap.dedent("""
    import sys, time
    from simcache.replay.pool import run_local

    def slow(x):
        time.sleep(60)

    if __name__ == "__main__":
        run_local([(str(i), i) for i in range(4)], slow, jobs=2, threads=1, on_result=print, on_error=print)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_workers_die_with_their_driver(tmp_path, sig):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    driver = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.DEVNULL)
    try:
        proc = psutil.Process(driver.pid)
        deadline = time.monotonic() + 60
        workers = []
        while time.monotonic() < deadline:
            workers = [c for c in proc.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
            if len(workers) == 2:
                break
            time.sleep(0.1)
        assert len(workers) == 2, "the driver did not start its two workers"
        others = [c for c in proc.children(recursive=True) if c not in workers]  # the resource tracker
        os.kill(driver.pid, sig)
        driver.wait(30)
        gone, alive = psutil.wait_procs(workers + others, timeout=10)
        assert alive == [], f"still running after the driver ended: {[p.pid for p in alive]}"
    finally:
        driver.kill()
