"""Gated PixelCNN: vertical and horizontal stacks with gated activations, no blind spot.

van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu (2016), "Conditional Image
Generation with PixelCNN Decoders" (NeurIPS). The conditionals of p(x) = prod_{i,j} p(x_ij |
x_<ij), pixels in raster order, come from one pass of L gated layers
(:class:`~dgm.nn.pixelcnn.GatedLayer`), each with a vertical stack v (the rows above, across the
kernel's width) and a horizontal stack h (the current row, left of the pixel):

    v_pre = W_v * v + c_v,                          v <- tanh(v_pre_a) * sigmoid(v_pre_b)
    h_pre = W_h * h + shift_down(W_vh v_pre) + c_h,  h <- h + W_o (tanh(h_pre_a) * sigmoid(h_pre_b))

(the first layer reads the scaled image in both stacks, with a type-A horizontal kernel and no
residual; ``c_v``, ``c_h`` are learned class biases when ``conditional=True``). Because the
vertical stack enters the horizontal one from the row above, the features of (i, j) depend on
*every* earlier pixel of the receptive field: rows i-1-R .. i-1 across columns j-R .. j+R and the
row i from j-R to j-1, R = first_kernel//2 + (layers-1) kernel//2 — the blind spot of
``pixelcnn`` is gone. An output stack (ReLU, 1x1 to F features, ReLU) feeds each pixel's head
(:class:`~dgm.models.autoregressive.outputs.ElementOutput`: Bernoulli, categorical or
discretized logistic mixture from the data's support; channels of a pixel autoregressive).

Generation draws one pixel per step. ``cached=True`` (Ramachandran et al. 2017): the vertical
stack changes once per row, so at the start of row i it is computed along the whole row i-1 (one
matrix product per layer) together with its contribution W_vh v_pre to the horizontal stack;
each pixel then evaluates the horizontal stack at that pixel only, from buffers of every layer's
inputs (:class:`~dgm.nn.pixelcnn.PositionCache`). ``cached=False`` re-runs the whole network at
every pixel. Both draw the same samples from the same generator.

>>> import dgm
>>> model = dgm.build("gated_pixelcnn", data=dgm.DataInfo((1, 6, 6), "binary"), channels=8, layers=2)
>>> x = model.sample(2, generator=torch.Generator().manual_seed(0))
>>> x.shape, model.log_prob(x).shape
(torch.Size([2, 1, 6, 6]), torch.Size([2]))
>>> model.receptive_field  # 7 // 2 + (2 - 1) * (3 // 2)
4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from dgm.models.autoregressive.pixelcnn import ImageAutoregressive
from dgm.models.base import ModelConfig
from dgm.nn.pixelcnn import GatedLayer, PositionCache, gate, pointwise_matrix
from dgm.registry import register


@dataclass(frozen=True)
class GatedPixelCNNConfig(ModelConfig):
    """Configuration of :class:`GatedPixelCNN`.

    The defaults (30 k parameters) were measured on binarized ``mnist5k`` (3 600 training
    images of 28x28) on a 2-core CPU: a training step of batch 64 (forward and backward) takes
    0.27 s on one thread, 0.15 s on two (0.4 and 0.22 s while other jobs ran). Trained with Adam
    at lr 3e-3 and batch 64 (what ``dgm train`` uses for this model unless told otherwise:
    :attr:`GatedPixelCNN.train_defaults`), the test NLL was 69.7 nats after 360 s of one-thread
    CPU time (about 970 steps), 72 after 180 s. At lr 1e-3 it reached only 73.7 (with
    first_kernel=5, features=64), and batch 128 learned slower per second; deeper stacks
    (layers=8) did no better in the same time at lr 3e-3, wider ones (channels=24, layers=5)
    worse at lr 1e-3.
    """

    channels: int = 16  # p: maps of each stack (the gates take 2p)
    layers: int = 6  # gated layers
    kernel: int = 3  # the kernel of layers 2..L (odd): vertical (k//2+1) x k, horizontal 1 x (k//2+1)
    first_kernel: int = 7  # the kernel of the first layer (odd, >= 3)
    features: int = 32  # width F of the output stack before each pixel's head
    output: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto"  # auto: from the data's support
    mixtures: int = 5  # components of the discretized logistic mixture (8-bit data)


class _Layer(NamedTuple):
    """What the cached sampler keeps of one gated layer."""

    vertical: PositionCache  # the vertical stack's inputs
    horizontal: PositionCache  # the horizontal stack's inputs
    bias_v: Tensor  # W_v's bias + c_v, (2p,) or (n, 2p)
    bias_h: Tensor  # W_h's bias + c_h, (2p,) or (n, 2p)
    link: Tensor  # W_vh, (2p, 2p)
    link_bias: Tensor
    out: Tensor  # W_o, (p, p)
    out_bias: Tensor


class _GatedCache:
    """The gated PixelCNN at one pixel: the vertical stack and what it adds to the horizontal
    one, row by row; the horizontal stack pixel by pixel."""

    def __init__(self, model: GatedPixelCNN, n: int, biases: list[Tensor | None], like: Tensor):
        self.n, (self.height, self.width) = n, model.config.data.shape[1:]
        self.layers: list[_Layer] = []
        for index, layer in enumerate(model.layers):
            cond_v, cond_h = biases[2 * index], biases[2 * index + 1]
            v, h = layer.vertical, layer.horizontal
            self.layers.append(
                _Layer(
                    PositionCache(v, n, self.height, self.width, like),
                    PositionCache(h, n, self.height, self.width, like),
                    v.bias if cond_v is None else v.bias + cond_v,
                    h.bias if cond_h is None else h.bias + cond_h,
                    pointwise_matrix(layer.link),
                    layer.link.bias,
                    pointwise_matrix(layer.out),
                    layer.out.bias,
                )
            )
        self.rows: list[Tensor] = []  # per layer, (n, W, 2p): bias_h + W_vh v_pre of the row above

    def put(self, i: int, j: int, xs: Tensor) -> None:
        self.layers[0].vertical.write(i, j, xs)
        self.layers[0].horizontal.write(i, j, xs)

    def start_row(self, i: int) -> None:
        """The vertical stack along row i - 1 (complete now), and what it adds to row i."""
        self.rows = []
        for index, layer in enumerate(self.layers):
            bias_h = layer.bias_h.view(-1, 1, layer.bias_h.shape[-1])  # (1 or n, 1, 2p)
            if i == 0:  # nothing above
                self.rows.append(bias_h.expand(self.n, self.width, -1))
                continue
            v_pre = layer.vertical.row(i - 1, layer.bias_v.view(-1, 1, layer.bias_v.shape[-1]))  # (n, W, 2p)
            self.rows.append(torch.matmul(v_pre, layer.link) + (layer.link_bias + bias_h))
            if index + 1 < len(self.layers):
                self.layers[index + 1].vertical.write_row(i - 1, gate(v_pre, -1))

    def top(self, i: int, j: int) -> Tensor:
        """The last layer's horizontal stack at (i, j), (n, p)."""
        if j == 0:
            self.start_row(i)
        for index, layer in enumerate(self.layers):
            h_pre = layer.horizontal.at(i, j, self.rows[index][:, j])  # (n, 2p)
            h = torch.addmm(layer.out_bias, gate(h_pre, -1), layer.out)  # (n, p)
            if index > 0:
                h = h + layer.horizontal.read(i, j)  # the residual
            if index + 1 < len(self.layers):
                self.layers[index + 1].horizontal.write(i, j, h)
        return h


