"""Generative adversarial networks: a generator and a discriminator trained against each other."""

from dgm.models.gan import gan  # noqa: F401
