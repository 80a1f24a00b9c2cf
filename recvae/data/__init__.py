"""Datasets: registry, download, streaming parsers, synthetic generator, Mult-VAE preprocessing."""

from recvae.data.prepared import PreparedData

__all__ = ["PreparedData"]
