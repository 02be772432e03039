"""Conditional VAE (Sohn, Lee & Yan 2015): encoder q(z | x, y) and decoder p(x | z, y) both see
the class label y (a learned embedding concatenated to the encoder features and to z), so that

    log p(x | y) >= E_q[log p(x | z, y)] - KL(q(z | x, y) ‖ p(z)),

and sampling with a chosen y gives examples of that class. The same model as
``vae --set conditional=true``, registered with conditioning on by default; it needs labelled data.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgm.models.latent.vae import VAE, VAEConfig
from dgm.registry import register


@dataclass(frozen=True)
class CVAEConfig(VAEConfig):
    """:class:`VAEConfig` with ``conditional=True``."""

    conditional: bool = True


@register("cvae")
class CVAE(VAE):
    """Conditional VAE (Sohn et al. 2015): encoder and decoder conditioned on the class label."""

    Config = CVAEConfig
