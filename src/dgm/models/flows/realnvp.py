"""Real NVP (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP").

Affine coupling layers: a binary mask ``b`` keeps half the variables and an elementwise affine
map of the other half is computed from them (eq. 6-9),

    z = b ⊙ x + (1 - b) ⊙ (x ⊙ exp(s(b ⊙ x)) + t(b ⊙ x)),    log |det ∂z/∂x| = Σ (1 - b) ⊙ s,

with the log-scale soft-clamped, ``s = 2 tanh(s_raw / 2)``
(:class:`~dgm.nn.bijectors.AffineCoupling`), so no layer scales by more than e².

- Vectors: ``layers`` couplings with alternating masks (even, then odd dimensions kept), each
  followed by an :class:`~dgm.nn.bijectors.ActNorm` (in place of the paper's batch norm), with
  MLP conditioners of ``hidden`` units.
- Images: the multi-scale architecture of section 3.6: at each of ``levels`` scales,
  ``couplings`` checkerboard couplings, a squeeze (C, H, W) -> (4C, H/2, W/2), ``couplings``
  channel couplings, then half the channels are factored out (they are final ``z``) and the
  rest go on to the next scale; the last scale has ``couplings + 1`` checkerboard couplings.
  Conditioners are small conv nets of ``channels`` channels
  (:class:`~dgm.nn.bijectors.ConvConditioner`); each coupling is followed by an ActNorm.
  Height and width must be multiples of 2^levels.

Defaults: 8 couplings of (64, 64) units on 2-D data (37 000 parameters); 2 levels and 32 channels on
images (70 356 parameters for 28x28 digits): in a budget of minutes on a CPU, the steps a narrower
network gets matter more than its width (docs/flows.md, "Images").

>>> import dgm
>>> model = dgm.build("realnvp", data=dgm.DataInfo((1, 8, 8), "continuous"))
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
    MLPConditioner,
    MultiScale,
    channel_mask,
    checkerboard_mask,
    vector_mask,
)
from dgm.registry import register


@dataclass(frozen=True)
class RealNVPConfig(FlowConfig):
    """Configuration of :class:`RealNVP`: vector fields (``layers``, ``hidden``) and image
    fields (``levels``, ``couplings``, ``channels``); each data type uses its own."""

    layers: int = 8  # vectors: affine couplings
    hidden: tuple[int, ...] = (64, 64)  # vectors: hidden layers of each MLP conditioner
    levels: int = 2  # images: scales (squeezes); height and width must be multiples of 2^levels
    couplings: int = 3  # images: couplings of each kind (checkerboard, channel) per scale
    channels: int = 32  # images: hidden channels of each conv conditioner
    scale_bound: float = 2.0  # |s| < scale_bound in every coupling


@register("realnvp")
class RealNVP(FlowModel):
    """Real NVP (Dinh et al. 2017): affine couplings; multi-scale with checkerboard and channel masks on images."""

    Config = RealNVPConfig
    convolutional = True

    @classmethod
    def check_config(cls, config: RealNVPConfig) -> None:
        super().check_config(config)
        check_positive(cls.name, config, "layers", "couplings", "channels", "hidden", "scale_bound")
        check_coupling_input(cls.name, config, config.levels)

    def build_flow(self) -> Bijector:
        if len(self.event_shape) == 3:
            return self.scale(self.event_shape, self.config.levels)
        dim, config = self.event_shape[0], self.config
        net = partial(MLPConditioner, dim, hidden=config.hidden, num_classes=self.num_classes)
        steps = []
        for i in range(config.layers):
            steps += [AffineCoupling(vector_mask(dim, i % 2), net, config.scale_bound), ActNorm(dim)]
        return Compose(steps)

    def couple(self, mask, channels: int) -> list[Bijector]:
        """An affine coupling with ``mask`` on images of ``channels`` channels, then an ActNorm."""
        net = partial(ConvConditioner, channels, hidden=self.config.channels, num_classes=self.num_classes)
        return [AffineCoupling(mask, net, self.config.scale_bound), ActNorm(channels)]

    def scale(self, shape: tuple[int, ...], levels: int) -> Bijector:
        """The flow from scale ``shape`` = (C, H, W) down, with ``levels`` squeezes still to do."""
        c, h, w = shape
        n = self.config.couplings
        last = levels == 0
        steps = [s for i in range(n + last) for s in self.couple(checkerboard_mask(h, w, i % 2), c)]
        if last:
            return Compose(steps)
        squeezed = [s for i in range(n) for s in self.couple(channel_mask(4 * c, i % 2), 4 * c)]
        inner = self.scale((2 * c, h // 2, w // 2), levels - 1)  # the half that is not factored out
        return Compose([*steps, MultiScale(Compose(squeezed), inner)])
