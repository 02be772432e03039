"""Autoregressive models: exact log-likelihood by the chain rule, sequential sampling."""

from dgm.models.autoregressive import fvsbn, made  # noqa: F401
