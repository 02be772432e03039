"""What a diffusion model does, step by step: the forward noising of data and the reverse
(denoising) trajectory of a sampler run.

- :func:`forward_frames`: examples x_0 noised to chosen timesteps t with one draw of noise per
  example, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020, eq. 4;
  :func:`dgm.models.diffusion.process.noised`), so the columns of a picture show the same noise
  growing.
- :func:`trajectory`: a sampler run from x_T, recording x_t and the model's prediction of x_0 at
  chosen steps (the sampler visits only its respaced steps; a chosen t is moved to the nearest
  visited one).

Timesteps are 0-based, t = 0..T-1 (t = 0 is the first noising step, not the data). Tensors are
kept in diffusion space (images in [-1, 1], vectors divided by the model's scale) and also
mapped back to the model's data space (``model.to_data``: clamped to [-1, 1] and rounded to the
levels for images) for pictures.

>>> import dgm
>>> model = dgm.load("runs/ddpm")
>>> frames = forward_frames(model, x, [0, 100, 500, 999], seed=0)   # frames.frames: (B, 4, *shape)
>>> path = trajectory(model, 4, sampler="ddim", steps=50)            # path.x_t, path.x0: (4, S, *shape)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel
from dgm.rng import make_generator, randn

DEFAULT_FRACTIONS = (0.0, 0.05, 0.1, 0.25, 0.5)  # of T, with T - 1: 0, 50, 100, 250, 500, 999 for T = 1000


def diffusion_models() -> list[str]:
    """The registered models of the diffusion family."""
    from dgm.registry import list_models  # late: the registry imports every model

    return [row["name"] for row in list_models() if row["family"] == "diffusion"]


def require_diffusion(model: GenerativeModel, what: str = "this picture") -> None:
    """A ConfigError unless ``model`` is a diffusion model, naming the ones that are."""
    if model.family != "diffusion":
        raise ConfigError(
            f"model '{model.name}' is not a diffusion model; {what} works with diffusion models only "
            f"({', '.join(diffusion_models())})"
        )


def require_pictured(info) -> None:
    """A DataError unless the data are images or 2-D points, the data these pictures show."""
    if not (info.is_image or tuple(info.shape) == (2,)):
        raise DataError(f"pictures of diffusion show images or 2-D points; this run's data is {info.describe()}")


def default_timesteps(total: int) -> list[int]:
    """Timesteps worth showing for T = ``total``: 0, T/20, T/10, T/4, T/2 and T - 1, increasing."""
    return sorted({min(round(f * total), total - 1) for f in DEFAULT_FRACTIONS} | {total - 1})


def parse_timesteps(text: str, total: int) -> list[int]:
    """'0,50,999' -> [0, 50, 999] (sorted, without repeats); a ConfigError unless every value is
    an integer timestep in 0..T-1."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or any(not 0 <= t < total for t in values):
        example = ",".join(map(str, default_timesteps(total)))
        raise ConfigError(
            f"--t must be comma-separated integer timesteps in 0..{total - 1} (this run's T = {total}) such as "
            f"{example}, got {text!r}"
        )
    return sorted(set(values))


class Forward(NamedTuple):
    """Forward noising: ``timesteps`` (S,) increasing, the examples ``x`` (B, *shape) in the
    model's data space, the same ``x0`` and the ``noise`` eps (B, *shape) in diffusion space, the
    ``frames`` x_t (B, S, *shape) in diffusion space and the same in data space (``data``)."""

    timesteps: list[int]
    x: Tensor
    x0: Tensor
    noise: Tensor
    frames: Tensor
    data: Tensor


@torch.no_grad()
def forward_frames(model: GenerativeModel, x: Tensor, timesteps: Sequence[int], seed: int | None = 0) -> Forward:
    """Examples ``x`` (B, *shape, model data space) noised to each of ``timesteps`` with one
    draw eps ~ N(0, I) per example from a generator seeded with ``seed``."""
    from dgm.models.diffusion.process import noised

    require_diffusion(model)
    steps = [int(t) for t in timesteps]
    total = model.schedule.steps
    if not steps or any(not 0 <= t < total for t in steps):
        raise ConfigError(f"timesteps must be in 0..{total - 1}, got {steps}")
    x = torch.as_tensor(x, dtype=torch.float32).cpu()
    x0 = model.to_diffusion(x).float().cpu()
    eps = randn(x0.shape, make_generator(seed))
    frames = torch.stack([noised(x0, eps, model.schedule.abar[t]) for t in steps], 1)  # (B, S, *shape)
    data = model.to_data(frames.flatten(0, 1)).view_as(frames)
    return Forward(steps, x, x0, eps, frames, data)


