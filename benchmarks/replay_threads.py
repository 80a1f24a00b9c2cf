"""Replay speed on an idle and on a loaded machine: the default thread choice against one thread,
and one thread against the batched-search ceiling.

For each capacity, in the same run: SIM-LRU replays of a synthetic trace with ``threads=1`` and
with the default (``threads=None``: chosen by measurement, see ``simcache.cache.threads``), and one
batched FAISS ``IndexFlatL2`` search (k = 1) of all requests against a static full cache on one
FAISS thread (the ceiling of issue 20's single-thread targets). On the idle machine also a scan of
block sizes at the capacities with the tightest targets (:func:`block_scan`): the one-thread replay
and its block products alone against the ceiling, in CPU time, with what that leaves the
sequential pass. Then the timings again while two busy-loop processes, started and stopped by this
script, load the cores. Writes ``benchmarks/results/replay_threads.md`` with the three tables and
the load averages seen.

    python -m benchmarks.replay_threads [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.replay_speed import TRACE, synthetic_trace
from recvae.storage import atomic_path
from simcache.cache import replay
from simcache.cache.engine import search_seconds
from simcache.cache.kernels.panels import target_vector_width
from simcache.cache.threads import faiss_threads

RESULTS = Path(__file__).resolve().parent / "results"
#: the grid (data, not code)
FULL = {"n": 100_000, "dim": 200, "capacities": [100, 1_000, 10_000], "repeats": 5,
        "blocks": {100: [24, 48, 64, 96], 1_000: [48, 96, 128, 240]}}  # fmt: skip
QUICK = {"n": 10_000, "dim": 200, "capacities": [100, 1_000], "repeats": 2, "blocks": {100: [24, 64], 1_000: [48, 128]}}
#: issue 20's targets: default / one thread under load, and one thread / ceiling per capacity
TARGET_LOADED = 0.9
TARGET_CEILING = {100: 0.6, 1_000: 0.8, 10_000: 0.9}
#: each timing repeats its call for at least this long and takes the mean: a replay of a small cache
#: lasts tens of milliseconds, not much longer than the scheduler's time slices beside busy loops
MIN_TIMING_S = 0.5


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


@contextlib.contextmanager
def cpu_hogs(n: int, seconds: float) -> Iterator[None]:
    """``n`` busy-loop processes (each ends by itself after ``seconds``; stopped on exit)."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spin, args=(time.time() + seconds,), daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


def ceiling_1thread(x: np.ndarray, capacity: int) -> float:
    """Seconds of one batched k = 1 flat search of all requests against C static vectors, 1 thread."""
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(x[:capacity]))
    with faiss_threads(1):
        start = time.perf_counter()
        index.search(x, 1)
        return time.perf_counter() - start


def mean_seconds(timed: Callable[[], tuple[float, Any]], min_seconds: float = MIN_TIMING_S) -> tuple[float, Any]:
    """Mean seconds per call of ``timed`` (which returns its own seconds and a result), called
    until ``min_seconds`` have been timed; and the last result."""
    total, calls, out = 0.0, 0, None
    while total < min_seconds:
        seconds, out = timed()
        total += seconds
        calls += 1
    return total / calls, out


def _replay_seconds(x: np.ndarray, capacity: int, radius: float, threads: int | None) -> tuple[float, Any]:
    start = time.perf_counter()
    log = replay(x, policy="lru", capacity=capacity, radius=radius, threads=threads)
    return time.perf_counter() - start, log


