"""Corrupt traces: refused by every reader with one line, or caught by ``trace info --verify``.

One small format-2 trace (three record batches, every column) is built once with the package's
writer; each case damages a copy of its bytes. The promise: the normal reader (``trace info``,
``replay``, ``analyze norms``) refuses a corrupt file with one ``error:`` line and exit 2, never
an abort inside Arrow or a traceback; a change it cannot see (a flipped bit in float data) is
caught by ``trace info --verify``, which never exits 0 on changed bytes. Every damaged copy gets a
file of its own (a memory-mapped file rewritten in place would fault the process that maps it).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recvae.trace import format as tf
from recvae.trace.build import write_trace_for
from recvae.trace.recvae_encoder import RecVAEEncoder
from simcache.cli.app import app
from tests.faults.conftest import fails_cleanly, files_under, run_process

ROWS, DIM, TOPK, USERS, BATCH_ROWS = 240, 4, 3, 12, 80
_names = itertools.count()


def trace_columns(seed: int = 0) -> tf.TraceColumns:
    """Random but well-formed trace rows: time-sorted, per-user sequence numbers, every split."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, USERS, ROWS)
    seq = np.zeros(ROWS, np.int32)
    for u in range(USERS):
        seq[user == u] = np.arange((user == u).sum())
    return tf.TraceColumns(
        timestamp=np.arange(ROWS, dtype=np.int64) * 10, user_code=user,
        user_labels=np.array([f"u{u}" for u in range(USERS)]), seq=seq, n_items=seq + 5,
        split_code=(user % 3).astype(np.int8), embedding=rng.normal(size=(ROWS, DIM)).astype(np.float32),
        topk=rng.integers(0, 50, (ROWS, TOPK)).astype(np.int32),
    )  # fmt: skip


def trace_meta(**changes: object) -> dict:
    meta = {"format": tf.TRACE_FORMAT, "format_version": tf.TRACE_FORMAT_VERSION, "dataset": "synthetic",
            "dim": DIM, "topk": TOPK, "rows": ROWS, "items": list(range(50))}  # fmt: skip
    return {**meta, **changes}


