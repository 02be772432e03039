"""Convolutional encoder and decoder sized from the data's shape, for any image size and
channel count (8x8 digits, 28x28 MNIST, a ``folder:`` of 64x64 colour pictures).

The encoder halves the resolution with stride-2 3x3 convolutions while both sides are at least
``min_size`` (28 -> 14 -> 7, 8 -> 4, 64 -> 32 -> 16 -> 8 -> 4), with ``channels`` maps after the
first halving, doubled at each further one up to ``4 * channels`` (DCGAN's discriminator, Radford
et al. 2015, with 3x3 kernels so that odd sizes halve exactly), then flattens and maps to
``out_features`` with a linear layer. Images too small to halve get one stride-1 convolution.
The decoder mirrors it: a linear layer to the smallest feature map, then at each level a
nearest-neighbour upsampling to the encoder's size at that level (exact for odd sizes, and free
of the checkerboard artefacts of transposed convolutions; Odena et al. 2016) and a 3x3
convolution, the last one giving the ``C * out_per_channel`` output maps at full resolution.
No convolution runs with many channels at full resolution: the networks cost a few times an MLP
of the same width on CPU.

>>> enc = ConvEncoder((1, 28, 28), 16)
>>> enc(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 16])
>>> dec = ConvDecoder(16, (1, 28, 28), out_per_channel=3)
>>> dec(torch.zeros(2, 16)).shape
torch.Size([2, 3, 28, 28])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def level_sizes(height: int, width: int, min_size: int = 8, max_levels: int = 4) -> list[tuple[int, int]]:
    """Spatial sizes of the encoder's levels: ``(H, W)``, then ``ceil`` halves while both sides of
    the last are at least ``min_size``, at most ``max_levels`` halvings."""
    sizes = [(height, width)]
    while min(sizes[-1]) >= min_size and len(sizes) <= max_levels:
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def level_channels(channels: int, halvings: int) -> list[int]:
    """Channels of the feature maps after 1, 2, ... halvings (one entry if there is none):
    ``channels`` doubled per halving, at most ``4 * channels``."""
    return [channels * min(2**i, 4) for i in range(max(1, halvings))]


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)


class ConvEncoder(nn.Module):
    """Images (B, C, H, W) -> features (B, out_features); see the module docstring."""

    def __init__(self, shape: Sequence[int], out_features: int, channels: int = 32, min_size: int = 8):
        super().__init__()
        c, h, w = shape
        self.sizes = level_sizes(h, w, min_size)
        chans = level_channels(channels, len(self.sizes) - 1)
        stride = 2 if len(self.sizes) > 1 else 1
        layers: list[nn.Module] = []
        for a, b in zip([c, *chans[:-1]], chans, strict=True):
            layers += [_conv(a, b, stride), nn.SiLU()]
        self.convs = nn.Sequential(*layers)
        self.flat_features = chans[-1] * math.prod(self.sizes[-1])
        self.out = nn.Linear(self.flat_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.convs(x).flatten(1))  # (B, C', h, w) -> (B, C' h w) -> (B, out)


class ConvDecoder(nn.Module):
    """Features (B, in_features) -> maps (B, C * out_per_channel, H, W) for images of ``shape``
    (C, H, W); see the module docstring."""

    def __init__(
        self, in_features: int, shape: Sequence[int], out_per_channel: int = 1, channels: int = 32, min_size: int = 8
    ):
        super().__init__()
        c, h, w = shape
        self.sizes = level_sizes(h, w, min_size)[::-1]  # smallest first
        chans = level_channels(channels, len(self.sizes) - 1)[::-1]
        self.top = (chans[0], *self.sizes[0])
        self.inp = nn.Linear(in_features, math.prod(self.top))
        outs = [*chans[1:], c * out_per_channel]
        self.convs = nn.ModuleList(_conv(a, b) for a, b in zip(chans, outs, strict=True))

    def forward(self, h: Tensor) -> Tensor:
        y = F.silu(self.inp(h)).view(h.shape[0], *self.top)  # (B, C', h, w)
        sizes = self.sizes[1:] or self.sizes  # no halving: one convolution at full resolution
        for i, (size, conv) in enumerate(zip(sizes, self.convs, strict=True)):
            y = conv(F.interpolate(y, size=size, mode="nearest") if size != y.shape[-2:] else y)
            if i < len(self.convs) - 1:
                y = F.silu(y)
        return y  # (B, C * P, H, W)
