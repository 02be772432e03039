"""A small UNet denoiser for diffusion models, fast on a CPU, for images of any size and channel count.

The network of Ho et al. (2020) ("Denoising Diffusion Probabilistic Models", after PixelCNN++ and
Wide ResNets), rearranged so that its FLOPs go where a CPU computes them fastest:

    x (B, C, H, W) --pad to a multiple of patch, pixel-unshuffle--> (B, C p^2, H/p, W/p)
    stem        3x3 conv to c_0 = channels * mults[0]
    level i     ``blocks`` ResBlocks at c_i, each output kept as a skip;
                then a stride-2 3x3 conv to c_{i+1} (ceil(n / 2): odd sizes halve exactly)
    middle      ResBlock, self-attention, ResBlock at the lowest resolution
    level i     ``blocks`` ResBlocks of [h, skip] (concatenated) -> c_i;
                then nearest upsampling to the skip's size and a 3x3 conv to c_{i-1}
    head        GroupNorm, SiLU, 3x3 conv to out_channels p^2, pixel-shuffle, crop to (H, W)

    ResBlock(x, e) = x' + Conv(Dropout(SiLU(GN(Conv(SiLU(GN(x))) + Linear(e)))))
    with x' = x, or a 1x1 conv of x when the channel count changes, and e = SiLU(emb(t) + emb(cond)).

The timestep embedding e is *added* after each block's first convolution (DDPM's choice; the
scale/shift of improved DDPM would cost the same pass but twice the embedding parameters).
``emb(t)`` is :class:`dgm.nn.embeddings.TimeEmbedding` (sinusoidal, Linear, SiLU, Linear, width
``4 * channels``); with ``num_classes`` > 0 a learned ``nn.Embedding(num_classes + 1, .)`` of the
label is added to it, the last row meaning "no label" (classifier-free guidance, Ho & Salimans
2022): ``cond=None`` is that label for every example. Self-attention is multi-head attention over
the H*W positions (one ``F.scaled_dot_product_attention`` call), pre-GroupNorm, residual. As in the
DDPM code the last conv of every ResBlock, the attention's output projection and the head's conv
start at zero, so every block starts as the identity and the network's first output is 0.

Speed (``benchmarks/unet_speed.py``). Training on a CPU is spent in convolutions, whose speed per
FLOP grows with the channel count, and in per-element passes (GroupNorm, SiLU, adds), whose cost
grows with the number of activations. The ``patch`` x ``patch`` pixel-unshuffle at the input
(space-to-depth, as in Hoogeboom et al. 2023's "simple diffusion" and the patches of U-ViT/DiT)
puts the first level at half the resolution, so no convolution runs thin at full resolution; the
downsampling conv widens the channels at once, so the wide convolutions run on few pixels.
Activations are kept channels-last (the layout oneDNN's convolutions use, measured 1.3x faster
than contiguous here, and in which the attention's tokens are a free view), GroupNorm uses few
groups (its channels-last kernel costs grow with the group count: 8 groups is 3x faster than 32),
and SiLUs and the additions are done in place where autograd does not need their inputs.

Sizes. Any H, W works (30x17 too): the input is zero-padded to a multiple of ``patch`` and the
output cropped; downsampling rounds up and upsampling goes to the skip's exact size. Defaults
(``channels=32, mults=(1, 3), blocks=1, patch=2``) give about 1M parameters; :func:`unet_for`
picks the patch and the levels from the image size (no patch for 8x8 digits).

>>> net = UNet(1, 1)
>>> x, t = torch.randn(4, 1, 28, 28), torch.tensor([0.0, 10.0, 500.0, 999.0])
>>> net(x, t).shape
torch.Size([4, 1, 28, 28])
>>> unet_for((3, 30, 17))(torch.randn(2, 3, 30, 17), torch.zeros(2)).shape
torch.Size([2, 3, 30, 17])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.nn.embeddings import TimeEmbedding

CHANNELS_LAST = torch.channels_last


def _zero(module: nn.Module) -> nn.Module:
    """``module`` with its parameters set to zero (DDPM's ``init_scale=0``)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """(B, c_in, H, W), (B, emb_dim) -> (B, c_out, H, W): the residual block of the module docstring;
    ``norm(c)`` makes the GroupNorm of c channels."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, norm: Callable[[int], nn.GroupNorm], dropout: float = 0.0):
        super().__init__()
        self.norm1 = norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = norm(c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        # In-place ops only on tensors whose backward does not need them: GroupNorm's output
        # (its backward uses its input) and a convolution's output (its backward uses its input).
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        h = h.add_(self.emb(e)[:, :, None, None])  # (B, c_out, H, W) + (B, c_out, 1, 1)
        h = self.conv2(self.drop(F.silu(self.norm2(h), inplace=True)))
        return h.add_(x if self.skip is None else self.skip(x))


class SelfAttention(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): x + Proj(MultiHeadAttention(GN(x))) over the H*W positions."""

    def __init__(self, channels: int, heads: int, norm: Callable[[int], nn.GroupNorm], dropout: float = 0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm = norm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = _zero(nn.Linear(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        s = height * width
        tokens = self.norm(x).permute(0, 2, 3, 1).reshape(b, s, c)  # (B, S, C), a view when channels-last
        q, k, v = self.qkv(tokens).view(b, s, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, S, d)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, h, S, d)
        out = self.proj(out.transpose(1, 2).reshape(b, s, c))  # (B, S, C)
        return x + out.view(b, height, width, c).permute(0, 3, 1, 2)  # (B, C, H, W), channels-last


class UNet(nn.Module):
    """The UNet of the module docstring: x (B, in_channels, H, W), t (B,) float timesteps,
    cond (B,) long labels in 0..num_classes or None -> (B, out_channels, H, W).

    ``channels * mults[i]`` channels at level i (resolution ceil(H / patch / 2^i)), ``blocks``
    ResBlocks per level and side, ``heads`` attention heads in the middle (``attention``),
    ``groups`` GroupNorm groups (None: the largest of 8, 4, 2, 1 dividing every channel count),
    ``patch`` the pixel-unshuffle factor at the input.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int = 32,
        mults: Sequence[int] = (1, 2, 2),
        blocks: int = 1,
        attention: bool = True,
        heads: int = 4,
        num_classes: int = 0,
        dropout: float = 0.0,
        groups: int | None = None,
        patch: int = 1,
    ):
        super().__init__()
        if channels < 1 or not mults or min(mults) < 1:
            raise ConfigError(f"channels and every mult must be >= 1 and mults non-empty, got {channels} and {mults}")
        widths = [channels * m for m in mults]  # c_i
        _check(in_channels, out_channels, blocks, patch, num_classes, dropout)
        norm = _norm_factory(widths, groups)
        if attention and (heads < 1 or widths[-1] % heads):
            divisors = [h for h in range(1, min(widths[-1], 16) + 1) if widths[-1] % h == 0]
            raise ConfigError(
                f"heads={heads} must divide the lowest level's {widths[-1]} channels; use heads in {divisors}"
            )
        self.in_channels, self.out_channels, self.num_classes = in_channels, out_channels, num_classes
        self.patch, self.mults = patch, tuple(mults)
        emb_dim = 4 * channels
        self.time = TimeEmbedding(channels, emb_dim)
        self.label = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None
        self.stem = nn.Conv2d(in_channels * patch * patch, widths[0], 3, padding=1)

        def res(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, norm, dropout)

        last = len(widths) - 1
        self.down = nn.ModuleList(nn.ModuleList(res(c, c) for _ in range(blocks)) for c in widths)
        self.downsample = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, 2, 1) for i in range(last))
        self.mid1 = res(widths[-1], widths[-1])
        self.attention = SelfAttention(widths[-1], heads, norm, dropout) if attention else None
        self.mid2 = res(widths[-1], widths[-1])
        self.up = nn.ModuleList(nn.ModuleList(res(c, c) for _ in range(blocks)) for c in widths)
        self.upsample = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 3, padding=1) for i in range(last))
        self.head_norm = norm(widths[0])
        self.head = _zero(nn.Conv2d(widths[0], out_channels * patch * patch, 3, padding=1))
        self.to(memory_format=CHANNELS_LAST)  # conv outputs follow their weights' layout

    def embedding(self, t: Tensor, cond: Tensor | None, batch: int) -> Tensor:
        """SiLU(emb(t) + emb(cond)), (B, 4 * channels): what every ResBlock's Linear sees."""
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise DataError(f"t must have shape ({batch},) (one timestep per image), got {tuple(t.shape)}")
        e = self.time(t)
        if self.label is not None:
            if cond is None:  # "no label" for every example
                cond = torch.full((batch,), self.num_classes, dtype=torch.long, device=e.device)
            e = e + self.label(cond)
        elif cond is not None:
            raise ConfigError("this UNet was built without labels (num_classes=0); pass cond=None")
        return F.silu(e)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        b, c, height, width = x.shape
        if c != self.in_channels:
            raise DataError(f"the UNet takes {self.in_channels}-channel images, got x of shape {tuple(x.shape)}")
        e = self.embedding(t, cond, b)
        p = self.patch
        pad_h, pad_w = -height % p, -width % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        h = self.stem(F.pixel_unshuffle(x, p) if p > 1 else x)  # (B, c_0, H/p, W/p)
        skips = []
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, e)
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # (B, c_{i+1}, ceil(H_i / 2), ceil(W_i / 2))
        h = self.mid1(h, e)
        if self.attention is not None:
            h = self.attention(h)
        h = self.mid2(h, e)
        for i in reversed(range(len(self.up))):
            for block in self.up[i]:
                h = block(h.add_(skips.pop()), e)  # (B, c_i, H_i, W_i); h is a conv/add output, unsaved
            if i > 0:
                h = F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest")  # (B, c_i, H_{i-1}, W_{i-1})
                h = self.upsample[i - 1](h)  # (B, c_{i-1}, H_{i-1}, W_{i-1})
        h = self.head(F.silu(self.head_norm(h), inplace=True))  # (B, out p^2, H/p, W/p)
        if p > 1:
            h = F.pixel_shuffle(h, p)  # (B, out, H + pad_h, W + pad_w)
        return h[:, :, :height, :width]


