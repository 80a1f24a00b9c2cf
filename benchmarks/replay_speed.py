"""Replay speed: the block engine against the usual per-request simulator and the batched-search ceiling.

SIM-LRU on a synthetic 200-dimensional trace (Zipf-popular centres with small noise plus a share
of one-off requests; the radius gives hit ratios between 0.3 and 0.8 at every capacity), at
C = 100, 1,000 and 10,000. In the same run it measures

* (a) the engine: ``simcache.cache.replay`` (block engine, exact flat search), streaming the
  trace from a memory-mapped ``.npy`` file; numba compilation is warmed up beforehand;
* (b) the usual research loop: one FAISS ``search`` per request on an ``IndexIDMap2`` over
  ``IndexFlatL2``, ``remove_ids`` per eviction, ``add_with_ids`` per insertion, LRU order in an
  ``OrderedDict``, hit iff sqrt(D) <= r (FAISS distances are squared); run as usually written
  (FAISS's default threads) and tuned to one FAISS thread;
* (c) the ceiling: one batched FAISS ``search`` (k = 1) of every request against a static flat
  index holding C trace vectors; for context also the same search with k = 8, the candidate
  list length the engine takes from each search (the target uses k = 1);
* the engine on one thread and its searches alone on one thread (``search_seconds``): they split
  the replay into search and sequential pass, and bound the a / c this design can reach on two
  cores.

Rates are requests (queries) per second; (b) may run on a prefix of the trace when it would take
too long (the prefix is reported). Output: ``results/replay_speed.md``, ``.json`` (raw numbers)
and ``.png``. ``--quick`` runs a small trace for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import faiss
import numpy as np

from simcache.cache import replay
from simcache.cache.engine import search_seconds
from simcache.cache.threads import faiss_threads

RESULTS = Path(__file__).resolve().parent / "results"

#: the benchmark grid (data, not code)
FULL = {"n": 200_000, "dim": 200, "capacities": [100, 1_000, 10_000], "baseline_seconds": 60.0}
QUICK = {"n": 20_000, "dim": 200, "capacities": [100, 1_000, 10_000], "baseline_seconds": 10.0}
TRACE = {"n_centres": 100_000, "zipf": 1.1, "noise": 0.05, "fresh": 0.2, "radius": 1.2, "seed": 0}


def synthetic_trace(n: int, dim: int, n_centres: int, zipf: float, noise: float, fresh: float, seed: int) -> np.ndarray:
    """Requests: noisy copies of Zipf(zipf)-popular Gaussian centres, a ``fresh`` share one-off."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, dim), dtype=np.float32)
    p = 1.0 / np.arange(1, n_centres + 1) ** zipf
    ids = rng.choice(n_centres, size=n, p=p / p.sum())
    x = centres[ids] + noise * rng.standard_normal((n, dim), dtype=np.float32)
    new = rng.random(n) < fresh
    x[new] = rng.standard_normal((int(new.sum()), dim), dtype=np.float32)
    return x


def per_request_loop(x: np.ndarray, capacity: int, radius: float, max_seconds: float) -> tuple[int, float, np.ndarray]:
    """(b) The usual simulator. Returns (requests processed, seconds, hit flags)."""
    dim = x.shape[1]
    index = faiss.IndexIDMap2(faiss.IndexFlatL2(dim))
    lru: OrderedDict[int, None] = OrderedDict()
    r2 = radius * radius
    hits = np.zeros(len(x), dtype=bool)
    start = time.perf_counter()
    t = 0
    for t in range(len(x)):
        q = x[t : t + 1]
        if index.ntotal:
            dist, ids = index.search(q, 1)
            if dist[0, 0] <= r2:
                hits[t] = True
                lru.move_to_end(int(ids[0, 0]))
                continue
        if len(lru) >= capacity:
            victim, _ = lru.popitem(last=False)
            index.remove_ids(np.array([victim], dtype=np.int64))
        index.add_with_ids(q, np.array([t], dtype=np.int64))
        lru[t] = None
        if t % 256 == 0 and time.perf_counter() - start > max_seconds:
            break
    return t + 1, time.perf_counter() - start, hits[: t + 1]


