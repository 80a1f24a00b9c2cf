"""Object-cache policies on a synthetic stationary trace: NAG against capacity, convergence toward
GREEDY, and AÇAI's throughput (lazy against the straightforward whole-catalogue update).

Trace: a 30 x 30 grid of catalogue objects (spacing 1, L2), requests drawn from four Gaussian
clusters (centres (7, 8), (21, 6), (14, 22), (25, 24), weights 0.4 / 0.3 / 0.2 / 0.1, standard
deviation 2), c_f = 3, every policy with its defaults. GREEDY is fitted on the whole trace (the
static reference; (1 - 1/e) of the best static cache, so a dynamic policy can beat it).

* NAG for every object policy and GREEDY, k = 1 and k = 3, C = 5 ... 80 (``obj-qlru-dc`` is
  defined for k = 1 only).
* Convergence (k = 1, C = 20): mean gain per window of requests, and AÇAI's time-average gain
  over the first T requests against GREEDY's over the same T requests.
* AÇAI throughput: a Gaussian catalogue of 20,000 objects in dimension 32, C = 100, k = 10,
  ``projection=lazy`` against ``projection=full`` (the multiplicative update over the whole
  catalogue and a full sort-based projection every request), same seed; the logs are compared
  (served objects, costs) and the engine's common work is measured by an ``obj-lru`` replay.

Output: ``results/object_policies.md``, ``.json`` and ``object_policies_convergence.png``.
``--quick``: smaller trace and catalogue (smoke run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recvae.storage import atomic_path
from simcache.objects import ObjectReplayConfig, replay_objects
from simcache.objects.policies import OBJECT_POLICIES

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"n": 20_000, "capacities": [5, 10, 20, 40, 80], "window": 1_000, "speed_objects": 20_000,
        "speed_requests": 3_000}  # fmt: skip
QUICK = {"n": 3_000, "capacities": [5, 20], "window": 300, "speed_objects": 2_000, "speed_requests": 500}
TRACE = {"grid": 30, "sigma": 2.0, "c_f": 3.0, "seed": 0,
         "centres": [[7, 8], [21, 6], [14, 22], [25, 24]], "weights": [0.4, 0.3, 0.2, 0.1]}  # fmt: skip
DYNAMIC = ("acai", "duel", "grades")
#: what the numbers above show against the papers' claims (the trace and seeds are fixed, so the
#: NAG tables regenerate exactly; only the timings vary)
NOTES = [
    "## Against the papers' claims", "",
    "- AÇAI is **not** at or above every other dynamic policy here: with default parameters GRADES "
    "is above it at most capacities and DUEL at k = 1, C = 10 ... 40; AÇAI leads the three only at k = 3, "
    "C = 10 and 80 and at k = 1, C = 80. Its parameters were not tuned (eta = 0.5, 50 candidates); the "
    "papers tune eta per experiment.",
    "- AÇAI's movement is large: systematic rounding with a fixed offset (`coupled`) still moves several "
    "objects per request once y is spread over many fractional coordinates; the paper's coupled rounding "
    "(optimal-transport based) is not implemented. `period` = M reduces it (k = 1, C = 10: "
    "3.3 objects per request with M = 1, 0.6 with M = 10, the same NAG).",
    "- Throughput: the ratio lazy / full moves with the load of the shared machine (runs gave 7-11x on the "
    "whole replay and 13-18x on the policy's own time); with M = 1 the lazy form's cost is dominated by the "
    "O(N) rounding pass, not by the mirror step.",
    "- GREEDY (lazy greedy, a (1 - 1/e) approximation fitted on the whole trace) is beaten by GRADES at "
    "C = 5 and 10 for k = 1, so it is a reference, not an upper bound.",
    "- With k = 1 and the optimal-answer cost model, LRU/LFU/SIM-LRU insert only when an answer is fetched "
    "(nearest cached object more than c_f worse than the server's), so their caches stop filling and their "
    "NAG is flat from C = 40; GRADES inserts the same way and flattens at C = 80.",
    "- The AÇAI regret claim (time-average gain approaching the best static one) is only partly visible: "
    "AÇAI's average rises quickly but stays about 0.05 below GREEDY's at C = 20 after 20,000 requests; the "
    "gap does not shrink between T = 3,000 and 20,000 at this fixed eta (a constant step size has a "
    "constant regret per request; the paper's guarantee uses eta decreasing with the horizon).",
    "- The papers' full texts could not be read from this environment; the rules are the issue's, documented "
    "in docs/object-caches.md.",
    "",
]
CONVERGENCE_C = 20


def stationary_trace(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue on the grid, requests from the Gaussian clusters)."""
    g = TRACE["grid"]
    xs, ys = np.meshgrid(np.arange(g), np.arange(g))
    cat = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    rng = np.random.default_rng(seed)
    centres = np.array(TRACE["centres"], np.float32)
    ids = rng.choice(len(centres), n, p=TRACE["weights"])
    x = (centres[ids] + TRACE["sigma"] * rng.standard_normal((n, 2))).astype(np.float32)
    return cat, x


