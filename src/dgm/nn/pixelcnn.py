"""Causal 2-D convolutions for the PixelCNNs, and their evaluation one position at a time.

Pixels are generated in raster order (row by row, left to right); the channels of a pixel are
handled by :class:`~dgm.models.autoregressive.outputs.ElementOutput`, so every mask here is
spatial only. A :class:`CausalConv2d` reads, for its output at (i, j), the input rows
i-kh+1 .. i and the columns j-a .. j-a+kw-1 (``a`` the anchor), times an optional 0/1 mask on
the kernel: the rows below the centre of a PixelCNN mask are always zero, so they are cropped
away instead of being multiplied by zero (half the work of a k x k masked convolution).

- :func:`masked_conv`: the k x k masked convolution of the PixelCNN (van den Oord et al. 2016,
  "Pixel Recurrent Neural Networks", fig. 2): rows above the centre, and in the centre row the
  columns left of the centre (type A, the first layer) or up to it (type B, the later layers).
  Stacked, they have a *blind spot*: each row up adds at most k//2 columns to the right, so
  pixels up and to the right beyond that diagonal never reach (i, j), however deep the stack
  (with 3x3 masks everywhere: (i - u, j + c) for every c > u).
- :func:`vertical_conv` and :func:`horizontal_conv`: the two stacks of the gated PixelCNN (van
  den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders"). The vertical
  stack sees the k//2 + 1 rows up to the current one across k columns, the horizontal stack the
  current row up to the current column (type A: left of it). The vertical stack enters the
  horizontal one shifted down a row (:func:`shift_down`), so the receptive field has no blind
  spot: every pixel above, in a window widening with depth, and every pixel to the left.
- :class:`ResidualBlock` (PixelCNN) and :class:`GatedLayer` (both stacks, the gate
  tanh(a) * sigmoid(b)); :class:`Conv1x1`, a 1x1 convolution as a batched matrix product.

Fast generation (Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive
Models"): a :class:`PositionCache` keeps the inputs of one convolution, channel-last and
padded, and evaluates it at one position from the kernel's window of the buffer (one matrix
product), or along a whole row (one matrix product over the row's windows), so each step of sampling computes only
the activations the new pixel changes.

>>> conv = masked_conv(1, 4, 3, "A")
>>> conv(torch.zeros(2, 1, 5, 6)).shape
torch.Size([2, 4, 5, 6])
>>> conv.mask
tensor([[1., 1., 1.],
        [1., 0., 0.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KINDS = ("A", "B")


class CausalConv2d(nn.Conv2d):
    """A convolution whose output at (i, j) reads the input rows i-kh+1 .. i and the columns
    j-anchor .. j-anchor+kw-1 (zero outside the image), with its kernel (out, in, kh, kw)
    multiplied by ``mask`` (kh, kw). Shapes: (B, in, H, W) -> (B, out, H, W).

    The mask is a non-persistent buffer: structure, rebuilt from the constructor's arguments.
    """

    mask: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        size: tuple[int, int],
        anchor: int,
        mask: Tensor | None = None,
        bias: bool = True,
    ):
        kh, kw = size
        if kh < 1 or kw < 1 or anchor < 0:
            raise ValueError(f"a causal conv needs a kernel of at least 1x1 and anchor >= 0, got {size}, {anchor}")
        super().__init__(in_channels, out_channels, (kh, kw), bias=bias)
        self.anchor = anchor
        self.pads = (anchor, kw - 1 - anchor, kh - 1, 0)  # F.pad's left, right, top, bottom (< 0 crops)
        with torch.device("cpu"):  # known here without a device sync, also when built on meta
            cpu_mask = torch.ones(kh, kw) if mask is None else mask.detach().to("cpu", torch.float32)
        if tuple(cpu_mask.shape) != (kh, kw):
            raise ValueError(f"mask shape {tuple(cpu_mask.shape)} != kernel size {(kh, kw)}")
        self.full = bool(cpu_mask.all())
        self.register_buffer("mask", cpu_mask.to(self.weight.device), persistent=False)

    def masked_weight(self) -> Tensor:
        """The kernel times the mask, (out, in, kh, kw); the kernel itself when nothing is masked."""
        return self.weight if self.full else self.weight * self.mask.to(self.weight.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, self.pads), self.masked_weight(), self.bias)

    def window_matrix(self) -> Tensor:
        """The masked kernel as a (kh * kw * in, out) matrix whose rows follow a channel-last
        window (kh, kw, in) of the input: output at one position = window.flatten() @ matrix."""
        return self.masked_weight().permute(2, 3, 1, 0).reshape(-1, self.out_channels)


def masked_conv(in_channels: int, out_channels: int, kernel: int, kind: str) -> CausalConv2d:
    """The PixelCNN's ``kernel`` x ``kernel`` masked convolution of type ``kind`` ("A": the centre
    excluded, for the first layer; "B": included), cropped to its k//2 + 1 upper rows."""
    if kind not in KINDS or kernel < 1 or kernel % 2 == 0 or (kind == "A" and kernel < 3):
        raise ValueError(f"a masked conv needs an odd kernel (>= 3 for type A) and kind A or B, got {kernel}, {kind}")
    r = kernel // 2
    mask = torch.ones(r + 1, kernel, device="cpu")
    mask[r, r + 1 :] = 0  # the centre row: only the columns left of the centre ...
    if kind == "A":
        mask[r, r] = 0  # ... and, in type B, the centre itself
    return CausalConv2d(in_channels, out_channels, (r + 1, kernel), anchor=r, mask=mask)


