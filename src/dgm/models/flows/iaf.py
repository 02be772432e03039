"""Inverse autoregressive flow (Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling 2016).

The layers of :class:`~dgm.models.flows.maf.MAF` used the other way round: each is affine
autoregressive in the **sampling** direction (eq. 10-11), with ``(mu, alpha)`` computed by a
MADE from the noise,

    x_d = (z_d - mu_d(z_<d)) exp(-alpha_d(z_<d)),    log |det ∂x/∂z| = -Σ_d alpha_d,

i.e. ``Inverse(MaskedAffineAutoregressive)``. The trade-off is MAF's, mirrored:

- sampling takes **one** network pass per layer (every ``z_<d`` is drawn up front), and each
  sample's log-density comes for free from the same pass (:meth:`IAF.sample_and_log_prob`),
  which is why IAF is the flow of choice for variational posteriors;
- the density of a given point needs to invert the layers, **D** sequential passes per layer,
  so training by maximum likelihood costs D times MAF's: fine for toy data and small vectors,
  slow for images (784 passes per layer for a 28x28 digit).

Configuration is MAF's (:class:`IAFConfig` has the same fields and defaults).

>>> import dgm
>>> model = dgm.build("iaf", data=dgm.DataInfo((3,), "continuous"))
>>> x, log_p = model.sample_and_log_prob(4)
>>> x.shape, log_p.shape
(torch.Size([4, 3]), torch.Size([4]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dgm.models.flows.maf import MAF, MAFConfig
from dgm.nn.bijectors import Bijector, Inverse
from dgm.registry import register

SLOW_DIM = 16  # above this many dimensions, dgm train notes that iaf's density is slow


@dataclass(frozen=True)
class IAFConfig(MAFConfig):
    """Configuration of :class:`IAF`: the fields of :class:`~dgm.models.flows.maf.MAFConfig`."""


@register("iaf")
class IAF(MAF):
    """Inverse autoregressive flow (Kingma et al. 2016): MAF's layers inverted, one-pass sampling, D-pass density."""

    Config = IAFConfig

    def notes(self, transforms: Sequence[str] = ()) -> list[str]:
        dim = self.event_shape[0]
        if dim <= SLOW_DIM:
            return super().notes(transforms)
        return [
            *super().notes(transforms),
            f"iaf's density takes {dim} sequential network passes per layer on this {dim}-dimensional data, so "
            f"training by maximum likelihood is about {dim} times slower per step than maf's; use maf for density "
            "estimation, iaf where one-pass sampling matters",
        ]

    def layer(self, i: int) -> Bijector:
        """MAF's layer ``i``, inverted: its one-pass direction now maps base to data."""
        return Inverse(super().layer(i))
