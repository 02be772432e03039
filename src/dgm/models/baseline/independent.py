"""The fully factorised baseline: every dimension independent of the others.

    log p(x) = sum_d log p(x_d)

with p(x_d) a Bernoulli (binary data, one logit per dimension) or a categorical over the L
levels (discrete data, L logits per dimension). Its maximum-likelihood fit is the per-pixel
frequency table; any model that cannot beat it has learned nothing about the dependencies
between dimensions. With ``conditional=True`` each class has its own table, p(x | y).

>>> import dgm
>>> model = dgm.build("independent", data=dgm.DataInfo((3,), "binary"))
>>> model.log_prob(torch.zeros(2, 3)).detach()  # every pixel a fair coin: 3 log(1/2)
tensor([-2.0794, -2.0794])
"""

from __future__ import annotations

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
    """Independent Bernoulli / categorical per dimension: the fully factorised baseline."""

    family = "baseline"
    density = "exact"
    can_condition = True
    supports = frozenset({"binary", "discrete"})
    Config = IndependentConfig

    def __init__(self, config: IndependentConfig):
        super().__init__(config)
        info = config.data
        if info.support == "discrete" and (info.levels or 0) < 2:
            raise DataError(f"independent needs the number of levels of discrete data, got {info.describe()}")
        tables = info.num_classes if config.conditional else 1
        per_dim = () if info.support == "binary" else (int(info.levels),)
        # (tables, D) logits of p(x_d = 1), or (tables, D, L) logits over the levels; zeros = uniform
        self.table = nn.Parameter(torch.zeros(tables, info.dim, *per_dim))

    def logits(self, cond: Tensor | None, n: int) -> Tensor:
        """Logits for ``n`` examples: (n, D) for binary data, (n, D, L) for discrete data."""
        if cond is None:
            return self.table[0].expand(n, *self.table.shape[1:])
        return self.table[cond]

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) in nats, (B,)."""
        x = self.flat_x(x)
        cond = self.check_cond(cond, x.shape[0])
        logits = self.logits(cond, x.shape[0])
        return discrete_log_prob(logits, x)

    @torch.no_grad()
    def sample(self, n: int, cond: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` examples (n, *data.shape), every dimension independently."""
        cond = self.check_cond(cond, n)
        logits = self.logits(cond, n)
        if logits.dim() == 2:
            x = rng.bernoulli(torch.sigmoid(logits), generator)
        else:
            x = rng.categorical(logits, generator).to(logits.dtype)
        return x.reshape(n, *self.config.data.shape)
