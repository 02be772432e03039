"""Input corruptions of denoising autoencoders (Vincent et al. 2008), also used to draw the
"input, corrupted, output" pictures of any autoencoder.

- ``"gaussian"``: x̃ = x + σ ε, ε ~ N(0, I), for continuous data; for discrete data with L
  levels the noise is in level units scaled by (L - 1), then rounded and clipped to the levels,
  so x̃ stays in the data's support.
- ``"masking"``: each dimension is set to 0 with probability p (Vincent et al.'s masking noise).
- ``"flip"``: for binary data, each bit is flipped with probability p (salt and pepper).

``level`` is σ for Gaussian noise (as a fraction of the level range for discrete data) and p
for masking and flipping.

>>> x = torch.ones(2, 5)
>>> corrupt(x, DataInfo((5,), "binary", 2), "masking", 1.0).sum().item()
0.0
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from dgm import rng
from dgm.data.info import DataInfo
from dgm.errors import ConfigError

NoiseKind = Literal["gaussian", "masking", "flip"]
NOISE_KINDS: tuple[str, ...] = ("gaussian", "masking", "flip")


def check_noise(kind: str, level: float, info: DataInfo) -> None:
    """Refuse an unknown noise, a level out of range, or flips of non-binary data."""
    if kind not in NOISE_KINDS:
        raise ConfigError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")
    if kind == "flip" and info.support != "binary":
        raise ConfigError(f"flip noise is for binary data, got {info.describe()}; use masking or gaussian")
    if kind == "gaussian" and not 0 <= level < float("inf"):
        raise ConfigError(f"gaussian noise level (its std) must be >= 0, got {level}")
    if kind != "gaussian" and not 0 <= level <= 1:
        raise ConfigError(f"{kind} noise level is a probability in [0, 1], got {level}")


def corrupt(x: Tensor, info: DataInfo, kind: str, level: float, generator: torch.Generator | None = None) -> Tensor:
    """A corrupted copy x̃ of model-space data ``x`` (B, *info.shape), in the same support."""
    check_noise(kind, level, info)
    if kind == "masking":
        keep = rng.rand(x.shape, generator, x.device) >= level
        return x * keep.to(x.dtype)
    if kind == "flip":
        flip = (rng.rand(x.shape, generator, x.device) < level).to(x.dtype)
        return x + flip * (1 - 2 * x)
    noise = rng.randn(x.shape, generator, x.device).to(x.dtype)
    if info.support == "continuous":
        return x + level * noise
    top = (info.levels or 2) - 1
    return (x + level * top * noise).round().clamp(0, top)
