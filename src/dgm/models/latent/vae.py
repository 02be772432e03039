"""Variational autoencoder (Kingma & Welling 2013), with β (Higgins et al. 2017), the
importance-weighted bound (Burda et al. 2016) and normalizing-flow posteriors.

An encoder gives q(z | x) = N(μ(x), diag σ²(x)) (optionally pushed through a flow,
:mod:`.posterior`), a decoder gives p(x | z) (:mod:`dgm.models.heads`), the prior is
p(z) = N(0, I). With the reparameterized z = μ + σ ⊙ ε,

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) ‖ p(z))  <=  log p(x),

with the KL in closed form for a Gaussian posterior (Monte Carlo, log q(z|x) - log p(z), for a
flow). Training minimises -(E_q[log p(x|z)] - β KL): ``beta`` = 1 is the VAE, β > 1 the β-VAE.
With ``iw_samples`` = k > 1 it maximises the importance-weighted bound instead (IWAE),

    L_k(x) = E[log (1/k) Σ_i p(x, z_i) / q(z_i | x)],   z_i ~ q(z | x),

which increases with k towards log p(x). ``log_prob(x, k)`` is that estimate (``k`` samples,
default 100): the number ``dgm eval`` reports as ``nll_iw``, beside ``nll_elbo`` from ``elbo``.

>>> import dgm
>>> vae = dgm.build("vae", data=dgm.DataInfo((1, 8, 8), "binary", 2), latent_dim=4)
>>> bool((vae.elbo(torch.zeros(3, 1, 8, 8)) <= vae.log_prob(torch.zeros(3, 1, 8, 8), k=50) + 1.0).all())
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dgm.errors import ConfigError
from dgm.models.base import as_batch
from dgm.models.latent.base import AutoencoderConfig, LatentModel
from dgm.models.latent.gaussian import gaussian_kl, gaussian_log_prob, reparameterize, std_normal_log_prob
from dgm.models.latent.posterior import POSTERIORS, FlowPosterior, amortised_features
from dgm.registry import register

LOG_VAR_RANGE = (-14.0, 8.0)  # σ from 1e-3 to 55: beyond, a step of the encoder only overflows
MAX_DECODER_BATCH = 4096  # examples x samples decoded at once by log_prob


@dataclass(frozen=True)
class VAEConfig(AutoencoderConfig):
    """Configuration of :class:`VAE`.

    - ``beta``: weight of the KL term in training (1: the VAE; > 1: β-VAE). The reported ELBO
      always has β = 1.
    - ``iw_samples``: k of the training bound; 1 is the ELBO, k > 1 the IWAE bound.
    - ``posterior``: ``gaussian``, or a flow on top of it: ``planar`` (amortised) or ``iaf``,
      with ``flow_layers`` layers (IAF's MADEs have ``flow_hidden`` units).
    """

    beta: float = 1.0
    iw_samples: int = 1
    posterior: str = "gaussian"
    flow_layers: int = 4
    flow_hidden: tuple[int, ...] = (128,)


@register("vae")
class VAE(LatentModel):
    """Variational autoencoder (Kingma & Welling 2013): ELBO training, IWAE bound, flow posteriors."""

    density = "bound"
    importance_weighted = True
    has_temperature = True
    Config = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.flow: FlowPosterior | None = None
        if config.posterior != "gaussian":
            features = config.hidden[-1] + (self.embedding.embedding_dim if self.embedding is not None else 0)
            self.flow = FlowPosterior(
                config.posterior, config.latent_dim, config.flow_layers, features, config.flow_hidden
            )

    @classmethod
    def check_config(cls, config: VAEConfig) -> None:
        super().check_config(config)
        if not 0 <= config.beta < float("inf"):
            raise ConfigError(f"beta must be a number >= 0, got {config.beta}")
        if config.iw_samples < 1:
            raise ConfigError(f"iw_samples must be at least 1 (1 trains on the ELBO), got {config.iw_samples}")
        if config.iw_samples > 1 and config.beta != 1:
            raise ConfigError("the importance-weighted bound has no beta; use iw_samples=1 with beta, or beta=1")
        if config.posterior not in POSTERIORS:
            raise ConfigError(f"posterior must be one of {', '.join(POSTERIORS)}, got {config.posterior!r}")
        if config.posterior != "gaussian" and (config.flow_layers < 1 or min(config.flow_hidden, default=0) < 1):
            raise ConfigError(
                f"a {config.posterior} posterior needs flow_layers >= 1 and positive flow_hidden, got "
                f"flow_layers={config.flow_layers}, flow_hidden={config.flow_hidden}"
            )

    def code_features(self) -> int:
        """μ and log σ² (2K outputs), and the parameters of an amortised flow."""
        config = self.config
        return 2 * self.latent_dim + amortised_features(config.posterior, config.latent_dim, config.flow_layers)

    # ----- the posterior ------------------------------------------------------------------
    def encode(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(μ, log σ²) of the Gaussian q_0(z | x), each (B, K)."""
        return self._encode(x, cond)[:2]

    def _encode(self, x: Tensor, cond: Tensor | None):
        self.flat_x(x)
        h = self.features(self.encoder_input(x), cond)
        out = self.code_head(h)
        k = self.latent_dim
        return out[:, :k], out[:, k : 2 * k].clamp(*LOG_VAR_RANGE), out[:, 2 * k :], h

    def posterior_sample(
        self,
        x: Tensor,
        cond: Tensor | None = None,
        k: int = 1,
        generator: torch.Generator | None = None,
        encoded: tuple[Tensor, ...] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``k`` reparameterized draws z ~ q(z | x), (k, B, K), their log q(z | x) (k, B), and the
        analytic KL(q ‖ p) (B,) when q is Gaussian (None for a flow posterior). ``encoded`` is
        the encoder's output for ``x`` when the caller has it (several draws of one batch)."""
        mean, log_var, amortised, h = self._encode(x, cond) if encoded is None else encoded
        z = reparameterize(mean, log_var, generator, k)  # (k, B, K)
        log_q = gaussian_log_prob(z, mean, log_var)
        if self.flow is None:
            return z, log_q, gaussian_kl(mean, log_var)
        z, ladj = self.flow(z, amortised, h)
        return z, log_q - ladj, None

    def log_weights(
        self,
        x: Tensor,
        cond: Tensor | None = None,
        k: int = 1,
        generator: torch.Generator | None = None,
        encoded: tuple[Tensor, ...] | None = None,
    ) -> Tensor:
        """log w_i = log p(x | z_i) + log p(z_i) - log q(z_i | x) for k draws z_i ~ q: (k, B)."""
        z, log_q, _ = self.posterior_sample(x, cond, k, generator, encoded)
        return self.reconstruction_log_prob(x, z, cond) + std_normal_log_prob(z) - log_q

    # ----- bounds -------------------------------------------------------------------------
    def elbo_terms(self, x: Tensor, cond: Tensor | None = None, generator: torch.Generator | None = None):
        """(E_q log p(x|z), KL(q ‖ p)) per example, (B,) each, from one draw of z (the KL is
        analytic for a Gaussian posterior, the one-draw log q - log p for a flow)."""
        z, log_q, kl = self.posterior_sample(x, cond, 1, generator)
        rec = self.reconstruction_log_prob(x, z, cond)[0]
        if kl is None:
            kl = (log_q - std_normal_log_prob(z))[0]
        return rec, kl

    def elbo(self, x: Tensor, cond: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """The evidence lower bound per example (B,), one posterior draw (β = 1)."""
        rec, kl = self.elbo_terms(x, cond, generator)
        return rec - kl

    def log_prob(
        self, x: Tensor, cond: Tensor | None = None, k: int = 100, generator: torch.Generator | None = None
    ) -> Tensor:
        """The importance-weighted estimate log (1/k) Σ_i w_i of log p(x) (B,), a lower bound in
        expectation that tightens as ``k`` grows (Burda et al. 2016, theorem 1); decoded in chunks
        of at most MAX_DECODER_BATCH examples x samples."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        chunk = max(1, MAX_DECODER_BATCH // max(1, x.shape[0]))
        encoded = self._encode(x, cond)  # once for every chunk of draws
        log_w = torch.cat(
            [self.log_weights(x, cond, min(chunk, k - i), generator, encoded) for i in range(0, k, chunk)]
        )
        return torch.logsumexp(log_w, 0) - math.log(k)

    def loss(self, batch, part: str | None = None) -> dict[str, Tensor]:
        """-(E log p(x|z) - β KL) averaged over the batch, or the negative IWAE bound."""
        x, cond = as_batch(batch)
        k = self.config.iw_samples
        if k > 1:
            log_w = self.log_weights(x, cond, k)
            nll_iw = -(torch.logsumexp(log_w, 0) - math.log(k)).mean()
            return {"loss": nll_iw, "nll_iw": nll_iw.detach()}
        rec, kl = self.elbo_terms(x, cond)
        loss = -(rec - self.config.beta * kl).mean()
        return {"loss": loss, "nll_elbo": -(rec - kl).mean().detach(), "kl": kl.mean().detach()}
