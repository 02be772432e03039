"""WaveNet: dilated causal convolutions over a sequence of discrete values.

van den Oord et al. (2016), "WaveNet: A Generative Model for Raw Audio". The conditionals
p(x_t | x_<t) of a sequence x_0 .. x_{T-1} (μ-law audio levels, characters, any few-level 1-D
data) come from one pass of a stack of dilated causal 1-D convolutions (:mod:`dgm.nn.dilated`):

- input: the embedding of the previous value, shifted one step, s_t = E[x_{t-1}] (s_0 a learned
  start vector), so the output at t sees only x_<t;
- layers l = 1..L of gated residual blocks with dilations d_l (1, 2, ..., 128 twice by default):

      z = tanh(W_f,l * s + V_f,l h) ⊙ σ(W_g,l * s + V_g,l h),   s <- s + W_r,l z,   skip_l = W_s,l z

  (h a class label when ``conditional=True``: global conditioning inside every gate);
- output: ReLU, 1x1, ReLU, 1x1 of sum_l skip_l to the head of each element: a categorical over
  the levels (256 μ-law levels for audio, the vocabulary for text), Bernoulli for binary data
  (:class:`~dgm.models.autoregressive.outputs.ElementOutput`).

log p(x) = sum_t log p(x_t | x_{t-R} .. x_{t-1}) is exact and costs one pass; the conditional of
x_t sees the R = 1 + (k - 1) sum_l d_l values before it (:attr:`WaveNet.receptive_field`, 511 by
default: 64 ms at 8 kHz). Generation draws one value per step: ``cached=True`` keeps a queue of
past activations per layer (Paine et al. 2016, "Fast Wavenet Generation Algorithm"; Ramachandran
et al. 2017), O(L) work per value; ``cached=False`` re-runs the network over the last R inputs at
every step. Both draw the same samples from the same generator.

>>> import dgm
>>> info = dgm.DataInfo((64,), "discrete", 256, sample_rate=8000)       # μ-law audio windows
>>> model = dgm.build("wavenet", data=info, residual_channels=8, skip_channels=8, layers_per_stack=4)
>>> model.receptive_field
31
>>> x = model.sample(2, generator=torch.Generator().manual_seed(0))
>>> x.shape, model.log_prob(x).shape
(torch.Size([2, 64]), torch.Size([2]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.base import AutoregressiveModel
from dgm.models.autoregressive.outputs import ElementOutput
from dgm.models.base import ModelConfig
from dgm.nn.dilated import DilatedStack, dilation_cycle
from dgm.registry import register


@dataclass(frozen=True)
class WaveNetConfig(ModelConfig):
    """Configuration of :class:`WaveNet`.

    The defaults suit μ-law audio at 8 kHz in windows of 1-2 k samples on 2 CPU cores: two stacks
    of dilations 1..128 (a receptive field of 511 samples), 32 residual and 64 skip channels
    (about 0.12 M parameters).
    """

    residual_channels: int = 32  # channels of the residual stream (and of the input embedding)
    skip_channels: int = 64  # channels of the skips and of the output stack
    layers_per_stack: int = 8  # dilations 1, 2, ..., 2^(layers_per_stack - 1) in each stack
    stacks: int = 2
    dilations: tuple[int, ...] = ()  # explicit dilations, one per layer; () for the cycle above
    kernel_size: int = 2
    output: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto"  # auto: categorical for text/audio
    mixtures: int = 5  # components of a discretized logistic mixture head (output=logistic)


def layer_dilations(config: WaveNetConfig) -> tuple[int, ...]:
    """The dilation of every layer: ``dilations`` if given, else the doubling cycle ``stacks`` times."""
    return tuple(config.dilations) or dilation_cycle(config.layers_per_stack, config.stacks)


@register("wavenet")
class WaveNet(AutoregressiveModel):
    """WaveNet (van den Oord et al. 2016): gated dilated causal convolutions over 1-D sequences."""

    can_condition = True
    supports = frozenset({"binary", "discrete"})
    Config = WaveNetConfig

    def __init__(self, config: WaveNetConfig):
        super().__init__(config)
        info = config.data
        channels = config.residual_channels
        self.levels = int(info.levels or 2)
        self.embed = nn.Embedding(self.levels, channels)  # E[x_{t-1}]: the input at t
        self.start = nn.Parameter(torch.randn(channels))  # the input at t = 0
        self.stack = DilatedStack(
            channels,
            config.skip_channels,
            layer_dilations(config),
            config.kernel_size,
            num_classes=info.num_classes if config.conditional else 0,
        )
        self.post = nn.Linear(config.skip_channels, config.skip_channels)  # the first 1x1 of the output stack
        self.output = ElementOutput(info, config.skip_channels, config.output, config.mixtures)  # the second

    @classmethod
    def check_config(cls, config: WaveNetConfig) -> None:
        super().check_config(config)
        info = config.data
        if info.is_image:
            raise DataError(
                f"wavenet models 1-D sequences of shape (T,), got {info.describe()}; for images use "
                "pixelcnn, gated_pixelcnn or transformer"
            )
        if len(info.shape) != 1:
            raise DataError(f"wavenet models 1-D sequences of shape (T,), got {info.describe()}")
        if info.support == "discrete" and (info.levels or 0) < 2:
            raise DataError(f"wavenet needs the number of levels of discrete data, got {info.describe()}")
        sizes = {
            "residual_channels": config.residual_channels,
            "skip_channels": config.skip_channels,
            "layers_per_stack": config.layers_per_stack,
            "stacks": config.stacks,
        }
        for name, value in sizes.items():
            if value < 1:
                raise ConfigError(f"wavenet needs {name} >= 1, got {value}")
        if config.kernel_size < 2:
            raise ConfigError(f"wavenet needs kernel_size >= 2, got {config.kernel_size}")
        if config.dilations and min(config.dilations) < 1:
            raise ConfigError(f"wavenet needs dilations >= 1 (or none for the cycle), got {config.dilations}")

    @property
    def receptive_field(self) -> int:
        """R: the conditional of x_t sees x_{t-R} .. x_{t-1} (and the start vector while t < R)."""
        return self.stack.receptive_field

    def notes(self, transforms: Sequence[str] = ()) -> list[str]:
        info, field = self.config.data, self.receptive_field
        if field > info.shape[0]:
            return [
                f"the receptive field ({field} values) is longer than an example ({info.shape[0]}); "
                "fewer layers (--set layers_per_stack=...) would see as much"
            ]
        return []

    # ----- network ------------------------------------------------------------------------
    def inputs(self, x: Tensor) -> Tensor:
        """The shifted input sequence s (B, C, T) of levels x (B, T): s_0 = start, s_t = E[x_{t-1}]."""
        start = self.start.view(1, -1, 1).expand(x.shape[0], -1, 1)
        return torch.cat([start, self.embed(x[:, :-1].long()).transpose(1, 2)], 2)  # (B, C, T)

    def features(self, s: Tensor, cond: Tensor | None = None) -> Tensor:
        """Features h (B, T, S) of every conditional from the input sequence s (B, C, T): h_t sees
        s_{t-R+1} .. s_t."""
        skips = self.stack(s, cond).transpose(1, 2)  # (B, T, S)
        return self._head_features(skips)

    def _head_features(self, skips: Tensor) -> Tensor:
        """ReLU, 1x1, ReLU of the summed skips (..., S); the output's projection is the last 1x1."""
        return F.relu(self.post(F.relu(skips)))

    def logits(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Head parameters of every conditional p(x_t | x_<t): x (B, T) -> (B, T, P) (P = levels
        for a categorical, 1 for a Bernoulli)."""
        x = self._levels(x)
        cond = self.check_cond(cond, x.shape[0])
        return self.output.params(self.features(self.inputs(x), cond), None)[:, :, 0]

    def _levels(self, x: Tensor) -> Tensor:
        """Flat x (B, T) checked to hold levels 0..L-1."""
        x = self.flat_x(x)
        if x.numel() and (x.min() < 0 or x.max() > self.levels - 1):
            raise DataError(
                f"wavenet expects levels 0..{self.levels - 1}, got values in {x.min().item()}..{x.max().item()}"
            )
        return x

    # ----- the contract -------------------------------------------------------------------
    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) = sum_t log p(x_t | x_<t) in nats, (B,), in one pass."""
        x = self._levels(x)
        cond = self.check_cond(cond, x.shape[0])
        h = self.features(self.inputs(x), cond)  # (B, T, S)
        return self.output.log_prob(h, x.unsqueeze(-1)).sum(-1)

    @torch.no_grad()
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
        """Draw ``n`` sequences one value at a time (see :meth:`AutoregressiveModel.generate`).

        ``cached=True``: one column of the network per step from per-layer queues
        (:meth:`DilatedStack.step`). ``cached=False``: the network re-run at every step over the
        last R inputs (all that the conditional sees). Each step draws its value with
        :meth:`ElementOutput.draw`, so both consume the generator alike.
        """
        length, field = self.config.data.shape[0], self.receptive_field
        x = torch.zeros(n, length, device=self.device, dtype=self.dtype)
        log_p = x.new_zeros(n)
        s_t = self.start.expand(n, -1)  # (n, C): the input at step t
        cache = self.stack.cache(n, cond, like=s_t) if cached else None
        window = s_t.new_zeros(n, s_t.shape[1], field)  # naive: the last R inputs, (n, C, R)
        for t in range(length):
            if cache is not None:
                skips = self.stack.step(s_t, cache)  # (n, S)
            else:
                window = torch.cat([window[:, :, 1:], s_t.unsqueeze(-1)], 2)
                seen = window[:, :, max(field - 1 - t, 0) :]  # only the inputs 0..t exist yet
                skips = self.stack(seen, cond)[:, :, -1]
            step_given = given[:, t : t + 1] if given is not None else None
            step_keep = keep[:, t : t + 1] if keep is not None else None
            value, lp = self.output.draw(self._head_features(skips), temperature, generator, step_given, step_keep)
            x[:, t] = value[:, 0]
            log_p += lp
            s_t = self.embed(value[:, 0].long())
        return x, log_p
