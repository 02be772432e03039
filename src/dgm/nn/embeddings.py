"""Embeddings of diffusion timesteps: the sinusoidal features of Ho et al. (2020) and a small MLP on them.

The timestep t (a float, integer-valued in training) is mapped to ``dim`` features, sines then
cosines of t at ``half = dim // 2`` frequencies spaced geometrically from 1 to 1 / max_period
(Vaswani et al. 2017's positional encoding, as in the DDPM reference code's
``get_timestep_embedding``):

    omega_i = max_period ** (-i / (half - 1)),   i = 0..half-1
    emb(t) = [sin(t omega_0), ..., sin(t omega_{half-1}), cos(t omega_0), ..., cos(t omega_{half-1})]

with one zero appended when ``dim`` is odd. :class:`TimeEmbedding` follows it with
Linear -> SiLU -> Linear, the MLP every DDPM-style network puts on top.

>>> timestep_embedding(torch.tensor([0.0, 10.0]), 6).shape
torch.Size([2, 6])
>>> TimeEmbedding(32, 128)(torch.tensor([3.0, 999.0])).shape
torch.Size([2, 128])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.errors import ConfigError


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features of timesteps (see the module docstring): t (B,) -> (B, dim), float32
    (or t's dtype when t is float64)."""
    if dim < 2:
        raise ConfigError(f"a timestep embedding needs dim >= 2 (a sine and a cosine), got {dim}")
    half = dim // 2
    dtype = t.dtype if t.dtype == torch.float64 else torch.float32
    exponent = torch.arange(half, dtype=dtype, device=t.device) / max(half - 1, 1)
    omega = torch.exp(-math.log(max_period) * exponent)  # (half,)
    angle = t.to(dtype).reshape(-1, 1) * omega  # (B, half)
    emb = torch.cat([angle.sin(), angle.cos()], dim=1)  # (B, 2 * half)
    return F.pad(emb, (0, dim % 2))  # (B, dim)


class TimeEmbedding(nn.Module):
    """Timesteps t (B,) -> (B, hidden): ``Linear(SiLU(Linear(timestep_embedding(t, dim))))``."""

    def __init__(self, dim: int, hidden: int, max_period: float = 10000.0):
        super().__init__()
        if dim < 2 or hidden < 1:
            raise ConfigError(f"TimeEmbedding needs dim >= 2 and hidden >= 1, got dim={dim}, hidden={hidden}")
        self.dim, self.max_period = dim, max_period
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: Tensor) -> Tensor:
        w = self.mlp[0].weight
        return self.mlp(timestep_embedding(t.to(w.device), self.dim, self.max_period).to(w.dtype))
