"""Object-cache replay speed: every object policy against a per-request loop and the server's batched search.

A synthetic catalogue of 20,000 objects in dimension 200 (the size of the ML-20M vocabulary) and
200,000 requests (noisy copies of Zipf-popular objects), k = 10 (qLRU-ΔC: k = 1, the only k it
is defined for), C = 100, 1,000 and 10,000, L2. In the same run it measures

* the engine: ``simcache.objects.replay_objects`` for each policy (numba compilation warmed up
  beforehand); GREEDY's fit (lazy greedy over the whole trace) is timed separately from its replay;
* (a) a straightforward per-request loop doing the same work for LRU over objects: one FAISS
  ``search`` of the request over the catalogue (``IndexFlatL2``; the server's k objects), the
  cached objects' distances by one numpy product with the cached vectors, the optimal answer by
  sorting the 2k candidates, the LRU update in an ``OrderedDict``; run on the first
  ``loop_requests`` requests and reported per request, as usually written (FAISS's default
  threads) and tuned to one FAISS thread (a one-query search gains nothing from threads);
* (b) the server's work alone: one batched exact FAISS search (``IndexFlatL2``, batches of
  16,384 queries) of every request over the catalogue, k = 10 and k = 1;
* for context, the engine's products alone (``G = Q V^T`` per block, the part of the engine that
  is the server's work).

Output: ``results/object_cache_speed.md``, ``.json`` (raw numbers) and ``.png``. ``--quick`` runs
a small catalogue for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import OrderedDict
from pathlib import Path

import faiss
import numpy as np

from recvae.storage import atomic_path
from simcache.cache.threads import faiss_threads
from simcache.objects import OBJECT_POLICIES, ObjectReplayConfig, replay_objects
from simcache.objects.engine import default_block_size
from simcache.objects.report import same_sets

RESULTS = Path(__file__).resolve().parent / "results"

#: the benchmark grid (data, not code)
FULL = {"n_objects": 20_000, "dim": 200, "n": 200_000, "capacities": [100, 1_000, 10_000], "k": 10,
        "loop_requests": 2_000}  # fmt: skip
QUICK = {"n_objects": 2_000, "dim": 200, "n": 10_000, "capacities": [100, 1_000], "k": 10, "loop_requests": 500}
TRACE = {"zipf": 0.9, "noise": 0.35, "c_f": 3.0, "seed": 0}
POLICIES = tuple(OBJECT_POLICIES)  # every registered object policy, at its defaults
#: policies timed on the loop's first ``loop_requests`` requests only (too slow for the whole
#: trace); none now: GRADES proves most mappings from its slots' anchored lists (thousands of
#: requests/s at N = 20,000; before, one full catalogue scan per moved point: tens per second)
PREFIX_ONLY: tuple[str, ...] = ()
BASELINES = ("obj-lru", "obj-lfu", "obj-sim-lru", "obj-qlru-dc")
SEARCH_BATCH = 16_384


def synthetic(n_objects: int, dim: int, n: int, zipf: float, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue, requests): Gaussian objects; requests are Zipf(zipf)-popular objects plus noise."""
    rng = np.random.default_rng(seed)
    cat = rng.standard_normal((n_objects, dim), dtype=np.float32)
    p = 1.0 / np.arange(1, n_objects + 1) ** zipf
    ids = rng.choice(n_objects, size=n, p=p / p.sum())
    x = cat[ids] + noise * rng.standard_normal((n, dim), dtype=np.float32)
    return cat, x


def per_request_loop(x: np.ndarray, cat: np.ndarray, k: int, c_f: float, capacity: int) -> tuple[float, np.ndarray]:
    """(a) LRU over objects, one request at a time. Returns (seconds, served object ids (n, k))."""
    index = faiss.IndexFlatL2(cat.shape[1])
    index.add(cat)
    cached_vecs = np.zeros((capacity, cat.shape[1]), np.float32)
    slot_of: dict[int, int] = {}
    obj_in: list[int] = [-1] * capacity
    lru: OrderedDict[int, None] = OrderedDict()
    served = np.full((len(x), k), -1, np.int64)
    start = time.perf_counter()
    for t in range(len(x)):
        q = x[t : t + 1]
        dist, ids = index.search(q, k)
        cands = [(float(np.sqrt(max(d, 0.0))) + c_f, int(o), False) for d, o in zip(dist[0], ids[0]) if o not in slot_of]
        used = len(slot_of)
        if used:
            diff = cached_vecs[:used] - q
            dc = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            top = np.argpartition(dc, k - 1)[:k] if used > k else np.arange(used)
            cands += [(float(dc[s]), obj_in[s], True) for s in top]
        answer = sorted(cands)[:k]
        for a, (_, o, local) in enumerate(answer):
            served[t, a] = o
            if o in slot_of:
                lru.move_to_end(o)
                continue
            if len(slot_of) >= capacity:
                victim, _ = lru.popitem(last=False)
                s = slot_of.pop(victim)
                last = len(slot_of)  # keep used slots contiguous: move the last one into the hole
                if s != last:
                    moved = obj_in[last]
                    cached_vecs[s] = cached_vecs[last]
                    obj_in[s] = moved
                    slot_of[moved] = s
            s = len(slot_of)
            cached_vecs[s] = cat[o]
            obj_in[s] = o
            slot_of[o] = s
            lru[o] = None
    return time.perf_counter() - start, served


