"""PixelCNN: masked convolutions over the pixels of an image in raster order.

van den Oord, Kalchbrenner & Kavukcuoglu (2016), "Pixel Recurrent Neural Networks" (ICML). The
conditionals of p(x) = prod_{i,j} p(x_ij | x_<ij), pixels in raster order, come from one pass
of a stack of masked convolutions (:mod:`dgm.nn.pixelcnn`):

- a k x k type-A masked convolution of the scaled image (the centre pixel excluded);
- residual blocks x + W_2 ReLU(W_k * ReLU(W_1 ReLU(x))) with a type-B masked W_k;
- ReLU, a 1x1 convolution to F features, ReLU, and the head of each pixel's C channels
  (:class:`~dgm.models.autoregressive.outputs.ElementOutput`: Bernoulli for binary images, a
  categorical over few levels, a discretized logistic mixture for 8-bit images; channels of a
  pixel autoregressive).

log p(x) = sum_ij log p(x_ij | features_ij) is exact and costs one pass. The stack has a *blind
spot*: a path through the masks gains at most k//2 columns to the right per row up (r1 =
first_kernel//2 in the first layer), so the pixels (i - u, j + c) with c > r1 + (u - 1) k//2 never
reach (i, j), however deep the stack (``gated_pixelcnn`` removes it). With ``conditional=True`` a
learned vector per class is added as a bias in the first layer, in every block and in the output
stack.

Generation draws one pixel per step. ``cached=True`` (Ramachandran et al. 2017) keeps every
masked convolution's inputs in a buffer and evaluates the network at the new pixel only (one
matrix product per layer); ``cached=False`` re-runs the whole network at every pixel. Both draw
the same samples from the same generator.

>>> import dgm
>>> model = dgm.build("pixelcnn", data=dgm.DataInfo((1, 6, 6), "binary"), channels=8, blocks=1, features=8)
>>> x = model.sample(2, generator=torch.Generator().manual_seed(0))
>>> x.shape, model.log_prob(x).shape
(torch.Size([2, 1, 6, 6]), torch.Size([2]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.base import AutoregressiveModel
from dgm.models.autoregressive.outputs import OUTPUTS, ElementOutput
from dgm.models.base import ModelConfig
from dgm.nn.pixelcnn import Conv1x1, PositionCache, ResidualBlock, masked_conv, pointwise_matrix
from dgm.registry import register


@dataclass(frozen=True)
class PixelCNNConfig(ModelConfig):
    """Configuration of :class:`PixelCNN`.

    The defaults (15 k parameters) were measured on binarized ``mnist5k`` (3 600 training
    images of 28x28) on a 2-core CPU: a training step of batch 64 (forward and backward) takes
    0.13 s on one thread, 0.08 s on two (0.18 s on one while other jobs ran). Trained with Adam
    at lr 3e-3 and batch 64 (what ``dgm train`` uses for this model unless told otherwise:
    :attr:`PixelCNN.train_defaults`), the test NLL was 70.7 nats after 360 s of one-thread CPU
    time (about 2 300 steps); 73.1 at lr 1e-3 (with features=64). On 8-bit ``mnist5k``
    (logistic mixture) 1.21 bits/dim after 240 s, 1.25 at lr 1e-3.
    """

    channels: int = 32  # maps between the residual blocks (2h in the paper; the blocks' bottleneck is h)
    blocks: int = 5  # residual blocks, each with one type-B masked convolution
    kernel: int = 3  # the blocks' masked kernel (odd)
    first_kernel: int = 7  # the first, type-A, masked kernel (odd, >= 3)
    features: int = 32  # width F of the output stack before each pixel's head
    output: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto"  # auto: from the data's support
    mixtures: int = 5  # components of the discretized logistic mixture (8-bit data)


class ImageAutoregressive(AutoregressiveModel):
    """What the PixelCNNs share: image checks, the output stack, log_prob and generation.

    A subclass builds its convolutional trunk and gives
    - ``_trunk(xs, biases)``: scaled images (B, C, H, W) -> top maps (B, T, H, W);
    - ``_cond_sizes()``: the sizes of its class biases (the output stack's comes last);
    - ``_position_cache(n, biases, like)``: an object with ``put(i, j, xs (n, C))`` and
      ``top(i, j) -> (n, T)`` evaluating the trunk at one pixel (:meth:`generate`).
    """

    can_condition = True
    supports = frozenset({"binary", "discrete"})
    # small convolutional stacks learn much faster at lr 3e-3 than dgm's 1e-3, and per second of
    # training at batch 64 than at 128 (see the configs' docstrings)
    train_defaults = {"lr": 3e-3, "batch_size": 64}

    def __init__(self, config, top_channels: int):
        super().__init__(config)
        info = config.data
        self.final = Conv1x1(top_channels, config.features)  # the output stack's 1x1
        self.output = ElementOutput(info, config.features, config.output, config.mixtures)
        if config.conditional:  # one learned bias vector per class for every layer, zero at first
            self.cond_embed = nn.Embedding(info.num_classes, sum(self._cond_sizes()))
            nn.init.zeros_(self.cond_embed.weight)

    @classmethod
    def check_sizes(cls, config, sizes: dict[str, int]) -> None:
        """Refuse non-image data, and ``sizes`` or kernels out of range, naming the option."""
        super().check_config(config)
        info = config.data
        if not info.is_image:
            raise DataError(
                f"{cls.name} models images of shape (C, H, W), got {info.describe()}; for sequences "
                "(text, audio) use transformer or wavenet, for vectors made"
            )
        if info.support == "discrete" and (info.levels or 0) < 2:
            raise DataError(f"{cls.name} needs the number of levels of discrete data, got {info.describe()}")
        for name, value in {**sizes, "features": config.features, "mixtures": config.mixtures}.items():
            if value < 1:
                raise ConfigError(f"{cls.name} needs {name} >= 1, got {value}")
        if config.kernel % 2 == 0:
            raise ConfigError(f"{cls.name} needs an odd kernel, got kernel={config.kernel}")
        if config.first_kernel < 3 or config.first_kernel % 2 == 0:
            raise ConfigError(f"{cls.name} needs an odd first_kernel >= 3, got first_kernel={config.first_kernel}")
        if config.output not in OUTPUTS:
            raise ConfigError(f"{cls.name} output must be one of {', '.join(OUTPUTS)}, got {config.output!r}")

    def _cond_sizes(self) -> list[int]:
        raise NotImplementedError

    def _trunk(self, xs: Tensor, biases: list[Tensor | None]) -> Tensor:
        raise NotImplementedError

    def _position_cache(self, n: int, biases: list[Tensor | None], like: Tensor):
        raise NotImplementedError

    def _biases(self, cond: Tensor | None) -> list[Tensor | None]:
        """The class biases of every layer, (B, size) each, or Nones without ``cond``."""
        sizes = self._cond_sizes()
        if cond is None:
            return [None] * len(sizes)
        return list(self.cond_embed(cond).split(sizes, dim=1))

    # ----- one pass ---------------------------------------------------------------------------
    def features(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The features F of every pixel's head, (B, F, H, W), from images x (B, C, H, W) in levels:
        those at (i, j) see only the pixels before (i, j) in raster order."""
        biases = self._biases(cond)
        top = self._trunk(self.output.scaled(x), biases)
        h = self.final(torch.relu(top))
        if biases[-1] is not None:
            h = h + biases[-1][:, :, None, None]
        return torch.relu(h)

    def params(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The head's parameters of every pixel and channel, (B, H, W, C, P), from x (B, C, H, W)."""
        h = self.features(x, cond).permute(0, 2, 3, 1)  # (B, H, W, F)
        return self.output.params(h, x.permute(0, 2, 3, 1))

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) in nats, (B,): the sum of every pixel's log p(x_ij | x_<ij)."""
        flat = self.flat_x(x)
        cond = self.check_cond(cond, flat.shape[0])
        x = flat.view(-1, *self.config.data.shape)
        h = self.features(x, cond).permute(0, 2, 3, 1)  # (B, H, W, F)
        return self.output.log_prob(h, x.permute(0, 2, 3, 1)).sum((1, 2))

    # ----- generation -------------------------------------------------------------------------
    def generate(
        self,
        n: int,
        cond: Tensor | None,
        generator: torch.Generator | None,
        temperature: float,
        cached: bool,
        given: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Pixels in raster order, each drawn by :meth:`ElementOutput.draw` from its features:
        computed at that pixel only (``cached``) or by a whole pass (see the module docstring)."""
        channels, height, width = self.config.data.shape
        like = self.output.proj.weight
        biases = self._biases(cond)
        x = like.new_zeros(n, channels, height, width)
        given = None if given is None else given.view(n, channels, height, width)
        keep = None if keep is None else keep.view(n, channels, height, width)
        log_p = like.new_zeros(n)
        if cached:
            cache = self._position_cache(n, biases, like)
            final_matrix = pointwise_matrix(self.final)  # (T, F)
            final_bias = self.final.bias if biases[-1] is None else self.final.bias + biases[-1]
        for i in range(height):
            for j in range(width):
                if cached:
                    h = torch.relu(torch.addmm(final_bias, torch.relu(cache.top(i, j)), final_matrix))
                else:
                    h = self.features(x, cond)[:, :, i, j]  # (n, F)
                pixel_given = None if given is None else given[:, :, i, j]
                pixel_keep = None if keep is None else keep[:, :, i, j]
                value, lp = self.output.draw(h, temperature, generator, pixel_given, pixel_keep)
                x[:, :, i, j] = value
                log_p += lp
                if cached:
                    cache.put(i, j, self.output.scaled(value))
        return x.reshape(n, -1), log_p


class _PlainCache:
    """The PixelCNN at one pixel: the inputs of the first layer and of every block's masked
    convolution in :class:`PositionCache` buffers, the 1x1 convolutions as matrix products."""

    def __init__(self, model: PixelCNN, n: int, biases: list[Tensor | None], like: Tensor):
        height, width = model.config.data.shape[1:]

        def with_bias(bias: Tensor, cond: Tensor | None) -> Tensor:
            return bias if cond is None else bias + cond

        self.first = PositionCache(model.first, n, height, width, like)
        self.first_bias = with_bias(model.first.bias, biases[0])
        self.blocks = [
            (
                pointwise_matrix(block.reduce),
                block.reduce.bias,
                PositionCache(block.conv, n, height, width, like),
                with_bias(block.conv.bias, cond),
                pointwise_matrix(block.expand),
                block.expand.bias,
            )
            for block, cond in zip(model.blocks, biases[1:-1], strict=True)
        ]

    def put(self, i: int, j: int, xs: Tensor) -> None:
        self.first.write(i, j, xs)

    def top(self, i: int, j: int) -> Tensor:
        h = self.first.at(i, j, self.first_bias)  # (n, channels)
        for reduce, reduce_bias, conv, conv_bias, expand, expand_bias in self.blocks:
            conv.write(i, j, torch.relu(torch.addmm(reduce_bias, torch.relu(h), reduce)))
            z = torch.relu(conv.at(i, j, conv_bias))  # (n, h)
            h = h + torch.addmm(expand_bias, z, expand)
        return h


@register("pixelcnn")
class PixelCNN(ImageAutoregressive):
    """PixelCNN (van den Oord et al. 2016): masked convolutions, residual blocks, a per-pixel head."""

    Config = PixelCNNConfig

    def __init__(self, config: PixelCNNConfig):
        super().__init__(config, config.channels)
        channels = config.data.shape[0]
        self.first = masked_conv(channels, config.channels, config.first_kernel, "A")
        self.blocks = nn.ModuleList(ResidualBlock(config.channels, config.kernel) for _ in range(config.blocks))

    @classmethod
    def check_config(cls, config: PixelCNNConfig) -> None:
        cls.check_sizes(config, {"channels": config.channels, "blocks": config.blocks})

    def _cond_sizes(self) -> list[int]:
        config = self.config
        return [config.channels] + [max(config.channels // 2, 1)] * config.blocks + [config.features]

    def _trunk(self, xs: Tensor, biases: list[Tensor | None]) -> Tensor:
        h = self.first(xs)
        if biases[0] is not None:
            h = h + biases[0][:, :, None, None]
        for block, cond in zip(self.blocks, biases[1:-1], strict=True):
            h = block(h, cond)
        return h

    def _position_cache(self, n: int, biases: list[Tensor | None], like: Tensor) -> _PlainCache:
        return _PlainCache(self, n, biases, like)
