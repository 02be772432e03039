"""Noise schedules of the diffusion process: beta_1..beta_T and the quantities derived from them.

The forward process (Ho et al. 2020, eq. 2 and 4) adds Gaussian noise in T steps,

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{s<=t} (1 - beta_s).

Timesteps are 0-based here: index t = 0..T-1 is the paper's step t + 1, and ``abar[-1] = 1``
(no noise) is the data. Schedules (any T):

- ``linear``: beta from 1e-4 to 0.02 for T = 1000 (Ho et al. 2020), both ends scaled by 1000 / T
  for other T so that the chain ends as noisy (Nichol & Dhariwal 2021, section 2.4 of their code);
- ``quadratic``: beta_t = (linspace(sqrt(b_1), sqrt(b_T), T))^2 with the linear schedule's ends
  (the "quad" schedule of Song et al. 2021);
- ``cosine``: abar_t = f(t) / f(0), f(t) = cos^2(pi / 2 (t / T + s) / (1 + s)), s = 0.008
  (Nichol & Dhariwal 2021, eq. 17), so that abar falls slowly at both ends.

Every beta is clipped to at most 0.999 (the cosine schedule's last step would be 1: x_T would
forget x_0 in one jump, which the reverse process cannot learn).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dgm.errors import ConfigError

SCHEDULES = ("linear", "quadratic", "cosine")
MAX_BETA = 0.999
COSINE_OFFSET = 0.008
CPU = torch.device("cpu")  # schedules live on the CPU whatever the default device (meta-device size counts)


def betas_of(kind: str, steps: int) -> Tensor:
    """beta_1..beta_T (float64, shape (T,)) of schedule ``kind`` with T = ``steps``."""
    if kind not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"the number of diffusion steps T must be a positive integer, got {steps!r}")
    scale = 1000.0 / steps
    low, high = scale * 1e-4, scale * 0.02
    if kind == "linear":
        betas = torch.linspace(low, high, steps, dtype=torch.float64, device=CPU)
    elif kind == "quadratic":
        betas = torch.linspace(math.sqrt(low), math.sqrt(high), steps, dtype=torch.float64, device=CPU) ** 2
    else:
        t = torch.arange(steps + 1, dtype=torch.float64, device=CPU) / steps
        f = torch.cos((t + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
        abar = f / f[0]
        betas = 1 - abar[1:] / abar[:-1]
    return betas.clamp(max=MAX_BETA)


class Schedule:
    """A noise schedule: ``betas`` (T,) and the derived float64 tensors, each indexed by the
    0-based timestep t (see the module docstring):

    - ``alphas`` = 1 - beta_t, ``abar`` = prod_{s<=t} alpha_s (strictly decreasing in (0, 1));
    - ``abar_prev`` = abar_{t-1} with abar_{-1} = 1;
    - ``posterior_variance`` = beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t), the variance of
      q(x_{t-1} | x_t, x_0) (0 at t = 0, where x_{t-1} is the data).

    ``abar_at(t)`` extends ``abar`` with abar(-1) = 1, for the samplers' last step to the data.
    """

    def __init__(self, betas: Tensor, kind: str = "custom"):
        betas = torch.as_tensor(betas, dtype=torch.float64, device=CPU).reshape(-1)
        if betas.numel() < 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ConfigError("a schedule's betas must all be in (0, 1)")
        self.kind = kind
        self.betas = betas
        self.alphas = 1 - betas
        self.abar = torch.cumprod(self.alphas, 0)
        self.abar_prev = torch.cat([torch.ones(1, dtype=torch.float64, device=CPU), self.abar[:-1]])
        self.posterior_variance = betas * (1 - self.abar_prev) / (1 - self.abar)

    @classmethod
    def named(cls, kind: str, steps: int) -> Schedule:
        return cls(betas_of(kind, steps), kind)

    @property
    def steps(self) -> int:
        """T, the number of steps of the forward process."""
        return self.betas.numel()

    def abar_at(self, t: Tensor | int) -> Tensor:
        """abar_t for 0-based t in -1..T-1 (abar_{-1} = 1: the data), float64."""
        t = torch.as_tensor(t, dtype=torch.long, device=CPU)
        padded = torch.cat([torch.ones(1, dtype=torch.float64, device=CPU), self.abar])
        return padded[t + 1]

    def __repr__(self) -> str:
        return f"Schedule({self.kind!r}, T={self.steps})"


def timestep_subsequence(total: int, steps: int) -> list[int]:
    """``steps`` timesteps of 0..total-1 evenly spaced, from total - 1 down to 0 (the order the
    samplers visit them; Song et al. 2021, the "linear" choice of tau), for respaced sampling with
    fewer steps than the model was trained with."""
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= total:
        raise ConfigError(f"--steps must be an integer in 1..{total} (the model's T), got {steps!r}")
    if steps == 1:
        return [total - 1]
    grid = torch.linspace(0, total - 1, steps, dtype=torch.float64, device=CPU).round().long()
    return sorted(set(grid.tolist()), reverse=True)
