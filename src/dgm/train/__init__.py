"""The training engine (PyTorch Lightning). Importing this package imports Lightning."""

from dgm.train.config import TrainConfig
from dgm.train.fit import fit

__all__ = ["TrainConfig", "fit"]
