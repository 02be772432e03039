"""The variational bound on -log p(x_0) of a diffusion model with fixed reverse variances.

Ho et al. 2020, eq. 5 (with Nichol & Dhariwal 2021, section 2.1, for its evaluation):

    -log p(x_0) <= L_T + sum_{t=2..T} L_{t-1} + L_0,
    L_T     = KL(q(x_T | x_0) || N(0, I)),
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),   x_t ~ q(x_t | x_0),
    L_0     = -log p(x_0 | x_1).

With p(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I) and the posterior N(mu~, beta~_t I),

    L_{t-1} = sum_d [ log(sigma_t / sqrt(beta~_t)) + (beta~_t + (mu~ - mu_theta)^2) / (2 sigma_t^2) - 1/2 ],

where mu~ - mu_theta = coef_x0 (x_0 - x0_theta) (both means use the same x_t). The decoder L_0
is a Gaussian with mean x0_theta(x_1) discretised into the data's levels for images (eq. 13, so
the bound is on the probability of the discrete image, comparable with other models' bits/dim)
and a Gaussian density for continuous data (nats). Its variance is beta~ of the second step, as
in Ho et al.'s code, whichever reverse variance the other steps use.

The T - 1 KL terms cost one network pass each. :func:`nll_bound` sums them all or estimates
their sum from K stratified timesteps: the T - 1 timesteps are cut into K contiguous blocks, one
timestep is drawn uniformly in each block for each example, and its term is weighted by the
block's size; the estimate is unbiased, and exact when K = T - 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from dgm.models.diffusion.process import noised, per_example, posterior
from dgm.models.diffusion.schedules import Schedule
from dgm.models.discrete import discretized_gaussian_log_prob
from dgm.rng import rand, randn

# x0_theta(x_t, t) for a (B,) long tensor of timesteps
PredictX0 = Callable[[Tensor, Tensor], Tensor]


def _flat_sum(values: Tensor) -> Tensor:
    return values.reshape(values.shape[0], -1).sum(1)


def prior_kl(x0: Tensor, schedule: Schedule) -> Tensor:
    """L_T = KL(N(sqrt(abar_T) x_0, (1 - abar_T) I) || N(0, I)) per example, (B,)."""
    a = float(schedule.abar[-1])
    return _flat_sum(0.5 * (a * x0**2 + (1 - a) - 1 - math.log(1 - a)))


def reverse_variances(schedule: Schedule, variance: str) -> Tensor:
    """sigma_t^2 of p(x_{t-1} | x_t) for t = 0..T-1 (float64): beta_t ("beta") or beta~_t
    ("posterior"), with index 0 (the decoder's) beta~ of the second step in both cases."""
    sigma2 = (schedule.betas if variance == "beta" else schedule.posterior_variance).clone()
    sigma2[0] = schedule.posterior_variance[1] if schedule.steps > 1 else schedule.betas[0]
    return sigma2


def kl_term(x0: Tensor, x_t: Tensor, x0_hat: Tensor, t: Tensor, schedule: Schedule, sigma2: Tensor) -> Tensor:
    """L_{t-1} per example for timesteps t >= 1 (B,) (0-based; see the module docstring)."""
    post = posterior(schedule.abar[t], schedule.abar_prev[t])
    var_q = per_example(post.variance, x0)
    var_p = per_example(sigma2[t], x0)
    diff = per_example(post.coef_x0, x0) * (x0 - x0_hat)
    return _flat_sum(0.5 * (torch.log(var_p / var_q) + (var_q + diff**2) / var_p - 1))


def decoder_nll(x0: Tensor, x0_hat: Tensor, variance: float, levels: int | None) -> Tensor:
    """L_0 = -log p(x_0 | x_1) per example: a Gaussian of mean x0_hat and ``variance``,
    discretised into ``levels`` bins of [-1, 1] (images) or a density (``levels`` None)."""
    log_scale = torch.full_like(x0, 0.5 * math.log(variance))
    if levels is not None:
        x = ((x0 + 1) * (levels - 1) / 2).round()
        return -_flat_sum(discretized_gaussian_log_prob(x, x0_hat, log_scale, levels))
    return _flat_sum(0.5 * (x0 - x0_hat) ** 2 / variance + 0.5 * math.log(2 * math.pi * variance))


def strata(count: int, k: int) -> list[tuple[int, int]]:
    """``k`` contiguous blocks [start, stop) covering 1..count (sizes differ by at most one)."""
    edges = torch.linspace(1, count + 1, k + 1).round().long().tolist()
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def nll_bound(
    predict_x0: PredictX0,
    x0: Tensor,
    schedule: Schedule,
    variance: str,
    levels: int | None,
    terms: int | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """The bound on -log p(x_0) per example (B,) in nats, and its parts ``prior`` (L_T),
    ``diffusion`` (the sum of the KL terms, estimated from ``terms`` stratified timesteps per
    example, all T - 1 when None or larger) and ``decoder`` (L_0). ``x0`` is the data scaled as
    the network sees it ([-1, 1] for images of ``levels`` levels)."""
    n, device = x0.shape[0], x0.device
    sigma2 = reverse_variances(schedule, variance)
    total_kl = torch.zeros(n, dtype=torch.float64, device=device)
    count = schedule.steps - 1
    blocks = strata(count, min(terms or count, count)) if count > 0 else []
    for start, stop in blocks:
        u = rand(n, generator, device)
        t = start + (u * (stop - start)).long().clamp(max=stop - start - 1)
        x_t = noised(x0, randn(x0.shape, generator, device).to(x0.dtype), schedule.abar[t.cpu()])
        x0_hat = predict_x0(x_t, t)
        total_kl += (stop - start) * kl_term(x0, x_t, x0_hat, t.cpu(), schedule, sigma2).double()
    t0 = torch.zeros(n, dtype=torch.long, device=device)
    x_1 = noised(x0, randn(x0.shape, generator, device).to(x0.dtype), schedule.abar[0])
    decoder = decoder_nll(x0, predict_x0(x_1, t0), float(sigma2[0]), levels).double()
    prior = prior_kl(x0, schedule).double()
    return {"nll": prior + total_kl + decoder, "prior": prior, "diffusion": total_kl, "decoder": decoder}
