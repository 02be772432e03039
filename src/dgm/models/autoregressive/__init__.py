"""Autoregressive models: exact log-likelihood by the chain rule, sequential sampling."""

from dgm.models.autoregressive import fvsbn, gated_pixelcnn, made, nade, pixelcnn, transformer, wavenet  # noqa: F401
