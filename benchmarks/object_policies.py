"""Object-cache policies on a synthetic stationary trace: NAG against capacity, convergence toward
GREEDY, and AÇAI's throughput (lazy against the straightforward whole-catalogue update).

Trace: a 30 x 30 grid of catalogue objects (spacing 1, L2), requests drawn from four Gaussian
clusters (centres (7, 8), (21, 6), (14, 22), (25, 24), weights 0.4 / 0.3 / 0.2 / 0.1, standard
deviation 2), c_f = 3, every policy with its defaults. GREEDY is fitted on the whole trace (the
static reference; (1 - 1/e) of the best static cache, so a dynamic policy can beat it).

* NAG for every object policy and GREEDY, k = 1 and k = 3, C = 5 ... 80 (``obj-qlru-dc`` is
  defined for k = 1 only), and against k = 1, 2, 3, 5, 10 at C = 20.
* The same tables on the ML-100K trace with its RecVAE catalogue (metric ``ip``, c_f = 0.1, about
  the 10 % quantile of the score gap of the server's 3rd object; C = 2 ... 50, k table at C = 10). The trace is
  built once by ``recvae`` (5 training epochs, a short run) from ``$SIMCACHE_SHARED_DATA/ml-100k``
  or ``../shared/data/ml-100k`` and kept in the cache folder (``<cache>/object_policies``);
  without the data the section says it was skipped.
* AÇAI's eta: besides the default (0.5), eta * c_f in 0.3, 1.5, 6 for every setting; the best one is
  reported separately, so the papers' claim (AÇAI at or above the other dynamic policies) is
  checked both at the default and at a tuned eta.
* Convergence (k = 1, C = 20): mean gain per window of requests, and AÇAI's time-average gain
  over the first T requests against GREEDY's over the same T requests.
* AÇAI throughput: a Gaussian catalogue of 20,000 objects in dimension 32, C = 100, k = 10,
  ``projection=lazy`` against ``projection=full`` (the multiplicative update over the whole
  catalogue and a full sort-based projection every request), same seed; the logs are compared
  (served objects, costs) and the engine's common work is measured by an ``obj-lru`` replay.

Timings: wall seconds and the process's CPU seconds (the machine may be shared and loaded; the CPU
time is the steadier of the two).

Output: ``results/object_policies.md``, ``.json`` and ``object_policies_convergence.png``.
``--quick``: smaller trace and catalogue (smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from benchmarks import shared_ml100k
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
#: AÇAI's eta grid as eta * c_f (the gradient is at most c_f, so eta * c_f is the scale-free step),
#: besides the default eta = 0.5: synthetic (c_f = 3) eta 0.1, 0.5, 2; ML-100K (c_f = 0.1) eta 3, 15, 60
ETA_C_F = (0.3, 1.5, 6.0)
K_TABLE = (1, 2, 3, 5, 10)
#: the synthetic trace's grid and the ML-100K one (capacities for 1,682 items)
SYNTHETIC = {"name": "synthetic", "metric": "l2", "c_f": TRACE["c_f"], "ks": (1, 3), "k_capacity": 20}
ML100K = {"name": "ml100k", "metric": "ip", "c_f": 0.1, "ks": (1, 3), "k_capacity": 10, "epochs": 5,
          "capacities": [2, 5, 10, 20, 50]}  # fmt: skip
QUICK_ML = {"capacities": [5, 10], "ks": (1,), "k_table": (1, 10), "etas": (0.5, 2.0)}
#: what the numbers above show against the papers' claims (the trace and seeds are fixed, so the
#: NAG tables regenerate exactly; only the timings vary)
NOTES = [
    "- Both traces: the claim does not hold at the default eta = 0.5; with eta tuned per setting (the papers "
    "tune it) AÇAI is at or above DUEL and GRADES in about half the settings on the synthetic trace and in most "
    "settings on ML-100K, where it stays below DUEL mainly at k = 1. The best eta is small (0.1) on the synthetic "
    "trace and large (15-60, i.e. eta * c_f = 1.5-6) on ML-100K, the top of the grid at several cells, so a wider "
    "grid could move those cells further. On ML-100K AÇAI's second-half NAG is far above its whole-trace NAG "
    "at the default eta (C = 10, k = 1: 0.872 against 0.693): the trace has only 1,956 requests (about two per "
    "user) and AÇAI is still learning when it ends; the trace comes from a 5-epoch model, close to a popularity "
    "ranking, so a few popular items serve most requests and LRU-like policies are near GREEDY.",
    "- AÇAI's movement is large: systematic rounding with a fixed offset (`coupled`) still moves several "
    "objects per request once y is spread over many fractional coordinates; the paper's coupled rounding "
    "(optimal-transport based) is not implemented. `period` = M reduces it (k = 1, C = 10: "
    "3.3 objects per request with M = 1, 0.6 with M = 10, the same NAG).",
    "- Throughput: the lazy form rounds from a sum tree over the catalogue updated only at the objects the "
    "mirror step touched (O(C log N) per rounding instead of an O(N) pass), and the engine's top-m candidate "
    "search (AÇAI asks for 50 candidates per request where obj-lru asks for k = 10) computes a row's "
    "approximate keys and the minimum of every 64-object chunk in one vectorised pass, bounds the m-th "
    "smallest key by the m-th smallest chunk minimum and scans only the chunks that can hold band objects "
    "(an unsorted band compacted by quickselect instead of a sorted insertion; the same exact lists). The "
    "engine's per-request loop runs on borrowed array views (no reference counting; about 11 % of an obj-lru "
    "replay before, measured with perf) and its block products on one BLAS thread (OpenBLAS's threads spun "
    "through the sequential pass, taking the other core). Before these two changes, three runs of "
    "`acai_speed(20000, 3000)` at load 2.8-3.3 gave lazy against full 11.5x-12.6x wall, and the previous "
    "candidate search 8.3x-9.8x; this run's ratio and the target's verdict are in the AÇAI throughput "
    "section above.",
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


def replay(x, cat, policy, capacity, k, params=None, c_f=None, metric="l2"):
    cfg = ObjectReplayConfig(policy=policy, capacity=capacity, k=k, c_f=c_f or TRACE["c_f"], seed=TRACE["seed"],
                             params=params or {}, metric=metric)  # fmt: skip
    return replay_objects(x, cat, cfg)


def nag_grid(cat, x, spec: dict, capacities, ks, k_table, etas) -> list[dict]:
    """NAG rows for every policy (AÇAI also at each eta) over k x capacities plus the k table at
    ``spec['k_capacity']``; each setting is replayed once."""
    settings = {(k, c) for k in ks for c in capacities} | {(k, spec["k_capacity"]) for k in k_table}
    rows = []
    for k, c in sorted(settings):
        for p in OBJECT_POLICIES:
            if p == "obj-qlru-dc" and k != 1:
                continue
            for eta in etas if p == "acai" else (None,):
                params = {} if eta is None else {"eta": eta}
                log = replay(x, cat, p, c, k, params, spec["c_f"], spec["metric"])
                half = len(log) // 2
                rows.append({"policy": p, "k": k, "capacity": c, "eta": eta, "nag": log.nag,
                             "nag_second_half": float(log.gain[half:].mean() / (k * spec["c_f"])),
                             "inserted_per_request": float(log.inserted.mean())})  # fmt: skip
    return rows


def eta_grid(c_f: float) -> list[float]:
    """The default eta (0.5) and ``ETA_C_F / c_f``."""
    return sorted({0.5} | {round(v / c_f, 6) for v in ETA_C_F})


def ml100k_trace(epochs: int) -> Path | None:
    """The ML-100K trace (its catalogue beside it) from the cache folder, built on first use
    (RecVAE trained for ``epochs``); None when the data is absent."""
    from recvae.data import prepare
    from recvae.storage import cache_dir
    from recvae.trace.build import build_trace
    from recvae.training import TrainConfig, train_or_reuse

    data_dir = shared_ml100k()
    out = cache_dir() / "object_policies" / f"ml100k-e{epochs}.arrow"
    if out.is_file() and out.with_name(f"{out.stem}.catalogue.arrow").is_file():
        return out
    if data_dir is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    data = prepare("ml100k", data_dir)
    ckpt = train_or_reuse(data, TrainConfig.for_dataset("ml100k", epochs=epochs), progress=False)
    return build_trace("ml100k", data_dir=data_dir, model=ckpt, out=out, progress=False)


def ml100k_section(quick: bool) -> dict:
    """NAG tables on the ML-100K trace, or the reason they are missing."""
    from simcache.objects import load_catalogue
    from simcache.trace.io import load_requests

    trace = ml100k_trace(ML100K["epochs"])
    if trace is None:
        return {"skipped": "ML-100K skipped: no ml-100k under $SIMCACHE_SHARED_DATA or shared/data beside the checkout."}
    x = np.ascontiguousarray(load_requests(trace).vectors, dtype=np.float32)
    cat = load_catalogue(trace.with_name(f"{trace.stem}.catalogue.arrow"))
    caps, ks, k_table, etas = ((QUICK_ML["capacities"], QUICK_ML["ks"], QUICK_ML["k_table"], QUICK_ML["etas"])
                               if quick else (ML100K["capacities"], ML100K["ks"], K_TABLE, eta_grid(ML100K["c_f"])))  # fmt: skip
    return {"n": len(x), "dim": int(x.shape[1]), "n_objects": int(cat.vectors.shape[0]), "capacities": caps,
            "ks": list(ks), "k_table": list(k_table), "etas": list(etas),
            "nag": nag_grid(cat, x, ML100K, caps, ks, k_table, etas)}  # fmt: skip


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
    t, c = time.perf_counter(), time.process_time()
    replay(x, cat, "obj-lru", cap, k)
    out["engine_seconds"], out["engine_cpu"] = time.perf_counter() - t, time.process_time() - c
    logs = {}
    for name, params in runs.items():
        t, c = time.perf_counter(), time.process_time()
        logs[name] = replay(x, cat, "acai", cap, k, params)
        out[f"{name}_seconds"], out[f"{name}_cpu"] = time.perf_counter() - t, time.process_time() - c
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
    k_table, etas = (QUICK_ML["k_table"], QUICK_ML["etas"]) if args.quick else (K_TABLE, eta_grid(TRACE["c_f"]))
    raw = {"grid": grid, "trace": TRACE, "load_before": os.getloadavg()[0],
           "nag": nag_grid(cat, x, SYNTHETIC, grid["capacities"], SYNTHETIC["ks"], k_table, etas),
           "ml100k": ml100k_section(args.quick),
           "convergence": convergence(cat, x, grid["window"]),
           "acai_speed": acai_speed(grid["speed_objects"], grid["speed_requests"])}  # fmt: skip
    raw["load_after"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "object_policies.json") as tmp:
        tmp.write_text(json.dumps(raw, indent=1))
    write_report(args.out, raw)


def nag_value(rows, policy, k, c, eta="default") -> tuple[float, float, float | None]:
    """(NAG, second-half NAG, eta) of one cell; AÇAI's ``eta="default"`` is 0.5, ``"best"`` the best one."""
    cands = [r for r in rows if r["policy"] == policy and r["k"] == k and r["capacity"] == c]
    if policy == "acai":
        cands = [r for r in cands if r["eta"] == 0.5] if eta == "default" else cands
        r = max(cands, key=lambda r: r["nag"])
        return r["nag"], r["nag_second_half"], r["eta"]
    return cands[0]["nag"], cands[0]["nag_second_half"], None