def measure(x: np.ndarray, capacities: list[int], repeats: int, radius: float) -> list[dict]:
    """Best-of-``repeats`` (interleaved) seconds of each configuration per capacity, each timing a
    mean over at least ``MIN_TIMING_S`` (:func:`mean_seconds`)."""
    rows = []
    for capacity in capacities:
        best = {"one_thread": np.inf, "default": np.inf, "ceiling": np.inf, "products": np.inf}
        hits = {}
        for _ in range(repeats):
            for label, threads in (("one_thread", 1), ("default", None)):
                seconds, log = mean_seconds(lambda: _replay_seconds(x, capacity, radius, threads))
                best[label] = min(best[label], seconds)
                hits[label] = int((log.outcome > 0).sum())
                if label == "default":
                    chosen = log.stats["threads"]
            ceiling, _ = mean_seconds(lambda: (ceiling_1thread(x, capacity), None))
            products, _ = mean_seconds(lambda: (search_seconds(x, capacity, threads=1), None))
            best["ceiling"] = min(best["ceiling"], ceiling)
            best["products"] = min(best["products"], products)
        assert hits["one_thread"] == hits["default"], "thread choice changed the result"
        rows.append({"capacity": capacity, **{f"{k}_s": v for k, v in best.items()}, "hits": hits["default"],
                     "default_threads": chosen, "load_average": os.getloadavg()[0]})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def block_scan(x: np.ndarray, blocks: dict[int, list[int]], repeats: int, radius: float) -> list[dict]:
    """CPU seconds of this thread (best of ``repeats``, interleaved) of the one-thread replay, its block
    products alone and the ceiling, per capacity and block size: how far the products alone already
    are from the ceiling, and what that leaves the sequential pass at the target. CPU time, as
    every part runs on the calling thread here, so that other jobs on the machine matter less."""

    def cpu(run) -> float:
        start = time.thread_time()
        run()
        return time.thread_time() - start

    rows = []
    for capacity, sizes in blocks.items():
        best = {"ceiling": np.inf, **{(k, b): np.inf for b in sizes for k in ("replay", "products")}}
        for _ in range(repeats):
            best["ceiling"] = min(best["ceiling"], cpu(lambda: ceiling_1thread(x, capacity)))
            for b in sizes:
                best["replay", b] = min(best["replay", b], cpu(
                    lambda: replay(x, policy="lru", capacity=capacity, radius=radius, threads=1, block_size=b)))
                best["products", b] = min(best["products", b], cpu(
                    lambda: search_seconds(x, capacity, threads=1, block_size=b)))
        for b in sizes:
            rows.append({"capacity": capacity, "block": b, "ceiling_cpu_s": best["ceiling"],
                         "replay_cpu_s": best["replay", b], "products_cpu_s": best["products", b]})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def blas_kernels() -> dict[str, str]:
    """The kernel set (``architecture``) of each OpenBLAS loaded in this process, by library."""
    from threadpoolctl import threadpool_info

    return {Path(i["filepath"]).name: str(i.get("architecture")) for i in threadpool_info()
            if i.get("internal_api") == "openblas"}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small trace, for a smoke run")
    parser.add_argument("--hogs", type=int, default=2, help="busy-loop processes for the loaded run")
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    x = synthetic_trace(grid["n"], grid["dim"], **{k: v for k, v in TRACE.items() if k != "radius"})
    radius = TRACE["radius"]
    replay(x[:5000], policy="lru", capacity=100, radius=radius)  # warm-up: compile / load caches
    replay(x[:5000], policy="lru", capacity=4000, radius=radius)
    idle = measure(x, grid["capacities"], grid["repeats"], radius)
    scan = block_scan(x, grid["blocks"], min(3, grid["repeats"]), radius)
    with cpu_hogs(args.hogs, seconds=3600):
        loaded = measure(x, grid["capacities"], grid["repeats"], radius)
    write_report(RESULTS, grid, args.hogs, idle, loaded, scan)


def same_path(row: dict) -> str:
    """A mark for a default replay that ran every chunk on one thread: the same code as the
    one-thread replay, so their ratio shows only the machine's noise."""
    return " (same path)" if {str(n) for n in row["default_threads"]} == {"1"} else ""