@register("gated_pixelcnn")
class GatedPixelCNN(ImageAutoregressive):
    """Gated PixelCNN (van den Oord et al. 2016): vertical and horizontal stacks, no blind spot."""

    Config = GatedPixelCNNConfig

    def __init__(self, config: GatedPixelCNNConfig):
        super().__init__(config, config.channels)
        channels, p = config.data.shape[0], config.channels
        kernels = [config.first_kernel] + [config.kernel] * (config.layers - 1)
        self.layers = nn.ModuleList(
            GatedLayer(channels if index == 0 else p, p, kernel, first=index == 0)
            for index, kernel in enumerate(kernels)
        )

    @classmethod
    def check_config(cls, config: GatedPixelCNNConfig) -> None:
        cls.check_sizes(config, {"channels": config.channels, "layers": config.layers})

    @property
    def receptive_field(self) -> int:
        """R: the features of (i, j) see rows i-1-R .. i-1 across columns j-R .. j+R, and the row i
        from column j-R to j-1 (every pixel there: no blind spot)."""
        return self.config.first_kernel // 2 + (self.config.layers - 1) * (self.config.kernel // 2)

    def _cond_sizes(self) -> list[int]:
        return [2 * self.config.channels] * (2 * self.config.layers) + [self.config.features]

    def _trunk(self, xs: Tensor, biases: list[Tensor | None]) -> Tensor:
        v, h, last = xs, xs, len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            v, h = layer(v, h, biases[2 * index], biases[2 * index + 1], last=index == last)
        return h

    def _position_cache(self, n: int, biases: list[Tensor | None], like: Tensor) -> _GatedCache:
        return _GatedCache(self, n, biases, like)
