"""Diffusion models: a fixed noising process and a network trained to reverse it."""

from dgm.models.diffusion import ddpm  # noqa: F401
