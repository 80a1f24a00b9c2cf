"""Corrupt checkpoints: every damaged or mismatched checkpoint is one error line, never a model.

Two tiny checkpoints are trained once (RecVAE's and a registered model's, ``mf``); each case
damages a copy. ``evaluate`` and ``build-trace --model`` must refuse it with one ``error:`` line
naming the file and write nothing; generated truncations and byte flips must be refused by the
loader, or (a change inside the archive that does not touch what is loaded) give back exactly
the trained weights.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recvae import checkpoint
from recvae.errors import UserError
from recvae.models import checkpoint as model_checkpoint
from simcache.cli.app import app
from tests.faults.conftest import fails_cleanly

SYNTH = ["synthetic", "--n-users", "120", "--n-items", "60"]
_names = itertools.count()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """(folder, RecVAE's best.pt, mf's best.pt), trained for one epoch in a private cache."""
    root = tmp_path_factory.mktemp("checkpoints")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIMCACHE_CACHE_DIR", str(root / "cache"))
        for name, extra in (("recvae", []), ("mf", ["--model", "mf"])):
            result = CliRunner().invoke(app, ["train", *SYNTH, "--epochs", "1", "--no-progress", *extra,
                                              "--out", str(root / name)])  # fmt: skip
            assert result.exit_code == 0, result.output
        yield root, root / "recvae" / "best.pt", root / "mf" / "best.pt"


@pytest.fixture
def cache(runs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMCACHE_CACHE_DIR", str(runs[0] / "cache"))


def copy_of(runs, source: Path, change) -> Path:
    """A new checkpoint: ``source`` loaded, ``change(dict)`` applied, saved with fresh checksums
    (so that only the change, not a checksum, can be what the loader objects to)."""
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    change(ckpt)
    state = ckpt.get("model" if ckpt["format"] == checkpoint.FORMAT else "state", {})
    ckpt[checkpoint.CHECKSUM_KEY] = checkpoint.tensors_sha256(state)
    path = runs[0] / f"changed{next(_names)}.pt"
    checkpoint.write(path, checkpoint.with_record_checksum(ckpt))
    return path


def first_matrix(state: dict) -> str:
    return next(name for name, t in state.items() if isinstance(t, torch.Tensor) and t.ndim == 2)


def with_nan(ckpt: dict) -> None:
    state = ckpt["model"]
    name = first_matrix(state)
    state[name] = state[name].clone()
    state[name][0, 0] = float("nan")


def without_entry(ckpt: dict) -> None:
    del ckpt["model"][first_matrix(ckpt["model"])]


def wrong_shape(ckpt: dict) -> None:
    name = first_matrix(ckpt["model"])
    ckpt["model"][name] = torch.zeros(ckpt["model"][name].shape[0] + 1, ckpt["model"][name].shape[1])


def without_dataset(ckpt: dict) -> None:
    del ckpt["dataset"]


def flipped(runs, source: Path, at: float) -> Path:
    data = bytearray(source.read_bytes())
    data[int(len(data) * at)] ^= 0x20
    path = runs[0] / f"flipped{next(_names)}.pt"
    path.write_bytes(bytes(data))
    return path


# ----------------------------------------------------------------------------------------------
# Explicit cases
# ----------------------------------------------------------------------------------------------
def test_the_intact_checkpoints_evaluate(runs, cache) -> None:
    for path in runs[1:]:
        result = CliRunner().invoke(app, ["evaluate", str(path), "--json"])
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("change", "needles"), [
    (with_nan, ("NaN",)),
    (without_entry, ("no model entry",)),
    (wrong_shape, ("has shape",)),
    (without_dataset, ("'dataset'",)),
])  # fmt: skip
def test_a_damaged_recvae_checkpoint_does_not_evaluate(change, needles: tuple, runs, cache) -> None:
    path = copy_of(runs, runs[1], change)
    fails_cleanly(["evaluate", path], str(path), *needles)


def test_weights_that_do_not_match_their_checksum_are_refused(runs, cache) -> None:
    def nudge(ckpt: dict) -> None:
        name = first_matrix(ckpt["model"])
        ckpt["model"][name] = ckpt["model"][name] + 1e-3

    ckpt = torch.load(runs[1], map_location="cpu", weights_only=True)
    nudge(ckpt)
    path = runs[0] / "nudged.pt"
    checkpoint.write(path, ckpt)  # the old checksum kept
    fails_cleanly(["evaluate", path], str(path), "checksum")


def test_a_changed_setting_is_refused(runs, cache) -> None:
    """The record checksum covers what the weights' checksum does not (configs, dataset record, history)."""
    ckpt = torch.load(runs[1], map_location="cpu", weights_only=True)
    ckpt["model_config"]["prior_weights"] = [0.5, 0.4, 0.1]
    path = runs[0] / "setting.pt"
    checkpoint.write(path, ckpt)  # the old checksums kept
    fails_cleanly(["evaluate", path], str(path), "configuration", "checksum")