def policy_rows(rows, k) -> list[tuple[str, str, str]]:
    """(label, policy, eta mode) of the table rows for k: every policy, then AÇAI at its best eta."""
    out = [(p, p, "default") for p in dict.fromkeys(r["policy"] for r in rows if r["k"] == k)]
    i = next(i for i, r in enumerate(out) if r[1] == "acai")
    out.insert(i + 1, ("acai, best eta", "acai", "best"))
    return out


def nag_tables(rows, caps, ks, k_table, k_capacity) -> list[str]:
    """The NAG-against-capacity tables (one per k) and the NAG-against-k table."""
    lines = []
    for k in ks:
        lines += [f"### NAG against capacity, k = {k} (whole trace; second half in brackets)", "",
                  "| policy | " + " | ".join(f"C = {c}" for c in caps) + " |", "|---|" + "---|" * len(caps)]  # fmt: skip
        for label, p, mode in policy_rows(rows, k):
            cells = []
            for c in caps:
                nag, half, eta = nag_value(rows, p, k, c, mode)
                cells.append(f"{nag:.3f} ({half:.3f})" + (f" eta {eta:g}" if mode == "best" else ""))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"### NAG against k, C = {k_capacity}", "",
              "| policy | " + " | ".join(f"k = {k}" for k in k_table) + " |", "|---|" + "---|" * len(k_table)]  # fmt: skip
    for label, p, mode in policy_rows(rows, max(k_table)):
        cells = []
        for k in k_table:
            if not any(r["policy"] == p and r["k"] == k and r["capacity"] == k_capacity for r in rows):
                cells.append("-")
                continue
            nag, _, eta = nag_value(rows, p, k, k_capacity, mode)
            cells.append(f"{nag:.3f}" + (f" eta {eta:g}" if mode == "best" else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def claim_check(rows, name: str) -> list[str]:
    """Where AÇAI (default eta, then best eta) is at or above DUEL and GRADES, setting by setting."""
    settings = sorted({(r["k"], r["capacity"]) for r in rows})
    out = []
    for mode in ("default", "best"):
        losses = []
        for k, c in settings:
            a = nag_value(rows, "acai", k, c, mode)[0]
            rivals = {p: nag_value(rows, p, k, c)[0] for p in ("duel", "grades")}
            best = max(rivals, key=rivals.get)
            if a < rivals[best]:
                losses.append(f"k = {k}, C = {c} ({best} {rivals[best]:.3f} > {a:.3f})")
        label = "default eta = 0.5" if mode == "default" else "best eta per setting"
        out.append(f"- {name}, AÇAI with {label}: at or above DUEL and GRADES in {len(settings) - len(losses)} of "
                   f"{len(settings)} settings" + (f"; below in {', '.join(losses)}." if losses else "."))
    return out


def etas_of(rows) -> str:
    return ", ".join(f"{e:g}" for e in sorted({r["eta"] for r in rows if r["eta"] is not None}))


def write_report(out: Path, raw: dict) -> None:
    grid, rows, conv, sp, ml = raw["grid"], raw["nag"], raw["convergence"], raw["acai_speed"], raw["ml100k"]
    k_table = sorted({r["k"] for r in rows if r["capacity"] == SYNTHETIC["k_capacity"]})
    lines = ["# Object-cache policies: AÇAI, DUEL, GRADES against the others and GREEDY", "",
             "Regenerate with `python -m benchmarks.object_policies`; every policy at its defaults, AÇAI also at "
             f"eta * c_f in {', '.join(f'{e:g}' for e in ETA_C_F)} (eta {etas_of(rows)} on the synthetic trace, "
             f"{etas_of(ml.get('nag', []))} on ML-100K; the `acai` row is the default eta = 0.5, `acai, best eta` "
             "the best of them per cell). "
             f"Machine load (1-minute average) {raw['load_before']:.1f} at the start, {raw['load_after']:.1f} at "
             "the end.", "",
             "## Synthetic stationary trace", "",
             f"{TRACE['grid']}x{TRACE['grid']} grid catalogue, {grid['n']:,} requests from "
             f"{len(TRACE['centres'])} Gaussian clusters (sigma {TRACE['sigma']}), L2, c_f = {TRACE['c_f']}.", ""]  # fmt: skip
    lines += nag_tables(rows, grid["capacities"], SYNTHETIC["ks"], k_table, SYNTHETIC["k_capacity"])
    acai = {r["capacity"]: r["inserted_per_request"] for r in rows
            if r["policy"] == "acai" and r["k"] == 1 and r["eta"] == 0.5 and r["capacity"] in grid["capacities"]}  # fmt: skip
    lines += ["AÇAI's movement (objects inserted per request by re-rounding, k = 1): "
              + ", ".join(f"C = {c}: {v:.2f}" for c, v in sorted(acai.items())) + "; each costs c_f on top of the "
              "service cost (`log.movement_cost`), not included in the NAG above.", ""]  # fmt: skip
    lines += ["## ML-100K trace with its RecVAE catalogue", ""]
    if "skipped" in ml:
        lines += [ml["skipped"], ""]
    else:
        lines += [f"{ml['n']:,} requests (user embeddings, dimension {ml['dim']}) over the {ml['n_objects']:,}-item "
                  f"catalogue (decoder rows and bias), RecVAE trained for {ML100K['epochs']} epochs (a short run), "
                  f"metric ip (score gap), c_f = {ML100K['c_f']}.", ""]  # fmt: skip
        lines += nag_tables(ml["nag"], ml["capacities"], ml["ks"], ml["k_table"], ML100K["k_capacity"])
    lines += [f"## Convergence (synthetic, k = 1, C = {conv['capacity']})", "",
              f"Mean gain / c_f per window of {conv['window']:,} requests: see `object_policies_convergence.png`. "
              "Time-average gain / c_f over the first T requests:", "",
              "| policy | " + " | ".join(f"T = {e['T']:,}" for e in conv["prefix"]["acai"]) + " |",
              "|---|" + "---|" * len(conv["prefix"]["acai"])]  # fmt: skip
    for p, pts in conv["prefix"].items():
        lines.append(f"| {p} | " + " | ".join(f"{e['policy']:.3f}" for e in pts) + " |")
    lines.append("| greedy | " + " | ".join(f"{e['greedy']:.3f}" for e in conv["prefix"]["acai"]) + " |")
    lines += ["", "## AÇAI throughput", "",
              f"Gaussian catalogue {sp['n_objects']:,} x {sp['dim']}, {sp['n']:,} requests, C = {sp['capacity']}, "
              f"k = {sp['k']}, one replay each after warm-up (wall seconds and the process's CPU seconds):", "",
              "| run | wall s | CPU s | requests/s (CPU) |", "|---|---|---|---|"]  # fmt: skip
    for name, label in (("engine", "obj-lru (the engine's common work)"), ("full", "acai, projection=full"),
                        ("lazy", "acai, projection=lazy (default)"), ("lazy_period10", "acai, lazy, period=10")):
        lines.append(f"| {label} | {sp[f'{name}_seconds']:.2f} | {sp[f'{name}_cpu']:.2f} | "
                     f"{sp['n'] / sp[f'{name}_cpu']:,.0f} |")  # fmt: skip
    ratios = []
    for unit in ("seconds", "cpu"):
        pol_full = sp[f"full_{unit}"] - sp[f"engine_{unit}"]
        pol_lazy = max(1e-9, sp[f"lazy_{unit}"] - sp[f"engine_{unit}"])
        ratios.append(f"{sp[f'full_{unit}'] / sp[f'lazy_{unit}']:.1f}x on the whole replay and "
                      f"{pol_full / pol_lazy:.1f}x on the policy's own time (replay minus the obj-lru replay)")
    met = [u for u in ("seconds", "cpu") if sp[f"full_{u}"] >= 10 * sp[f"lazy_{u}"]]
    verdict = {2: "met on wall and CPU time", 1: f"met on {'wall' if met == ['seconds'] else 'CPU'} time only",
               0: "not met in this run"}[len(met)]  # fmt: skip
    lines += ["", f"Lazy against full: wall {ratios[0]}; CPU {ratios[1]}; logs identical: {sp['identical']}. "
              f"Target (lazy >= 10x full on the whole replay, identical logs): {verdict}"
              f"{'' if sp['identical'] else ', but the logs differ'}.", ""]  # fmt: skip
    lines += ["## Against the papers' claims", ""]
    lines += claim_check(rows, "Synthetic")
    if "skipped" not in ml:
        lines += claim_check(ml["nag"], "ML-100K")
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
