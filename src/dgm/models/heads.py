"""Observation heads: the distribution p(x | params) a decoder's outputs define over data,
factorised over the D dimensions, with P parameters per dimension.

======================  ====  ========================================================
head                    P     for
======================  ====  ========================================================
``bernoulli``           1     binary data: one logit per dimension
``categorical``         L     discrete data with L levels (few levels, e.g. ``digits``)
``logistic``            3M    discrete data with many levels (8-bit images): a mixture
                              of M discretized logistics (Salimans et al. 2017)
``gaussian``            1     continuous data: N(μ, σ²) with σ fixed, or learned per
                              dimension (one parameter each, not a network output)
======================  ====  ========================================================

:func:`make_head` picks the head from the data's support ("auto"): Bernoulli for binary data,
categorical up to :data:`MAX_CATEGORICAL_LEVELS` levels, the logistic mixture above (whose size
does not grow with the number of levels: a 256-way softmax per pixel would need hundreds of
millions of decoder weights on a colour image), Gaussian for continuous data.

>>> head = make_head(DataInfo((4,), "binary", 2))
>>> params = torch.zeros(3, 4, head.params_per_dim)
>>> head.log_prob(params, torch.ones(3, 4))   # 4 fair coins: 4 log(1/2)
tensor([-2.7726, -2.7726, -2.7726])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dgm import rng
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.discrete import (
    bernoulli_log_prob,
    categorical_log_prob,
    logistic_mixture_log_prob,
    split_logistic_params,
)

HEADS = ("auto", "bernoulli", "categorical", "logistic", "gaussian")
MAX_CATEGORICAL_LEVELS = 32  # "auto" uses a categorical head up to this many levels
LOG_2PI = math.log(2 * math.pi)


class Head(nn.Module):
    """p(x | params) for params (B, D, P) and x (B, D); see the module docstring."""

    params_per_dim: int = 1

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """sum_d log p(x_d | params_d): (B, D, P), (B, D) -> (B,)."""
        raise NotImplementedError

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A draw x ~ p(x | params): (B, D, P) -> (B, D), in the data's support."""
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """E[x | params] (B, D): what a reconstruction or a decoded latent shows."""
        raise NotImplementedError


class BernoulliHead(Head):
    """x_d ~ Bernoulli(sigmoid(params_d)) for binary data."""

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return bernoulli_log_prob(params[..., 0], x)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return rng.bernoulli(torch.sigmoid(params[..., 0]), generator)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params[..., 0])


class CategoricalHead(Head):
    """x_d ~ Categorical(softmax(params_d)) over the L levels 0..L-1."""

    def __init__(self, levels: int):
        super().__init__()
        self.params_per_dim = self.levels = levels

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return categorical_log_prob(params, x)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return rng.categorical(params, generator).to(params.dtype)

    def mean(self, params: Tensor) -> Tensor:
        values = torch.arange(self.levels, device=params.device, dtype=params.dtype)
        return torch.softmax(params, -1) @ values


class LogisticMixtureHead(Head):
    """x_d from a mixture of M logistics on [-1, 1] discretised into L bins (PixelCNN++)."""

    def __init__(self, levels: int, mixtures: int):
        super().__init__()
        self.levels, self.mixtures = levels, mixtures
        self.params_per_dim = 3 * mixtures

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return logistic_mixture_log_prob(params, x, self.levels)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        logits, mean, log_scale = split_logistic_params(params)
        m = rng.categorical(logits, generator).unsqueeze(-1)  # (B, D, 1) component drawn
        mu, s = mean.gather(-1, m).squeeze(-1), log_scale.gather(-1, m).squeeze(-1).exp()
        u = rng.rand(mu.shape, generator, mu.device).to(mu.dtype).clamp(1e-5, 1 - 1e-5)
        y = mu + s * (torch.log(u) - torch.log1p(-u))  # logistic draw on the [-1, 1] scale
        return self._to_levels(y).round()

    def mean(self, params: Tensor) -> Tensor:
        """The mean of the continuous mixture, clipped to [-1, 1], in level units (the rounding
        and clipping of the edge bins are ignored: a picture's value, not an exact moment)."""
        logits, mean, _ = split_logistic_params(params)
        return self._to_levels((torch.softmax(logits, -1) * mean).sum(-1))

    def _to_levels(self, y: Tensor) -> Tensor:
        return ((y.clamp(-1, 1) + 1) * (self.levels - 1) / 2).clamp(0, self.levels - 1)


class GaussianHead(Head):
    """x_d ~ N(μ_d, σ_d²): σ fixed at ``sigma``, or, with ``sigma=None``, one learned log σ_d per
    dimension (initialised at 0, kept at least -7)."""

    def __init__(self, dim: int, sigma: float | None):
        super().__init__()
        self.sigma = sigma
        self.log_sigma = nn.Parameter(torch.zeros(dim)) if sigma is None else None

    def _log_sigma(self, like: Tensor) -> Tensor:
        if self.log_sigma is None:
            return torch.full_like(like, math.log(self.sigma))
        return self.log_sigma.clamp_min(-7.0).to(like.dtype).expand_as(like)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        mu = params[..., 0]
        log_sigma = self._log_sigma(mu)
        return (-0.5 * ((x - mu) * torch.exp(-log_sigma)).square() - log_sigma - 0.5 * LOG_2PI).sum(-1)

    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mu = params[..., 0]
        return mu + self._log_sigma(mu).exp() * rng.randn(mu.shape, generator, mu.device).to(mu.dtype)

    def mean(self, params: Tensor) -> Tensor:
        return params[..., 0]


def head_name(info: DataInfo, kind: str = "auto") -> str:
    """The head ``kind`` resolves to on data ``info``; an error naming the fix when the data
    cannot take it."""
    if kind not in HEADS:
        raise ConfigError(f"decoder must be one of {', '.join(HEADS)}, got {kind!r}")
    if kind == "auto":
        if info.support == "binary":
            return "bernoulli"
        if info.support == "continuous":
            return "gaussian"
        return "categorical" if (info.levels or 0) <= MAX_CATEGORICAL_LEVELS else "logistic"
    allowed = {"bernoulli": ("binary",), "categorical": ("binary", "discrete"), "logistic": ("binary", "discrete")}
    allowed["gaussian"] = ("continuous",)
    if info.support not in allowed[kind]:
        fix = "--transform dequantize" if kind == "gaussian" else "--set decoder=gaussian"
        fix = "--transform binarize" if kind == "bernoulli" and info.support == "discrete" else fix
        raise DataError(
            f"a {kind} decoder takes {' or '.join(allowed[kind])} data, got {info.describe()}; "
            f"use --set decoder=auto or {fix}"
        )
    return kind


def make_head(info: DataInfo, kind: str = "auto", sigma: float | None = None, mixtures: int = 3) -> Head:
    """The observation head for data ``info`` (see :func:`head_name`)."""
    name = head_name(info, kind)
    if name == "bernoulli":
        return BernoulliHead()
    if name == "categorical":
        return CategoricalHead(int(info.levels or 2))
    if name == "logistic":
        if mixtures < 1:
            raise ConfigError(f"mixtures must be at least 1, got {mixtures}")
        return LogisticMixtureHead(int(info.levels or 2), mixtures)
    if sigma is not None and not 0 < sigma < float("inf"):
        raise ConfigError(f"sigma must be a positive number (or none to learn it), got {sigma}")
    return GaussianHead(info.dim, sigma)


__all__ = ["HEADS", "Head", "head_name", "make_head"]