def messages(data: bytes) -> list[tuple[str, int, int]]:
    """(type, first byte, end) of the schema message and each record batch message of an IPC file."""
    stream = pa.BufferReader(pa.py_buffer(data)[8:])
    out = []
    for _ in range(1 + ROWS // BATCH_ROWS):
        lo = stream.tell()
        message = pa.ipc.read_message(stream)
        out.append((message.type, 8 + lo, 8 + stream.tell()))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def intact(folder: Path) -> bytes:
    """The bytes of the small trace."""
    path = tf.write_trace(folder / "intact.arrow", trace_columns(), trace_meta(), batch_rows=BATCH_ROWS)
    assert [m[0] for m in messages(path.read_bytes())] == ["schema"] + ["record batch"] * (ROWS // BATCH_ROWS)
    return path.read_bytes()


def damaged(folder: Path, data: bytes | bytearray) -> Path:
    """A new file holding ``data``."""
    path = folder / f"damaged{next(_names)}.arrow"
    path.write_bytes(bytes(data))
    return path


def overwrite(data: bytes, at: int, junk: bytes) -> bytearray:
    out = bytearray(data)
    out[at : at + len(junk)] = junk
    return out


def flip(data: bytes, at: int, mask: int = 0x10) -> bytearray:
    out = bytearray(data)
    out[at] ^= mask
    return out


def readers(path: Path, out: Path) -> dict[str, list[str]]:
    """Every reader of a trace, as CLI arguments."""
    return {
        "trace info": ["trace", "info", path],
        "replay": ["replay", path, "--capacity", "10", "--radius", "0.5", "--out", out / "replay"],
        "analyze norms": ["analyze", "norms", path, "--no-progress", "--out", out / "norms"],
    }


READERS = ["trace info", "replay", "analyze norms"]


def refused_everywhere(path: Path, out: Path, *needles: str) -> None:
    """Every reader and ``--verify`` refuse ``path`` with one line naming it, leaving ``out`` untouched."""
    out.mkdir(exist_ok=True)
    for args in [*readers(path, out).values(), ["trace", "info", path, "--verify"]]:
        fails_cleanly(args, str(path), *needles, untouched=out)


# ----------------------------------------------------------------------------------------------
# Explicit cases
# ----------------------------------------------------------------------------------------------
def test_the_intact_trace_reads_and_verifies(folder: Path, intact: bytes, tmp_path: Path) -> None:
    path = damaged(folder, intact)
    result = CliRunner().invoke(app, ["trace", "info", str(path), "--verify"])
    assert result.exit_code == 0 and result.stdout.startswith("OK "), result.output
    for name in READERS:
        result = CliRunner().invoke(app, [str(a) for a in readers(path, tmp_path)[name]])
        assert result.exit_code == 0, (name, result.output)


def test_random_bytes_in_batch_metadata_are_one_line_not_an_abort(folder: Path, intact: bytes, tmp_path: Path) -> None:
    """The issue's case: these 8 bytes made unvalidated Arrow abort (exit 134) in ``replay``."""
    _, lo, _ = messages(intact)[1]
    junk = np.random.default_rng(1692).integers(0, 256, 8, dtype=np.uint8).tobytes()
    path = damaged(folder, overwrite(intact, lo + 484, junk))
    proc = run_process(readers(path, tmp_path)["replay"], timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], proc.stderr
    assert not (tmp_path / "replay").exists()
    refused_everywhere(path, tmp_path, "record batch 0")


@pytest.mark.parametrize("where", ["magic", "footer schema field name", "batch header"])
def test_flipped_structure_is_refused_by_every_reader(where: str, folder: Path, intact: bytes, tmp_path: Path) -> None:
    at = {
        "magic": 2,
        "footer schema field name": intact.rindex(tf.EMBEDDING.encode()),  # the schema readers use
        "batch header": messages(intact)[2][1] + 4,  # the metadata length of batch 1
    }[where]
    refused_everywhere(damaged(folder, flip(intact, at)), tmp_path)


@pytest.mark.parametrize("where", ["float in batch 1", "schema message field name"])
def test_changes_readers_cannot_see_fail_verification(where: str, folder: Path, intact: bytes, tmp_path: Path) -> None:
    """Valid Arrow that readers accept (a changed embedding value; the schema message at the start,
    which readers skip for the footer's copy): ``--verify`` names what differs."""
    _, lo, hi = messages(intact)[2]
    schema_lo, schema_hi = messages(intact)[0][1:]
    value = np.asarray(trace_columns().embedding[BATCH_ROWS + 7, 1]).tobytes()
    at, needle = {
        "float in batch 1": (intact.index(value, lo, hi) + 1, "record batch 1"),
        "schema message field name": (intact.index(tf.EMBEDDING.encode(), schema_lo, schema_hi), "schema"),
    }[where]
    path = damaged(folder, flip(intact, at))
    for name in READERS:
        result = CliRunner().invoke(app, [str(a) for a in readers(path, tmp_path)[name]])
        assert result.exit_code == 0, (name, result.output)
    fails_cleanly(["trace", "info", path, "--verify"], str(path), needle)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_trace_is_refused_by_every_reader(keep: float, folder: Path, intact: bytes, tmp_path: Path) -> None:
    refused_everywhere(damaged(folder, intact[: int(len(intact) * keep)]), tmp_path)


def test_wrong_column_type_is_refused(folder: Path, tmp_path: Path) -> None:
    cols = trace_columns()
    schema = tf.trace_schema(DIM, TOPK).set(
        5, pa.field(tf.EMBEDDING, pa.list_(pa.float64(), DIM), nullable=False)
    ).with_metadata(tf.encode_metadata(trace_meta(format_version=1)))
    arrays = [pa.array(cols.timestamp), pa.array([f"u{u}" for u in cols.user_code]), pa.array(cols.seq),
              pa.array(cols.n_items, type=pa.int32()), pa.array([tf.SPLITS[s] for s in cols.split_code]),
              pa.FixedSizeListArray.from_arrays(pa.array(cols.embedding.reshape(-1).astype(np.float64)), DIM),
              pa.FixedSizeListArray.from_arrays(pa.array(cols.topk.reshape(-1)), TOPK)]  # fmt: skip
    path = tf.write_ipc(folder / "float64.arrow", schema, [arrays])
    refused_everywhere(path, tmp_path, "embedding", "float")


@pytest.mark.parametrize(("changes", "needles"), [
    ({"rows": ROWS + 1}, ("rows 241", "240")),
    ({"dim": DIM * 2}, ("dim 8",)),
    ({"format_version": 3}, ("format version 3",)),
])  # fmt: skip
def test_metadata_disagreeing_with_the_rows_is_refused(changes: dict, needles: tuple, folder: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    path = tf.write_trace(folder / f"meta{next(_names)}.arrow", trace_columns(), trace_meta(**changes),
                          batch_rows=BATCH_ROWS)  # fmt: skip
    refused_everywhere(path, tmp_path, *needles)


def test_missing_checksum_entry_of_a_format_2_trace_is_refused(folder: Path, tmp_path: Path) -> None:
    cols = trace_columns()
    path = tf.write_requests(folder / "nochecksum.arrow", cols.embedding, timestamp=cols.timestamp,
                             topk=cols.topk, metadata=trace_meta(), batch_rows=BATCH_ROWS)  # fmt: skip
    fails_cleanly(["trace", "info", path], str(path), "checksum")
    fails_cleanly(["trace", "info", path, "--verify"], str(path), "checksum")


def test_missing_simcache_metadata_is_a_request_file_that_cannot_be_verified(folder: Path, intact: bytes) -> None:
    """Without the ``simcache`` entry the rows are still a valid request file; ``--verify`` says it
    cannot prove anything (and does not print OK)."""
    table = tf.read_ipc(damaged(folder, intact))
    bare = table.schema.remove_metadata()
    path = tf.write_ipc(folder / "bare.arrow", bare, [b.columns for b in table.to_batches()])
    result = CliRunner().invoke(app, ["trace", "info", str(path), "--verify"])
    assert result.exit_code == 0 and "cannot be verified" in result.stdout and "OK" not in result.stdout


def test_undecodable_metadata_does_not_verify(folder: Path, intact: bytes) -> None:
    """Readers ignore ``simcache`` metadata that is not JSON; ``--verify`` must not then say 'no checksums'."""
    schema_lo, schema_hi = messages(intact)[0][1:]
    footer = intact.rindex(b'{"checksum"')
    at = intact.index(b"sha256", footer) + 1
    data = flip(flip(intact, at, 0x80), intact.index(b"sha256", schema_lo, schema_hi) + 1, 0x80)
    path = damaged(folder, data)
    fails_cleanly(["trace", "info", path, "--verify"], str(path), "metadata")


ARROW_ENTRY = f'"arrow":"{pa.__version__}"'.encode()
OTHER_ARROW = ARROW_ENTRY[:-2] + bytes([48 + (ARROW_ENTRY[-2] - 47) % 10]) + b'"'  # last digit + 1


@pytest.mark.parametrize(("old", "new"), [(ARROW_ENTRY, OTHER_ARROW),
                                          (b"simcache\x00", b"simcacxe\x00"), (b'"format":', b'"formav":')])
def test_damaged_footer_metadata_does_not_verify(old: bytes, new: bytes, folder: Path, intact: bytes) -> None:
    """The footer's schema is what readers use: damage there that leaves a readable file (another
    pyarrow version named, so the layout would not be compared; the metadata no longer a trace's,
    so there would be "no checksums") is caught by comparing it with the schema at the start."""
    footer = intact.rindex(old)
    assert footer > messages(intact)[-1][2] and len(new) == len(old) and new != old
    path = damaged(folder, intact[:footer] + new + intact[footer + len(old) :])
    fails_cleanly(["trace", "info", path, "--verify"], str(path), "schema")


# ----------------------------------------------------------------------------------------------
# Generated corruptions
# ----------------------------------------------------------------------------------------------
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_any_truncation_is_refused_by_the_reader(fraction: float, folder: Path, intact: bytes) -> None:
    path = damaged(folder, intact[: int(len(intact) * fraction)])
    fails_cleanly(["trace", "info", path], str(path))


@FAST
@given(flips=st.lists(st.tuples(st.one_of(st.integers(0, 10**9), st.integers(-1400, -1)), st.integers(1, 255)),
                     min_size=1, max_size=4))  # the last 1400 bytes: the footer
def test_any_byte_flip_is_refused_or_fails_verification(flips: list, folder: Path, intact: bytes) -> None:
    data = bytearray(intact)
    for at, mask in flips:
        data[at % len(data)] ^= mask
    assume(data != intact)  # two flips of one bit cancel out
    path = damaged(folder, data)
    read = CliRunner().invoke(app, ["trace", "info", str(path)])
    assert read.exit_code in (0, 2) and "Traceback" not in read.output, read.output
    if read.exit_code == 2:
        fails_cleanly(["trace", "info", path], str(path))
    fails_cleanly(["trace", "info", path, "--verify"], str(path))


@pytest.mark.parametrize("seed", range(3))
def test_random_bytes_in_any_message_never_abort_a_process(seed: int, folder: Path, intact: bytes,
                                                           tmp_path: Path) -> None:  # fmt: skip
    """``replay`` in a child process (an abort would not be caught in-process): exit 2 or, for a
    change the reader cannot see, exit 0; ``--verify`` (the same reader first) refuses it."""
    rng = np.random.default_rng(seed)
    _, lo, hi = messages(intact)[1 + seed]
    path = damaged(folder, overwrite(intact, int(rng.integers(lo, lo + 400)), rng.bytes(8)))
    replay = run_process(readers(path, tmp_path)["replay"], timeout=120)
    assert replay.returncode in (0, 2) and "Traceback" not in replay.stderr, (replay.returncode, replay.stderr[-2000:])
    fails_cleanly(["trace", "info", path, "--verify"], str(path))


# ----------------------------------------------------------------------------------------------
# Non-finite embeddings (issue 21, item 4)
# ----------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf inside the model, on purpose
def test_a_model_giving_non_finite_embeddings_writes_nothing(tmp_path: Path) -> None:
    """A RecVAE whose weights are inf (set in-process, past the checkpoint loader's own check)."""
    import torch

    from recvae.data import load_interactions, prepare
    from recvae.errors import UserError
    from recvae.model import RecVAE, RecVAEConfig

    params = dict(n_users=80, n_items=40, seed=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIMCACHE_CACHE_DIR", str(tmp_path / "cache"))
        prepared, df = prepare("synthetic", progress=False, **params), load_interactions("synthetic", **params)
    torch.manual_seed(0)
    model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=16, latent_dim=4)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("inf"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match=r"recvae model gave a non-finite embedding .* row \d+") as err:
        write_trace_for(prepared=prepared, interactions=df, encoder=RecVAEEncoder(model), out=out / "t.arrow",
                        topk=5, progress=False)  # fmt: skip
    assert "\n" not in str(err.value)
    assert files_under(out) == []
