"""β-VAE (Higgins et al. 2017): a VAE whose training objective weighs the KL term by β > 1,

    L = E_q[log p(x | z)] - β KL(q(z | x) ‖ p(z)),

trading reconstruction for a latent closer to the factorised prior (more disentangled codes,
blurrier reconstructions). The same model as ``vae --set beta=B``; registered so that it shows
in ``dgm list`` with its own default. Its reported ELBO and importance-weighted bound use β = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgm.models.latent.vae import VAE, VAEConfig
from dgm.registry import register


@dataclass(frozen=True)
class BetaVAEConfig(VAEConfig):
    """:class:`VAEConfig` with β = 4 (Higgins et al. use 4 on their shape data)."""

    beta: float = 4.0


@register("beta_vae")
class BetaVAE(VAE):
    """β-VAE (Higgins et al. 2017): the KL term weighted by beta = 4 in training."""

    Config = BetaVAEConfig
