"""Glow (Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1 Convolutions").

One step of flow is an activation norm, an invertible 1x1 convolution and an affine coupling
(table 1), each with its log-determinant:

    ActNorm:   y = (x - loc) ⊙ exp(-log_scale),        ladj = -H W Σ_c log_scale_c
    1x1 conv:  y_ij = W x_ij,  W = P L (U + diag(s)),   ladj = H W Σ_c log |s_c|
    coupling:  y_b = x_b,  y_a = x_a ⊙ exp(s(x_b)) + t(x_b),  ladj = Σ s

- Images: the multi-scale architecture of figure 2b, ``levels`` times: squeeze
  (C, H, W) -> (4C, H/2, W/2), ``depth`` steps of flow, then split off half the channels as
  final ``z`` (:class:`~dgm.nn.bijectors.MultiScale`); the last level keeps all its channels.
  Couplings split the channels in halves and use conv conditioners of ``channels`` channels
  (zero-initialised, so each step starts as ActNorm and a rotation). Height and width must be
  multiples of 2^levels.
- Vectors: ``depth`` steps of ActNorm, an LU-parameterised linear map and an affine coupling on
  alternating halves with an MLP conditioner of ``hidden`` units.

The split's learned prior of the paper is left out: the factored-out half has the standard
normal base. Defaults: 2 levels of 8 steps with 64-channel conditioners (about 360 000
parameters on 28x28 digits), 8 steps of (64, 64) units on 2-D data.

>>> import dgm
>>> model = dgm.build("glow", data=dgm.DataInfo((1, 8, 8), "continuous"), depth=2)
>>> model.sample(2).shape
torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from dgm.models.flows.base import FlowConfig, FlowModel, check_coupling_input, check_positive
from dgm.nn.bijectors import (
    ActNorm,
    AffineCoupling,
    Bijector,
    Compose,
    ConvConditioner,
    InvConv1x1,
    LULinear,
    MLPConditioner,
    MultiScale,
    channel_mask,
    vector_mask,
)
from dgm.registry import register


@dataclass(frozen=True)
class GlowConfig(FlowConfig):
    """Configuration of :class:`Glow`: ``depth`` steps of flow per level (images) or in all
    (vectors); image fields ``levels`` and ``channels``, vector field ``hidden``."""

    depth: int = 8  # K, steps of flow per level (images) or in all (vectors)
    levels: int = 2  # images: levels (squeezes); height and width must be multiples of 2^levels
    channels: int = 64  # images: hidden channels of each conv conditioner
    hidden: tuple[int, ...] = (64, 64)  # vectors: hidden layers of each MLP conditioner
    scale_bound: float = 2.0  # |s| < scale_bound in every coupling


@register("glow")
class Glow(FlowModel):
    """Glow (Kingma & Dhariwal 2018): ActNorm, invertible 1x1 convolutions and affine couplings, multi-scale."""

    Config = GlowConfig
    convolutional = True

    @classmethod
    def check_config(cls, config: GlowConfig) -> None:
        super().check_config(config)
        check_positive(cls.name, config, "depth", "channels", "hidden", "scale_bound")
        check_coupling_input(cls.name, config, config.levels)

    def build_flow(self) -> Bijector:
        if len(self.event_shape) == 3:
            c = self.event_shape[0]
            # level i acts on (2^(i+2) C) channels: 4C after the first squeeze, doubling after each split
            return MultiScale.stack([self.level(4 * c * 2**i) for i in range(self.config.levels)])
        return Compose([self.vector_step(i) for i in range(self.config.depth)])

    def level(self, channels: int) -> Bijector:
        """``depth`` steps of flow on images of ``channels`` channels."""
        net = partial(ConvConditioner, channels, hidden=self.config.channels, num_classes=self.num_classes)
        steps: list[Bijector] = []
        for i in range(self.config.depth):
            coupling = AffineCoupling(channel_mask(channels, i % 2), net, self.config.scale_bound)
            steps += [ActNorm(channels), InvConv1x1(channels, seed=i), coupling]
        return Compose(steps)

    def vector_step(self, i: int) -> Bijector:
        """Step ``i`` on vectors: ActNorm, LU linear map, affine coupling."""
        dim, config = self.event_shape[0], self.config
        net = partial(MLPConditioner, dim, hidden=config.hidden, num_classes=self.num_classes)
        coupling = AffineCoupling(vector_mask(dim, i % 2), net, config.scale_bound)
        return Compose([ActNorm(dim), LULinear(dim, seed=i), coupling])
