"""Normalizing-flow posteriors for VAEs: q(z_L | x) is a diagonal Gaussian q_0(z_0 | x) pushed
through L invertible maps z_l = f_l(z_{l-1}), so that (Rezende & Mohamed 2015, eq. 13)

    log q(z_L | x) = log q_0(z_0 | x) - Σ_l log |det ∂f_l / ∂z_{l-1}|.

- ``planar``: f(z) = z + û tanh(wᵀz + b) (Rezende & Mohamed 2015, eq. 10), amortised: the
  encoder outputs (u, w, b) of every layer for each x; û keeps the map invertible.
- ``iaf``: inverse autoregressive flow (Kingma et al. 2016, eq. 10-11), z_d ← (z_d - μ_d(z_<d, h))
  exp(-α_d(z_<d, h)) with a MADE conditioned on the encoder's features h; the orderings
  alternate between layers. One pass per layer: the one-pass (``forward``) direction of
  :class:`~dgm.nn.bijectors.MaskedAffineAutoregressive`.

Both come from :mod:`dgm.nn.bijectors`, whose maps return their log-determinant.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from dgm.errors import ConfigError
from dgm.nn.bijectors import MaskedAffineAutoregressive
from dgm.nn.bijectors.planar import planar_map

Posterior = Literal["gaussian", "planar", "iaf"]
POSTERIORS: tuple[str, ...] = ("gaussian", "planar", "iaf")


def amortised_features(kind: str, latent_dim: int, layers: int) -> int:
    """Encoder outputs a ``kind`` flow of ``layers`` layers takes per example: (u, w, b) of each
    planar layer, 2K + 1 numbers; none for ``iaf`` and ``gaussian``."""
    return layers * (2 * latent_dim + 1) if kind == "planar" else 0


class FlowPosterior(nn.Module):
    """The flow part of a flow posterior: ``forward(z0, amortised, h) -> (z_L, Σ ladj)``.

    ``amortised`` (B, :attr:`amortised_features`) are the encoder outputs that parameterise the
    planar layers (none for ``iaf``); ``h`` (B, features) are the encoder features that
    condition the IAF layers. ``z0`` may carry leading sample axes (k, B, K)."""

    def __init__(self, kind: str, latent_dim: int, layers: int, features: int, hidden: tuple[int, ...] = (128,)):
        super().__init__()
        if kind not in POSTERIORS[1:]:
            raise ConfigError(f"a flow posterior is planar or iaf, got {kind!r}")
        if layers < 1:
            raise ConfigError(f"flow_layers must be at least 1 for a {kind} posterior, got {layers}")
        self.kind, self.latent_dim, self.layers = kind, latent_dim, layers
        self.amortised_features = amortised_features(kind, latent_dim, layers)
        self.iaf = nn.ModuleList(
            MaskedAffineAutoregressive(
                latent_dim, hidden, order="natural" if i % 2 == 0 else "reversed", context_features=features
            )
            for i in range(layers if kind == "iaf" else 0)
        )

    def forward(self, z: Tensor, amortised: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        lead, k = z.shape[:-1], self.latent_dim
        ladj = z.new_zeros(lead)
        if self.kind == "planar":
            params = amortised.view(*amortised.shape[:-1], self.layers, 2 * k + 1).expand(*lead, -1, -1)
            for i in range(self.layers):
                u, w, b = params[..., i, :k], params[..., i, k : 2 * k], params[..., i, 2 * k]
                z, step = planar_map(z.reshape(-1, k), u.reshape(-1, k), w.reshape(-1, k), b.reshape(-1))
                z, ladj = z.view(*lead, k), ladj + step.view(lead)
            return z, ladj
        context = h.expand(*lead, h.shape[-1]).reshape(-1, h.shape[-1])
        flat = z.reshape(-1, k)
        for layer in self.iaf:
            flat, step = layer(flat, context)
            ladj = ladj + step.view(lead)
        return flat.view(*lead, k), ladj
