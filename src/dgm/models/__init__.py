"""Model families. Importing this package registers every model."""

from dgm.models import autoregressive, baseline, flows  # noqa: F401
