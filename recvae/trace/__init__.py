"""Incremental user embeddings written as timestamped Arrow traces (the producer side).

Modules: :mod:`~recvae.trace.schedule` (when a user is embedded), :mod:`~recvae.trace.history`
(users' time-ordered interactions), :mod:`~recvae.trace.prefix` (prefix embeddings and top-k
lists, computed incrementally), :mod:`~recvae.trace.writer` (sorted, atomic Arrow IPC files),
:mod:`~recvae.trace.build` (the pipeline: :func:`recvae.trace.build.build_trace`) and
:mod:`~recvae.trace.schema` (column names and types shared with readers). The file format is
documented in ``traces/README.md``.
"""
