"""Similarity-cache simulation over recommender embedding traces."""

from simcache.blas import choose_openblas_kernels

choose_openblas_kernels()  # before anything loads FAISS's OpenBLAS (see simcache.blas)

from recvae import __version__  # noqa: E402

__all__ = ["__version__"]
