"""Incremental user embeddings written as timestamped Arrow traces (the producer side)."""
