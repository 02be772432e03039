"""Model families. Importing this package registers every model."""

from dgm.models import autoregressive, baseline, diffusion, flows, gan, latent  # noqa: F401
