"""Latent-variable autoencoders: AE, denoising and contractive AEs, VAE, β-VAE, conditional VAE,
IWAE and flow posteriors (:mod:`.base` for what they share)."""

from dgm.models.latent import ae, beta_vae, cae, cvae, dae, iwae, vae  # noqa: F401