@pytest.mark.parametrize("at", [0.3, 0.6, 0.9])
def test_flipped_bytes_do_not_evaluate(at: float, runs, cache) -> None:
    path = flipped(runs, runs[1], at)
    fails_cleanly(["evaluate", path], str(path))


@pytest.mark.parametrize(("change", "needles"), [
    (lambda c: c["state"].update({first_matrix(c["state"]): torch.full_like(c["state"][first_matrix(c["state"])],
                                                                              float("inf"))}), ("inf",)),
    (lambda c: c["state"].pop(first_matrix(c["state"])), ("no model entry",)),
    (lambda c: c.pop("dataset"), ("'dataset'",)),
])  # fmt: skip
def test_a_damaged_model_checkpoint_does_not_evaluate(change, needles: tuple, runs, cache) -> None:
    path = copy_of(runs, runs[2], change)
    fails_cleanly(["evaluate", path], str(path), *needles)


def test_a_checkpoint_of_one_model_given_as_another(runs, cache) -> None:
    fails_cleanly(["evaluate", runs[1], "--model-type", "mf"], str(runs[1]), "recvae", "mf")
    fails_cleanly(["evaluate", runs[2], "--model-type", "als"], str(runs[2]), "mf", "als")
    with pytest.raises(UserError, match="not a RecVAE checkpoint"):
        checkpoint.load_model(runs[2])
    with pytest.raises(UserError, match="holds a 'recvae' model, not a 'mf' model"):
        model_checkpoint.load(runs[1], "mf")


def test_build_trace_refuses_a_checkpoint_with_nan_weights(runs, cache, tmp_path: Path) -> None:
    path = copy_of(runs, runs[1], with_nan)
    fails_cleanly(["build-trace", *SYNTH, "--model", path, "--quiet", "--out", tmp_path / "t.arrow"],
                  str(path), "NaN", untouched=tmp_path)  # fmt: skip


def test_build_trace_refuses_a_model_checkpoint_of_the_wrong_shape(runs, cache, tmp_path: Path) -> None:
    def shrink(ckpt: dict) -> None:
        name = first_matrix(ckpt["state"])
        ckpt["state"][name] = ckpt["state"][name][:, :-1].clone()

    path = copy_of(runs, runs[2], shrink)
    fails_cleanly(["build-trace", *SYNTH, "--model-type", "mf", "--model", path, "--quiet",
                   "--out", tmp_path / "t.arrow"], str(path), untouched=tmp_path)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Generated corruptions
# ----------------------------------------------------------------------------------------------
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def loads_unchanged_or_refuses(path: Path, original: Path) -> None:
    """The loader refuses ``path`` with one line naming it, or gives back the original weights."""
    try:
        model, info = checkpoint.load_model(path)
    except UserError as err:
        assert str(path) in str(err) and "\n" not in str(err), str(err)
        return
    assert info["identity"] == checkpoint.checkpoint_identity(original)
    assert checkpoint.tensors_sha256(model.state_dict()) == checkpoint.read(original)[checkpoint.CHECKSUM_KEY]


@FAST
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_any_truncation_is_refused(fraction: float, runs) -> None:
    data = runs[1].read_bytes()
    path = runs[0] / f"truncated{next(_names)}.pt"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(UserError) as err:
        checkpoint.load_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@FAST
@given(flips=st.lists(st.tuples(st.one_of(st.integers(0, 12_000), st.integers(0, 10**9)), st.integers(1, 255)),
                     min_size=1, max_size=4))  # the first 12 kB: the pickled entries and zip headers
def test_any_byte_flip_is_refused_or_changes_nothing(flips: list, runs) -> None:
    original = runs[1].read_bytes()
    data = bytearray(original)
    for at, mask in flips:
        data[at % len(data)] ^= mask
    assume(data != original)
    path = runs[0] / f"flips{next(_names)}.pt"
    path.write_bytes(bytes(data))
    loads_unchanged_or_refuses(path, runs[1])


def test_flips_in_the_tensor_data_are_refused(runs) -> None:
    """A flip in the bytes of a weight (found in the file by its value) is caught by the checksum."""
    ckpt = torch.load(runs[1], map_location="cpu", weights_only=True)
    weight = ckpt["model"][first_matrix(ckpt["model"])]
    data = runs[1].read_bytes()
    at = data.index(bytes(weight.untyped_storage())[:64])
    path = runs[0] / "weightflip.pt"
    path.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])
    with pytest.raises(UserError, match="checksum|not a readable checkpoint"):
        checkpoint.load_model(path)