def write_report(out: Path, grid: dict, hogs: int, idle: list[dict], loaded: list[dict], scan: list[dict]) -> None:
    n = grid["n"]
    lines = [
        "## replay_threads",
        "",
        f"SIM-LRU over a synthetic trace of {n:,} requests (d = {grid['dim']}), best of {grid['repeats']} "
        f"interleaved runs per configuration, each the mean of as many back-to-back runs as fill {MIN_TIMING_S} s, "
        "in requests/s. *default*: `threads=None` (chosen by "
        "measurement, chunk by chunk, between one thread and all available cores); *one thread*: "
        "`threads=1`; *ceiling*: one batched FAISS `IndexFlatL2` search (k = 1) of all requests "
        "against a static full cache on one FAISS thread; *products only*: the one-thread replay's "
        "block products alone (`simcache.cache.engine.search_seconds`: every block against a full cache, "
        "no sequential pass), which bounds what any sequential pass over this block design can reach. "
        "Results are identical whatever the threads (checked). `python -m benchmarks.replay_threads`. "
        "OpenBLAS kernels: "
        f"{', '.join(f'{lib}: {arch}' for lib, arch in sorted(blas_kernels().items()))}"
        f"{' (OPENBLAS_CORETYPE=' + os.environ['OPENBLAS_CORETYPE'] + ')' if 'OPENBLAS_CORETYPE' in os.environ else ''}"
        f" (FAISS's ceiling); the engine's block products: {target_vector_width()} float32 lanes per vector "
        "(`simcache.cache.kernels.panels`).",
        "",
    ]
    for title, rows in (("Idle machine (as idle as this shared machine gets)", idle),
                        (f"Loaded: {hogs} busy-loop processes beside the replay", loaded)):
        lines += [
            f"### {title}",
            "",
            "| C | one thread | default | default / one thread | ceiling (1 thread) | one thread / ceiling "
            "| target | products only / ceiling | threads chosen (chunks) | load average |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for r in rows:
            c = r["capacity"]
            one, default, ceil = n / r["one_thread_s"], n / r["default_s"], n / r["ceiling_s"]
            lines.append(
                f"| {c:,} | {one:,.0f} | {default:,.0f} | {default / one:.2f}x{same_path(r)} | {ceil:,.0f} | "
                f"{one / ceil:.2f}x | "
                f">= {TARGET_CEILING.get(c, float('nan')):.1f}x | {r['ceiling_s'] / r['products_s']:.2f}x | "
                f"{', '.join(f'{k}: {v}' for k, v in sorted(r['default_threads'].items()))} | "
                f"{r['load_average']:.1f} |"
            )
        lines.append("")
    lines.append(f"Target under load: default / one thread >= {TARGET_LOADED}. *(same path)*: the default ran "
                 "every chunk on one thread, the one-thread replay's code, so that ratio is the machine's noise "
                 "between identical runs.")
    lines += [
        "",
        "### One thread against the ceiling, by block size (idle, CPU time)",
        "",
        "CPU seconds of the calling thread (everything runs on it here), best of "
        f"{min(3, grid['repeats'])}. *rest*: the replay minus its block products (the sequential pass, the "
        "squared norms, the Python between chunks), per request. *budget*: what the rest may cost per request "
        "for the replay to reach its target, given the products' measured time (negative: the products alone "
        "are over it).",
        "",
        "| C | block | one thread / ceiling | products only / ceiling | rest (us / request) | budget at the target "
        "(us / request) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in scan:
        target = TARGET_CEILING.get(r["capacity"], float("nan"))
        budget = (r["ceiling_cpu_s"] / target - r["products_cpu_s"]) / n * 1e6
        lines.append(f"| {r['capacity']:,} | {r['block']} | {r['ceiling_cpu_s'] / r['replay_cpu_s']:.2f}x | "
                     f"{r['ceiling_cpu_s'] / r['products_cpu_s']:.2f}x | "
                     f"{(r['replay_cpu_s'] - r['products_cpu_s']) / n * 1e6:.2f} | {budget:.2f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "replay_threads.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'replay_threads.md'}")


if __name__ == "__main__":
    main()
