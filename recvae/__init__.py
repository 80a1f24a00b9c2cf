"""RecVAE (Shenbin et al., WSDM 2020) in PyTorch: data protocol, model, training, evaluation, embeddings."""

__version__ = "0.1.0"