def vertical_conv(in_channels: int, out_channels: int, kernel: int) -> CausalConv2d:
    """The gated PixelCNN's vertical stack: rows i-k//2 .. i, columns j-k//2 .. j+k//2 (it sees
    the current row; :func:`shift_down` moves it out of reach before the horizontal stack)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"a vertical conv needs an odd kernel, got {kernel}")
    r = kernel // 2
    return CausalConv2d(in_channels, out_channels, (r + 1, kernel), anchor=r)


def horizontal_conv(in_channels: int, out_channels: int, kernel: int, kind: str) -> CausalConv2d:
    """The gated PixelCNN's horizontal stack, 1 x (k//2 + 1): the columns j-k//2 .. j of the
    current row (type "B"), or j-k//2 .. j-1 (type "A", the first layer: a 1 x k//2 kernel)."""
    if kind not in KINDS or kernel < 1 or kernel % 2 == 0 or (kind == "A" and kernel < 3):
        raise ValueError(
            f"a horizontal conv needs an odd kernel (>= 3 for type A) and kind A or B, got {kernel}, {kind}"
        )
    r = kernel // 2
    return CausalConv2d(in_channels, out_channels, (1, r if kind == "A" else r + 1), anchor=r)


def shift_down(x: Tensor) -> Tensor:
    """Maps (B, C, H, W) moved down one row (row 0 zero): row i holds the input's row i - 1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def gate(x: Tensor, dim: int = 1) -> Tensor:
    """tanh(a) * sigmoid(b) for x = [a, b] split in two halves along ``dim``."""
    a, b = x.chunk(2, dim=dim)
    return torch.tanh(a) * torch.sigmoid(b)


class Conv1x1(nn.Conv2d):
    """A 1x1 convolution computed as a batched matrix product over the pixels (two to three
    times faster than the convolution routine on CPU for the narrow maps of the PixelCNNs, in a
    training step). Shapes: (B, in, H, W) -> (B, out, H, W); the weights are nn.Conv2d's."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        weight = self.weight.view(1, self.out_channels, c).expand(b, -1, -1)
        out = torch.baddbmm(self.bias.view(1, -1, 1), weight, x.reshape(b, c, height * width))
        return out.view(b, self.out_channels, height, width)


def pointwise_matrix(conv: nn.Conv2d) -> Tensor:
    """A 1x1 convolution's kernel as an (in, out) matrix: at one position, y = x @ matrix + bias."""
    return conv.weight.reshape(conv.out_channels, -1).t()


