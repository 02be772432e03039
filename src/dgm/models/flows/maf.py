"""Masked autoregressive flow (Papamakarios, Pavlakou & Murray 2017).

Each layer is an affine autoregressive map computed by one MADE (Germain et al. 2015) in the
density direction (eq. 4):

    z_d = (x_d - mu_d(x_<d)) exp(-alpha_d(x_<d)),    log |det ∂z/∂x| = -Σ_d alpha_d,

with ``alpha`` soft-clamped to (-3, 3) (:class:`~dgm.nn.bijectors.MaskedAffineAutoregressive`).
``layers`` layers alternate the natural and the reversed ordering, so every dimension gets to
depend on every other, with an :class:`~dgm.nn.bijectors.ActNorm` between them (in place of
the paper's batch norm).

Trade-off: the density of a point takes **one** network pass per layer, since every ``x_<d``
is known; sampling inverts one dimension per pass, **D** passes per layer. IAF
(:mod:`dgm.models.flows.iaf`) is the same layer used the other way round.

Defaults: 5 layers of MADEs with (64, 64) hidden units, 23 000 parameters on 2-D data; on
images, raise ``hidden`` (``--set hidden=512,512``): a MADE narrower than D gives most
dimensions few paths to the ones before them.

>>> import dgm
>>> model = dgm.build("maf", data=dgm.DataInfo((3,), "continuous"))
>>> model.sample(2).shape
torch.Size([2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

from dgm.models.flows.base import FlowConfig, FlowModel, check_positive
from dgm.nn.bijectors import ActNorm, Bijector, Compose, MaskedAffineAutoregressive
from dgm.registry import register


@dataclass(frozen=True)
class MAFConfig(FlowConfig):
    """Configuration of :class:`MAF` (and of :class:`~dgm.models.flows.iaf.IAF`)."""

    layers: int = 5  # autoregressive layers (the paper's MAF 5)
    hidden: tuple[int, ...] = (64, 64)  # hidden layers of each MADE
    actnorm: bool = True  # an ActNorm between layers
    max_log_scale: float = 3.0  # |alpha_d| < max_log_scale in every layer


@register("maf")
class MAF(FlowModel):
    """Masked autoregressive flow (Papamakarios et al. 2017): stacked MADE affine layers, one-pass density."""

    Config = MAFConfig

    @classmethod
    def check_config(cls, config: MAFConfig) -> None:
        super().check_config(config)
        check_positive(cls.name, config, "layers", "hidden", "max_log_scale")

    def build_flow(self) -> Bijector:
        dim, config = self.event_shape[0], self.config
        layers: list[Bijector] = []
        for i in range(config.layers):
            if i > 0 and config.actnorm:
                layers.append(ActNorm(dim))
            layers.append(self.layer(i))
        return Compose(layers)

    def layer(self, i: int) -> Bijector:
        """Autoregressive layer ``i`` (data -> base), natural order when ``i`` is even, else reversed."""
        config = self.config
        return MaskedAffineAutoregressive(
            self.event_shape[0],
            hidden=config.hidden,
            order="natural" if i % 2 == 0 else "reversed",
            seed=i,
            num_classes=self.num_classes or None,
            max_log_scale=config.max_log_scale,
        )
