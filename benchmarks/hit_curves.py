"""Hit-ratio and cost curves per policy over capacity and radius, on reference traces.

Builds (or reuses, through the package cache) a RecVAE trace of the synthetic dataset and, when
the real sample is present (:func:`benchmarks.shared_ml100k`), of ML-100K; then sweeps every policy
over capacities (fractions of the number of users) and radii (quartiles of the same-user step
distance) and writes ``benchmarks/results/hit_curves.md`` with the tables and the curves.

    python -m benchmarks.hit_curves [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks import shared_ml100k
from recvae.storage import atomic_path

RESULTS = Path(__file__).resolve().parent / "results"
CAPACITY_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def _trace(dataset: str, work: Path, *, data_dir: Path | None, epochs: int, gen: dict) -> Path:
    from recvae.data import prepare
    from recvae.trace.build import build_trace
    from recvae.training import TrainConfig, train_or_reuse

    data = prepare(dataset, data_dir, **gen)
    ckpt = train_or_reuse(data, TrainConfig.for_dataset(dataset, epochs=epochs), progress=False)
    return build_trace(dataset, data_dir=data_dir, model=ckpt, out=work / f"{dataset}.arrow",
                       progress=False, prepare_params=gen or None)


def _table(df) -> list[str]:
    cols = ["policy", "capacity", "radius", "hit_ratio", "exact_hit_ratio", "approx_hit_ratio",
            "same_user_hit_ratio", "other_user_hit_ratio", "mean_service_cost", "overlap_approx_mean"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df[cols].iterrows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    from simcache.cache import POLICIES  # every registered policy, at its defaults
    from simcache.demo import choose_radii
    from simcache.replay.sweep import run_sweep
    from simcache.trace.info import trace_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small synthetic data, few epochs")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)

    cases = [("synthetic", None, 3 if args.quick else 20,
              {"n_users": 500, "n_items": 400} if args.quick else {"n_users": 5000, "n_items": 2000})]
    ml100k = shared_ml100k()
    if ml100k is not None:
        cases.append(("ml100k", ml100k, 3 if args.quick else 30, {}))
    sections = ["## Hit-ratio and cost curves", ""]
    if ml100k is None:
        sections += ["ML-100K skipped: no ml-100k under $SIMCACHE_SHARED_DATA or shared/data beside the checkout.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for dataset, data_dir, epochs, gen in cases:
            t0 = time.perf_counter()
            trace = _trace(dataset, work, data_dir=data_dir, epochs=epochs, gen=gen)
            info = trace_info(trace)
            radii = choose_radii(info.consecutive_same_user, info.nn_other_user)
            users = int(info.users or info.rows)
            caps = sorted({max(1, round(f * users)) for f in CAPACITY_FRACTIONS})
            df = run_sweep(trace, policies=list(POLICIES), capacities=caps, radii=radii,
                           out=work / f"sweep-{dataset}", jobs=args.jobs, progress=False)
            figures = []
            for png in sorted((work / f"sweep-{dataset}").glob("*.png")):
                dest = RESULTS / f"hit_curves_{dataset}_{png.name}"
                with atomic_path(dest) as t:
                    shutil.copyfile(png, t)
                figures.append(dest.name)
            size = ", ".join(f"{k}={v}" for k, v in gen.items())
            sections += [
                f"### {dataset}" + (f" ({size})" if size else ""),
                "",
                f"Trace: {info.rows:,} embeddings of {users:,} users (RecVAE, {epochs} epochs); radii = "
                f"quartiles of the same-user step distance {radii}; capacities = "
                f"{', '.join(f'{f:.0%}' for f in CAPACITY_FRACTIONS)} of the users. "
                f"Built and swept in {time.perf_counter() - t0:.0f} s.",
                "",
                *[f"![{f}]({f})" for f in figures],
                "",
                *_table(df),
                "",
            ]
            print(f"{dataset}: {len(df)} points", flush=True)
    with atomic_path(RESULTS / "hit_curves.md") as t:
        t.write_text("\n".join(sections))


if __name__ == "__main__":
    main()