def ceiling(x: np.ndarray, capacity: int, chunk: int | None = None, k: int = 1) -> float:
    """(c) Seconds for a batched flat search (top ``k``) of all requests against C static trace
    vectors: one ``search`` call, or calls of ``chunk`` queries (the spec's 2,000-query batches;
    on some machines FAISS is faster that way)."""
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(x[:capacity]))
    step = chunk or len(x)
    start = time.perf_counter()
    for i in range(0, len(x), step):
        index.search(x[i : i + step], k)
    return time.perf_counter() - start


def best_of(k: int, fn):  # noqa: D401
    """Minimum wall time (and last result) of ``k`` runs: the machine is shared and noisy."""
    best, result = np.inf, None
    for _ in range(k):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small trace, for a smoke run")
    parser.add_argument("--n", type=int, default=None, help="number of requests")
    parser.add_argument("--capacities", type=int, nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved best-of repeats for (a) and (c)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    grid = dict(QUICK if args.quick else FULL)
    if args.n:
        grid["n"] = args.n
    if args.capacities:
        grid["capacities"] = args.capacities
    n, dim, radius = grid["n"], grid["dim"], TRACE["radius"]
    trace_kw = {k: v for k, v in TRACE.items() if k != "radius"}
    x = synthetic_trace(n, dim, **trace_kw)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.npy"
        np.save(path, x)
        mapped = np.load(path, mmap_mode="r")
        replay(mapped[:5000], policy="lru", capacity=4000, radius=radius)  # warm-up: numba compile / cache load
        replay(mapped[:5000], policy="lru", capacity=100, radius=radius)
        for capacity in grid["capacities"]:
            # interleaved repeats, best of each: the machine is shared and its load drifts
            times: dict[str, list[float]] = {"engine": [], "one_call": [], "2k_batches": [], "2k_batches_k8": [],
                                             "engine_1thread": [], "search_1thread": []}  # fmt: skip
            for _ in range(args.repeats):
                dt, log = best_of(1, lambda: replay(mapped, policy="lru", capacity=capacity, radius=radius))
                times["engine"].append(dt)
                one_thread = best_of(1, lambda: replay(mapped, policy="lru", capacity=capacity, radius=radius,
                                                       threads=1))  # fmt: skip
                times["engine_1thread"].append(one_thread[0])
                times["search_1thread"].append(search_seconds(mapped, capacity, threads=1))
                times["one_call"].append(ceiling(x, capacity))
                times["2k_batches"].append(ceiling(x, capacity, chunk=2000))
                times["2k_batches_k8"].append(ceiling(x, capacity, chunk=2000, k=8))
            t_engine, t_one, t_chunked = (min(times[k]) for k in ("engine", "one_call", "2k_batches"))
            t_ceiling = min(t_one, t_chunked)
            t_engine1, t_search1 = min(times["engine_1thread"]), min(times["search_1thread"])
            # (b) as usually written (FAISS's default threads), and tuned to one FAISS thread (one
            # query per call: extra threads only cost synchronisation); the target uses the former
            n_b, t_b, hits_b = per_request_loop(x, capacity, radius, grid["baseline_seconds"])
            with faiss_threads(1):
                n_b1, t_b1, _ = per_request_loop(x, capacity, radius, grid["baseline_seconds"])
            agree = float(np.mean(hits_b == (log.outcome[:n_b] != 0)))
            row = {
                "capacity": capacity,
                "hit_ratio": log.hit_ratio,
                "engine_rps": n / t_engine,
                "loop_rps": n_b / t_b,
                "loop_requests": n_b,
                "loop_1thread_rps": n_b1 / t_b1,
                "loop_1thread_requests": n_b1,
                "engine_vs_loop_1thread": (n / t_engine) / (n_b1 / t_b1),
                "ceiling_qps": n / t_ceiling,
                "ceiling_one_call_qps": n / t_one,
                "ceiling_2k_batches_qps": n / t_chunked,
                "ceiling_k8_qps": n / min(times["2k_batches_k8"]),
                "engine_vs_loop": (n / t_engine) / (n_b / t_b),
                "engine_1thread_rps": n / t_engine1,
                "search_1thread_rps": n / t_search1,
                "pass_us_per_request": max(0.0, t_engine1 - t_search1) / n * 1e6,
                "two_core_bound": t_ceiling / (t_engine1 / 2),
                "engine_vs_ceiling": (n / t_engine) / (n / t_ceiling),
                "loop_hit_agreement": agree,
                "block_size": log.stats["block_size"],
                "searcher": log.stats["searcher"],
                "exact_fallback_scans": log.stats["exact_fallback_scans"],
                "seconds_all_repeats": times,
                "loop_seconds": t_b,
                "loop_1thread_seconds": t_b1,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "n": n,
        "dim": dim,
        "radius": radius,
        "trace": trace_kw,
        "faiss_threads": faiss.omp_get_max_threads(),
        "load_average": os.getloadavg(),
        "quick": args.quick,
    }
    write_report(args.out, rows, meta)


def write_report(out: Path, rows: list[dict], meta: dict) -> None:
    """Markdown table + raw JSON + PNG."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "## replay_speed",
        "",
        f"SIM-LRU, synthetic trace of {meta['n']:,} requests, d = {meta['dim']}, radius {meta['radius']} (L2); "
        f"FAISS threads {meta['faiss_threads']}; load average at the end "
        f"{', '.join(f'{v:.1f}' for v in meta['load_average'])}. "
        "(a) engine (`replay`, block engine, streamed from a memory-mapped file); (b) per-request "
        "loop (FAISS `search` per request, `IndexIDMap2` + `remove_ids` per eviction), as usually "
        "written (FAISS default threads) and tuned to one FAISS thread; (c) batched FAISS search (k = 1) of all requests against a static flat index of "
        "C vectors, the faster of one call and 2,000-query calls (both shown); for context the "
        "same 2,000-query search with k = 8, the candidate lists the engine takes (the target "
        "uses k = 1). Rates in requests/s; best of the interleaved repeats for (a) and (c).",
        "",
        "| C | hit ratio | (a) engine | (b) loop | (b) loop, 1 thread | (c) ceiling: one call | 2k batches | a / b | a / b 1 thread | a / c | (c) with k = 8 | a / c k = 8 | block | mode | exact fallbacks |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        prefix = "" if r["loop_requests"] >= meta["n"] else f" (first {r['loop_requests']:,})"
        prefix1 = "" if r["loop_1thread_requests"] >= meta["n"] else f" (first {r['loop_1thread_requests']:,})"
        lines.append(
            f"| {r['capacity']:,} | {r['hit_ratio']:.3f} | {r['engine_rps']:,.0f} | {r['loop_rps']:,.0f}{prefix} | "
            f"{r['loop_1thread_rps']:,.0f}{prefix1} | "
            f"{r['ceiling_one_call_qps']:,.0f} | {r['ceiling_2k_batches_qps']:,.0f} | "
            f"{r['engine_vs_loop']:.1f}x | {r['engine_vs_loop_1thread']:.1f}x | {r['engine_vs_ceiling']:.2f}x | "
            f"{r['ceiling_k8_qps']:,.0f} | {r['engine_rps'] / r['ceiling_k8_qps']:.2f}x | "
            f"{r['block_size']} | {r['searcher']} | {r['exact_fallback_scans']} |"
        )
    lines += [
        "",
        "Targets: a / b >= 10 at C = 10,000 and a / c >= 0.7 at every C. The engine's log is exact "
        "(identical to request-by-request processing); (b)'s hit flags agree with it on "
        + ", ".join(f"{r['loop_hit_agreement']:.4%}" for r in rows)
        + " of requests (FAISS float32 distances at the boundary).",
        "",
        "Status in this run: "
        + "; ".join(
            f"C = {r['capacity']:,}: a / c {'met' if r['engine_vs_ceiling'] >= 0.7 else 'NOT met'}"
            + (f", a / b {'met' if r['engine_vs_loop'] >= 10 else 'NOT met'}" if r["capacity"] >= 10_000 else "")
            for r in rows
        )
        + ".",
        "",
        "### Where the engine's time goes",
        "",
        "The engine on one thread (`replay(..., threads=1)`: the dense search's serial variant, "
        "FAISS on one thread; same log) and its searches alone on one thread "
        "(`simcache.cache.engine.search_seconds`: every block searched as the replay searches it, "
        "against a cache that stays full, whereas the replay's cache fills during its first C "
        "requests); their difference is the sequential pass and everything else. Per request:",
        "",
        "| C | (c) ceiling (us) | (a) engine (us) | engine, 1 thread (us) | its search (us) | its pass and rest (us) | a / c | bound on a / c |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['capacity']:,} | {1e6 / r['ceiling_qps']:.2f} | {1e6 / r['engine_rps']:.2f} | "
            f"{1e6 / r['engine_1thread_rps']:.2f} | {1e6 / r['search_1thread_rps']:.2f} | "
            f"{r['pass_us_per_request']:.2f} | {r['engine_vs_ceiling']:.2f}x | {r['two_core_bound']:.2f}x |"
        )
    lines += [
        "",
        "The bound is the ceiling's time over half the engine's one-thread time: the best a / c this "
        "engine's work could reach on two cores, if it were split between them at no cost (the pass "
        "overlapping the next block's search). The engine does more per request than the "
        "ceiling: its products include the block's own (the lower triangle of its requests against "
        "each other, about B / 2C more than the cache's); where it searches through FAISS (mode "
        "`flat`) it keeps a top-8 list (the k = 8 column above shows what that costs FAISS); and "
        "its pass (the row scan or candidate checks, one exact float64 distance, the policy's "
        "updates) is sequential by nature. Where the bound is below 0.7, no scheduling of this "
        "design reaches the target on this machine.",
        "",
        "![replay speed](replay_speed.png)",
        "",
        "Raw numbers (every repeat): `replay_speed.json`. The machine is a shared 2-core VM whose speed "
        "drifts by several times within minutes (other jobs, CPU steal); (a) and (c) are interleaved "
        "and the best of each is kept, but a / c can still move by 2x between runs. For reference, the "
        "spec measured (b) at 74k / 26k / 2.8k and one 2,000-query search at 560k / 200k / 34k "
        "requests/s on this machine class.",
    ]
    (out / "replay_speed.md").write_text("\n".join(lines) + "\n")
    plot(out / "replay_speed.png", rows, meta)


def plot(path: Path, rows: list[dict], meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    caps = [r["capacity"] for r in rows]
    fig, ax = plt.subplots(figsize=(8.5, 4))
    ax.plot(caps, [r["engine_rps"] for r in rows], "o-", label="(a) engine (exact, sequential semantics)")
    ax.plot(caps, [r["loop_rps"] for r in rows], "s--", label="(b) per-request FAISS loop")
    ax.plot(caps, [r["loop_1thread_rps"] for r in rows], "D:", mfc="none", label="(b) same, one FAISS thread")
    ax.plot(caps, [r["ceiling_qps"] for r in rows], "^:", label="(c) one batched search, k = 1 (ceiling)")
    ax.plot(caps, [r["ceiling_k8_qps"] for r in rows], "v:", label="(c) same with k = 8 (context)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cache capacity C")
    ax.set_ylabel("requests per second")
    ax.set_title(f"SIM-LRU replay speed, d = {meta['dim']}, n = {meta['n']:,}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)  # off the data
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
