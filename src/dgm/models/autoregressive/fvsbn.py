"""FVSBN: the fully visible sigmoid belief network.

Neal (1992), "Connectionist learning of belief networks"; Frey (1998), "Graphical Models for
Machine Learning and Digital Communication". One logistic regression per dimension on all the
dimensions before it (in raster order):

    p(x_d = 1 | x_<d) = sigmoid(b_d + sum_{j<d} W_dj x_j),   log p(x) = sum_d log p(x_d | x_<d)

with ``W`` strictly lower triangular, so the model has D(D-1)/2 weights + D biases
= D(D+1)/2 parameters. Only the lower triangle is stored (packed row by row), so the
parameter count is exactly that. The negative log-likelihood is convex in (W, b): the
parameters start at zero (every pixel a fair coin) and weight decay is the regulariser that
matters on small data. With ``conditional=True`` each class adds its own bias vector.

Sampling draws the pixels in raster order with a temperature T (the logits divided by T,
T = 0 the likelier value). ``cached=True`` keeps the logits of every pixel, b + W x, and adds
column d of W once x_d is drawn (O(D) per pixel and example); ``cached=False`` recomputes
them all, b + W x, at every pixel (O(D^2)). Both draw the same samples from the same generator.

>>> import dgm
>>> model = dgm.build("fvsbn", data=dgm.DataInfo((5,), "binary"))
>>> sum(p.numel() for p in model.parameters())
15
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.models.autoregressive.base import AutoregressiveModel, keep_given
from dgm.models.autoregressive.outputs import draw_level
from dgm.models.base import ModelConfig
from dgm.models.discrete import bernoulli_log_prob
from dgm.models.heads import BernoulliHead
from dgm.registry import register


@dataclass(frozen=True)
class FVSBNConfig(ModelConfig):
    """Configuration of :class:`FVSBN`: nothing beyond the data and ``conditional``."""


@register("fvsbn")
class FVSBN(AutoregressiveModel):
    """Fully visible sigmoid belief net: a logistic regression per pixel on the pixels before it."""

    can_condition = True
    supports = frozenset({"binary"})
    # batches of 32: 90.88 nats on binarized mnist5k in 74 s (README), where 128 is far slower to converge
    train_defaults = {"batch_size": 32}
    Config = FVSBNConfig

    rows: Tensor
    cols: Tensor

    def __init__(self, config: FVSBNConfig):
        super().__init__(config)
        dim = config.data.dim
        rows, cols = torch.tril_indices(dim, dim, offset=-1)  # positions (d, j) with j < d
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.weight = nn.Parameter(torch.zeros(rows.numel()))  # W_dj, packed: D(D-1)/2
        self.bias = nn.Parameter(torch.zeros(dim))  # b_d
        if config.conditional:  # one bias vector per class
            self.cond_bias = nn.Embedding(config.data.num_classes, dim)
            nn.init.zeros_(self.cond_bias.weight)

    def weight_matrix(self) -> Tensor:
        """The strictly lower-triangular weight matrix W, (D, D)."""
        dim = self.bias.numel()
        w = self.weight.new_zeros(dim, dim)
        return w.index_put((self.rows, self.cols), self.weight)

    def _bias(self, cond: Tensor | None, n: int) -> Tensor:
        """Biases b (+ the class's bias), (n, D)."""
        b = self.bias.expand(n, -1)
        return b + self.cond_bias(cond) if cond is not None else b

    def logits(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits of p(x_d = 1 | x_<d) for every d: x (B, *data.shape) -> (B, D)."""
        x = self.flat_x(x)
        cond = self.check_cond(cond, x.shape[0])
        return F.linear(x, self.weight_matrix()) + self._bias(cond, x.shape[0])

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) in nats, (B,)."""
        logits = self.logits(x, cond)
        return bernoulli_log_prob(logits, self.flat_x(x))

    def generate(self, n, cond, generator, temperature, cached, given=None, keep=None):
        """Pixels in raster order, each a Bernoulli draw from its logit b_d + sum_{j<d} W_dj x_j:
        kept up to date (``cached``) or recomputed for all pixels (see the module docstring)."""
        w = self.weight_matrix()  # (D, D)
        b = self._bias(cond, n)  # (n, D)
        x = torch.zeros_like(b)  # (n, D)
        logits = b.clone()  # (n, D): b + W x for the pixels drawn so far (cached)
        head = BernoulliHead()
        log_p = b.new_zeros(n)
        for d in range(x.shape[1]):
            logit = logits[:, d] if cached else torch.addmm(b, x, w.t())[:, d]  # (n,)
            value = keep_given(draw_level(head, logit.unsqueeze(1), temperature, generator), d, given, keep)
            log_p += bernoulli_log_prob(logit.unsqueeze(1), value.unsqueeze(1))
            x[:, d] = value
            if cached:
                logits.addr_(value, w[:, d])  # the pixels after d see x_d through column d of W
        return x, log_p
