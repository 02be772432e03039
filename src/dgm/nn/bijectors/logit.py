"""Elementwise pre-processing bijectors: the logit of bounded data and the log of positive data.

- :class:`Logit` maps data in [0, 1] (scaled pixels) to the real line, as RealNVP does before
  its couplings (Dinh, Sohl-Dickstein & Bengio 2017, section 4.1); ``Inverse(Logit(0.0))`` is
  the plain sigmoid.
- :class:`Log` maps positive data to the real line; with a standard normal base it is the
  log-normal distribution, the textbook 1-D flow ``x = exp(z)``.

Both act on every element of any event shape, (B, ...) -> (B, ...), with ``ladj`` (B,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dgm.errors import ConfigError
from dgm.nn.bijectors.base import Bijector, sum_except_batch


class Logit(Bijector):
    """``z = logit(s)`` with ``s = α + (1 - 2α) x``, for data ``x`` in [0, 1] (RealNVP, section 4.1).

    The squeeze by ``α`` keeps ``x = 0`` and ``x = 1`` finite: ``z`` lies in
    ``[logit(α), logit(1 - α)]``. Per element,

        log dz/dx = log(1 - 2α) - log s - log(1 - s),

    with ``1 - s`` computed as ``α + (1 - 2α)(1 - x)`` so that values near 1 keep their
    precision. The inverse is ``x = (sigmoid(z) - α) / (1 - 2α)`` with
    ``log dx/dz = -log(1 - 2α) + log σ(z) + log σ(-z)``, stable for any ``z``.
    ``alpha = 0`` is the plain logit (infinite at 0 and 1).

    >>> x = torch.tensor([[0.0, 0.5, 1.0]])
    >>> z, ladj = Logit(0.05)(x)
    >>> torch.allclose(Logit(0.05).inverse(z)[0], x)
    True
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ConfigError(f"Logit needs 0 <= alpha < 0.5, got {alpha}")
        self.alpha = alpha

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a = self.alpha
        log_s = torch.log(a + (1 - 2 * a) * x)
        log_1ms = torch.log(a + (1 - 2 * a) * (1 - x))
        return log_s - log_1ms, sum_except_batch(math.log1p(-2 * a) - log_s - log_1ms)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a = self.alpha
        x = (torch.sigmoid(z) - a) / (1 - 2 * a)
        # log σ(z) + log σ(-z) = -softplus(-z) - softplus(z)
        log_deriv = -F.softplus(-z) - F.softplus(z) - math.log1p(-2 * a)
        return x, sum_except_batch(log_deriv)


class Log(Bijector):
    """``z = log x`` for positive data; its inverse ``x = exp(z)`` is the generative map.

    ``log dz/dx = -log x = -z``, ``log dx/dz = z``. With a standard normal base this is the
    log-normal density ``p(x) = N(log x; 0, 1) / x``.

    >>> z, ladj = Log()(torch.tensor([[1.0, 4.0]]))
    >>> torch.allclose(ladj, -z.sum(1)), torch.allclose(Log().inverse(z)[0], torch.tensor([[1.0, 4.0]]))
    (True, True)
    """

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = torch.log(x)
        return z, -sum_except_batch(z)

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return torch.exp(z), sum_except_batch(z)