class ResidualBlock(nn.Module):
    """The PixelCNN's residual block (van den Oord et al. 2016, "Pixel Recurrent Neural
    Networks", fig. 5), 2h = ``channels`` maps in and out:

        y = ReLU(W_1 ReLU(x)),  z = W_k * y + c,  x' = x + W_2 ReLU(z)

    with 1x1 convolutions W_1 (2h -> h) and W_2 (h -> 2h) and a type-B masked k x k convolution
    W_k (h -> h); ``c`` (B, h) is a class bias (or None).
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        hidden = max(channels // 2, 1)
        self.reduce = Conv1x1(channels, hidden)
        self.conv = masked_conv(hidden, hidden, kernel, "B")
        self.expand = Conv1x1(hidden, channels)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        z = self.conv(torch.relu(self.reduce(torch.relu(x))))
        if cond is not None:
            z = z + cond[:, :, None, None]
        return x + self.expand(torch.relu(z))


class GatedLayer(nn.Module):
    """One layer of the gated PixelCNN (van den Oord et al. 2016, fig. 2), p channels:

        v_pre = W_v * v + c_v,                         v' = tanh(v_pre_a) * sigmoid(v_pre_b)
        h_pre = W_h * h + shift_down(W_vh v_pre) + c_h, h' = h + W_o (tanh(h_pre_a) * sigmoid(h_pre_b))

    ``c_v``, ``c_h`` (B, 2p) are class biases (or None); the residual ``h +`` is skipped in the
    first layer (``first=True``, type-A horizontal kernel, where the input has other channels).
    """

    def __init__(self, in_channels: int, channels: int, kernel: int, first: bool = False):
        super().__init__()
        self.first = first
        self.vertical = vertical_conv(in_channels, 2 * channels, kernel)
        self.horizontal = horizontal_conv(in_channels, 2 * channels, kernel, "A" if first else "B")
        self.link = Conv1x1(2 * channels, 2 * channels)  # W_vh: the vertical stack into the horizontal
        self.out = Conv1x1(channels, channels)  # W_o

    def forward(
        self, v: Tensor, h: Tensor, cond_v: Tensor | None = None, cond_h: Tensor | None = None, last: bool = False
    ) -> tuple[Tensor | None, Tensor]:
        """(v, h), each (B, channels, H, W) -> (v', h'), each (B, p, H, W); v' is None when
        ``last`` (no layer above reads it)."""
        v_pre = self.vertical(v)
        if cond_v is not None:
            v_pre = v_pre + cond_v[:, :, None, None]
        h_pre = self.horizontal(h) + shift_down(self.link(v_pre))  # the row above (nothing on row 0)
        if cond_h is not None:
            h_pre = h_pre + cond_h[:, :, None, None]
        h_out = self.out(gate(h_pre))
        return (None if last else gate(v_pre)), (h_out if self.first else h + h_out)


class PositionCache:
    """The inputs of one :class:`CausalConv2d` during generation, to evaluate it at one position.

    ``buffer`` (n, H + kh - 1, W + kw - 1, in) is channel-last and padded like the convolution's
    input (zero margins): input (i, j) sits at (i + kh - 1, j + anchor), so the kernel window of
    output (i, j) is ``buffer[:, i:i+kh, j:j+kw]``. Only positions before (i, j) in raster order
    (and (i, j) itself for a type-B kernel) are read, and the mask zeroes the others, so positions
    not written yet never matter.
    """

    def __init__(self, conv: CausalConv2d, n: int, height: int, width: int, like: Tensor):
        kh, kw = conv.kernel_size
        self.kh, self.kw, self.top, self.left = kh, kw, kh - 1, conv.anchor
        self.width = width
        right = max(kw - 1 - conv.anchor, 0)  # a type-A horizontal kernel never reads its last column
        self.buffer = like.new_zeros(n, height + kh - 1, self.left + width + right, conv.in_channels)
        self.matrix = conv.window_matrix().to(like.dtype)  # (kh kw in, out)

    def write(self, i: int, j: int, value: Tensor) -> None:
        """Set input (i, j) to ``value`` (n, in)."""
        self.buffer[:, i + self.top, j + self.left] = value

    def write_row(self, i: int, value: Tensor) -> None:
        """Set input row i to ``value`` (n, W, in)."""
        self.buffer[:, i + self.top, self.left : self.left + self.width] = value

    def read(self, i: int, j: int) -> Tensor:
        """Input (i, j), (n, in) (a view)."""
        return self.buffer[:, i + self.top, j + self.left]

    def at(self, i: int, j: int, bias: Tensor) -> Tensor:
        """The convolution's output at (i, j), (n, out): window @ matrix + ``bias`` ((out,) or (n, out))."""
        window = self.buffer[:, i : i + self.kh, j : j + self.kw]  # (n, kh, kw, in)
        return torch.addmm(bias, window.reshape(window.shape[0], -1), self.matrix)

    def row(self, i: int, bias: Tensor) -> Tensor:
        """The convolution's output along row i, (n, W, out), plus ``bias`` ((out,) or (n, 1, out))."""
        rows = self.buffer[:, i : i + self.kh, : self.width + self.kw - 1]  # (n, kh, W + kw - 1, in)
        windows = rows.unfold(2, self.kw, 1)[:, :, : self.width]  # (n, kh, W, in, kw)
        windows = windows.permute(0, 2, 1, 4, 3).reshape(rows.shape[0], self.width, -1)  # (n, W, kh kw in)
        return torch.matmul(windows, self.matrix) + bias  # (n, W, out)
