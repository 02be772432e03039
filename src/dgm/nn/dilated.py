"""Dilated causal 1-D convolutions, WaveNet's gated residual blocks, and their cached one-step
evaluation for fast generation.

van den Oord et al. (2016), "WaveNet: A Generative Model for Raw Audio". A causal convolution of
kernel size k and dilation d maps a sequence x (B, C, T) to y with

    y_t = b + sum_{i=0}^{k-1} W_i x_{t - (k-1-i) d}        (x = 0 before the start)

so y_t sees x_t and k - 1 earlier values d apart, never a later one. A stack of such layers with
dilations d_1 .. d_L sees the R = 1 + (k - 1) sum_l d_l inputs x_{t-R+1} .. x_t
(:func:`receptive_field`); with doubling dilations 1, 2, ..., 2^(m-1) R grows exponentially with
depth. A gated residual block (:class:`GatedResidualBlock`) computes

    z = tanh(W_f * x + V_f h) ⊙ σ(W_g * x + V_g h),    x' = x + W_r z,    skip = W_s z

with ``*`` the dilated causal convolution, h an optional global condition (a class label, V h
its learned vector) and W_r, W_s 1x1 convolutions; :class:`DilatedStack` sums the skips.

Fast generation (Paine et al. 2016, "Fast Wavenet Generation Algorithm"; Ramachandran et al. 2017,
"Fast Generation for Convolutional Autoregressive Models"). Generating one position at a time,
layer l at step t needs only its own inputs at t, t - d, ..., t - (k-1) d. Each layer keeps a
queue of its last (k - 1) d inputs (:class:`Queue`, zeros before the first step: the padding of
the whole-sequence pass), so :meth:`DilatedStack.step` costs O(L) work per position instead of
recomputing the receptive field, and returns what :meth:`DilatedStack.forward` gives there.

>>> stack = DilatedStack(channels=4, skip_channels=6, dilations=(1, 2, 4))
>>> stack.receptive_field
8
>>> x = torch.randn(2, 4, 10)                          # (B, C, T)
>>> cache = stack.cache(2, like=x)
>>> steps = torch.stack([stack.step(x[:, :, t], cache) for t in range(10)], -1)   # (B, S, T)
>>> torch.allclose(steps, stack(x), atol=1e-5)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def receptive_field(dilations: Sequence[int], kernel_size: int = 2) -> int:
    """Inputs R = 1 + (k - 1) sum_l d_l that one output of a stack of causal convolutions of kernel
    size k and dilations d_l sees: output t depends on inputs t - R + 1 .. t."""
    return 1 + (kernel_size - 1) * sum(dilations)


def dilation_cycle(layers: int, stacks: int = 1) -> tuple[int, ...]:
    """WaveNet's dilations: 1, 2, 4, ..., 2^(layers-1), repeated ``stacks`` times."""
    return tuple(2**i for i in range(layers)) * stacks


def gated_activation(a: Tensor, dim: int = 1) -> Tensor:
    """tanh(f) ⊙ σ(g) for a = [f, g] split in two halves along ``dim`` (van den Oord et al. 2016)."""
    f, g = a.chunk(2, dim)
    return torch.tanh(f) * torch.sigmoid(g)


class Queue:
    """The last ``length`` inputs (n, C) a layer has seen, in a ring buffer (length, n, C).

    :meth:`past` reads the input of ``lag`` steps ago (zeros before the first push), :meth:`push`
    appends the newest and drops the oldest: O(C) work per step whatever the dilation.
    """

    def __init__(self, length: int, n: int, channels: int, like: Tensor):
        self.length = length
        self.buffer = like.new_zeros(max(length, 1), n, channels)
        self.t = 0  # inputs pushed so far

    def past(self, lag: int) -> Tensor:
        """The input pushed ``lag`` steps ago, 1 <= lag <= length: (n, C), a view of the buffer
        (the next :meth:`push` overwrites the one of lag = length)."""
        return self.buffer[(self.t - lag) % self.length]

    def push(self, x: Tensor) -> None:
        """Append the newest input (n, C), overwriting the one of ``length`` steps ago."""
        if self.length:
            self.buffer[self.t % self.length] = x
        self.t += 1


class CausalConv1d(nn.Conv1d):
    """A dilated convolution padded on the left only: (B, C_in, T) -> (B, C_out, T), output t
    sees inputs t - (k-1) d .. t. :meth:`step` gives one position from a :class:`Queue`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)

    @property
    def history(self) -> int:
        """Past inputs one output needs: (k - 1) d."""
        return (self.kernel_size[0] - 1) * self.dilation[0]

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.history, 0)))

    def taps(self, x_t: Tensor, queue: Queue) -> Tensor:
        """The inputs of the output at the next position, oldest first, (n, k C_in): the queue's
        inputs of lags (k-1) d, ..., d and x_t (n, C_in), which then joins the queue."""
        k, d = self.kernel_size[0], self.dilation[0]
        xs = torch.cat([queue.past((k - 1 - i) * d) for i in range(k - 1)] + [x_t], 1)  # tap i at lag (k-1-i) d
        queue.push(x_t)  # after the copy above: the oldest tap's slot is the one overwritten
        return xs

    def step_weight(self) -> Tensor:
        """The weight as a matrix (k C_in, C_out) that maps :meth:`taps` to the output."""
        return self.weight.permute(2, 1, 0).flatten(0, 1)  # (C_out, C_in, k) -> (k C_in, C_out)

    def step(self, x_t: Tensor, queue: Queue) -> Tensor:
        """The output at the next position from its input x_t (n, C_in) and the queue of earlier
        inputs: (n, C_out), the column of :meth:`forward` there."""
        return torch.addmm(self.bias, self.taps(x_t, queue), self.step_weight())


class StepWeights(NamedTuple):
    """A block's weights laid out for one-position steps, prepared once per generation."""

    conv: Tensor  # (k C, 2C): W_f and W_g on the taps
    bias: Tensor  # (2C,) or (n, 2C): the convolution's bias + V h of each sequence's label
    res: Tensor | None  # (C, C): W_r transposed (None for the last block)
    res_bias: Tensor | None  # (C,)


