"""The fully factorised baseline: every dimension independent of the others.

    log p(x) = sum_d log p(x_d)

with p(x_d) a Bernoulli (binary data, one logit per dimension), a categorical over the L
levels (discrete data, L logits per dimension) or a Gaussian N(mu_d, sigma_d^2) (continuous
data, a mean and a log standard deviation per dimension). Its maximum-likelihood fit is the
per-pixel frequency table (or per-dimension mean and standard deviation); any model that cannot
beat it has learned nothing about the dependencies between dimensions. With
``conditional=True`` each class has its own table, p(x | y).

>>> import dgm
>>> model = dgm.build("independent", data=dgm.DataInfo((3,), "binary"))
>>> model.log_prob(torch.zeros(2, 3)).detach()  # every pixel a fair coin: 3 log(1/2)
tensor([-2.0794, -2.0794])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dgm import rng
from dgm.errors import DataError
from dgm.models.base import GenerativeModel, ModelConfig
from dgm.models.discrete import discrete_log_prob
from dgm.registry import register


@dataclass(frozen=True)
class IndependentConfig(ModelConfig):
    """Configuration of :class:`Independent`: nothing beyond the data and ``conditional``."""


@register("independent")
class Independent(GenerativeModel):
    """Independent Bernoulli / categorical / Gaussian per dimension: the fully factorised baseline."""

    family = "baseline"
    density = "exact"
    can_condition = True
    supports = frozenset({"binary", "discrete", "continuous"})
    Config = IndependentConfig

    def __init__(self, config: IndependentConfig):
        super().__init__(config)
        info = config.data
        if info.support == "discrete" and (info.levels or 0) < 2:
            raise DataError(f"independent needs the number of levels of discrete data, got {info.describe()}")
        tables = info.num_classes if config.conditional else 1
        per_dim = {"binary": (), "discrete": (int(info.levels or 0),), "continuous": (2,)}[info.support]
        # (tables, D) logits of p(x_d = 1), (tables, D, L) logits over the levels, or (tables, D, 2)
        # Gaussian mean and log standard deviation; zeros = uniform / standard normal
        self.table = nn.Parameter(torch.zeros(tables, info.dim, *per_dim))

    def logits(self, cond: Tensor | None, n: int) -> Tensor:
        """Table rows for ``n`` examples: (n, D) logits for binary data, (n, D, L) logits for
        discrete data, (n, D, 2) mean and log standard deviation for continuous data."""
        if cond is None:
            return self.table[0].expand(n, *self.table.shape[1:])
        return self.table[cond]

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) in nats, (B,)."""
        x = self.flat_x(x)
        cond = self.check_cond(cond, x.shape[0])
        logits = self.logits(cond, x.shape[0])
        if self.config.data.support == "continuous":
            mean, log_std = logits.unbind(-1)
            z = (x - mean) * torch.exp(-log_std)
            return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return discrete_log_prob(logits, x)

    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` examples (n, *data.shape), every dimension independently."""
        cond = self.check_cond(cond, n)
        logits = self.logits(cond, n)
        if self.config.data.support == "continuous":
            mean, log_std = logits.unbind(-1)
            x = mean + log_std.exp() * rng.randn(mean.shape, generator, mean.device).to(mean.dtype)
        elif logits.dim() == 2:
            x = rng.bernoulli(torch.sigmoid(logits), generator)
        else:
            x = rng.categorical(logits, generator).to(logits.dtype)
        return x.reshape(n, *self.config.data.shape)
