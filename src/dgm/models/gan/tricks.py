"""The stabilising tricks of the lecture notes that change what the discriminator sees.

- One-sided label smoothing (Salimans et al. 2016): data targets 1 - s instead of 1; sample
  targets stay 0 (smoothing them too moves the optimal D towards the samples).
- Label flipping: each target is swapped (t -> 1 - t) with probability p, for data and samples.
- Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise of std sigma_k
  on the discriminator's inputs, data and samples alike, annealed linearly to 0:
  sigma_k = sigma_0 max(0, 1 - k / K) at discriminator step k.

Dropout in D, spectral normalisation, separate learning rates (TTUR) and the moving average of
G's weights are settings of the networks and the optimizers, not of the targets.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm import rng


def flip(targets: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """``targets`` with each one swapped to ``1 - t`` with probability ``p``."""
    if p <= 0:
        return targets
    swap = rng.rand(targets.shape, generator, targets.device) < p
    return torch.where(swap, 1.0 - targets, targets)


def real_targets(
    n: int, smoothing: float = 0.0, flip_p: float = 0.0, generator=None, device=None, dtype=torch.float32
) -> Tensor:
    """Targets (n,) of the data: ``1 - smoothing`` each, then flipped with probability ``flip_p``."""
    return flip(torch.full((n,), 1.0 - smoothing, device=device, dtype=dtype), flip_p, generator)


def fake_targets(n: int, flip_p: float = 0.0, generator=None, device=None, dtype=torch.float32) -> Tensor:
    """Targets (n,) of the samples: 0 each, then flipped with probability ``flip_p``."""
    return flip(torch.zeros(n, device=device, dtype=dtype), flip_p, generator)


def instance_noise_std(sigma: float, step: int, anneal_steps: int) -> float:
    """sigma_0 max(0, 1 - k / K): the std of the instance noise at discriminator step k."""
    if sigma <= 0 or anneal_steps <= 0:
        return 0.0
    return sigma * max(0.0, 1.0 - step / anneal_steps)


def add_noise(x: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """``x + std * eps``, eps ~ N(0, I) (``x`` itself when std is 0)."""
    return x if std <= 0 else x + std * rng.randn(x.shape, generator, x.device).to(x.dtype)
