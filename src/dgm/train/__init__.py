"""The training engine (PyTorch Lightning).

``from dgm.train import fit`` imports Lightning; ``TrainConfig`` alone does not.
"""

from dgm.train.config import TrainConfig

__all__ = ["TrainConfig", "fit"]


def __getattr__(name):
    if name == "fit":
        from dgm.train.engine import fit

        return fit
    raise AttributeError(f"module 'dgm.train' has no attribute {name!r}")