def replay(x, cat, policy, capacity, k, params=None, c_f=None):
    cfg = ObjectReplayConfig(policy=policy, capacity=capacity, k=k, c_f=c_f or TRACE["c_f"], seed=TRACE["seed"],
                             params=params or {})  # fmt: skip
    return replay_objects(x, cat, cfg)


def nag_grid(cat, x, capacities) -> list[dict]:
    rows = []
    for k in (1, 3):
        for c in capacities:
            for p in OBJECT_POLICIES:
                if p == "obj-qlru-dc" and k != 1:
                    continue
                log = replay(x, cat, p, c, k)
                half = len(log) // 2
                rows.append({"policy": p, "k": k, "capacity": c, "nag": log.nag,
                             "nag_second_half": float(log.gain[half:].mean() / (k * TRACE["c_f"])),
                             "inserted_per_request": float(log.inserted.mean())})  # fmt: skip
    return rows


def convergence(cat, x, window) -> dict:
    out: dict = {"window": window, "capacity": CONVERGENCE_C, "windows": {}, "prefix": {}}
    logs = {p: replay(x, cat, p, CONVERGENCE_C, 1) for p in (*DYNAMIC, "obj-lru", "greedy")}
    for p, log in logs.items():
        g = log.gain[: len(log) // window * window].reshape(-1, window).mean(axis=1) / TRACE["c_f"]
        out["windows"][p] = [float(v) for v in g]
    ends = [t for t in (100, 300, 1_000, 3_000, 10_000, 20_000) if t <= len(x)]
    for p in DYNAMIC:
        out["prefix"][p] = [{"T": t, "policy": float(logs[p].gain[:t].mean() / TRACE["c_f"]),
                             "greedy": float(logs["greedy"].gain[:t].mean() / TRACE["c_f"])} for t in ends]  # fmt: skip
    return out


def acai_speed(n_objects: int, n: int) -> dict:
    rng = np.random.default_rng(1)
    cat = rng.standard_normal((n_objects, 32), dtype=np.float32)
    p = 1.0 / np.arange(1, n_objects + 1) ** 0.9
    x = cat[rng.choice(n_objects, n, p=p / p.sum())] + 0.35 * rng.standard_normal((n, 32), dtype=np.float32)
    cap, k = 100, 10
    runs = {"lazy": {"projection": "lazy"}, "full": {"projection": "full"}, "lazy_period10": {"period": 10}}
    replay(x[:50], cat, "obj-lru", cap, k)  # warm the compiled kernels
    for params in runs.values():
        replay(x[:50], cat, "acai", cap, k, params)
    out: dict = {"n_objects": n_objects, "dim": 32, "n": n, "capacity": cap, "k": k}
    t = time.perf_counter()
    replay(x, cat, "obj-lru", cap, k)
    out["engine_seconds"] = time.perf_counter() - t
    logs = {}
    for name, params in runs.items():
        t = time.perf_counter()
        logs[name] = replay(x, cat, "acai", cap, k, params)
        out[f"{name}_seconds"] = time.perf_counter() - t
    out["identical"] = bool(np.array_equal(logs["lazy"].served, logs["full"].served)
                            and np.array_equal(logs["lazy"].cost, logs["full"].cost)
                            and np.array_equal(logs["lazy"].inserted, logs["full"].inserted))  # fmt: skip
    out["nag"] = {name: log.nag for name, log in logs.items()}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    grid = QUICK if args.quick else FULL
    cat, x = stationary_trace(grid["n"], TRACE["seed"])
    raw = {"grid": grid, "trace": TRACE, "nag": nag_grid(cat, x, grid["capacities"]),
           "convergence": convergence(cat, x, grid["window"]),
           "acai_speed": acai_speed(grid["speed_objects"], grid["speed_requests"])}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "object_policies.json") as tmp:
        tmp.write_text(json.dumps(raw, indent=1))
    write_report(args.out, raw)


