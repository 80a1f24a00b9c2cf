"""``simcache train DATASET`` and ``simcache evaluate CHECKPOINT``: RecVAE training and evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from simcache.cli.common import CommandGroup
from simcache.cli.data import (
    DataDirOpt,
    DataSeedOpt,
    DatasetArg,
    HeldoutOpt,
    MeanItemsOpt,
    MinItemsOpt,
    MinUsersOpt,
    NClustersOpt,
    NItemsOpt,
    NUsersOpt,
    ThresholdOpt,
    generator_params,
)

DeviceOpt = Annotated[
    Optional[str], typer.Option("--device", help="auto (CUDA when present; the default), cpu, cuda or cuda:N.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of a table.")]
ModelOpt = Annotated[str, typer.Option("--model", help="recvae (default) or another model: see `simcache models`.")]
ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", help="Model option key=value (repeatable; see `simcache models`).")]


def _json_ready(res: dict) -> dict:
    return {k: v for k, v in res.items() if k not in ("per_user", "users")}


def train_cmd(
    dataset: DatasetArg,
    data_dir: DataDirOpt = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epochs (default: per dataset, e.g. 50 for ml20m).")] = None,
    gamma: Annotated[Optional[float], typer.Option("--gamma", help="KL weight per input item (default: per dataset, e.g. 0.005 for ml20m).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Users per Adam step (default: 500).")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate (default: 0.0005).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Training seed (default: 0).")] = None,
    device: DeviceOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run in --out (settings not given are taken from it).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the run already in --out with a new one.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory for best.pt, last.pt, history.json. Default: the model cache, where build-trace finds it; there a finished model with the same data and settings is reused and an interrupted one resumed.")] = None,
    heldout_users: HeldoutOpt = None,
    min_items_per_user: MinItemsOpt = None,
    min_users_per_item: MinUsersOpt = None,
    threshold: ThresholdOpt = None,
    n_users: NUsersOpt = None,
    n_items: NItemsOpt = None,
    n_clusters: NClustersOpt = None,
    mean_items: MeanItemsOpt = None,
    data_seed: DataSeedOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar per pass.")] = True,
    json_out: JsonOpt = False,
    model: ModelOpt = "recvae",
    param: ParamOpt = None,
) -> None:
    """Train RecVAE (or --model NAME) on DATASET (prepared with the Mult-VAE protocol), then report test metrics.

    Prints one line per epoch (losses, validation NDCG@100, seconds per phase) and, at the
    end, the test metrics of the best state beside the popularity baseline.
    """
    from recvae.data import prepare
    from recvae.evaluation import evaluate_model, evaluate_popularity, format_table
    from recvae.checkpoint import load_model, read
    from recvae.training import LAST, TrainConfig, model_dir, resolve_device, train, train_or_reuse

    from recvae.outputs import check_output

    if out is not None:
        check_output(out, kind="folder")
    gen = generator_params(n_users, n_items, n_clusters, mean_items, data_seed)
    if model != "recvae" or param:
        from simcache.cli.models import train_other, train_other_options

        options = train_other_options(model, param, gamma=gamma, epochs=epochs, batch_size=batch_size, lr=lr,
                                      seed=seed, device=device)
        prep = dict(heldout_users=heldout_users, min_items_per_user=min_items_per_user,
                    min_users_per_item=min_users_per_item, threshold=threshold,
                    **gen)
        return train_other(model, dataset, data_dir, prep, options, resume=resume, out=out,
                           progress=progress, json_out=json_out)
    data = prepare(
        dataset, data_dir, heldout_users=heldout_users, min_items_per_user=min_items_per_user,
        min_users_per_item=min_users_per_item, threshold=threshold,
        **gen,
    )
    given = {"epochs": epochs, "gamma": gamma, "batch_size": batch_size, "lr": lr, "seed": seed, "device": device}
    config = TrainConfig.for_dataset(dataset, **given)
    run_dir = out if out is not None else model_dir(data, config)
    if resume and out is not None and (run_dir / LAST).is_file():
        # settings not given on the command line come from the run being resumed
        stored = read(run_dir / LAST)["train_config"]
        config = TrainConfig.from_dict({**stored, **{k: v for k, v in given.items() if v is not None}})
    typer.echo(
        f"training RecVAE on {dataset}: {data.train.shape[0]:,} users x {data.n_items:,} items; "
        f"gamma {config.gamma:g}, {config.epochs} epochs, batch {config.batch_size}, lr {config.lr:g}, "
        f"seed {config.seed}, device {resolve_device(config.device)}; run directory {run_dir}",
        err=json_out,
    )
    if json_out:  # stdout is reserved for the JSON document
        log_line = lambda s: typer.echo(s, err=True)  # noqa: E731
    elif progress:
        from tqdm.auto import tqdm

        log_line = tqdm.write  # keeps the lines clear of the progress bar
    else:
        log_line = typer.echo
    if out is None and not resume and not overwrite:
        best = train_or_reuse(data, config, progress=progress, log_line=log_line)
    else:
        best = train(data, config, run_dir, resume=resume, overwrite=overwrite, progress=progress, log_line=log_line)
    dev = resolve_device(config.device)
    model, info = load_model(best, device=dev, expect=data)
    results = {"RecVAE": evaluate_model(model, data, "test", device=dev),
               "popularity": evaluate_popularity(data, "test")}
    if json_out:
        typer.echo(json.dumps({"checkpoint": str(best), "best_epoch": info["best_epoch"],
                               "validation_ndcg@100": info["best_score"], "sha256": info["sha256"],
                               "test": {k: _json_ready(v) for k, v in results.items()}}, indent=2))
        return
    score = "-" if info["best_score"] is None else f"{info['best_score']:.4f}"
    typer.echo(f"best epoch {info['best_epoch']} (validation NDCG@100 {score}): {best}")
    typer.echo("test metrics (mean ± standard error):")
    typer.echo(format_table(results))


def evaluate_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file (best.pt, last.pt) or a run directory.", show_default=False)],
    data_dir: DataDirOpt = None,
    split: Annotated[str, typer.Option("--split", help="test or validation.")] = "test",
    device: DeviceOpt = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate the popularity baseline.")] = True,
    json_out: JsonOpt = False,
    model_type: Annotated[Optional[str], typer.Option("--model-type", help="The model the checkpoint must hold (default: whichever it holds).")] = None,
) -> None:
    """Print NDCG@100, Recall@20, Recall@50 (and @20/@50/@100 of both) of CHECKPOINT on its dataset.

    The dataset is re-created from the preprocessing parameters the checkpoint recorded (a
    cached preparation is reused); its item vocabulary must match the checkpoint's.
    """
    from recvae.checkpoint import load_model, training_data
    from recvae.evaluation import evaluate_model, evaluate_popularity, format_table
    from recvae.training import resolve_device
    from simcache.cli.models import checkpoint_type, evaluate_other

    kind = checkpoint_type(checkpoint)
    if kind != "recvae" or (model_type or "recvae") != "recvae":
        return evaluate_other(checkpoint, data_dir, split, device, baseline, json_out, expect_type=model_type)
    dev = resolve_device(device or "auto")
    model, info = load_model(checkpoint, device=dev)
    data = training_data(info, data_dir)
    results = {"RecVAE": evaluate_model(model, data, split, device=dev)}
    if baseline:
        results["popularity"] = evaluate_popularity(data, split)
    if json_out:
        doc = {
            "checkpoint": info["path"], "sha256": info["sha256"], "dataset": info["dataset"],
            "vocabulary_fingerprint": info["vocabulary_fingerprint"], "epoch": info["epoch"],
            "best_epoch": info["best_epoch"], "split": split,
            "results": {k: _json_ready(v) for k, v in results.items()},
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"{info['path']}  ({info['dataset']}, epoch {info['epoch']}, sha256 {info['sha256'][:16]})")
    typer.echo(f"{split} metrics (mean ± standard error):")
    typer.echo(format_table(results))


def register(app: CommandGroup) -> None:
    """Add ``train`` and ``evaluate`` to ``app``."""
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
