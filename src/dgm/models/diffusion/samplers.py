"""Samplers of the reverse process: stateless functions of a denoiser, a schedule and x_T.

A denoiser is a function ``denoise(x_t, t) -> (x0, eps)``: the prediction of the clean data and
of the noise at the 0-based timestep t (an int, the same for the whole batch), however the
network is parameterised (:func:`dgm.models.diffusion.process.x0_and_eps`), with guidance and
clipping already applied. Every sampler visits ``timesteps``, a decreasing list of timesteps of
the trained chain (all T of them, or a subsequence: :func:`~.schedules.timestep_subsequence`),
and steps from each t to the next s (s = -1 after the last: the data). ``record(t, x_t, x0)``,
if given, sees every step, for trajectory pictures.

- :func:`ancestral`: DDPM (Ho et al. 2020, Algorithm 2), x_s = mu~(x0, x_t) + sigma z with the
  posterior mean of q(x_s | x_t, x0) and sigma^2 = beta' = 1 - abar_t / abar_s (``"beta"``,
  beta_t for consecutive steps) or beta~ (``"posterior"``); on a subsequence it is the respaced
  chain of Nichol & Dhariwal 2021. For consecutive steps and the eps parameterisation this is
  x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z.
- :func:`ddim`: Song et al. 2021, eq. 12, x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps
  + sigma z with sigma = eta sqrt(beta~); eta = 0 is deterministic, eta = 1 is :func:`ancestral`
  with the posterior variance.
- :func:`repaint`: inpainting (Lugmayr et al. 2022): at every step the known pixels are the data
  noised to x_s, the others come from an ancestral step; each step is repeated ``resample``
  times, going back to x_t by the forward process in between, so that the two parts agree.

No noise is added on the last step (to the data), as in Ho et al.'s Algorithm 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from dgm.errors import ConfigError
from dgm.models.diffusion.process import forward_jump, noised, posterior
from dgm.models.diffusion.schedules import Schedule
from dgm.rng import randn

Denoise = Callable[[Tensor, int], tuple[Tensor, Tensor]]
Record = Callable[[int, Tensor, Tensor], None]
VARIANCES = ("beta", "posterior")


def _pairs(timesteps: Sequence[int], schedule: Schedule) -> list[tuple[int, int]]:
    """(t, s) for every step: each timestep and the next one (-1 after the last)."""
    steps = [int(t) for t in timesteps]
    if (
        not steps
        or any(not -1 < t < schedule.steps for t in steps)
        or any(a <= b for a, b in zip(steps, steps[1:], strict=False))
    ):
        raise ConfigError(f"timesteps must decrease within 0..{schedule.steps - 1}, got {steps[:5]}...")
    return list(zip(steps, [*steps[1:], -1], strict=True))


def check_variance(variance: str) -> str:
    if variance not in VARIANCES:
        raise ConfigError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
    return variance


def ancestral_step(
    x_t: Tensor, x0: Tensor, t: int, s: int, schedule: Schedule, variance: str, generator: torch.Generator | None
) -> Tensor:
    """One step of :func:`ancestral` from t to s given the predicted x0."""
    post = posterior(schedule.abar_at(t), schedule.abar_at(s))
    mean = post.mean(x0, x_t)
    if s < 0:
        return mean
    sigma2 = post.beta if variance == "beta" else post.variance
    return mean + float(sigma2.sqrt()) * randn(x_t.shape, generator, x_t.device).to(x_t.dtype)


@torch.no_grad()
def ancestral(
    denoise: Denoise,
    schedule: Schedule,
    x: Tensor,
    timesteps: Sequence[int],
    variance: str = "beta",
    generator: torch.Generator | None = None,
    record: Record | None = None,
) -> Tensor:
    """DDPM ancestral sampling from x = x_T (see the module docstring)."""
    check_variance(variance)
    for t, s in _pairs(timesteps, schedule):
        x0, _ = denoise(x, t)
        if record is not None:
            record(t, x, x0)
        x = ancestral_step(x, x0, t, s, schedule, variance, generator)
    return x


@torch.no_grad()
def ddim(
    denoise: Denoise,
    schedule: Schedule,
    x: Tensor,
    timesteps: Sequence[int],
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    record: Record | None = None,
) -> Tensor:
    """DDIM sampling from x = x_T (see the module docstring); deterministic for ``eta`` = 0."""
    if not 0 <= eta <= 1:
        raise ConfigError(f"eta must be in [0, 1] (0: deterministic DDIM, 1: DDPM), got {eta}")
    for t, s in _pairs(timesteps, schedule):
        x0, eps = denoise(x, t)
        if record is not None:
            record(t, x, x0)
        b = schedule.abar_at(s)
        sigma2 = eta**2 * posterior(schedule.abar_at(t), b).variance
        x = float(b.sqrt()) * x0 + float((1 - b - sigma2).clamp(min=0).sqrt()) * eps
        if s >= 0 and eta > 0:
            x = x + float(sigma2.sqrt()) * randn(x.shape, generator, x.device).to(x.dtype)
    return x


@torch.no_grad()
def repaint(
    denoise: Denoise,
    schedule: Schedule,
    x: Tensor,
    timesteps: Sequence[int],
    known: Tensor,
    mask: Tensor,
    resample: int = 5,
    variance: str = "beta",
    generator: torch.Generator | None = None,
    record: Record | None = None,
) -> Tensor:
    """RePaint inpainting from x = x_T: ``known`` data (B, ...) where ``mask`` is 1 (broadcastable
    to x), generated elsewhere; returns samples equal to ``known`` where ``mask`` is 1."""
    check_variance(variance)
    if resample < 1:
        raise ConfigError(f"resample must be at least 1, got {resample}")
    mask = mask.to(device=x.device, dtype=x.dtype).expand_as(x)
    known = known.to(device=x.device, dtype=x.dtype)
    for t, s in _pairs(timesteps, schedule):
        a, b = schedule.abar_at(t), schedule.abar_at(s)
        rounds = resample if s >= 0 else 1
        for round_ in range(rounds):
            x0, _ = denoise(x, t)
            if record is not None and round_ == 0:
                record(t, x, x0)
            unknown = ancestral_step(x, x0, t, s, schedule, variance, generator)
            given = known if s < 0 else noised(known, randn(x.shape, generator, x.device).to(x.dtype), b)
            x_s = mask * given + (1 - mask) * unknown
            if round_ < rounds - 1:
                x_s = forward_jump(x_s, randn(x.shape, generator, x.device).to(x.dtype), a, b)
            x = x_s
    return mask * known + (1 - mask) * x


def start_noise(shape: Sequence[int], generator: torch.Generator | None, device, dtype) -> Tensor:
    """x_T ~ N(0, I) of ``shape``."""
    return randn(tuple(shape), generator, device).to(dtype)
