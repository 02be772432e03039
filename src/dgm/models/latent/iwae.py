"""Importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016): the VAE's networks
trained on the k-sample bound

    L_k(x) = E[log (1/k) Σ_{i=1..k} p(x, z_i) / q(z_i | x)],   z_i ~ q(z | x),

which equals the ELBO for k = 1 and increases with k towards log p(x) (theorem 1), so the
posterior is free to be broader than the ELBO allows. The same model as
``vae --set iw_samples=K``, registered with k = 5 (one of the paper's settings); training costs
k decoder passes per example.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgm.models.latent.vae import VAE, VAEConfig
from dgm.registry import register


@dataclass(frozen=True)
class IWAEConfig(VAEConfig):
    """:class:`VAEConfig` with ``iw_samples`` = 5."""

    iw_samples: int = 5


@register("iwae")
class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al. 2016): trained on the k-sample bound, k = 5."""

    Config = IWAEConfig
