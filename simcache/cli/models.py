"""Training and evaluating the models of :mod:`recvae.models` from the CLI, and ``simcache models``.

``simcache train D --model NAME`` and ``simcache evaluate CHECKPOINT`` (see
:mod:`simcache.cli.model`) hand every model but RecVAE to :func:`train_other` /
:func:`evaluate_other`; model-specific hyper-parameters come as ``--param key=value``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from simcache.cli.common import CommandGroup


def parse_params(params: list[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (a malformed entry is a UserError)."""
    from recvae.errors import UserError

    out: dict[str, str] = {}
    for p in params or []:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param expects key=value, got {p!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def train_other_options(name: str, params: list[str] | None, *, gamma, **common: object) -> dict:
    """The model options of ``simcache train --model NAME``: the common flags and ``--param`` pairs."""
    from recvae.errors import UserError
    from recvae.models.registry import get_model

    if name == "recvae":
        raise UserError("--param sets options of the other models; RecVAE takes --epochs --gamma --batch-size --lr")
    if gamma is not None:
        raise UserError(f"--gamma is RecVAE's KL weight; model '{name}' has no such option (see `simcache models`)")
    cls = get_model(name)
    known = {f for f in cls.Config.__dataclass_fields__}
    options = {k: v for k, v in common.items() if v is not None}
    for k in list(options):
        if k not in known:
            raise UserError(f"--{k.replace('_', '-')} does not apply to model '{name}' (see `simcache models`)")
    options.update(parse_params(params))
    return options


def checkpoint_type(path: Path) -> str:
    """Registry name of the model in checkpoint ``path`` ("recvae" for RecVAE's own checkpoints)."""
    from recvae.models.checkpoint import load_raw, model_type

    return model_type(load_raw(path))


def _emitter(json_out: bool, progress: bool):
    if json_out:
        return lambda s: typer.echo(s, err=True)
    return typer.echo


def _results(model, data, split: str, baseline: bool, batch_size: int) -> tuple[dict, dict | None]:
    from recvae.evaluation import evaluate_popularity
    from recvae.models.evaluation import evaluate_topn, rmse_table

    results = {model.name: evaluate_topn(model, data, split, batch_size=batch_size)}
    if baseline:
        results["popularity"] = evaluate_popularity(data.prepared, split)
    return results, (rmse_table(model, data) if model.explicit else None)


def _print(results: dict, rmse: dict | None, split: str) -> None:
    from recvae.evaluation import format_table

    typer.echo(f"{split} metrics (mean ± standard error):")
    typer.echo(format_table(results))
    if rmse is not None:
        typer.echo("RMSE on the training users' held-out ratings: " + ", ".join(f"{k} {v:.4f}" for k, v in rmse.items()))


def _json_ready(res: dict) -> dict:
    return {k: v for k, v in res.items() if k not in ("per_user", "users")}


def train_other(name: str, dataset: str, data_dir, prepare_kw: dict, options: dict, *, resume: bool, out: Path | None,
                progress: bool, json_out: bool) -> None:
    """``simcache train DATASET --model NAME`` for a model of :mod:`recvae.models`."""
    from recvae.data import prepare
    from recvae.models import checkpoint
    from recvae.models.base import model_device
    from recvae.models.data import model_data
    from recvae.models.registry import get_model
    from recvae.models.trainer import run_dir, train_model, train_or_reuse

    cls = get_model(name)
    prepared = prepare(dataset, data_dir, **prepare_kw)
    data = model_data(prepared, cls.needs, data_dir, name)
    base = None
    if resume and out is not None and (out / checkpoint.LAST).is_file():
        base = checkpoint.read(out / checkpoint.LAST, expect_type=name)["config"]  # settings not given: the run's
    config = cls.Config.with_options(base, **options)
    directory = out if out is not None else run_dir(data, name, config)
    emit = _emitter(json_out, progress)
    emit(f"training {name} on {dataset}: {prepared.train.shape[0]:,} users x {prepared.n_items:,} items; "
         f"{config.epochs} epochs, seed {config.seed}, device {model_device(cls, config.device)}; run directory {directory}")
    if out is None and not resume:
        best = train_or_reuse(name, data, config, progress=progress, log_line=emit)
    else:
        best = train_model(name, data, config, directory, resume=resume, progress=progress, log_line=emit)
    model, info = checkpoint.load(best, expect_type=name, device=model_device(cls, config.device), expect=prepared)
    results, rmse = _results(model, data, "test", True, config.eval_batch_size)
    if json_out:
        typer.echo(json.dumps({"checkpoint": str(best), "model_type": name, "best_epoch": info["best_epoch"],
                               "validation_ndcg@100": info["best_score"], "sha256": info["sha256"],
                               "test": {k: _json_ready(v) for k, v in results.items()}, "rmse": rmse}, indent=2))
        return
    score = "-" if info["best_score"] is None else f"{info['best_score']:.4f}"
    typer.echo(f"best epoch {info['best_epoch']} (validation NDCG@100 {score}): {best}")
    _print(results, rmse, "test")


def evaluate_other(path: Path, data_dir, split: str, device: str | None, baseline: bool, json_out: bool,
                   expect_type: str | None = None) -> None:
    """``simcache evaluate CHECKPOINT`` for a checkpoint of a model of :mod:`recvae.models`."""
    from recvae.checkpoint import training_data
    from recvae.models import checkpoint
    from recvae.models.base import model_device
    from recvae.models.data import model_data
    from recvae.models.registry import get_model

    name = expect_type or checkpoint_type(path)
    cls = get_model(name)
    model, info = checkpoint.load(path, expect_type=name, device=model_device(cls, device or "auto"))
    prepared = training_data(info, data_dir)
    data = model_data(prepared, cls.needs, data_dir, name)
    results, rmse = _results(model, data, split, baseline, int(info["config"].get("eval_batch_size", 1000)))
    if json_out:
        typer.echo(json.dumps({"checkpoint": info["path"], "model_type": name, "sha256": info["sha256"],
                               "dataset": info["dataset"], "vocabulary_fingerprint": info["vocabulary_fingerprint"],
                               "epoch": info["epoch"], "best_epoch": info["best_epoch"], "split": split,
                               "results": {k: _json_ready(v) for k, v in results.items()}, "rmse": rmse}, indent=2))
        return
    typer.echo(f"{info['path']}  ({name} on {info['dataset']}, epoch {info['epoch']}, sha256 {info['sha256'][:16]})")
    _print(results, rmse, split)


def models_cmd() -> None:
    """List the models `simcache train --model` accepts, with their options and defaults."""
    from dataclasses import fields

    from recvae.models.registry import MODEL_NAMES, get_model

    typer.echo("recvae: RecVAE (Shenbin et al. 2020), the default; options --epochs --gamma --batch-size --lr")
    for name in MODEL_NAMES:
        cls = get_model(name)
        needs = f" [needs {', '.join(sorted(cls.needs))}]" if cls.needs else ""
        typer.echo(f"{name}: {cls.title}{needs}")
        defaults = cls.Config()
        opts = ", ".join(f"{f.name}={getattr(defaults, f.name)}" for f in fields(defaults) if f.name not in ("device",))
        typer.echo(f"    --param {opts}")


def register(app: CommandGroup) -> None:
    """Add ``simcache models`` (the registry with each model's options)."""
    app.command("models")(models_cmd)
