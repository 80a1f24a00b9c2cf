"""The jobs that ``test_interrupts`` kills: tiny, deterministic, run in a child process or in the test.

``python -c "from tests.faults.interrupt_jobs import main; main()" train|trace OUT [resume]``
prints one line per step (flushed), so that the test can kill the job at a chosen point.
"""

from __future__ import annotations

import sys
from pathlib import Path


def train_job(out: str | Path, *, resume: bool = False, slow: bool = False) -> Path:
    """Four epochs of a small RecVAE on planted data (a few seconds; ``slow``: each optimiser
    step takes 40 ms more, so that the job is still running, mid-epoch, when the test's signal
    arrives however fast the machine is)."""
    import time

    import torch

    from recvae.planted import make_planted
    from recvae.training import TrainConfig, train

    if slow:
        real = torch.optim.Adam.step

        def slowed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            time.sleep(0.04)
            return real(self, *args, **kwargs)

        torch.optim.Adam.step = slowed  # type: ignore[method-assign]
    data = make_planted(300, 120, n_clusters=4, seed=0)
    config = TrainConfig(epochs=4, hidden_dim=16, latent_dim=8, batch_size=100, lr=2e-3, device="cpu")
    return train(data, config, out, resume=resume, progress=False, log_line=lambda s: print(s, flush=True))


def trace_job(out: str | Path, *, slow: bool = False) -> Path:
    """The trace of a small untrained (seeded) RecVAE over a synthetic dataset, in batches of 32
    rows (``slow``: each batch takes 50 ms more, so that a kill lands in the middle of the write)."""
    import time

    import torch

    from recvae.data import load_interactions, prepare
    from recvae.model import RecVAE, RecVAEConfig
    from recvae.trace import format as writer
    from recvae.trace.build import write_trace_for
    from recvae.trace.recvae_encoder import RecVAEEncoder

    saved = writer.BATCH_ROWS, writer._fixed_list
    real = writer._fixed_list

    def slowed(values, pa_type):  # type: ignore[no-untyped-def]
        time.sleep(0.05)
        return real(values, pa_type)

    params = dict(n_users=300, n_items=250, seed=5)
    prepared = prepare("synthetic", progress=False, **params)
    torch.manual_seed(0)
    model = RecVAE(RecVAEConfig(prepared.n_items, hidden_dim=16, latent_dim=4))
    writer.BATCH_ROWS = 32
    writer._fixed_list = slowed if slow else real
    try:
        print("writing", flush=True)
        stats = write_trace_for(prepared=prepared, interactions=load_interactions("synthetic", **params),
                                encoder=RecVAEEncoder(model), out=out, progress=False, topk=10)  # fmt: skip
    finally:
        writer.BATCH_ROWS, writer._fixed_list = saved
    return Path(stats.path)


def main() -> None:
    """Run the job named by ``sys.argv[1]`` into ``sys.argv[2]``."""
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "train":
        train_job(out, resume=sys.argv[3:] == ["resume"], slow=True)
    else:
        trace_job(out, slow=True)
