"""Deterministic autoencoder: a code z = f(x) and a decoder trained to reconstruct x from it.

The reconstruction loss is the decoder head's negative log-likelihood -log p(x | z)
(``reconstruction="likelihood"``: cross-entropy for binary data, the categorical or logistic NLL
for discrete data, a Gaussian NLL for continuous data), or the squared error ‖E[x | z] - x‖² in
the encoder's input scale ([0, 1] for discrete data) with ``reconstruction="mse"``.

An autoencoder has no density and no prior, so its latent space may have holes that decode to
nothing like the data (the point the VAE fixes). ``sample`` draws z from a Gaussian fitted to the
training codes, N(m, S) with m and S exponential moving averages (momentum 0.01 per training
step) of the batch mean and covariance of the codes, then x from the decoder's head.

>>> import dgm
>>> ae = dgm.build("ae", data=dgm.DataInfo((1, 8, 8), "binary", 2), latent_dim=2)
>>> ae.encode(torch.zeros(3, 1, 8, 8)).shape
torch.Size([3, 2])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from dgm import rng
from dgm.errors import ConfigError
from dgm.models.base import as_batch
from dgm.models.latent.base import AutoencoderConfig, LatentModel
from dgm.registry import register

PRIOR_MOMENTUM = 0.01  # weight of a training batch in the fitted Gaussian of the codes


@dataclass(frozen=True)
class AEConfig(AutoencoderConfig):
    """Configuration of :class:`AE`: ``reconstruction`` is ``likelihood`` or ``mse``."""

    reconstruction: Literal["likelihood", "mse"] = "likelihood"


@register("ae")
class AE(LatentModel):
    """Autoencoder: deterministic code, reconstruction loss; samples from a Gaussian fitted to its codes."""

    has_temperature = True
    Config = AEConfig

    code_mean_ema: Tensor
    code_cov_ema: Tensor

    def __init__(self, config: AEConfig):
        super().__init__(config)
        self.register_buffer("code_mean_ema", torch.zeros(config.latent_dim))
        self.register_buffer("code_cov_ema", torch.eye(config.latent_dim))

    @classmethod
    def check_config(cls, config: AEConfig) -> None:
        super().check_config(config)
        if config.reconstruction not in ("likelihood", "mse"):
            raise ConfigError(f"reconstruction must be likelihood or mse, got {config.reconstruction!r}")

    def reconstruction_loss(self, x: Tensor, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Per-example reconstruction loss of ``x`` from codes ``z`` (B, K): -log p(x | z), or
        the squared error in the encoder's input scale."""
        if self.config.reconstruction == "likelihood":
            return -self.reconstruction_log_prob(x, z, cond)
        error = self.encoder_input(self.decode(z, cond)) - self.encoder_input(x)
        return error.flatten(1).square().sum(-1)

    def loss(self, batch, part: str | None = None) -> dict[str, Tensor]:
        """Mean reconstruction loss plus the penalties of :meth:`training_code`."""
        x, cond = as_batch(batch)
        z, penalties = self.training_code(x, cond)
        if self.training:
            self.update_code_gaussian(z.detach())
        rec = self.reconstruction_loss(x, z, cond).mean()
        loss = rec + sum(penalties.values())
        return {"loss": loss, "recon": rec.detach(), **{k: v.detach() for k, v in penalties.items()}}

    def training_code(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """The codes (B, K) the decoder reconstructs ``x`` from in training, and the weighted
        penalties (scalars) added to the loss: the code of ``x`` and none for a plain AE."""
        return self.encode(x, cond), {}

    @torch.no_grad()
    def update_code_gaussian(self, z: Tensor) -> None:
        """Move the fitted Gaussian of the codes towards the batch's mean and covariance."""
        mean = z.mean(0)
        centred = z - mean
        cov = centred.t() @ centred / max(1, z.shape[0] - 1)
        self.code_mean_ema.lerp_(mean.to(self.code_mean_ema.dtype), PRIOR_MOMENTUM)
        self.code_cov_ema.lerp_(cov.to(self.code_cov_ema.dtype), PRIOR_MOMENTUM)

    def prior_sample(self, n: int, generator: torch.Generator | None, temperature: float) -> Tensor:
        """z = m + T L ε with L L^T = S (+ 1e-6 I), the Gaussian fitted to the training codes."""
        jitter = 1e-6 * torch.eye(self.latent_dim, device=self.code_cov_ema.device)
        chol = torch.linalg.cholesky(self.code_cov_ema.double() + jitter).to(self.dtype)
        eps = rng.randn((n, self.latent_dim), generator, self.device).to(self.dtype)
        return self.code_mean_ema + temperature * eps @ chol.t()