def batched_search(x: np.ndarray, cat: np.ndarray, k: int) -> float:
    """(b) Seconds for the exact k-NN of every request over the catalogue, in batches."""
    index = faiss.IndexFlatL2(cat.shape[1])
    index.add(cat)
    start = time.perf_counter()
    for b0 in range(0, len(x), SEARCH_BATCH):
        index.search(x[b0 : b0 + SEARCH_BATCH], k)
    return time.perf_counter() - start


def products_only(x: np.ndarray, cat: np.ndarray) -> float:
    """Seconds of the engine's block products alone (same block size)."""
    block = default_block_size(len(cat))
    out = np.empty((block, len(cat)), np.float32)
    start = time.perf_counter()
    for b0 in range(0, len(x), block):
        q = x[b0 : b0 + block]
        np.matmul(q, cat.T, out=out[: len(q)])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--n", type=int, default=None, help="number of requests")
    parser.add_argument("--capacities", type=int, nargs="*", default=None)
    parser.add_argument("--policies", nargs="*", default=list(POLICIES))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--render", action="store_true", help="only rewrite the report from the JSON in --out")
    args = parser.parse_args(argv)
    if args.render:
        raw = json.loads((args.out / "object_cache_speed.json").read_text())
        write_report(args.out, raw["rows"], raw["meta"])
        return
    grid = dict(QUICK if args.quick else FULL)
    if args.n:
        grid["n"] = args.n
    if args.capacities:
        grid["capacities"] = args.capacities
    k, c_f = grid["k"], TRACE["c_f"]
    cat, x = synthetic(grid["n_objects"], grid["dim"], grid["n"], TRACE["zipf"], TRACE["noise"], TRACE["seed"])
    for p in args.policies:  # warm-up: numba compilation / cache load
        kp = 1 if p == "obj-qlru-dc" else k
        replay_objects(x[:300], cat, ObjectReplayConfig(policy=p, capacity=50, k=kp, c_f=c_f))
    server = {kk: batched_search(x, cat, kk) for kk in sorted({k, 1})}
    t_products = products_only(x, cat)
    m = min(grid["loop_requests"], grid["n"])
    rows = []
    for capacity in grid["capacities"]:
        loop, loop1 = {}, {}
        for kk in sorted({k, 1}):
            loop[kk] = per_request_loop(x[:m], cat, kk, c_f, capacity)
            with faiss_threads(1):
                loop1[kk] = per_request_loop(x[:m], cat, kk, c_f, capacity)[0]
        for p in args.policies:
            kp = 1 if p == "obj-qlru-dc" else k
            cfg = ObjectReplayConfig(policy=p, capacity=capacity, k=kp, c_f=c_f)
            n_p = m if p in PREFIX_ONLY else grid["n"]
            start = time.perf_counter()
            log = replay_objects(x[:n_p], cat, cfg)
            total = time.perf_counter() - start
            fit = log.stats["fit_seconds"]
            replay_s = total - fit
            loop_s, loop_served = loop[kp]
            row = {
                "policy": p,
                "capacity": capacity,
                "k": kp,
                "nag": log.nag,
                "local_ratio": float(log.local.mean()),
                "engine_seconds": replay_s,
                "fit_seconds": fit,
                "requests": n_p,
                "engine_rps": n_p / replay_s,
                "loop_rps": m / loop_s,
                "loop_1thread_rps": m / loop1[kp],
                "loop_requests": m,
                "server_qps": grid["n"] / server[kp],
                "vs_loop": (n_p / replay_s) / (m / loop_s),
                "vs_loop_1thread": (n_p / replay_s) / (m / loop1[kp]),
                "server_vs_loop_1thread": (grid["n"] / server[kp]) / (m / loop1[kp]),
                "vs_server": (n_p / replay_s) / (grid["n"] / server[kp]),
                "exact_rows": log.stats["exact_row_evaluations"],
                "block_size": log.stats["block_size"],
            }
            if p == "obj-lru":
                row["loop_answer_agreement"] = float(same_sets(loop_served, log.served[:m].astype(np.int64)).mean())
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {**grid, "trace": TRACE, "server_seconds": server, "products_seconds": t_products,
            "faiss_threads": faiss.omp_get_max_threads(), "cores": os.cpu_count(),
            "load_average": os.getloadavg(), "quick": args.quick}  # fmt: skip
    write_report(args.out, rows, meta)


