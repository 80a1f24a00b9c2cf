"""Incremental user embeddings written as timestamped Arrow traces (the producer side).

Modules: :mod:`~recvae.trace.format` (the file format: columns, metadata, reader, writer, shared
with readers), :mod:`~recvae.trace.schedule` (when a user is embedded), :mod:`~recvae.trace.history`
(users' time-ordered interactions), :mod:`~recvae.trace.prefix` (prefix batches, incremental
RecVAE embeddings and top-k lists), :mod:`~recvae.trace.encoder` (what a model must provide to be
embedded), :mod:`~recvae.trace.recvae_encoder` (RecVAE as such an encoder),
:mod:`~recvae.trace.catalogue` (a model's item vectors) and :mod:`~recvae.trace.build` (the
pipeline: :func:`recvae.trace.build.build_trace`). The file formats are documented in
``traces/README.md``.
"""
