"""Log-likelihoods of factorised discrete outputs, shared by the models that emit logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bernoulli_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """sum_d log Bernoulli(x_d; sigmoid(logits_d)) for logits and x of shape (B, D) -> (B,)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def categorical_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """sum_d log softmax(logits_d)[x_d] for logits (B, D, L) and integer-valued x (B, D) -> (B,)."""
    log_p = torch.log_softmax(logits, dim=-1)  # (B, D, L)
    return log_p.gather(-1, x.long().unsqueeze(-1)).squeeze(-1).sum(-1)


def discrete_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """Bernoulli log-likelihood for logits (B, D), categorical for logits (B, D, L)."""
    return bernoulli_log_prob(logits, x) if logits.dim() == 2 else categorical_log_prob(logits, x)
