"""Model families. Importing this package registers every model."""

from dgm.models import autoregressive, baseline, diffusion, flows, latent  # noqa: F401