class GatedResidualBlock(nn.Module):
    """One WaveNet layer (module docstring): (B, C, T) -> residual output (B, C, T) and skip
    (B, S, T). With ``num_classes`` > 0 a class label adds its learned vector V h inside both
    gates; with ``residual=False`` (the last layer) only the skip is computed."""

    def __init__(
        self,
        channels: int,
        skip_channels: int,
        dilation: int,
        kernel_size: int = 2,
        num_classes: int = 0,
        residual: bool = True,
    ):
        super().__init__()
        self.channels = channels
        self.conv = CausalConv1d(channels, 2 * channels, kernel_size, dilation)  # W_f and W_g
        self.cond = nn.Embedding(num_classes, 2 * channels) if num_classes > 0 else None  # V_f h, V_g h
        self.res = nn.Conv1d(channels, channels, 1) if residual else None
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def gate_bias(self, cond: Tensor | None) -> Tensor | None:
        """V h for labels ``cond`` (n,): (n, 2C), or None without conditioning."""
        if self.cond is None or cond is None:
            return None
        return self.cond(cond)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a = self.conv(x)  # (B, 2C, T)
        bias = self.gate_bias(cond)
        if bias is not None:
            a = a + bias.unsqueeze(-1)
        z = gated_activation(a, 1)  # (B, C, T)
        out = x + self.res(z) if self.res is not None else x
        return out, self.skip(z)

    def step_weights(self, cond: Tensor | None = None) -> StepWeights:
        """The weights :meth:`step` uses, for sequences of labels ``cond``."""
        bias = self.gate_bias(cond)
        bias = self.conv.bias if bias is None else self.conv.bias + bias
        if self.res is None:
            return StepWeights(self.conv.step_weight(), bias, None, None)
        return StepWeights(self.conv.step_weight(), bias, self.res.weight[:, :, 0].t(), self.res.bias)

    def step(self, x_t: Tensor, queue: Queue, weights: StepWeights) -> tuple[Tensor, Tensor]:
        """One position: x_t (n, C) -> residual output (n, C) and the gated activation z (n, C)
        (whose skip W_s z the stack computes for all blocks at once)."""
        a = torch.addmm(weights.bias, self.conv.taps(x_t, queue), weights.conv)  # (n, 2C)
        z = gated_activation(a, 1)  # (n, C)
        if weights.res is None:
            return x_t, z
        return x_t + torch.addmm(weights.res_bias, z, weights.res), z


@dataclass
class StackCache:
    """What :meth:`DilatedStack.step` keeps between positions: a queue of past inputs per layer,
    and the weights laid out for steps (per block, and the skips of all blocks as one matrix)."""

    queues: list[Queue]
    weights: list[StepWeights]
    skip: Tensor  # (L C, S): W_s of every block, stacked
    skip_bias: Tensor  # (S,): the sum of their biases


class DilatedStack(nn.Module):
    """Gated residual blocks of the given dilations: (B, C, T) -> sum of skips (B, S, T), output t
    seeing inputs t - R + 1 .. t (R = :attr:`receptive_field`). The last block has no residual
    output (nothing reads it)."""

    def __init__(
        self,
        channels: int,
        skip_channels: int,
        dilations: Sequence[int],
        kernel_size: int = 2,
        num_classes: int = 0,
    ):
        super().__init__()
        if not dilations or min(dilations) < 1 or kernel_size < 1:
            raise ValueError(f"need dilations >= 1 and kernel_size >= 1, got {tuple(dilations)}, {kernel_size}")
        self.dilations, self.kernel_size = tuple(dilations), kernel_size
        last = len(self.dilations) - 1
        self.blocks = nn.ModuleList(
            GatedResidualBlock(channels, skip_channels, d, kernel_size, num_classes, residual=i < last)
            for i, d in enumerate(self.dilations)
        )

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.dilations, self.kernel_size)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        skips = 0
        for block in self.blocks:
            x, skip = block(x, cond)
            skips = skips + skip
        return skips

    def cache(self, n: int, cond: Tensor | None = None, like: Tensor | None = None) -> StackCache:
        """Empty queues for generating ``n`` sequences (labels ``cond``) on the device and dtype of
        ``like`` (default: the weights'), and the weights laid out for :meth:`step`."""
        like = like if like is not None else self.blocks[0].conv.weight
        queues = [Queue(block.conv.history, n, block.channels, like) for block in self.blocks]
        skip = torch.cat([block.skip.weight[:, :, 0] for block in self.blocks], 1).t()  # (L C, S)
        skip_bias = torch.stack([block.skip.bias for block in self.blocks]).sum(0)
        return StackCache(queues, [block.step_weights(cond) for block in self.blocks], skip, skip_bias)

    def step(self, x_t: Tensor, cache: StackCache) -> Tensor:
        """The sum of skips (n, S) at the next position from its input x_t (n, C): the column of
        :meth:`forward` at that position, in O(layers) work."""
        zs = []
        for block, queue, weights in zip(self.blocks, cache.queues, cache.weights, strict=True):
            x_t, z = block.step(x_t, queue, weights)
            zs.append(z)
        return torch.addmm(cache.skip_bias, torch.cat(zs, 1), cache.skip)  # sum_l W_s,l z_l + b_s,l
