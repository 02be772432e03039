"""Diagonal Gaussians of latent-variable models: the reparameterized sample, the density and the
analytic KL divergence to the standard normal prior (Kingma & Welling 2013)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dgm import rng

LOG_2PI = math.log(2 * math.pi)


def reparameterize(
    mean: Tensor, log_var: Tensor, generator: torch.Generator | None = None, k: int | None = None
) -> Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I) (Kingma & Welling 2013, section 2.4): a sample of
    N(μ, diag σ²) that is differentiable in μ and σ = exp(log_var / 2).

    Shapes: ``mean``, ``log_var`` (B, K) -> (B, K), or (k, B, K) with ``k`` samples each."""
    shape = mean.shape if k is None else (k, *mean.shape)
    eps = rng.randn(shape, generator, mean.device).to(mean.dtype)
    return mean + torch.exp(0.5 * log_var) * eps


def gaussian_log_prob(z: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(z; μ, diag σ²) = -½ Σ_k [(z_k - μ_k)² / σ_k² + log σ_k² + log 2π], summed over the
    last axis (all arguments broadcast)."""
    return -0.5 * ((z - mean).square() * torch.exp(-log_var) + log_var + LOG_2PI).sum(-1)


def std_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last axis."""
    return -0.5 * (z.square() + LOG_2PI).sum(-1)


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_k (μ_k² + σ_k² - 1 - log σ_k²) (Kingma & Welling 2013,
    appendix B), summed over the last axis: (B, K) -> (B,)."""
    return 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(-1)