def write_report(out: Path, raw: dict) -> None:
    grid, rows, conv, sp = raw["grid"], raw["nag"], raw["convergence"], raw["acai_speed"]
    lines = ["# Object-cache policies: AÇAI, DUEL, GRADES against the others and GREEDY", "",
             f"Synthetic stationary trace: {TRACE['grid']}x{TRACE['grid']} grid catalogue, {grid['n']:,} requests from "
             f"{len(TRACE['centres'])} Gaussian clusters (sigma {TRACE['sigma']}), L2, c_f = {TRACE['c_f']}, default "
             "parameters; regenerate with `python -m benchmarks.object_policies`.", ""]  # fmt: skip
    for k in (1, 3):
        caps = grid["capacities"]
        lines += [f"## NAG against capacity, k = {k} (whole trace; second half in brackets)", "",
                  "| policy | " + " | ".join(f"C = {c}" for c in caps) + " |",
                  "|---|" + "---|" * len(caps)]  # fmt: skip
        for p in dict.fromkeys(r["policy"] for r in rows if r["k"] == k):
            cells = []
            for c in caps:
                r = next(r for r in rows if r["policy"] == p and r["k"] == k and r["capacity"] == c)
                cells.append(f"{r['nag']:.3f} ({r['nag_second_half']:.3f})")
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
        lines.append("")
    acai = {r["capacity"]: r["inserted_per_request"] for r in rows if r["policy"] == "acai" and r["k"] == 1}
    lines += ["AÇAI's movement (objects inserted per request by re-rounding, k = 1): "
              + ", ".join(f"C = {c}: {v:.2f}" for c, v in acai.items()) + "; each costs c_f on top of the service "
              "cost (`log.movement_cost`), not included in the NAG above.", ""]  # fmt: skip
    lines += [f"## Convergence (k = 1, C = {conv['capacity']})", "",
              f"Mean gain / c_f per window of {conv['window']:,} requests: see `object_policies_convergence.png`. "
              "Time-average gain / c_f over the first T requests:", "",
              "| policy | " + " | ".join(f"T = {e['T']:,}" for e in conv["prefix"]["acai"]) + " |",
              "|---|" + "---|" * len(conv["prefix"]["acai"])]  # fmt: skip
    for p, pts in conv["prefix"].items():
        lines.append(f"| {p} | " + " | ".join(f"{e['policy']:.3f}" for e in pts) + " |")
    lines.append("| greedy | " + " | ".join(f"{e['greedy']:.3f}" for e in conv["prefix"]["acai"]) + " |")
    lines += ["", "## AÇAI throughput", "",
              f"Gaussian catalogue {sp['n_objects']:,} x {sp['dim']}, {sp['n']:,} requests, C = {sp['capacity']}, "
              f"k = {sp['k']}, one replay each after warm-up:", "",
              "| run | seconds | requests/s |", "|---|---|---|"]  # fmt: skip
    for name, label in (("engine", "obj-lru (the engine's common work)"), ("full", "acai, projection=full"),
                        ("lazy", "acai, projection=lazy (default)"), ("lazy_period10", "acai, lazy, period=10")):
        s = sp[f"{name}_seconds"]
        lines.append(f"| {label} | {s:.2f} | {sp['n'] / s:,.0f} |")
    ratio = sp["full_seconds"] / sp["lazy_seconds"]
    pol_full = sp["full_seconds"] - sp["engine_seconds"]
    pol_lazy = max(1e-9, sp["lazy_seconds"] - sp["engine_seconds"])
    lines += ["", f"Lazy against full: {ratio:.1f}x on the whole replay, {pol_full / pol_lazy:.1f}x on the policy's "
              f"own time (replay minus the obj-lru replay); logs identical: {sp['identical']}.", ""]  # fmt: skip
    lines += NOTES
    with atomic_path(out / "object_policies.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    plot(out / "object_policies_convergence.png", conv)


def plot(path: Path, conv: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for p, vals in conv["windows"].items():
        t = (np.arange(len(vals)) + 1) * conv["window"]
        ax.plot(t, vals, "k--" if p == "greedy" else "-", label=p)
    ax.set_xlabel("request")
    ax.set_ylabel(f"mean gain / c_f per {conv['window']:,} requests")
    ax.set_title(f"stationary clusters, k = 1, C = {conv['capacity']}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)  # off the data
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
