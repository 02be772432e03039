"""Training settings, shared by the Python API and the ``dgm train`` options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    """How to train: budget, optimiser, hardware, checkpoints.

    The budget is whichever of ``epochs``, ``steps`` and ``minutes`` runs out first; with none
    given, training runs for 20 epochs.
    """

    epochs: int | None = None
    steps: int | None = None
    minutes: float | None = None  # wall-clock budget (Lightning's max_time)
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0  # decoupled (AdamW), on weights only: biases are not decayed
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None  # max gradient norm
    seed: int = 0
    accelerator: str = "auto"  # "cpu", "gpu"/"cuda", "mps" or "auto"
    devices: int = 1  # processes (or GPUs) per node; > 1 trains with DDP
    num_nodes: int = 1
    precision: str = "32-true"
    patience: int | None = None  # stop after this many validations without a lower val/loss
    keep: Literal["best", "last"] = "best"  # weights saved at the end: best validation loss, or last
    checkpoint_every: int | None = None  # also checkpoint every N steps (default: each epoch)
    eval_samples: int = 64  # samples drawn for samples.png

    @property
    def default_epochs(self) -> int | None:
        """Epoch limit: the given one, or 20 when no budget is given at all."""
        if self.epochs is None and self.steps is None and self.minutes is None:
            return 20
        return self.epochs
