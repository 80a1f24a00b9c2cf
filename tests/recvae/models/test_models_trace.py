"""Every registered model (but the ML-100K metadata one) writes a trace through the model-neutral
builder (`build-trace --model-type`): the metadata names the model, and the catalogue (when the
model has one) ranks the trace's top-k lists in decreasing score. (That incremental rows equal a
direct embedding of each prefix is the models' contract test.)"""

from __future__ import annotations

import numpy as np
import pytest

from recvae.models.registry import MODEL_NAMES, get_model
from recvae.trace.build import build_trace_stats
from recvae.trace.catalogue import read_catalogue
from simcache.trace.io import load_requests

SYNTH = {"n_users": 150, "n_items": 60, "seed": 3}
FAST = {"multvae": {"epochs": 2}, "autorec": {"epochs": 2}, "mf": {"epochs": 2}}


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if "side" not in get_model(n).needs])
def test_model_trace_through_the_builder(name, tmp_path, monkeypatch):
    from recvae.models import encoder as enc_module

    real = enc_module.load_model_encoder

    def quick(model_name, prepared, checkpoint=None, **kw):
        cls = get_model(model_name)
        if checkpoint is None and model_name in FAST:
            monkeypatch.setattr(cls.Config, "with_options", classmethod(
                lambda c, base=None, **o: c(**{**FAST[model_name], **{k: v for k, v in o.items() if v is not None}})))
        return real(model_name, prepared, checkpoint, **kw)

    monkeypatch.setattr(enc_module, "load_model_encoder", quick)
    stats = build_trace_stats("synthetic", model_type=name, out=tmp_path / "t.arrow", topk=5, progress=False,
                              prepare_params=SYNTH)
    req = load_requests(stats.path)
    assert req.metadata["model"]["type"] == name and len(req) == stats.rows > 0
    assert req.vectors.shape[1] == stats.dim
    cat_path = tmp_path / "t.catalogue.arrow"
    if cat_path.exists():
        cat = read_catalogue(cat_path)
        scores = req.vectors[:20] @ cat.vectors.T + (0 if cat.bias is None else cat.bias)
        for row, top in zip(scores, req.topk[:20]):
            valid = top[top >= 0]
            assert np.all(np.diff(row[valid]) <= 1e-4)  # listed in decreasing score
