"""Log-likelihoods of factorised discrete outputs, shared by the models that emit logits."""

from __future__ import annotations

import math

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


def discretized_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int) -> Tensor:
    """log P(x) elementwise for integer levels x in 0..L-1 under a logistic(mean, s = e^log_scale)
    on [-1, 1] discretised into L bins (Salimans et al. 2017, PixelCNN++, eq. 2):

        P(x) = σ((c + δ - μ)/s) - σ((c - δ - μ)/s),   c = 2x/(L-1) - 1,  δ = 1/(L-1),

    with the edge bins open (x = 0 takes σ((c + δ - μ)/s), x = L-1 takes 1 - σ((c - δ - μ)/s)).
    Where the difference underflows (< 1e-5) it is the density at c times the bin width 2δ.
    All arguments broadcast; the result has their shape (no sum)."""
    half = 1.0 / (levels - 1)
    centred = 2 * half * x - 1 - mean
    inv_s = torch.exp(-log_scale)
    plus, minus = inv_s * (centred + half), inv_s * (centred - half)
    log_cdf_plus = plus - F.softplus(plus)  # log σ(plus)
    log_sf_minus = -F.softplus(minus)  # log (1 - σ(minus))
    delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_s * centred
    log_pdf_mid = mid - log_scale - 2 * F.softplus(mid)  # log of the logistic density at c
    inner = torch.where(delta > 1e-5, torch.log(delta.clamp_min(1e-12)), log_pdf_mid + math.log(2 * half))
    return torch.where(x < 0.5, log_cdf_plus, torch.where(x > levels - 1.5, log_sf_minus, inner))


def discretized_gaussian_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int) -> Tensor:
    """log P(x) elementwise for integer levels x in 0..L-1 under N(mean, s^2), s = e^log_scale,
    on [-1, 1] discretised into L bins (the decoder of Ho et al. 2020, eq. 13):

        P(x) = Phi((c + δ - μ)/s) - Phi((c - δ - μ)/s),   c = 2x/(L-1) - 1,  δ = 1/(L-1),

    with the edge bins open to -inf and +inf. The difference is taken in log space on the side
    of the smaller tail (log_ndtr), so bins far in either tail do not round to log 0; where it
    is below 1e-5 relative it is the density at c times the bin width 2δ. All arguments
    broadcast; the result has their shape (no sum)."""
    half = 1.0 / (levels - 1)
    centred = 2 * half * x - 1 - mean
    inv_s = torch.exp(-log_scale)
    upper, lower = inv_s * (centred + half), inv_s * (centred - half)
    flip = lower > 0  # both ends in the upper tail: P = Phi(-lower) - Phi(-upper)
    hi, lo = torch.where(flip, -lower, upper), torch.where(flip, -upper, lower)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    gap = (log_lo - log_hi).clamp(max=0.0)
    mid = inv_s * centred
    log_pdf_mid = -0.5 * mid**2 - 0.5 * math.log(2 * math.pi) - log_scale
    inner = torch.where(
        gap < -1e-5, log_hi + torch.log(-torch.expm1(gap.clamp(max=-1e-5))), log_pdf_mid + math.log(2 * half)
    )
    first = torch.special.log_ndtr(upper)
    last = torch.special.log_ndtr(-lower)
    return torch.where(x < 0.5, first, torch.where(x > levels - 1.5, last, inner))


def logistic_mixture_log_prob(params: Tensor, x: Tensor, levels: int) -> Tensor:
    """sum_d log sum_m π_dm P_logistic(x_d; μ_dm, s_dm) for ``params`` (B, D, 3M) holding the
    mixture logits, means and log-scales (M each) and integer-valued x (B, D) -> (B,)."""
    logits, mean, log_scale = split_logistic_params(params)
    log_p = discretized_logistic_log_prob(x.unsqueeze(-1), mean, log_scale, levels)  # (B, D, M)
    return torch.logsumexp(torch.log_softmax(logits, -1) + log_p, -1).sum(-1)


def split_logistic_params(params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(logits, means, log-scales), each (..., M), from (..., 3M); log-scales at least -7 as in
    PixelCNN++ (a bin is then many scales wide, so nothing is gained below)."""
    logits, mean, log_scale = params.chunk(3, dim=-1)
    return logits, mean, log_scale.clamp_min(-7.0)