def write_report(out: Path, rows: list[dict], meta: dict) -> None:
    """Markdown table + raw JSON + PNG, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "object_cache_speed.json") as tmp:
        tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str))
    n, k = meta["n"], meta["k"]
    srv = {int(kk): v for kk, v in meta["server_seconds"].items()}
    lines = [
        "## object_cache_speed",
        "",
        f"Object caches over a synthetic catalogue of {meta['n_objects']:,} objects, d = {meta['dim']}; "
        f"{n:,} requests (Zipf({meta['trace']['zipf']}) popular objects plus N(0, {meta['trace']['noise']}^2) noise), "
        f"L2, k = {k} (qLRU-ΔC: k = 1), c_f = {meta['trace']['c_f']}; {meta['cores']} cores, FAISS threads "
        f"{meta['faiss_threads']}, load average at the end {', '.join(f'{v:.1f}' for v in meta['load_average'])}. "
        "Engine: `replay_objects` (exact: its log equals the one-request-at-a-time reference in the tests). "
        f"(a): per-request loop with one FAISS search of the catalogue per request (LRU over objects), on the "
        f"first {rows[0]['loop_requests']:,} requests. (b): one batched exact FAISS search of all requests "
        f"over the catalogue (the server's work): {n / srv[k]:,.0f} queries/s at k = {k}"
        + (f", {n / srv[1]:,.0f} at k = 1" if 1 in srv and k != 1 else "")
        + f". The engine's block products alone run at {n / meta['products_seconds']:,.0f} requests/s.",
        "",
        "| policy | C | k | NAG | local share | engine req/s | (a) loop req/s | (a) 1 thread | engine / a | engine / a 1 thread | (b) server q/s | engine / b | bound on engine / a 1 thread | GREEDY fit s | exact rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    products_rps = n / meta["products_seconds"]
    for r in rows:
        fit = f"{r['fit_seconds']:.1f}" if r["policy"] == "greedy" else "-"
        bound = max(r["server_qps"], products_rps) / r["loop_1thread_rps"]
        prefix = f" (first {r['requests']:,} requests)" if r.get("requests", n) != n else ""
        lines.append(
            f"| {r['policy']}{prefix} | {r['capacity']:,} | {r['k']} | {r['nag']:.3f} | {r['local_ratio']:.3f} | "
            f"{r['engine_rps']:,.0f} | {r['loop_rps']:,.0f} | {r['loop_1thread_rps']:,.0f} | {r['vs_loop']:.1f}x | "
            f"{r['vs_loop_1thread']:.1f}x | {r['server_qps']:,.0f} | {r['vs_server']:.2f}x | {bound:.1f}x | "
            f"{fit} | {r['exact_rows']} |"
        )
    base = [r for r in rows if r["policy"] in BASELINES]
    bounds = {id(r): max(r["server_qps"], products_rps) / r["loop_1thread_rps"] for r in rows}
    share = float(np.median([r["vs_loop_1thread"] / bounds[id(r)] for r in base]))
    big = sorted({r["capacity"] for r in base if bounds[id(r)] >= 10})
    faster = products_rps > max(r["server_qps"] for r in rows)
    met_a = all(r["vs_loop"] >= 10 for r in base)
    met_b = all(r["vs_server"] >= 0.5 for r in base)
    short = [f"{r['policy']} at C = {r['capacity']:,} ({r['vs_loop_1thread']:.1f}x)" for r in base if r["vs_loop_1thread"] < 10]
    agree = [r["loop_answer_agreement"] for r in rows if "loop_answer_agreement" in r]
    lines += [
        "",
        f"Targets for the baseline policies (every C): engine / a >= 10 against the loop as usually written: "
        f"**{'met' if met_a else 'NOT met'}** (lowest {min(r['vs_loop'] for r in base):.1f}x); against the loop tuned "
        "to one FAISS thread: " + ("**met**" if not short else "**NOT met** for " + ", ".join(short))
        + f"; engine / b >= 0.5: **{'met' if met_b else 'NOT met'}** (lowest {min(r['vs_server'] for r in base):.2f}x). "
        "GREEDY's replay is timed without its fit (the fit lists each request's 100 nearest objects, "
        "one more pass of products over the trace, and runs lazy greedy; its time is in its own column).",
        "",
        "Why the engine keeps up with the server's search: per block of requests it makes the same "
        "product with the whole catalogue that a flat search makes"
        + (" (FAISS's own search was slower than the engine's products in this run)" if faster else "")
        + ", and the rest of its work per request is a scan of the "
        "block's row over the catalogue for the k nearest objects, a gather over the C cached objects, "
        "exact float64 keys for the few candidates and the policy's update: small beside the 2 N d "
        "flops of the row's product.",
        "",
        "Why the target against the tuned loop is out of reach at small C: the exact answer of every "
        "request over the whole catalogue is work no exact replay can skip. The tuned loop does it with "
        "a one-query flat search, which reads the whole catalogue (N d 4 bytes = "
        f"{meta['n_objects'] * meta['dim'] * 4 / 2**20:.0f} MiB) per request and runs near memory "
        "bandwidth; a replay does it with a matrix product. The column *bound* is the fastest measured "
        "way of doing that work alone (the batched search (b) or the engine's products, "
        f"{products_rps:,.0f} requests/s) over the tuned loop's rate: what an engine that did nothing "
        "else could reach. Where it is below 10 the target cannot be met on this machine; the engine "
        f"reaches {share:.0%} of the bound (median over the baseline rows; its scans, exact keys and "
        "updates are serial, after the product of each block)."
        + (f" At C = {', '.join(f'{c:,}' for c in big)} the loop's numpy distances to the C cached vectors "
           "add enough work per request that the bound exceeds 10." if big else ""),
        "",
        f"Noise: the machine has {meta['cores']} cores shared with other jobs whose load changes during a "
        "run; (b) and the products are measured once, at the start, and each replay once, so rates of "
        "nearly equal work can differ by several times between rows; compare ratios with that in mind.",
        "",
        "(a)'s answers equal the engine's (as sets) on "
        + ", ".join(f"{a:.2%}" for a in agree)
        + " of its requests (LRU, by C): FAISS float32 distances against the engine's exact ones.",
        "",
        "![object cache speed](object_cache_speed.png)",
        "",
        "Raw numbers: `object_cache_speed.json`.",
    ]
    with atomic_path(out / "object_cache_speed.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    plot(out / "object_cache_speed.png", rows, meta)


def plot(path: Path, rows: list[dict], meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    markers = dict(zip(POLICIES, "osD^vPXh*p"))  # one marker per policy
    for p in dict.fromkeys(r["policy"] for r in rows):
        rs = [r for r in rows if r["policy"] == p]
        ax.plot([r["capacity"] for r in rs], [r["engine_rps"] for r in rs], marker=markers.get(p, "o"),
                label=f"{p} (k = {rs[0]['k']}" + (f", first {rs[0]['requests']:,} requests)"
                                                   if rs[0].get("requests", meta["n"]) != meta["n"] else ")"))  # fmt: skip
    lru = [r for r in rows if r["policy"] == rows[0]["policy"]]
    caps = [r["capacity"] for r in lru]
    ax.plot(caps, [r["loop_rps"] for r in lru], "k--", label=f"(a) per-request loop, k = {lru[0]['k']}")
    ax.plot(caps, [r["loop_1thread_rps"] for r in lru], "k-.", label="(a) same, one FAISS thread")
    ax.plot(caps, [r["server_qps"] for r in lru], "k:", label=f"(b) batched server search, k = {lru[0]['k']}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cache capacity C (objects)")
    ax.set_ylabel("requests per second")
    ax.set_title(f"object-cache replay, {meta['n_objects']:,} objects, d = {meta['dim']}, n = {meta['n']:,}")
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(fontsize=8, loc="center left", bbox_to_anchor=(0.66, 0.5))
    fig.tight_layout(rect=(0, 0, 0.66, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