class Trajectory(NamedTuple):
    """A recorded sampler run: ``timesteps`` (S,) in the order visited (decreasing), ``x_t`` and
    the predicted ``x0`` (B, S, *shape) at those steps in diffusion space, the same in the
    model's data space (``x_t_data``, ``x0_data``), the final ``samples`` (B, *shape, data
    space), every step the sampler ``visited`` and the labels ``cond`` (or None)."""

    timesteps: list[int]
    x_t: Tensor
    x0: Tensor
    x_t_data: Tensor
    x0_data: Tensor
    samples: Tensor
    visited: list[int]
    cond: Tensor | None


def nearest_visited(chosen: Sequence[int], visited: Sequence[int]) -> list[int]:
    """Each chosen timestep moved to the nearest visited one (the larger on a tie), without
    repeats, in the order the sampler visits them (decreasing)."""
    if not visited:
        return []
    picked = {min(visited, key=lambda v: (abs(v - t), -v)) for t in chosen}
    return sorted(picked, reverse=True)


@torch.no_grad()
def trajectory(
    model: GenerativeModel,
    n: int,
    timesteps: Sequence[int] | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    cond: Tensor | None = None,
    seed: int | None = 0,
    eta: float | None = None,
    guidance: float | None = None,
) -> Trajectory:
    """Draw ``n`` samples with ``sampler`` in ``steps`` steps (DDIM's ``eta``, the guidance scale
    of a conditional model; the model's defaults for None), recording x_t and the predicted x_0
    at the visited steps nearest to ``timesteps`` (default :func:`default_timesteps`)."""
    require_diffusion(model)
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    chosen = default_timesteps(model.schedule.steps) if timesteps is None else [int(t) for t in timesteps]
    if not chosen:
        raise ConfigError("a trajectory needs at least one timestep to show")
    visited: list[int] = []
    nearest: dict[int, int] = {}  # chosen t -> the nearest visited step so far
    record: dict[int, tuple[Tensor, Tensor]] = {}  # only the steps some chosen t is nearest to

    def keep(t: int, x_t: Tensor, x0: Tensor) -> None:
        t = int(t)
        visited.append(t)  # decreasing: on a tie the step seen first (the larger) stays
        closer = [c for c in chosen if c not in nearest or abs(t - c) < abs(nearest[c] - c)]
        if closer:
            nearest.update(dict.fromkeys(closer, t))
            record[t] = (x_t.float().cpu(), x0.float().cpu())
            for old in [s for s in record if s not in nearest.values()]:
                del record[old]

    was_training = model.training
    model.eval()
    try:
        generator = make_generator(seed)
        options = {"sampler": sampler, "steps": steps, "eta": eta, "guidance": guidance}
        samples = model.sample(n, cond=cond, generator=generator, record=keep, **options)
    finally:
        model.train(was_training)
    shown = sorted(set(nearest.values()), reverse=True)
    x_t = torch.stack([record[t][0] for t in shown], 1)  # (B, S, *shape)
    x0 = torch.stack([record[t][1] for t in shown], 1)
    x_t_data = model.to_data(x_t.flatten(0, 1)).view_as(x_t)
    x0_data = model.to_data(x0.flatten(0, 1)).view_as(x0)
    return Trajectory(shown, x_t, x0, x_t_data, x0_data, samples.float().cpu(), visited, cond)


__all__ = [
    "Forward",
    "Trajectory",
    "default_timesteps",
    "diffusion_models",
    "forward_frames",
    "nearest_visited",
    "parse_timesteps",
    "require_diffusion",
    "require_pictured",
    "trajectory",
]
