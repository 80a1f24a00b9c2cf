"""Recommenders besides RecVAE, behind one interface, all producing the same incremental traces.

``base`` (the :class:`~recvae.models.base.Recommender` interface and the trace adapter),
``registry`` (name -> class), ``trainer`` (epochs, checkpoints, resume), ``evaluation`` (top-N and
RMSE), ``checkpoint`` (files), ``data`` (ratings and metadata beside the binary split),
``linalg`` (incremental sums and exact least-squares fold-in), then one module per model.
"""

from recvae.models.registry import ALL_MODEL_NAMES, MODEL_NAMES, get_model

__all__ = ["ALL_MODEL_NAMES", "MODEL_NAMES", "get_model"]
