"""Zoo: classic image and graph classifiers on one Lightning + Hydra stack."""

__version__ = "0.1.0"
