"""The Gaussian diffusion process: noising, the posterior q(x_s | x_t, x_0) and the network's
prediction targets, written once for every sampler, the loss and the bound.

With a = abar_t and b = abar_s for two timesteps s < t (s = -1 is the data, b = 1):

- noising (Ho et al. 2020, eq. 4): x_t = sqrt(a) x_0 + sqrt(1 - a) eps, eps ~ N(0, I);
- one forward step (eq. 2): x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps; from s to t in one
  jump, x_t = sqrt(a / b) x_s + sqrt(1 - a / b) eps;
- the posterior (eq. 6-7, for s = t - 1; the same derivation for any s < t):
  q(x_s | x_t, x_0) = N(mu~, beta~ I) with beta' = 1 - a / b,
      mu~   = sqrt(b) beta' / (1 - a) x_0 + sqrt(a / b) (1 - b) / (1 - a) x_t,
      beta~ = beta' (1 - b) / (1 - a);
- prediction targets (Salimans & Ho 2022 for v): the network predicts eps, x_0 or
  v = sqrt(a) eps - sqrt(1 - a) x_0; from any of them and x_t,
      x_0 = (x_t - sqrt(1 - a) eps) / sqrt(a),  eps = (x_t - sqrt(a) x_0) / sqrt(1 - a),
      x_0 = sqrt(a) x_t - sqrt(1 - a) v,        eps = sqrt(1 - a) x_t + sqrt(a) v.

The lecture notes' q(x_t | x_{t-1}) with mean sqrt(beta_t) x_{t-1} and variance 1 - beta_t is a
typo: with it the signal would vanish in one step at small beta.

Coefficients ``a`` and ``b`` are float64 tensors broadcastable to x (see :func:`per_example`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dgm.errors import ConfigError

PREDICTIONS = ("eps", "x0", "v")


def per_example(values: Tensor, like: Tensor) -> Tensor:
    """Coefficients ``values`` of shape (B,) (or a scalar) as (B, 1, ..., 1) in ``like``'s dtype
    and device, to multiply examples of shape (B, ...)."""
    values = torch.as_tensor(values).to(device=like.device, dtype=like.dtype)
    if values.dim() == 0:
        return values
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def noised(x0: Tensor, eps: Tensor, abar: Tensor) -> Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, a draw of q(x_t | x_0) (abar: (B,) or scalar)."""
    a = per_example(abar, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def forward_jump(x_s: Tensor, eps: Tensor, abar_t: Tensor, abar_s: Tensor) -> Tensor:
    """x_t = sqrt(a / b) x_s + sqrt(1 - a / b) eps, a draw of q(x_t | x_s) for s < t; with
    s = t - 1 the one-step process q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)."""
    ratio = per_example(torch.as_tensor(abar_t) / torch.as_tensor(abar_s), x_s)
    return ratio.sqrt() * x_s + (1 - ratio).sqrt() * eps


class Posterior(NamedTuple):
    """q(x_s | x_t, x_0) = N(coef_x0 x_0 + coef_xt x_t, variance), coefficients float64."""

    coef_x0: Tensor
    coef_xt: Tensor
    variance: Tensor  # beta~
    beta: Tensor  # beta' = 1 - abar_t / abar_s, the variance of q(x_t | x_s) (the "large" choice)

    def mean(self, x0: Tensor, x_t: Tensor) -> Tensor:
        return per_example(self.coef_x0, x0) * x0 + per_example(self.coef_xt, x_t) * x_t


def posterior(abar_t: Tensor, abar_s: Tensor) -> Posterior:
    """The coefficients of q(x_s | x_t, x_0) for s < t (see the module docstring)."""
    a, b = torch.as_tensor(abar_t, dtype=torch.float64), torch.as_tensor(abar_s, dtype=torch.float64)
    beta = 1 - a / b
    return Posterior(b.sqrt() * beta / (1 - a), (a / b).sqrt() * (1 - b) / (1 - a), beta * (1 - b) / (1 - a), beta)


def check_prediction(kind: str) -> str:
    if kind not in PREDICTIONS:
        raise ConfigError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {kind!r}")
    return kind


def target(kind: str, x0: Tensor, eps: Tensor, abar: Tensor) -> Tensor:
    """What a network predicting ``kind`` ("eps", "x0" or "v") should output for x_t = noised(x0, eps)."""
    if kind == "eps":
        return eps
    if kind == "x0":
        return x0
    a = per_example(abar, x0)
    return a.sqrt() * eps - (1 - a).sqrt() * x0


def x0_and_eps(kind: str, output: Tensor, x_t: Tensor, abar: Tensor) -> tuple[Tensor, Tensor]:
    """(x_0, eps) implied by a network ``output`` predicting ``kind`` at x_t (the inverse of
    :func:`target`). At abar = 1 an eps prediction gives x_0 = x_t."""
    a = per_example(abar, x_t)
    if kind == "eps":
        return (x_t - (1 - a).sqrt() * output) / a.sqrt(), output
    if kind == "x0":
        return output, (x_t - a.sqrt() * output) / (1 - a).sqrt()
    return a.sqrt() * x_t - (1 - a).sqrt() * output, (1 - a).sqrt() * x_t + a.sqrt() * output


def eps_from_x0(x0: Tensor, x_t: Tensor, abar: Tensor) -> Tensor:
    """eps = (x_t - sqrt(a) x_0) / sqrt(1 - a), e.g. after clipping a predicted x_0."""
    a = per_example(abar, x_t)
    return (x_t - a.sqrt() * x0) / (1 - a).sqrt()