def _check(in_channels: int, out_channels: int, blocks: int, patch: int, num_classes: int, dropout: float) -> None:
    """Refuse a bad UNet argument with the fix."""
    if in_channels < 1 or out_channels < 1:
        raise ConfigError(f"in_channels and out_channels must be >= 1, got {in_channels} and {out_channels}")
    if blocks < 1:
        raise ConfigError(f"blocks (ResBlocks per level) must be >= 1, got {blocks}")
    if patch < 1:
        raise ConfigError(f"patch must be >= 1 (1: no pixel-unshuffle), got {patch}")
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0 (0: unconditional), got {num_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")


def _norm_factory(widths: list[int], groups: int | None) -> Callable[[int], nn.GroupNorm]:
    """GroupNorm of c channels in ``groups`` groups, which must divide every width (a ConfigError
    names the valid ones); None: per layer the most groups, at most 8, of at least 8 channels
    each (GroupNorm's channels-last kernel is slow on small groups: 32 channels in 8 groups cost
    twice 4 groups here)."""
    if groups is None:
        return lambda c: nn.GroupNorm(next(g for g in range(8, 0, -1) if c % g == 0 and (c // g >= 8 or g == 1)), c)
    common = math.gcd(*widths)
    if groups < 1 or common % groups:
        divisors = [g for g in range(1, min(common, 32) + 1) if common % g == 0]
        raise ConfigError(
            f"groups={groups} must divide every level's channel count {widths}; use groups in {divisors} "
            "or channels that are a multiple of it"
        )
    return lambda c: nn.GroupNorm(groups, c)


def unet_for(shape: Sequence[int], out_channels: int | None = None, **options) -> UNet:
    """A UNet sized for images of ``shape`` (C, H, W): 32 channels at full resolution, doubled at
    the first halving, then levels halving while the smaller side is above 8 (8x8 digits: 8, 4;
    28x28: 28, 14, 7; 32x32: 32, 16, 8; 64x64: 64, 32, 16, 8), ``mults = (1, 2, 2, ...)``; about
    0.8M parameters. ``options`` override any :class:`UNet` argument (``num_classes=10``, ``patch=2``)."""
    c, height, width = shape
    side, levels = min(height, width), 2
    while side > 8 * 2 ** (levels - 1) and levels < 5:
        levels += 1
    defaults = {"channels": 32, "mults": (1,) + (2,) * (levels - 1)}
    return UNet(c, c if out_channels is None else out_channels, **{**defaults, **options})
