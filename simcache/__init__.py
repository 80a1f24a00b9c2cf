"""Similarity-cache simulation over recommender embedding traces."""

from recvae import __version__

__all__ = ["__version__"]
