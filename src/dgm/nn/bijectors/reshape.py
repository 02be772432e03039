"""Reshaping bijectors: the squeeze operation and the multi-scale architecture of RealNVP and Glow.

Squeeze trades space for channels, (B, C, H, W) -> (B, 4C, H/2, W/2), each 2x2 block of a
channel becoming four channels (Dinh, Sohl-Dickstein & Bengio 2017, section 3.6, figure 3).

A multi-scale flow factors out half of the variables after each level and keeps transforming
the other half at a coarser scale (RealNVP section 3.6, eq. 13; Glow figure 2b). Here each
level is a shape-preserving :class:`MultiScale` bijector, nested recursively, so a whole
multi-scale flow maps ``x`` (B, C, H, W) to ``z`` of the *same shape* with an exact inverse,
and a base density on ``z`` is simply an (B, C, H, W) standard normal.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dgm.errors import ConfigError, DataError
from dgm.nn.bijectors.base import Bijector


def squeeze(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2); pixel (2i + di, 2j + dj) of channel c goes to channel 4c + 2di + dj."""
    if x.dim() != 4:
        raise DataError(f"squeeze expects images (B, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise DataError(
            f"squeeze needs an even height and width, got {h}x{w}: pad or crop the images "
            "(every level of a multi-scale flow halves them)"
        )
    x = x.reshape(b, c, h // 2, 2, w // 2, 2)  # (B, C, H/2, di, W/2, dj)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)  # (B, 4C, H/2, W/2)


def unsqueeze(z: Tensor) -> Tensor:
    """(B, 4C, H, W) -> (B, C, 2H, 2W), the inverse of :func:`squeeze`."""
    if z.dim() != 4 or z.shape[1] % 4:
        raise DataError(f"unsqueeze expects images (B, 4C, H, W), got shape {tuple(z.shape)}")
    b, c4, h, w = z.shape
    z = z.reshape(b, c4 // 4, 2, 2, h, w)  # (B, C, di, dj, H, W)
    return z.permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * h, 2 * w)  # (B, C, 2H, 2W)


class Squeeze(Bijector):
    """The squeeze bijector, (B, C, H, W) -> (B, 4C, H/2, W/2) (RealNVP section 3.6); ``ladj = 0``.

    A clear :class:`~dgm.errors.DataError` when H or W is odd.
    """

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return squeeze(x), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return unsqueeze(z), z.new_zeros(z.shape[0])


class MultiScale(Bijector):
    """One level of a multi-scale flow, shape-preserving: squeeze, flow, factor out half, recurse.

    Data -> base, for ``x`` (B, C, H, W)::

        h = squeeze(x)                          # (B, 4C, H/2, W/2)
        h, ladj = steps(h)                      # the level's flow, shape-preserving
        z_out, h = h.chunk(2, dim=1)            # (B, 2C, H/2, W/2) each: z_out is final
        h, ladj' = inner(h)                     # the coarser levels, shape-preserving
        z = unsqueeze(cat([z_out, h], dim=1))   # (B, C, H, W)

    so ``z`` has the shape of ``x`` and ``ladj`` is the sum of both flows' log-dets; the last
    level has ``inner=None`` and factors nothing out. The layout of ``z``: squeezing ``z``
    gives, on channels [0, 2C), the variables factored out at this level and on [2C, 4C) the
    output of ``inner``, laid out the same way recursively. Glow's levels are
    ``steps = [ActNorm, InvConv1x1, AffineCoupling] x K``; RealNVP's checkerboard couplings
    before a squeeze go at the front of ``inner`` (or before the outermost level). Glow's
    learned prior for the factored-out half is an affine coupling on ``z_out`` given ``h``:
    add one to ``steps`` with a channel mask.

    Build a whole stack with :meth:`stack`.
    """

    def __init__(self, steps: Bijector, inner: Bijector | None = None):
        super().__init__()
        self.steps = steps
        self.inner = inner

    @classmethod
    def stack(cls, levels: Sequence[Bijector]) -> MultiScale:
        """Nest ``levels`` (the flow of each level, finest first) into one multi-scale bijector.

        ``levels[i]`` acts on the squeezed tensor of level ``i``: (B, 4^(i+1) C / 2^i, H/2^(i+1),
        W/2^(i+1)) for an input (B, C, H, W), e.g. 4C then 8C then 16C channels.
        """
        if not levels:
            raise ConfigError("a multi-scale flow needs at least one level")
        flow: MultiScale | None = None
        for steps in reversed(levels):
            flow = cls(steps, flow)
        assert flow is not None
        return flow

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = squeeze(x)  # (B, 4C, H/2, W/2)
        shape = h.shape
        h, ladj = self.steps(h, cond)
        if h.shape != shape:
            raise ConfigError(
                f"the flow of a MultiScale level must preserve shape {tuple(shape)}, got {tuple(h.shape)}"
            )
        if self.inner is not None:
            z_out, h_in = h.chunk(2, dim=1)  # (B, 2C, H/2, W/2) each
            h_in, ladj_in = self.inner(h_in, cond)
            h, ladj = torch.cat([z_out, h_in], dim=1), ladj + ladj_in
        return unsqueeze(h), ladj

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = squeeze(z)  # (B, 4C, H/2, W/2)
        ladj = z.new_zeros(z.shape[0])
        if self.inner is not None:
            z_out, h_in = h.chunk(2, dim=1)  # (B, 2C, H/2, W/2) each
            h_in, ladj = self.inner.inverse(h_in, cond)
            h = torch.cat([z_out, h_in], dim=1)
        x, ladj_steps = self.steps.inverse(h, cond)
        return unsqueeze(x), ladj + ladj_steps
