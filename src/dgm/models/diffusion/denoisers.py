"""The denoising network of vector data: an MLP of x_t, the timestep and the class label.

The timestep's sinusoidal embedding (:func:`dgm.nn.embeddings.timestep_embedding`) and, for a
conditional model, a learned class embedding are added to the input's first hidden layer and
given again to every residual block, so the network can change its behaviour with the noise
level all along (an MLP fed t only at its input learns toy densities much more slowly).

Shapes: x (B, D), t (B,) float timesteps, cond (B,) long or None -> (B, D).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgm.nn.embeddings import timestep_embedding


class ResidualMLPBlock(nn.Module):
    """h + Linear(SiLU(Linear(SiLU(h)) + e)): a residual block that sees the embedding e."""

    def __init__(self, width: int):
        super().__init__()
        self.inner = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        return h + self.outer(torch.nn.functional.silu(self.inner(torch.nn.functional.silu(h)) + e))


class MLPDenoiser(nn.Module):
    """A residual MLP denoiser of width ``hidden`` with ``blocks`` residual blocks; with
    ``num_classes`` > 0 it has ``num_classes + 1`` label embeddings, the last one "no label"
    (classifier-free guidance), used when ``cond`` is None."""

    def __init__(self, dim: int, hidden: int = 128, blocks: int = 3, time_dim: int = 64, num_classes: int = 0):
        super().__init__()
        self.time_dim, self.num_classes = time_dim, num_classes
        self.embed = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(num_classes + 1, hidden) if num_classes > 0 else None
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(ResidualMLPBlock(hidden) for _ in range(blocks))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        e = self.embed(timestep_embedding(t, self.time_dim).to(x.dtype))
        if self.label is not None:
            if cond is None:
                cond = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            e = e + self.label(cond)
        h = self.inp(x) + e
        for block in self.blocks:
            h = block(h, e)
        return self.out(torch.nn.functional.silu(h))
